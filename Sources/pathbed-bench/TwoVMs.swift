import ArgumentParser
import Engine
import Foundation
import Netlink
import TopologyModel

/// The origin's testbed B, for real: topologies/thesis-two-vms.yaml on the built-in VM pair, a
/// proxy on the MPTCP VM in front of a plain server on the other, and iperf3 downloads over
/// WLAN alone, LTE alone and MPTCP over both, printed next to the origin's figures.
struct TwoVMs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "two-vms",
        abstract: "Run the origin's two-VM testbed on the built-in VM pair and print its figures next to the origin's.",
        discussion: """
            Boots the pair unless it is up (and stops it again afterwards unless --keep-vms), builds the lab, \
            starts iperf3 -s on the plain server and an MPTCP proxy (socat under mptcpize) on the proxy node, \
            then measures downloads (iperf3 -R) from the client: TCP bound to the WLAN address, TCP bound to \
            the LTE address, MPTCP over both; and ping RTTs over each path. Software emulation adds jitter: \
            the RTT spread is printed with it.
            """
    )

    @Option(help: "The topology (the origin's testbed B).") var file = "topologies/thesis-two-vms.yaml"
    @Option(help: "Seconds per iperf3 run (after 2 s of slow start left out).") var seconds = 10
    @Flag(name: .customLong("keep-vms"), help: "Leave the VM pair running afterwards.") var keepVMs = false
    @Option(help: "Also write the figures as JSON to this file.") var json: String?

    struct Figures: Codable {
        var upSeconds: Double
        var hostSeconds: [String: Double]
        var probes: Int
        var wlanMbps: Double
        var lteMbps: Double
        var mptcpMbps: Double
        var wlanRTT: RTT
        var lteRTT: RTT
        var mptcpRTTUnderLoad: RTT?
        /// MP_CAPABLE SYNs the proxy sent to the plain server, and how many fell back to TCP.
        var proxyMPCapableSYNs: Int
        var proxyFallbacks: Int
        var bootSeconds: Double?
        var kernels: [String: String]
    }

    struct RTT: Codable { var min: Double; var avg: Double; var max: Double; var mdev: Double }

    func run() throws {
        guard geteuid() == 0 else { throw ValidationError("this benchmark boots VMs and builds a lab: run it as root") }
        Interrupts.catchSignals()
        let pair = VMPair()
        let wasUp = pair.load() != nil
        let state = try pair.up { print("  \($0)") }
        defer { if !keepVMs && !wasUp { _ = pair.down(); print("  the VM pair is stopped") } }
        if !wasUp { print("VM pair booted in \(String(format: "%.0f", state.bootSeconds ?? 0)) s") }

        let t = try TopologyLoader.load(path: file)
        let inventory = try Inventory.read(pair.inventoryPath)
        let controller = LabController.forLab(t, inventory: inventory)
        _ = try? controller.down(t.name)
        let up = try controller.up(t) { print("  \($0)") }
        print("lab \(t.name) up in \(String(format: "%.2f", up.seconds)) s (" + up.hostSeconds.map { "\($0.host) \(String(format: "%.2f", $0.seconds)) s" }.joined(separator: ", ") + "), \(up.probes) tunnel probes passed")
        defer { _ = try? controller.down(t.name); print("  lab \(t.name) is down") }

        guard let server = controller.executors["plain-vm"], let client = controller.executors["mptcp-vm"] else {
            throw ValidationError("\(file) must have hosts mptcp-vm and plain-vm")
        }
        let serverIP = "10.0.3.3", proxyIP = "10.0.3.2", wlanIP = "10.0.1.2", lteIP = "10.0.2.2"
        // Long-lived programs, each over a connection of its own; stopped (their process groups
        // killed by the agent) when this command ends, however it ends.
        let servers = [
            Background(access: controller.access["plain-vm"]!, argv: ["iperf3", "-s"], namespace: "pb.thesis.server"),
            Background(access: controller.access["mptcp-vm"]!, argv: ["mptcpize", "run", "socat", "TCP-LISTEN:5201,fork,reuseaddr", "TCP:\(serverIP):5201"], namespace: "pb.thesis.proxy"),
        ]
        defer { for s in servers { s.stop() } }
        for (e, ns) in [(server, "pb.thesis.server"), (client, "pb.thesis.proxy")] {
            let wait = "for i in $(seq 300); do ss -Hltn 'sport = :5201' | grep -q . && exit 0; sleep 0.1; done; exit 1"
            guard try e.run(["sh", "-c", wait], in: ns, timeout: 60, output: { _, _ in }) == 0 else {
                throw ValidationError("nothing listens on port 5201 in \(ns) after 30 s (iperf3 -s, or the proxy, did not start)")
            }
        }

        func iperf(_ extra: [String], mptcp: Bool) throws -> Double {
            let argv = (mptcp ? ["mptcpize", "run"] : []) + ["iperf3", "-c", proxyIP, "-R", "-J", "-t", String(seconds), "-O", "2"] + extra
            var out = Data()
            let code = try client.run(argv, in: "pb.thesis.client", timeout: Double(seconds + 30)) { s, d in if s == .stdout { out.append(d) } }
            guard code == 0, let obj = try JSONSerialization.jsonObject(with: out) as? [String: Any],
                  let end = obj["end"] as? [String: Any], let rx = end["sum_received"] as? [String: Any], let bps = rx["bits_per_second"] as? Double else {
                throw ValidationError("iperf3 \(argv.joined(separator: " ")) failed (exit \(code)): \(String(decoding: out.prefix(300), as: UTF8.self))")
            }
            return bps / 1e6
        }
        func ping(from source: String, count: Int = 20) throws -> RTT {
            var out = Data()
            _ = try client.run(["ping", "-n", "-q", "-c", String(count), "-i", "0.2", "-I", source, proxyIP], in: "pb.thesis.client", timeout: 60) { s, d in if s == .stdout { out.append(d) } }
            return try Self.parseRTT(String(decoding: out, as: UTF8.self))
        }

        print("measuring (\(seconds) s per run)...")
        let wlan = try iperf(["-B", wlanIP], mptcp: false)
        print(String(format: "  TCP over WLAN   %6.2f Mbit/s", wlan))
        let lte = try iperf(["-B", lteIP], mptcp: false)
        print(String(format: "  TCP over LTE    %6.2f Mbit/s", lte))
        // RTT under MPTCP load: ping over WLAN while the MPTCP download runs.
        let loadedBox = Box<RTT>()
        let clientAccess = controller.access["mptcp-vm"]!
        let count = max(5, (seconds - 2) * 4)
        let pinger = Thread {
            Thread.sleep(forTimeInterval: 3)
            var out = Data()
            let e = RemoteExecutor(access: clientAccess, controlDirectory: StateStore().directory + "/ssh")
            _ = try? e.run(["ping", "-n", "-q", "-c", String(count), "-i", "0.25", "-I", wlanIP, proxyIP], in: "pb.thesis.client", timeout: Double(count) / 4 + 20) { s, d in if s == .stdout { out.append(d) } }
            loadedBox.value = try? Self.parseRTT(String(decoding: out, as: UTF8.self))
            e.close()
        }
        pinger.start()
        let mptcp = try iperf([], mptcp: true)
        print(String(format: "  MPTCP over both %6.2f Mbit/s", mptcp))
        while pinger.isExecuting { Thread.sleep(forTimeInterval: 0.1) }
        let loaded = loadedBox.value
        let wlanRTT = try ping(from: wlanIP), lteRTT = try ping(from: lteIP)

        var counters = Data()
        _ = try client.run(["cat", "/proc/net/netstat"], in: "pb.thesis.proxy", timeout: 20) { s, d in if s == .stdout { counters.append(d) } }
        let mib = MPTCPWatch.parseMPTcpExt(String(decoding: counters, as: UTF8.self))

        var kernels: [String: String] = [:]
        for (h, e) in controller.executors { kernels[h] = (try? e.info())?.kernel ?? "?" }
        let f = Figures(upSeconds: up.seconds, hostSeconds: Dictionary(uniqueKeysWithValues: up.hostSeconds.map { ($0.host, $0.seconds) }),
                        probes: up.probes, wlanMbps: wlan, lteMbps: lte, mptcpMbps: mptcp, wlanRTT: wlanRTT, lteRTT: lteRTT,
                        mptcpRTTUnderLoad: loaded, proxyMPCapableSYNs: mib["MPCapableSYNTX"] ?? 0, proxyFallbacks: mib["MPCapableFallbackSYNACK"] ?? 0,
                        bootSeconds: wasUp ? nil : state.bootSeconds, kernels: kernels)
        print("""

            The origin's testbed B (two VMs joined by GRE, MTU 5000), rebuilt by Pathbed on the built-in pair
            (\(kernels.sorted { $0.key < $1.key }.map { "\($0.key): Linux \($0.value)" }.joined(separator: ", ")); software emulation):

            | measurement | Pathbed, this run | origin, testbed B |
            |---|---|---|
            | TCP over WLAN only | \(String(format: "%.1f", wlan)) Mbit/s, RTT \(String(format: "%.1f", wlanRTT.avg)) ms (min \(String(format: "%.1f", wlanRTT.min)), mdev \(String(format: "%.1f", wlanRTT.mdev))) | 19.9 Mbit/s, RTT 20.8 ms |
            | TCP over LTE only | \(String(format: "%.2f", lte)) Mbit/s, RTT \(String(format: "%.1f", lteRTT.avg)) ms (min \(String(format: "%.1f", lteRTT.min)), mdev \(String(format: "%.1f", lteRTT.mdev))) | 9.38 Mbit/s, RTT 96.6 ms |
            | MPTCP over both, cubic | \(String(format: "%.1f", mptcp)) Mbit/s (\(String(format: "%.0f", mptcp / (wlan + lte) * 100)) % of the two paths' sum) | 28.4 Mbit/s (97 % of 29.3) |
            | RTT over WLAN under the MPTCP download | \(loaded.map { String(format: "%.1f ms (mdev %.1f)", $0.avg, $0.mdev) } ?? "not measured") | 24 ms mean |

            The plain server never spoke MPTCP: \(f.proxyFallbacks) of the proxy's \(f.proxyMPCapableSYNs) MP_CAPABLE SYNs to it fell back to TCP.
            """)
        if let json {
            let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
            try e.encode(f).write(to: URL(fileURLWithPath: json))
        }
    }

    static func parseRTT(_ text: String) throws -> RTT {
        // rtt min/avg/max/mdev = 21.0/28.0/40.1/4.2 ms
        guard let line = text.split(separator: "\n").first(where: { $0.contains("min/avg/max") }),
              let values = line.split(separator: "=").last?.trimmingCharacters(in: .whitespaces).split(separator: " ").first else {
            throw ValidationError("ping printed no RTT summary: \(text.suffix(200))")
        }
        let v = values.split(separator: "/").compactMap { Double($0) }
        guard v.count == 4 else { throw ValidationError("cannot read ping's summary: \(line)") }
        return RTT(min: v[0], avg: v[1], max: v[2], mdev: v[3])
    }
}

final class Box<T>: @unchecked Sendable {
    private let lock = NSLock()
    private var stored: T?
    var value: T? {
        get { lock.withLock { stored } }
        set { lock.withLock { stored = newValue } }
    }
}

/// A long-lived program on a lab host, over an agent connection of its own.
final class Background: @unchecked Sendable {
    private var stopped = false
    private let lock = NSLock()
    private let thread: Thread
    private let done = DispatchSemaphore(value: 0)

    init(access: HostAccess, argv: [String], namespace: String) {
        var flag: (() -> Bool)!
        let executor = RemoteExecutor(access: access, controlDirectory: StateStore().directory + "/ssh", interrupted: { flag() ? SIGTERM : 0 })
        thread = Thread { [done] in
            _ = try? executor.run(argv, in: namespace, timeout: nil) { _, _ in }
            executor.close()
            done.signal()
        }
        flag = { [unowned self] in lock.withLock { stopped } || Interrupts.signal != 0 }
        thread.start()
    }

    func stop() {
        lock.withLock { stopped = true }
        _ = done.wait(timeout: .now() + 10)
    }
}
