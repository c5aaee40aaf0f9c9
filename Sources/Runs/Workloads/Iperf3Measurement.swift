import Foundation
import Hosts
import Planning

/// One iperf3 measurement between two namespaces of a host, its figure the receiver's: a
/// one-off server (`-1`) on its own port, the client through the same host executor, iperf3's
/// JSON report read by `Iperf3Output`. What the benchmarks measure links with.
public enum Iperf3Measurement {
    /// Goodput in Mbit/s of `seconds` of traffic, the first `omit` seconds (slow start) left out.
    public static func goodput(on executor: HostExecutor, server: String, client: String, target: String, port: Int,
                               seconds: Int, omit: Int = 1) throws -> Double {
        try startServer(on: executor, namespace: server, port: port, idleSeconds: seconds + omit + 20)
        var out = Data()
        let code = try executor.run(["iperf3", "-c", target, "-p", String(port), "-t", String(seconds), "-O", String(omit), "-J"],
                                    in: client, timeout: Double(seconds + omit + 30)) { s, d in if s == .stdout, out.count < 8 << 20 { out.append(d) } }
        do { return try Iperf3Output.receivedMbps(json: out) } catch {
            throw LabError("iperf3 in \(client) (exit \(code)): \(error)")
        }
    }

    /// A one-off iperf3 server (`-1`), detached (`-D`), listening on `port` when this returns. It
    /// also ends after `idleSeconds` without a client (`--idle-timeout`), so nothing is left
    /// behind whatever happens to the client.
    public static func startServer(on executor: HostExecutor, namespace: String, port: Int, idleSeconds: Int) throws {
        guard try executor.run(["iperf3", "-s", "-1", "-D", "--idle-timeout", String(idleSeconds), "-p", String(port)], in: namespace, timeout: 20, output: { _, _ in }) == 0 else {
            throw LabError("iperf3 -s did not start in \(namespace)", fix: "apt-get install iperf3 (scripts/setup does)")
        }
        guard try Listening.wait(on: executor, namespace: namespace, port: port, seconds: 10) else {
            throw LabError("iperf3 -s does not listen on port \(port) in \(namespace)")
        }
    }
}
