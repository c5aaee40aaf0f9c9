import ArgumentParser
import Engine
import Foundation
import Hosts
import Report
import Runs
import TopologyModel

/// The origin's testbed B, for real: topologies/thesis-two-vms.yaml on the built-in VM pair, a
/// proxy on the MPTCP VM in front of a plain server on the other, and downloads over WLAN alone,
/// LTE alone and MPTCP over both, printed next to the origin's figures. It is a `pathbed run` of
/// that lab with the benchmark's own workloads in place of the file's.
struct TwoVMs: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "two-vms",
        abstract: "Run the origin's two-VM testbed on the built-in VM pair and print its figures next to the origin's.",
        discussion: """
            Boots the pair unless it is up (and stops it again afterwards unless --keep-vms), then runs the lab \
            with these workloads, one after the other: an MPTCP proxy (socat under mptcpize) on the proxy node in \
            front of iperf3 servers on the plain server; downloads (iperf3 -R) from the client bound to its WLAN \
            address, bound to its LTE address, and MPTCP over both, with a ping over WLAN under that load; then \
            pings over each path. Software emulation adds jitter: the RTT spread is printed with it.
            """
    )

    @Option(help: "The topology (the origin's testbed B): nodes client, proxy and server, links wlan and lte.") var file = "topologies/thesis-two-vms.yaml"
    @Option(help: "Seconds per download (after 2 s of slow start left out).") var seconds = 10
    @Flag(name: .customLong("keep-vms"), help: "Leave the VM pair running afterwards.") var keepVMs = false
    @Option(help: "Also write the figures as JSON to this file.") var json: String?
    @Option(help: "Keep the run's directory (results.json, plots) here; by default it is removed.") var out: String?

    struct Figures: Codable {
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
        /// Per host, the percent of the run in which its CPUs were at least 90 % busy.
        var saturated: [String: Double]?
        /// The MPTCP download's bytes per path (the client's MPTCP subflows: the sender behind
        /// the proxy speaks plain TCP), shares from 0 to 1.
        var mptcpSubflowShares: [String: Double]?
    }

    struct RTT: Codable {
        var min: Double, avg: Double, max: Double, mdev: Double
        /// ping's own summary figures, from a run's RTT series.
        init?(_ s: Series?) {
            guard let v = s?.values, !v.isEmpty else { return nil }
            let mean = v.reduce(0, +) / Double(v.count)
            min = v.min()!; avg = mean; max = v.max()!
            mdev = (v.map { ($0 - mean) * ($0 - mean) }.reduce(0, +) / Double(v.count)).squareRoot()
        }
    }

    /// The benchmark's workloads on the lab of `t`, laid out one after the other.
    func workloads(_ t: Topology) throws -> (workloads: [Workload], length: Duration) {
        func address(_ node: String, on link: String) throws -> IPAddress {
            guard let l = t.links.first(where: { $0.name == link }), let a = l.endpoints.first(where: { $0.nodeName == node })?.address?.address else {
                throw ValidationError("\(file) has no addressed end of \(node) on link \(link)")
            }
            return a
        }
        func firstAddress(_ node: String) throws -> IPAddress {
            guard let a = t.links.lazy.flatMap(\.endpoints).first(where: { $0.nodeName == node && $0.address != nil })?.address?.address else {
                throw ValidationError("\(file) has no node \(node) with an address")
            }
            return a
        }
        let (wlan, lte, proxy, server) = (try address("client", on: "wlan"), try address("client", on: "lte"), try firstAddress("proxy"), try firstAddress("server"))
        let here = SourceLocation(file: "pathbed-bench two-vms", line: 0, column: 0)
        let download = Duration.seconds(Double(seconds + 2))
        let gap = Duration.seconds(1)
        var list: [Workload] = []
        var at = Duration.seconds(1)
        // iperf3 workload K listens on port 5201 + K in the server: the proxy forwards each.
        let ports = (1...3).map { 5201 + $0 }
        let forward = ports.map { "socat TCP-LISTEN:\($0),fork,reuseaddr TCP:\(server):\($0) &" }.joined(separator: " ") + " wait"
        func add(_ name: String, _ kind: Workload.Kind, mptcp: Bool, length: Duration) {
            list.append(Workload(name: name, location: here, plugin: name.hasPrefix("rtt") ? "ping" : "iperf3", mptcp: mptcp, mptcpServer: false,
                                 start: at, duration: length, kind: kind))
        }
        for (name, bind, mptcp) in [("tcp-wlan", wlan as IPAddress?, false), ("tcp-lte", lte, false), ("mptcp", nil, true)] {
            add(name, .iperf3(.init(client: "client", server: "server", target: proxy, reverse: true, bind: bind)), mptcp: mptcp, length: download)
            if mptcp {
                // RTT over WLAN under the MPTCP download, after its slow start.
                let started = at
                at = at + .seconds(3)
                add("rtt-under-load", .ping(.init(client: "client", target: proxy, interval: .ms(250), bind: wlan)), mptcp: false, length: .seconds(Double(seconds - 2)))
                at = started
            }
            at = at + download + gap
        }
        for (name, bind) in [("rtt-wlan", wlan), ("rtt-lte", lte)] {
            add(name, .ping(.init(client: "client", target: proxy, interval: .ms(200), bind: bind)), mptcp: false, length: .seconds(4))
            at = at + .seconds(5)
        }
        let length = at
        // The proxy is a server side: started, and listening on every port, before the run starts.
        list.insert(Workload(name: "proxy", location: here, plugin: "command", mptcp: false, mptcpServer: true, start: .zero, duration: length,
                             kind: .command(.init(node: "proxy", argv: ["true"], server: "proxy", serverArgv: ["sh", "-c", forward], serverPorts: ports))), at: 0)
        return (list, length)
    }

    /// The bytes each path's MPTCP subflows delivered to `node` for `workload`, as shares.
    static func receivedShares(_ r: RunResults, workload: String, node: String) -> [String: Double]? {
        let subflows = (r.subflows ?? []).filter { $0.workload == workload && $0.node == node && $0.token != nil }
        var bytes: [String: Double] = [:]
        for s in subflows {
            guard let first = s.bytesReceived.first, let last = s.bytesReceived.last, last >= first else { continue }
            bytes[s.path ?? s.interface ?? "?", default: 0] += Double(last - first)
        }
        let total = bytes.values.reduce(0, +)
        return total > 0 ? bytes.mapValues { $0 / total } : nil
    }

    func run() throws {
        guard geteuid() == 0 else { throw ValidationError("this benchmark boots VMs and builds a lab: run it as root") }
        Interrupts.catchSignals()
        let pair = LocalVMs()
        let wasUp = pair.load() != nil
        let state = try pair.up { print("  \($0)") }
        defer { if !keepVMs && !wasUp { _ = pair.down(); print("  the VM pair is stopped") } }
        if !wasUp { print("VM pair booted in \(String(format: "%.0f", state.bootSeconds ?? 0)) s") }

        var t = try TopologyLoader.load(path: file)
        let (list, length) = try workloads(t)
        t.workloads = list
        t.schedule = []
        t.run.duration = length + .seconds(1)
        let lab = LabController.forLab(t, inventory: try Inventory.read(pair.inventoryPath))
        defer { for e in lab.executors.values { e.close() } }
        _ = try? lab.down(t.name)
        let dir = out ?? FileManager.default.temporaryDirectory.appendingPathComponent("pathbed-bench-two-vms-\(getpid())").path
        defer { if out == nil { try? FileManager.default.removeItem(atPath: dir) } }
        print("measuring: \(seconds) s per download, one after the other (\(Int(length.seconds)) s)...")
        var o = RunController.Options(outDirectory: dir)
        o.directory = dir
        o.verify = false  // it measures the links itself, next to the origin's figures
        let r = try RunController(lab: lab, topology: t, options: o).run { print("  \($0)") }.results

        func workload(_ name: String) throws -> RunResults.WorkloadResult {
            guard let w = r.workloads.first(where: { $0.name == name }) else { throw ValidationError("the run has no workload \(name)") }
            if let e = w.error { throw ValidationError("\(name) failed: \(e)") }
            return w
        }
        /// Mean throughput after the first 2 s (slow start), as iperf3 -O 2 leaves it out.
        func mbps(_ name: String) throws -> Double {
            let w = try workload(name)
            guard let s = w.series.first, let m = s.mean(from: w.started + 2, to: .infinity) else { throw ValidationError("\(name) measured nothing") }
            return m
        }
        func rtt(_ name: String) throws -> RTT {
            guard let v = RTT(try workload(name).series.first) else { throw ValidationError("\(name): no replies") }
            return v
        }
        let wlan = try mbps("tcp-wlan"), lte = try mbps("tcp-lte"), mptcp = try mbps("mptcp")
        let (wlanRTT, lteRTT) = (try rtt("rtt-wlan"), try rtt("rtt-lte"))
        let loaded = RTT(r.workloads.first { $0.name == "rtt-under-load" }?.series.first)
        let proxy = r.mptcpCounters["proxy"] ?? [:]
        let kernels = r.hosts.mapValues(\.kernel)
        let f = Figures(wlanMbps: wlan, lteMbps: lte, mptcpMbps: mptcp, wlanRTT: wlanRTT, lteRTT: lteRTT, mptcpRTTUnderLoad: loaded,
                        proxyMPCapableSYNs: proxy["MPCapableSYNTX"] ?? 0, proxyFallbacks: proxy["MPCapableFallbackSYNACK"] ?? 0,
                        bootSeconds: wasUp ? nil : state.bootSeconds, kernels: kernels,
                        saturated: r.health.map { Dictionary($0.hosts.map { ($0.host, $0.saturated) }, uniquingKeysWith: max) },
                        mptcpSubflowShares: Self.receivedShares(r, workload: "mptcp", node: "client"))
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
            The MPTCP download's bytes per path: \(f.mptcpSubflowShares.map { $0.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.0f %%", $0.value * 100))" }.joined(separator: ", ") } ?? "not measured").
            CPUs at least 90 % busy: \(f.saturated.map { $0.sorted { $0.key < $1.key }.map { "\($0.key) \(String(format: "%.0f %%", $0.value)) of the run" }.joined(separator: ", ") } ?? "not measured").
            """)
        if let json {
            let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
            try e.encode(f).write(to: URL(fileURLWithPath: json), options: .atomic)
        }
    }
}
