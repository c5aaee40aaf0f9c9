import Foundation
import Hosts
import Planning

/// One iperf3 measurement between two namespaces (of one host, or of two), its figure the
/// receiver's: a one-off server (`-1`) on its own port, the client through its host's executor,
/// iperf3's JSON report read by `Iperf3Output`. What the benchmarks and `pathbed verify` measure
/// links with.
public enum Iperf3Measurement {
    /// Goodput in Mbit/s of `seconds` of traffic, the first `omit` seconds (slow start) left out.
    public static func goodput(on executor: HostExecutor, server: String, client: String, target: String, port: Int,
                               seconds: Int, omit: Int = 1) throws -> Double {
        try goodput(serverOn: executor, server: server, clientOn: executor, client: client, target: target, bind: nil, port: port, seconds: seconds, omit: omit)
    }

    /// The same with the server's and the client's namespaces on hosts of their own, the client
    /// sending from `bind` when given.
    public static func goodput(serverOn serverHost: HostExecutor, server: String, clientOn clientHost: HostExecutor, client: String,
                               target: String, bind: String?, port: Int, seconds: Int, omit: Int = 1) throws -> Double {
        // -D: the server detaches and serves one test (-1); --idle-timeout: it also ends when no
        // client comes, so nothing is left behind, whatever happens to the client.
        let idle = seconds + omit + 20
        guard try serverHost.run(["iperf3", "-s", "-1", "-D", "--idle-timeout", String(idle), "-p", String(port)], in: server, timeout: 20, output: { _, _ in }) == 0 else {
            throw LabError("iperf3 -s did not start in \(server)", fix: "apt-get install iperf3 (scripts/setup does)")
        }
        guard try Listening.wait(on: serverHost, namespace: server, port: port, seconds: 10) else {
            throw LabError("iperf3 -s does not listen on port \(port) in \(server)")
        }
        var out = Data()
        let code = try clientHost.run(["iperf3", "-c", target, "-p", String(port), "-t", String(seconds), "-O", String(omit), "-J"] + (bind.map { ["-B", $0] } ?? []),
                                      in: client, timeout: Double(seconds + omit + 30)) { s, d in if s == .stdout, out.count < 8 << 20 { out.append(d) } }
        do { return try Iperf3Output.receivedMbps(json: out) } catch {
            throw LabError("iperf3 in \(client) (exit \(code)): \(error)")
        }
    }
}
