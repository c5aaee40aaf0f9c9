import Foundation
import Netlink
import Report
import TopologyModel

/// `pathbed run`: the lab up, its workloads started together, the fault schedule played on one
/// monotonic clock, every interface's byte counters sampled every 100 ms, faults reverted, the
/// results written, the lab down. Ctrl-C reverts every fault and tears everything down.
public struct RunController {
    public var lab: LabController
    public var topology: Topology
    public var options: Options

    public struct Options: Sendable {
        /// Where the run directory goes.
        public var outDirectory: String
        /// Leave the lab up afterwards.
        public var keep = false
        public var sampleInterval = 0.1
        public init(outDirectory: String) { self.outDirectory = outDirectory }
    }

    public init(lab: LabController, topology: Topology, options: Options) {
        self.lab = lab; self.topology = topology; self.options = options
    }

    /// One fault action on the run's time line.
    struct Step {
        var at: Double
        var label: String
        var event: Int
        var down: Bool
        var ends: [(host: String, ref: InterfaceRef, routes: [RouteSpec])]
        /// For a down step: when its revert is planned (the host's own deadline is a little later).
        var revertAt: Double?
    }

    /// Every fault of the schedule expanded into down and up steps, checked before anything runs.
    static func steps(_ t: Topology, _ plan: LabPlan) throws(LabError) -> [Step] {
        var out: [Step] = []
        for (i, f) in t.schedule.enumerated() {
            guard f.kind == .linkDown || f.kind == .linkFlap else {
                throw LabError("schedule[\(i)]: fault '\(f.kind.rawValue)' cannot be played by this release (link-down and link-flap can)",
                               fix: "remove it from `schedule:`, or use link-down / link-flap")
            }
            guard let li = f.link, li < t.links.count else { throw LabError("schedule[\(i)]: the fault names no link") }
            guard let duration = f.duration?.seconds, duration > 0 else {
                throw LabError("schedule[\(i)]: a link-down needs `for:` (how long the link stays down); faults always end", fix: "add e.g. `for: 10s`")
            }
            let link = t.links[li]
            let ends = (0..<2).map { end -> (String, InterfaceRef, [RouteSpec]) in
                let ref = Planner.endRef(t, link, end, link.endpoints[end])
                return (link.hosts[end], ref, routes(through: ref, in: plan, host: link.hosts[end]))
            }
            let every = f.every?.seconds ?? 0
            for k in 0..<max(f.count, 1) {
                let start = f.at.seconds + Double(k) * every
                let label = "\(f.kind.rawValue) \(link.name)" + (f.count > 1 ? " #\(k + 1)" : "")
                out.append(Step(at: start, label: label, event: i, down: true, ends: ends, revertAt: start + duration))
                out.append(Step(at: start + duration, label: label, event: i, down: false, ends: ends))
            }
        }
        return out.sorted { ($0.at, $0.down ? 1 : 0) < ($1.at, $1.down ? 1 : 0) }
    }

    /// The routes of `ref`'s namespace that go through it (the kernel drops them when it goes down).
    static func routes(through ref: InterfaceRef, in plan: LabPlan, host: String) -> [RouteSpec] {
        guard let ops = plan.hosts.first(where: { $0.host == host })?.operations else { return [] }
        let nets = ops.compactMap { op -> IPNetwork? in if case let .addAddress(r, a) = op, r == ref { return a } else { return nil } }
        return ops.compactMap { op -> RouteSpec? in
            guard case let .addRoute(ns, r) = op, ns == ref.namespace else { return nil }
            if r.device == ref.name { return r }
            if r.device == nil, let via = r.via, nets.contains(where: { $0.contains(via) }) { return r }
            return nil
        }
    }

    public struct Outcome: Sendable {
        public var directory: String
        public var results: RunResults
    }

    public func run(progress: @escaping (String) -> Void) throws -> Outcome {
        let t = topology
        let plan = Planner.plan(t)
        let steps = try Self.steps(t, plan)
        let workloads = try WorkloadRunner.prepare(t)
        let duration = t.run.duration?.seconds ?? max(workloads.map { $0.start + $0.duration }.max() ?? 0, (steps.map(\.at).max() ?? 0) + 5)
        guard duration > 0 else { throw LabError("nothing to run: no workloads, no schedule and no `run: { duration: }`", fix: "add a workload (docs/runs.md)") }

        let started = Date()
        let stamp = ISO8601DateFormatter().string(from: started).replacingOccurrences(of: ":", with: "")
        let dir = "\(options.outDirectory)/\(t.name)-\(stamp)"
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw LabError("cannot create the run directory \(dir): \(error.localizedDescription)", fix: "choose another with --out")
        }

        let up = try lab.up(t, progress: progress)
        progress("lab \(t.name) is up (\(String(format: "%.2f", up.seconds)) s)")
        var tornDown = false
        defer {
            FaultGuard.shared.revertAll()
            if !options.keep && !tornDown { _ = try? lab.down(t.name) }
        }

        // Hosts: what they are, and their clocks against ours.
        var hosts: [String: RunResults.HostInfo] = [:]
        for (name, e) in lab.executors {
            let info = try e.info()
            let offset = (e as? RemoteExecutor)?.clockOffsetNanoseconds ?? 0
            hosts[name] = RunResults.HostInfo(kernel: info.kernel, hostname: info.hostname, version: info.version,
                                              clockOffsetSeconds: Double(offset) / 1e9, reach: lab.access[name]?.label ?? "this machine")
        }

        // Samplers, one connection each, started first; then the workloads at one barrier.
        let clock = RunClock()
        let samples = SampleStore(clock: clock)
        let namespacesByHost = Dictionary(uniqueKeysWithValues: plan.hosts.map { ($0.host, $0.namespaces) })
        var threads: [Thread] = []
        let stopAll = StopFlag()
        for (host, namespaces) in namespacesByHost where !namespaces.isEmpty {
            let e = Unchecked(lab.sideExecutor(host, stop: stopAll))
            let offset = hosts[host].map { Int64($0.clockOffsetSeconds * 1e9) } ?? 0
            let interval = options.sampleInterval
            let th = Thread {
                try? e.value.sampleCounters(namespaces, interval: interval, duration: duration + 2, stop: { stopAll.isSet }) { s in
                    samples.add(host: host, hostClock: s.clock, offset: offset, s.counters)
                }
                (e.value as? RemoteExecutor)?.close()
            }
            threads.append(th)
        }
        for th in threads { th.start() }

        let runner = WorkloadRunner(lab: lab, topology: t, clock: clock, stop: stopAll)
        try runner.startServers(workloads, progress: progress)
        defer { runner.stopServers() }
        runner.connectClients(workloads)
        let mptcp = MPTCPWatch(lab: lab, topology: t, clock: clock, stop: stopAll)
        let countersBefore = mptcp.counters()
        let monitors = mptcp.startMonitors(until: duration + 1)
        // The monitors must be listening before the first connection is made.
        if !monitors.isEmpty { Thread.sleep(forTimeInterval: 1) }
        clock.start()
        progress("run started: \(String(format: "%.0f", duration)) s, \(workloads.count) workloads, \(steps.count / 2) faults")
        let workloadThreads = runner.startClients(workloads)

        // The schedule. Links taken down are journaled until they are back.
        var active = Set<ActiveFault>()
        var events: [RunResults.Event] = []
        var pending = steps
        var lastNote = -10.0
        while clock.now < duration {
            if Interrupts.signal != 0 { stopAll.set(); throw LabError("run interrupted (signal \(Interrupts.signal)): every fault was reverted and the lab removed") }
            if let s = pending.first, clock.now >= s.at {
                pending.removeFirst()
                if s.down { active.formUnion(s.ends.map { ActiveFault(host: $0.host, link: $0.ref, routes: $0.routes) }); lab.recordFaults(t.name, Array(active)) }
                let actual = clock.now
                for end in s.ends {
                    guard let e = lab.executors[end.host] else { continue }
                    // The host keeps its own deadline, 2 s after the planned revert.
                    try e.setLink(end.ref, up: !s.down, routes: end.routes, revertAfter: s.down ? (s.revertAt ?? actual) - actual + 2 : nil)
                }
                let done = clock.now
                if s.down {
                    events.append(RunResults.Event(label: s.label, kind: "link-down", planned: s.at, actual: actual, applied: done,
                                                   revertPlanned: s.revertAt, revertActual: nil))
                    progress(String(format: "%6.1f s  %@: down", actual, s.label))
                } else if let i = events.lastIndex(where: { $0.label == s.label && $0.revertActual == nil }) {
                    active.subtract(s.ends.map { ActiveFault(host: $0.host, link: $0.ref, routes: $0.routes) })
                    lab.recordFaults(t.name, Array(active))
                    events[i].revertActual = actual
                    progress(String(format: "%6.1f s  %@: up again", actual, s.label))
                }
                continue
            }
            if clock.now - lastNote >= 5 {
                lastNote = clock.now
                let next = pending.first.map { String(format: ", next: %@ %@ at %.0f s", $0.label, $0.down ? "down" : "up", $0.at) } ?? ""
                progress(String(format: "%6.1f s of %.0f%@%@", clock.now, duration, samples.liveSummary(), next))
            }
            usleep(10_000)
        }
        for th in workloadThreads { while th.isExecuting { usleep(50_000) } }
        let countersAfter = mptcp.counters()
        stopAll.set()
        for th in threads + monitors { while th.isExecuting { usleep(20_000) } }
        runner.stopServers()

        var results = RunResults(lab: t.name, file: t.file, started: started, durationSeconds: duration, hosts: hosts,
                                 sampleIntervalSeconds: options.sampleInterval, events: events)
        results.interfaces = samples.series(options.sampleInterval)
        results.rawCounters = samples.raw()
        results.workloads = runner.results
        results.mptcpEvents = mptcp.events
        results.mptcpCounters = MPTCPWatch.growth(before: countersBefore, after: countersAfter)
        results.computeImpacts()
        try RunReport.write(results, to: dir)
        if !options.keep { _ = try? lab.down(t.name); tornDown = true }
        return Outcome(directory: dir, results: results)
    }
}

/// The run's clock: seconds since the barrier, on this machine's CLOCK_MONOTONIC; a host's
/// timestamps are moved onto it with that host's offset.
final class RunClock: @unchecked Sendable {
    private var zero: UInt64 = monotonicNanoseconds()
    private let lock = NSLock()
    func start() { lock.withLock { zero = monotonicNanoseconds() } }
    var now: Double { Double(Int64(bitPattern: monotonicNanoseconds() &- lock.withLock { zero })) / 1e9 }
    func seconds(hostClock: UInt64, offset: Int64) -> Double {
        Double(Int64(bitPattern: hostClock) - offset - Int64(bitPattern: lock.withLock { zero })) / 1e9
    }
}

/// A value handed to one other thread, which alone uses it from then on.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

final class StopFlag: @unchecked Sendable {
    private var value = false
    private let lock = NSLock()
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } || Interrupts.signal != 0 }
}

/// Counter samples as they arrive, per host, kept with the host's own clock: they are put on
/// the run's clock when read, so that samples taken before the barrier come out negative.
final class SampleStore: @unchecked Sendable {
    private var rows: [(host: String, clock: UInt64, offset: Int64, c: [InterfaceCounters])] = []
    private let lock = NSLock()
    private let runClock: RunClock

    init(clock: RunClock) { runClock = clock }

    func add(host: String, hostClock: UInt64, offset: Int64, _ c: [InterfaceCounters]) {
        lock.withLock { rows.append((host, hostClock, offset, c)) }
    }

    private func timed() -> [(host: String, t: Double, c: [InterfaceCounters])] {
        lock.withLock { rows }.map { ($0.host, runClock.seconds(hostClock: $0.clock, offset: $0.offset), $0.c) }.sorted { $0.t < $1.t }
    }

    /// Received throughput per interface (node:interface, or the bridge port), Mbit/s.
    func series(_ interval: Double) -> [Series] {
        var byKey: [String: (times: [Double], bytes: [UInt64])] = [:]
        for r in timed() where r.t >= -interval {
            for c in r.c {
                let node = c.namespace.split(separator: ".").count >= 3 ? String(c.namespace.split(separator: ".").last!) : "bridges"
                let key = "\(node):\(c.interface) rx"
                byKey[key, default: ([], [])].times.append(r.t)
                byKey[key, default: ([], [])].bytes.append(c.rxBytes)
            }
        }
        return byKey.keys.sorted().map { Series.rate(name: $0, times: byKey[$0]!.times, bytes: byKey[$0]!.bytes) }
    }

    func raw() -> [RunResults.RawSample] {
        timed().map { RunResults.RawSample(host: $0.host, t: $0.t, counters: $0.c) }
    }

    /// The busiest interface's rate over the last second, for the progress line.
    func liveSummary() -> String {
        let s = series(0.1).compactMap { x -> (String, Double)? in x.mean(from: (x.times.last ?? 0) - 1, to: (x.times.last ?? 0) + 0.01).map { (x.name, $0) } }
        guard let top = s.max(by: { $0.1 < $1.1 }), top.1 > 0.01 else { return "" }
        return String(format: "; busiest: %@ %.1f Mbit/s", top.0, top.1)
    }
}

extension LabController {
    /// A second connection to a host, for work that runs beside the main one (samplers, workloads).
    func sideExecutor(_ host: String, stop: StopFlag) -> HostExecutor {
        if let a = access[host], !a.isLocal {
            return RemoteExecutor(access: a, controlDirectory: store.directory + "/ssh", interrupted: { stop.isSet ? SIGTERM : 0 })
        }
        let e = LocalExecutor(host: host)
        e.stopWhen = { stop.isSet }
        return e
    }
}
