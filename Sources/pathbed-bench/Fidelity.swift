import ArgumentParser
import Engine
import Foundation
import Netlink
import TopologyModel

/// How close a profile's rate is to what TCP gets through it: a two-node lab per rate and
/// delay, iperf3 for a few seconds, goodput as a fraction of the rate and of the ceiling that
/// TCP/IP and Ethernet headers leave (1448 payload bytes per 1514-byte frame: 95.6 %).
struct Fidelity: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "iperf3 goodput through rate (and delay) profiles, as a fraction of the rate (root).")

    @Option(help: "Rates in Mbit/s, comma-separated.") var rates = "1,10,100,1000"
    @Option(help: "One-way delays in ms, comma-separated (delays need netem in the kernel).") var delays = "0,10,50,100"
    @Option(help: "Seconds of traffic per run (after 1 s that iperf3 leaves out).") var seconds = 10
    @Option(help: "Runs per cell; the median is printed, with the range.") var runs = 5

    static let ceiling = 1448.0 / 1514.0

    func run() throws {
        guard geteuid() == 0 else { throw ValidationError("the fidelity benchmark builds real labs: run it as root") }
        Interrupts.catchSignals()
        let caps = CapabilityProbe.run()
        print("rate Mbit/s   delay ms   goodput Mbit/s   of rate   of ceiling (\(String(format: "%.1f", Self.ceiling * 100)) %)   runs: of rate, min-max")
        for rate in rates.split(separator: ",").compactMap({ Double($0) }) {
            for delay in delays.split(separator: ",").compactMap({ Double($0) }) {
                try stopIfInterrupted()
                let cell = String(format: "%10g   %8g", rate, delay)
                if delay > 0 && !caps.has("netem") { print("\(cell)   (needs netem; this kernel has none)"); continue }
                let yaml = """
                    name: fidelity
                    profiles: { p: { rate: \(rate)mbit\(delay > 0 ? ", delay: \(delay)ms" : "") } }
                    nodes: { a: {}, b: {} }
                    links: [ { endpoints: [a:eth0, b:eth0], subnet: 10.99.0.0/30, profile: p } ]
                    """
                let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "fidelity.yaml")
                let controller = LabController.forLab(t)
                _ = try? controller.down(t.name)
                defer { _ = try? controller.down(t.name) }
                _ = try controller.up(t)
                var all: [Double] = []
                for k in 0..<max(1, runs) { all.append(try iperf(server: "pb.fidelity.b", client: "pb.fidelity.a", target: "10.99.0.2", port: 5201 + k)) }
                let mbps = median(all)
                print(cell + String(format: "   %14.2f   %6.1f %%   %6.1f %%        %d: %.1f-%.1f %%", mbps, mbps / rate * 100, mbps / rate / Self.ceiling * 100,
                                    all.count, all.min()! / rate * 100, all.max()! / rate * 100))
            }
        }
    }

    /// One iperf3 run; each run of a cell has a port of its own, so that a server still ending
    /// from the run before is never the one a client reaches (a run once measured 0).
    func iperf(server: String, client: String, target: String, port: Int) throws -> Double {
        let sfd = try NetworkNamespace.open(server)
        let spid = NetworkNamespace.spawn(sfd, ["iperf3", "-s", "-1", "-D", "-p", "\(port)", "--logfile", "/dev/null"])
        close(sfd)
        var st: Int32 = 0
        waitpid(spid, &st, 0)
        usleep(300_000)
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("pb-fidelity-\(getpid()).json").path
        defer { unlink(out) }
        let cfd = try NetworkNamespace.open(client)
        let cpid = NetworkNamespace.spawn(cfd, ["sh", "-c", "iperf3 -c \(target) -p \(port) -t \(seconds) -O 1 -J > \(out)"])
        close(cfd)
        waitpid(cpid, &st, 0)
        let json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out))) as? [String: Any]
        if let error = json?["error"] as? String { throw ValidationError("iperf3 failed in \(client): \(error)") }
        let end = json?["end"] as? [String: Any], sum = end?["sum_received"] as? [String: Any]
        guard let bps = sum?["bits_per_second"] as? Double else { throw ValidationError("iperf3 in \(client) reported no received rate") }
        return bps / 1e6
    }
}
