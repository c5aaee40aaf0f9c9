import ArgumentParser
import Engine
import Foundation
import Hosts
import Report
import Runs
import TopologyModel

/// How well a run keeps the times of its schedule: a lab of two nodes whose link flaps every
/// 0.5 s, on this machine or with one end in each VM of the built-in pair.
struct Schedule: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time a run's fault schedule: each change's start and end against its planned time (root).",
        discussion: """
            Builds a lab of two nodes joined by one link, pings across it, and flaps the link (down for \
            0.25 s every 0.5 s, --count times), then prints when each change began and when every host \
            had made it, against the plan, in milliseconds: p50, p99, max. With --vms the nodes are in the \
            two VMs of the built-in pair (booted if needed) and the link is a gretap tunnel between them.
            """)
    @Option(help: "How many flaps (each is two changes).") var count = 40
    @Flag(help: "Put the two nodes in the built-in VM pair, one in each VM.") var vms = false

    func run() throws {
        guard geteuid() == 0 else { throw ValidationError("the schedule benchmark builds a real lab: run it as root") }
        Interrupts.catchSignals()
        defer { Interrupts.restoreDefaults() }
        var inventory: Inventory?
        var pair: LocalVMs?
        var wasUp = true
        var machines: [LocalVMs.Machine] = []
        if vms {
            let p = LocalVMs()
            wasUp = p.load() != nil
            machines = try p.up { print("  \($0)") }.machines
            inventory = try Inventory.read(p.inventoryPath)
            pair = p
        }
        defer { if let pair, !wasUp { _ = pair.down(); print("  the VM pair is stopped") } }
        // With --vms, node a in the pair's first VM and b in its second, the underlay as the pair has it.
        let hosts = machines.isEmpty ? "" : "hosts:\n" + machines.map {
            "  \($0.name): { ssh: root@\($0.underlay), underlay: \($0.underlay), mtu: 5000, mptcp: \($0.mptcp) }"
        }.joined(separator: "\n")
        let yaml = """
            name: bench-schedule
            \(hosts)
            nodes:
              a: { \(machines.first.map { "host: \($0.name)" } ?? "") }
              b: { \(machines.last.map { "host: \($0.name)" } ?? "") }
            links:
              - { name: ab, endpoints: [a:eth0, b:eth0], subnet: 10.77.0.0/30 }
            workloads:
              - { name: rtt, plugin: ping, client: a, server: b, duration: \(Double(count) * 0.5 + 2)s, with: { interval: 0.05 } }
            schedule:
              - { at: 1s, fault: link-flap, link: ab, for: 0.25s, every: 0.5s, count: \(count) }
            """
        let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "bench-schedule.yaml")
        let lab = LabController.forLab(t, inventory: inventory)
        defer { for e in lab.executors.values { e.close() } }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("pathbed-bench-schedule-\(getpid())").path
        defer { try? FileManager.default.removeItem(atPath: out) }
        var o = RunController.Options(outDirectory: out)
        o.verify = false  // what it times is the schedule
        let outcome = try RunController(lab: lab, topology: t, options: o).run { _ in }
        let where_ = vms ? "across the VM pair (\(outcome.results.hosts.values.map(\.kernel).sorted().joined(separator: ", ")))" : "on this machine"
        print("\(count) flaps \(where_):" + RunStatistics.timing([outcome.results]))
        // A host's times come to this machine's clock through the offset its agent's handshake
        // measured: known to within half the quickest round trip.
        for e in lab.executors.values.sorted(by: { $0.host < $1.host }) where e.clockUncertaintyNanoseconds > 0 {
            print(String(format: "%@: clock offset known to within ±%.2f ms (half the quickest of its round trips)", e.host, Double(e.clockUncertaintyNanoseconds) / 1e6))
        }
    }
}
