import ArgumentParser
import Engine
import Foundation
import Hosts
import Runs
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
        let caps = LocalExecutor().capabilities(sysctls: [])
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
                // Each run has a port of its own, so that a server still ending from the run before
                // is never the one a client reaches (a run once measured 0).
                let host = try controller.executor("local")
                let (server, client) = (t.namespace(of: "b"), t.namespace(of: "a"))
                guard let target = t.links[0].endpoints[1].address?.address.description else { throw ValidationError("the fidelity lab has no address") }
                var all: [Double] = []
                for k in 0..<max(1, runs) {
                    all.append(try Iperf3Measurement.goodput(on: host, server: server, client: client, target: target, port: 5201 + k, seconds: seconds))
                }
                let mbps = median(all)
                print(cell + String(format: "   %14.2f   %6.1f %%   %6.1f %%        %d: %.1f-%.1f %%", mbps, mbps / rate * 100, mbps / rate / Self.ceiling * 100,
                                    all.count, all.min()! / rate * 100, all.max()! / rate * 100))
            }
        }
    }
}
