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
    /// Interval lines of each iperf3 server, as they arrived.
    private var serverLines: [Int: IntervalLines] = [:]

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
            let argv = (p.workload.mptcp ? ["mptcpize", "run"] : []) + ["iperf3", "-s", "-p", String(5201 + i), "-i", "0.1", "-f", "m", "--forceflush"]
            let e = Unchecked(lab.sideExecutor(h, stop: stop))
            let lines = IntervalLines(clock: clock)
            lock.withLock { serverLines[i] = lines }
            let th = Thread { _ = try? e.value.run(argv, in: ns, timeout: nil) { s, d in if s == .stdout { lines.add(d) } }; (e.value as? RemoteExecutor)?.close() }
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

    /// Connections for the clients, opened before the barrier: a connection opened at the
    /// workload's start would delay it by an ssh login, and skew its series by as much.
    private var clientExecutors: [Int: Unchecked<HostExecutor>] = [:]

    func connectClients(_ prepared: [Prepared]) {
        for (i, p) in prepared.enumerated() {
            let e = lab.sideExecutor(host(of: p.workload.client!), stop: stop)
            try? (e as? RemoteExecutor)?.connect()
            clientExecutors[i] = Unchecked(e)
        }
    }

    /// Every client, each at its start offset; returns their threads.
    func startClients(_ prepared: [Prepared]) -> [Thread] {
        prepared.enumerated().map { i, p in
            let e = clientExecutors[i] ?? Unchecked(lab.sideExecutor(host(of: p.workload.client!), stop: stop))
            let th = Thread { [self] in
                while clock.now < p.start && !stop.isSet { usleep(5_000) }
                if stop.isSet { return }
                let r = p.workload.plugin == "iperf3" ? runIperf(p, port: 5201 + i, e.value) : runPing(p, e.value)
                lock.withLock { collected.append(r) }
            }
            th.start()
            return th
        }
    }

    func runIperf(_ p: Prepared, port: Int, _ e: HostExecutor) -> RunResults.WorkloadResult {
        let w = p.workload, client = w.client!
        defer { (e as? RemoteExecutor)?.close() }
        // Text intervals every 100 ms, flushed as they end: each is stamped when its line arrives,
        // on the run's clock. The receiver's lines are the wire's (a sender's 100 ms intervals are
        // its socket writes, bursts and gaps): the server's for an upload, the client's for a download.
        var argv = (w.mptcp ? ["mptcpize", "run"] : []) + ["iperf3", "-c", p.target.description, "-p", String(port), "-t", String(Int(p.duration.rounded(.up))),
                                                           "-i", "0.1", "-f", "m", "--forceflush"]
        var reverse = false
        if case .bool(true)? = option(w, "reverse") { argv.append("-R"); reverse = true }
        var streams = 1
        if case let .number(n)? = option(w, "streams") { streams = max(1, Int(n)); argv += ["-P", String(streams)] }
        let startedAt = clock.now
        let mine = IntervalLines(clock: clock)
        var text = Data()
        let code = (try? e.run(argv, in: topology.namespace(of: client), timeout: p.duration + 30) { s, d in
            if s == .stdout { mine.add(d) }
            text.append(d)
        }) ?? -1
        let receiver = reverse ? mine : (lock.withLock { serverLines[port - 5201] } ?? mine)
        var series = Series(name: "\(w.name) (iperf3\(w.mptcp ? ", MPTCP" : ""))", unit: "Mbit/s")
        for (t, v) in receiver.intervals(summed: streams > 1) where t >= startedAt { series.times.append(t); series.values.append(v) }
        let output = String(decoding: text, as: UTF8.self)
        let error = output.split(separator: "\n").first { $0.contains("iperf3: error") }.map(String.init)
            ?? (series.isEmpty ? "no intervals (exit \(code)): \(output.suffix(200))" : nil)
        return RunResults.WorkloadResult(name: w.name, plugin: "iperf3", node: client, target: p.target.description, mptcp: w.mptcp,
                                         started: startedAt, exitCode: code, error: error, series: [series])
    }

    func runPing(_ p: Prepared, _ e: HostExecutor) -> RunResults.WorkloadResult {
        let w = p.workload, client = w.client!
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

/// iperf3's text output, line by line, each line stamped on the run's clock when it arrived.
final class IntervalLines: @unchecked Sendable {
    private let clock: RunClock
    private let lock = NSLock()
    private var partial = Data()
    private var lines: [(Double, String)] = []

    init(clock: RunClock) { self.clock = clock }

    func add(_ d: Data) {
        let now = clock.now
        lock.withLock {
            partial.append(d)
            while let nl = partial.firstIndex(of: 0x0A) {
                lines.append((now, String(decoding: partial[partial.startIndex..<nl], as: UTF8.self)))
                partial.removeSubrange(partial.startIndex...nl)
            }
        }
    }

    /// (arrival time, Mbit/s) of every 100 ms interval line: `[SUM]` lines when several
    /// streams run, stream lines otherwise; the end-of-test summaries are left out.
    func intervals(summed: Bool) -> [(Double, Double)] {
        lock.withLock { lines }.compactMap { t, line in
            // [  5]   0.10-0.20   sec   245 KBytes  20.0 Mbits/sec   (sender lines add Retr and Cwnd)
            let f = line.split(separator: " ", omittingEmptySubsequences: true)
            guard f.count >= 7, f[0].hasPrefix("[") else { return nil }
            let isSum = line.hasPrefix("[SUM]")
            guard isSum == summed else { return nil }
            let rangeIndex = isSum ? 1 : (f[0] == "[" ? 2 : 1)
            guard rangeIndex + 5 < f.count else { return nil }
            let range = f[rangeIndex].split(separator: "-").compactMap { Double($0) }
            guard range.count == 2, range[1] - range[0] < 0.2, f[rangeIndex + 1] == "sec",
                  let rate = Double(f[rangeIndex + 4]), f[rangeIndex + 5].hasSuffix("bits/sec") else { return nil }
            let scale: Double = f[rangeIndex + 5].hasPrefix("G") ? 1000 : f[rangeIndex + 5].hasPrefix("K") ? 0.001 : f[rangeIndex + 5].hasPrefix("M") ? 1 : 1e-6
            return (t, rate * scale)
        }
    }
}
