import ArgumentParser
import Engine
import Foundation
import Hosts
import Runs
import TopologyModel

/// Link fidelity inside a VM: for each rate, one link shaped by Pathbed (a profile of that rate
/// and delay) against the hand-built reference the origin used (netem `rate` and `delay` on both
/// ends of a veth), in the same VM of the built-in pair, iperf3 for each.
struct VMFidelity: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vm-fidelity",
        abstract: "Pathbed's link profiles against hand-built netem, inside a VM of the built-in pair.",
        discussion: "Boots the pair unless it is up (and stops it again unless --keep-vms). Prints iperf3 goodput for both, and their ratio."
    )
    @Option(help: "Rates in Mbit/s, comma-separated.") var rates = "10,20,50"
    @Option(help: "One-way delay in ms, applied in each direction (as the profile's `delay:`).") var delay = 10
    @Option(help: "Seconds per iperf3 run (after 2 s of slow start left out).") var seconds = 8
    @Flag(name: .customLong("keep-vms"), help: "Leave the VM pair running afterwards.") var keepVMs = false

    /// The VM of the built-in pair it measures in.
    static let host = "mptcp-vm"

    func run() throws {
        guard geteuid() == 0 else { throw ValidationError("this benchmark boots VMs and builds labs: run it as root") }
        Interrupts.catchSignals()
        let pair = LocalVMs()
        let wasUp = pair.load() != nil
        _ = try pair.up { print("  \($0)") }
        defer { if !keepVMs && !wasUp { _ = pair.down() } }
        let inventory = try Inventory.read(pair.inventoryPath)
        guard let access = inventory.hosts[Self.host] else { throw ValidationError("the VM pair's inventory has no \(Self.host)") }
        let vm = access.executor()
        defer { vm.close() }

        func iperfMbps(client: String, server: String, target: String) throws -> Double {
            try Iperf3Measurement.goodput(on: vm, server: server, client: client, target: target, port: 5201, seconds: seconds, omit: 2)
        }

        print("inside mptcp-vm (Linux \((try? vm.info())?.kernel ?? "?"), software emulation); one link, \(delay) ms each way; iperf3 \(seconds) s")
        print("rate Mbit/s   hand-built netem Mbit/s   Pathbed Mbit/s   Pathbed / netem")
        for rate in rates.split(separator: ",").compactMap({ Int($0) }) {
            // The reference, as the origin built it: netem rate + delay on both ends of a veth.
            let ns = ["pbref-a", "pbref-b"]
            let setup = """
                set -e; ip netns add pbref-a; ip netns add pbref-b
                ip link add r0 netns pbref-a type veth peer name r1 netns pbref-b
                ip -n pbref-a addr add 10.98.0.1/30 dev r0; ip -n pbref-b addr add 10.98.0.2/30 dev r1
                ip -n pbref-a link set r0 up; ip -n pbref-b link set r1 up
                ip netns exec pbref-a tc qdisc add dev r0 root netem rate \(rate)mbit delay \(delay)ms
                ip netns exec pbref-b tc qdisc add dev r1 root netem rate \(rate)mbit delay \(delay)ms
                """
            defer { _ = try? vm.run(["sh", "-c", "ip netns del pbref-a; ip netns del pbref-b"], in: nil, timeout: 30) { _, _ in } }
            guard try vm.run(["sh", "-c", setup], in: nil, timeout: 30, output: { _, _ in }) == 0 else { throw ValidationError("the reference lab could not be built") }
            let reference = try iperfMbps(client: ns[0], server: ns[1], target: "10.98.0.2")
            _ = try vm.run(["sh", "-c", "ip netns del pbref-a; ip netns del pbref-b"], in: nil, timeout: 30) { _, _ in }

            let yaml = """
                name: vmfidelity
                hosts: { mptcp-vm: { ssh: root@vm } }
                profiles: { p: { rate: \(rate)mbit, delay: \(delay)ms } }
                nodes: { a: { host: mptcp-vm }, b: { host: mptcp-vm } }
                links: [ { endpoints: [a:eth0, b:eth0], subnet: 10.98.0.0/30, profile: p } ]
                """
            let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "vmfidelity.yaml")
            let controller = LabController.forLab(t, inventory: inventory)
            _ = try? controller.down(t.name)
            defer { _ = try? controller.down(t.name) }
            _ = try controller.up(t)
            let pathbed = try iperfMbps(client: t.namespace(of: "a"), server: t.namespace(of: "b"), target: "10.98.0.2")
            _ = try controller.down(t.name)
            print(String(format: "%11d   %23.2f   %14.2f   %12.1f %%", rate, reference, pathbed, pathbed / reference * 100))
        }
    }
}
