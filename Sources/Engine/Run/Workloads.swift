import Foundation
import Netlink
import Report
import TopologyModel

/// The built-in workloads: iperf3 (TCP, or MPTCP through mptcpize; download with `reverse`)
/// sampled every 100 ms from its JSON intervals, and ping (an RTT series). Each runs in its
/// node's namespace, on that node's host, over a connection of its own.
final class WorkloadRunner: @unchecked Sendable {
    struct Prepared: Sendable {
        var workload: Workload
        var start: Double
        var duration: Double
        var target: IPAddress
    }

    let lab: LabController
    let topology: Topology
    let clock: RunClock
    let stop: StopFlag
    private let lock = NSLock()
    private var collected: [RunResults.WorkloadResult] = []
    private var servers: [Thread] = []

    init(lab: LabController, topology: Topology, clock: RunClock, stop: StopFlag) {
        self.lab = lab; self.topology = topology; self.clock = clock; self.stop = stop
    }

    var results: [RunResults.WorkloadResult] { lock.withLock { collected } }

    /// Checks every workload before anything starts.
    static func prepare(_ t: Topology) throws(LabError) -> [Prepared] {
        try t.workloads.enumerated().map { (i, w) throws(LabError) -> Prepared in
            guard w.plugin == "iperf3" || w.plugin == "ping" else {
                throw LabError("workloads[\(i)] (\(w.name)): plugin '\(w.plugin)' cannot run in this release (iperf3 and ping can)", fix: "remove it, or use iperf3 or ping")
            }
            guard let client = w.client, t.nodes.contains(where: { $0.name == client }) else {
                throw LabError("workloads[\(i)] (\(w.name)) needs a `client:` node")
            }
            guard let target = w.target ?? w.server.flatMap({ firstAddress(t, node: $0) }) else {
                throw LabError("workloads[\(i)] (\(w.name)) needs a `server:` node with an address, or a `target:` address")
            }
            if w.plugin == "iperf3", w.server == nil {
                throw LabError("workloads[\(i)] (\(w.name)): iperf3 needs a `server:` node (Pathbed starts iperf3 -s there)")
            }
            guard let d = w.duration?.seconds, d > 0 else { throw LabError("workloads[\(i)] (\(w.name)) needs a `duration:`") }
            return Prepared(workload: w, start: w.start.seconds, duration: d, target: target)
        }
    }

    static func firstAddress(_ t: Topology, node: String) -> IPAddress? {
        for l in t.links { for e in l.endpoints where e.nodeName == node { if let a = e.address { return a.address } } }
        return nil
    }

    func host(of node: String) -> String { topology.nodes.first { $0.name == node }?.host ?? "local" }

    func option(_ w: Workload, _ key: String) -> JSONValue? {
        if case let .object(o)? = w.options { return o[key] }
        return nil
    }

    /// iperf3 servers, each on its own port; waits until each listens.
    func startServers(_ prepared: [Prepared], progress: (String) -> Void) throws {
        for (i, p) in prepared.enumerated() where p.workload.plugin == "iperf3" {
            let server = p.workload.server!
            let h = host(of: server), ns = topology.namespace(of: server)
            let argv = (p.workload.mptcp ? ["mptcpize", "run"] : []) + ["iperf3", "-s", "-p", String(5201 + i), "-J", "-i", "0.1"]
            let e = Unchecked(lab.sideExecutor(h, stop: stop))
            let th = Thread { _ = try? e.value.run(argv, in: ns, timeout: nil) { _, _ in }; (e.value as? RemoteExecutor)?.close() }
            th.start()
            lock.withLock { servers.append(th) }
            guard let check = lab.executors[h] else { continue }
            let wait = "for i in $(seq 300); do ss -Hltn 'sport = :\(5201 + i)' | grep -q . && exit 0; sleep 0.1; done; exit 1"
            guard try check.run(["sh", "-c", wait], in: ns, timeout: 60, output: { _, _ in }) == 0 else {
                throw LabError("iperf3 -s did not start in \(server) (workload \(p.workload.name))", fix: "`pathbed doctor` shows whether iperf3\(p.workload.mptcp ? " and mptcpize are" : " is") installed on \(h)")
            }
            progress("\(p.workload.name): iperf3 server listening in \(server) on port \(5201 + i)")
        }
    }

    func stopServers() {
        stop.set()
        let all = lock.withLock { let s = servers; servers.removeAll(); return s }
        for th in all { var n = 0; while th.isExecuting && n < 200 { usleep(50_000); n += 1 } }
    }

    /// Every client, each at its start offset; returns their threads.
    func startClients(_ prepared: [Prepared]) -> [Thread] {
        prepared.enumerated().map { i, p in
            let th = Thread { [self] in
                while clock.now < p.start && !stop.isSet { usleep(5_000) }
                if stop.isSet { return }
                let r = p.workload.plugin == "iperf3" ? runIperf(p, port: 5201 + i) : runPing(p)
                lock.withLock { collected.append(r) }
            }
            th.start()
            return th
        }
    }

    func runIperf(_ p: Prepared, port: Int) -> RunResults.WorkloadResult {
        let w = p.workload, client = w.client!
        let e = lab.sideExecutor(host(of: client), stop: stop)
        defer { (e as? RemoteExecutor)?.close() }
        var argv = (w.mptcp ? ["mptcpize", "run"] : []) + ["iperf3", "-c", p.target.description, "-p", String(port), "-t", String(Int(p.duration.rounded(.up))),
                                                           "-i", "0.1", "-J"]
        // The receiver's intervals are the wire's; a sender's 100 ms intervals are its socket writes
        // (bursts and gaps). For an upload the receiver is the server: ask for its report too.
        var reverse = false
        if case .bool(true)? = option(w, "reverse") { argv.append("-R"); reverse = true } else { argv.append("--get-server-output") }
        if case let .number(n)? = option(w, "streams") { argv += ["-P", String(Int(n))] }
        let startedAt = clock.now
        var out = Data()
        let code = (try? e.run(argv, in: topology.namespace(of: client), timeout: p.duration + 30) { s, d in if s == .stdout { out.append(d) } }) ?? -1
        var series = Series(name: "\(w.name) (iperf3\(w.mptcp ? ", MPTCP" : ""))", unit: "Mbit/s")
        var error: String?
        if let o = try? JSONSerialization.jsonObject(with: out) as? [String: Any] {
            let receiver = reverse ? o : (o["server_output_json"] as? [String: Any]) ?? o
            for iv in (receiver["intervals"] as? [[String: Any]]) ?? [] {
                if let sum = iv["sum"] as? [String: Any], let end = sum["end"] as? Double, let bps = sum["bits_per_second"] as? Double, !(sum["omitted"] as? Bool ?? false) {
                    series.times.append(startedAt + end); series.values.append(bps / 1e6)
                }
            }
            error = o["error"] as? String
        } else { error = "iperf3 printed no JSON (exit \(code))" }
        return RunResults.WorkloadResult(name: w.name, plugin: "iperf3", node: client, target: p.target.description, mptcp: w.mptcp,
                                         started: startedAt, exitCode: code, error: error, series: [series])
    }

    func runPing(_ p: Prepared) -> RunResults.WorkloadResult {
        let w = p.workload, client = w.client!
        let e = lab.sideExecutor(host(of: client), stop: stop)
        defer { (e as? RemoteExecutor)?.close() }
        let interval = 0.2
        let argv = ["ping", "-n", "-i", String(interval), "-w", String(Int(p.duration.rounded(.up))), p.target.description]
        let startedAt = clock.now
        var out = Data()
        let code = (try? e.run(argv, in: topology.namespace(of: client), timeout: p.duration + 30) { s, d in if s == .stdout { out.append(d) } }) ?? -1
        var series = Series(name: "\(w.name) (ping RTT)", unit: "ms")
        for line in String(decoding: out, as: UTF8.self).split(separator: "\n") {
            // 64 bytes from 10.0.3.2: icmp_seq=7 ttl=63 time=21.4 ms
            guard let seqPart = line.split(separator: " ").first(where: { $0.hasPrefix("icmp_seq=") }),
                  let timePart = line.split(separator: " ").first(where: { $0.hasPrefix("time=") }),
                  let seq = Int(seqPart.dropFirst("icmp_seq=".count)), let ms = Double(timePart.dropFirst("time=".count)) else { continue }
            series.times.append(startedAt + Double(seq - 1) * interval); series.values.append(ms)
        }
        return RunResults.WorkloadResult(name: w.name, plugin: "ping", node: client, target: p.target.description, mptcp: false,
                                         started: startedAt, exitCode: code, error: series.isEmpty ? "no replies" : nil, series: [series])
    }
}
