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
        /// The run directory itself (default: OUT/LAB-TIME).
        public var directory: String?
        /// Added to `run.seed` (repetition k of a random schedule uses seed + k - 1).
        public var seedOffset = 0
        public init(outDirectory: String) { self.outDirectory = outDirectory }
    }

    /// How long before its time a change is sent to its hosts.
    static let lead = 0.5

    public init(lab: LabController, topology: Topology, options: Options) {
        self.lab = lab; self.topology = topology; self.options = options
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
        let workloads = try WorkloadRunner(t)
        let duration = t.run.duration?.seconds ?? max(workloads.end, (t.schedule.map { $0.end.seconds }.max() ?? 0) + 5)
        guard duration > 0 else { throw LabError("nothing to run: no workloads, no schedule and no `run: { duration: }`", fix: "add a workload (docs/results.md)") }
        let (windows, notes) = try Faults.windows(t, plan, runLength: duration, seedOffset: options.seedOffset)
        for n in notes { progress(n) }
        try checkFaultNeeds(windows)

        let started = Date()
        let stamp = ISO8601DateFormatter().string(from: started).replacingOccurrences(of: ":", with: "")
        let dir = options.directory ?? "\(options.outDirectory)/\(t.name)-\(stamp)"
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw LabError("cannot create the run directory \(dir): \(error.localizedDescription)", fix: "choose another with --out")
        }

        let up = try lab.up(t, progress: progress)
        progress("lab \(t.name) is up (\(String(format: "%.2f", up.seconds)) s)")
        var tornDown = false
        let stopAll = StopFlag()
        var externalFaults: [ExternalPlugin.Process] = []
        let dispatcher = ChangeDispatcher()
        defer {
            stopAll.set()
            for p in externalFaults where !p.hasEnded { p.finish(grace: 5) }
            // Changes sent ahead are made (or given up) before everything is undone.
            dispatcher.waitUntilIdle()
            FaultGuard.shared.revertAll()
            if !options.keep && !tornDown { _ = try? lab.down(t.name) }
        }

        // Hosts: what they are, their clocks against ours, and their settings before the run.
        var hosts: [String: RunResults.HostInfo] = [:]
        for (name, e) in lab.executors {
            let info = try e.info()
            let offset = (e as? RemoteExecutor)?.clockOffsetNanoseconds ?? 0
            hosts[name] = RunResults.HostInfo(kernel: info.kernel, hostname: info.hostname, version: info.version,
                                              clockOffsetSeconds: Double(offset) / 1e9, reach: lab.access[name]?.label ?? "this machine")
        }
        let metadataBefore = HostMetadata.collect(lab: lab, plan: plan)

        let clock = RunClock()
        let samples = SampleStore(clock: clock)
        let env = RunEnvironment(lab: lab, topology: t, clock: clock, stop: stopAll, progress: progress)
        defer { workloads.stop(env) }
        try workloads.prepare(env)
        // Samplers, one connection each, once the workloads are prepared (that can take long);
        // they sample until the run stops them. Then the workloads start at one barrier.
        let namespacesByHost = Dictionary(uniqueKeysWithValues: plan.hosts.map { ($0.host, $0.namespaces) })
        var threads: [Thread] = []
        for (host, namespaces) in namespacesByHost where !namespaces.isEmpty {
            let e = Unchecked(lab.sideExecutor(host, stop: stopAll))
            let offset = hosts[host].map { Int64($0.clockOffsetSeconds * 1e9) } ?? 0
            let interval = options.sampleInterval
            let th = Thread {
                try? e.value.sampleCounters(namespaces, interval: interval, duration: duration + 600, stop: { stopAll.isSet }) { s in
                    samples.add(host: host, hostClock: s.clock, offset: offset, s.counters)
                }
                (e.value as? RemoteExecutor)?.close()
            }
            threads.append(th)
        }
        for th in threads { th.start() }

        let mptcp = MPTCPWatch(lab: lab, topology: t, clock: clock, stop: stopAll)
        let countersBefore = mptcp.counters()
        let monitors = mptcp.startMonitors(until: duration + 1)
        // The monitors must be listening before the first connection is made.
        if !monitors.isEmpty { Thread.sleep(forTimeInterval: 1) }
        clock.start()
        progress("run started: \(String(format: "%.0f", duration)) s, \(workloads.plugins.count) workloads, \(windows.count) faults")
        let workloadThreads = workloads.start(env)

        // The schedule. Built-in changes go to their hosts `lead` seconds early, and each host makes
        // them at the planned moment by its own clock: the time a request takes to get there (a
        // few hundred milliseconds into a VM under emulation) does not move them. What is in force
        // is journaled until it is undone.
        var playbook = Playbook(windows, lead: Self.lead)
        var active: [Int: [HostAction]] = [:]
        let book = EventBook(windows.map {
            RunResults.Event(label: $0.label, kind: $0.kind, planned: $0.start, actual: -1, applied: -1, revertPlanned: $0.end, revertActual: nil)
        })
        var running: [Int: ExternalPlugin.Process] = [:]
        var lastNote = -10.0
        func journal() { lab.recordFaults(t.name, active.values.flatMap { $0 }.map { ActiveFault(host: $0.host, action: $0.action) }) }
        /// Sends a window's changes to each host, to be made at `at` (run seconds).
        func dispatch(_ wi: Int, _ actions: [HostAction], inject: Bool, at: Double, first: Bool) throws {
            let w = windows[wi]
            let byHost = Dictionary(grouping: actions, by: \.host)
            let when = clock.nanoseconds(at)
            let pending = PendingChange(hosts: byHost.count)
            for (host, items) in byHost.sorted(by: { $0.key < $1.key }) {
                let e = try lab.executor(host)
                // The host keeps its own deadline, 2 s after the planned revert.
                let revertAfter = inject ? w.end - at + 2 : nil
                dispatcher.send(host: host, label: w.label) {
                    let timing = try e.change(items.map(\.action), inject: inject, at: when, revertAfter: revertAfter)
                    guard let (began, finished) = pending.done(timing) else { return }
                    let b = clock.seconds(hostClock: began, offset: 0), f = clock.seconds(hostClock: finished, offset: 0)
                    if inject && first {
                        book.update(wi) { $0.actual = b; $0.applied = f }
                        progress(String(format: "%6.3f s  %@: injected (planned %.1f s)", b, w.label, at))
                    } else if !inject {
                        book.update(wi) { $0.revertActual = b }
                        progress(String(format: "%6.3f s  %@: reverted (planned %.1f s)", b, w.label, at))
                    }
                }
            }
        }
        while clock.now < duration {
            if Interrupts.signal != 0 { stopAll.set(); throw LabError("run interrupted (signal \(Interrupts.signal)): every fault was reverted and the lab removed") }
            if let failure = dispatcher.failure { throw failure }
            if let step = playbook.next(at: clock.now) {
                let w = windows[step.window]
                switch step.kind {
                case let .change(k):
                    if let launch = w.external {
                        let actual = clock.now
                        let p = ExternalPlugin.Process(launch, side: nil, clock: clock, stop: stopAll, onLog: progress)
                        running[step.window] = p; externalFaults.append(p)
                        p.start(lab: lab)
                        guard p.wait(for: "injected") else {
                            p.stopHard()
                            throw LabError("fault \(w.label): the plugin did not say injected within \(Int(ExternalPlugin.answerSeconds)) s: \(p.failure ?? "no answer")",
                                           fix: "docs/plugins.md: a fault plugin answers inject with {\"type\":\"injected\"}")
                        }
                        book.update(step.window) { $0.actual = actual; $0.applied = clock.now }
                        progress(String(format: "%6.3f s  %@: injected", actual, w.label))
                    } else {
                        let actions = w.changes[k].actions
                        active[step.window, default: []] = (active[step.window] ?? []).filter { a in !actions.contains { $0.host == a.host && $0.action.key == a.action.key } } + actions
                        journal()
                        try dispatch(step.window, actions, inject: true, at: step.at, first: k == 0)
                    }
                case .revert:
                    if let p = running.removeValue(forKey: step.window) {
                        let actual = clock.now
                        p.finish()
                        if !p.said("reverted") { progress("fault \(w.label): the plugin ended without saying reverted: \(p.failure ?? "")") }
                        book.update(step.window) { $0.revertActual = actual }
                        progress(String(format: "%6.3f s  %@: reverted", actual, w.label))
                    } else {
                        try dispatch(step.window, w.lastActions, inject: false, at: step.at, first: false)
                        active[step.window] = nil
                        journal()
                    }
                }
                continue
            }
            if clock.now - lastNote >= 5 {
                lastNote = clock.now
                let next = playbook.upcoming.map { String(format: ", next: %@ %@ at %.0f s", windows[$0.window].label, $0.kind == .revert ? "revert" : "inject", $0.at) } ?? ""
                progress(String(format: "%6.1f s of %.0f%@%@", clock.now, duration, workloads.liveSummary() + samples.liveSummary(), next))
            }
            usleep(2_000)
        }
        dispatcher.waitUntilIdle()
        if let failure = dispatcher.failure { throw failure }
        let events = book.events
        for th in workloadThreads { while th.isExecuting { usleep(50_000) } }
        let countersAfter = mptcp.counters()
        stopAll.set()
        for th in threads + monitors { while th.isExecuting { usleep(20_000) } }
        workloads.stop(env)

        var results = RunResults(lab: t.name, file: t.file, started: started, durationSeconds: duration, hosts: hosts,
                                 sampleIntervalSeconds: options.sampleInterval, events: events.filter { $0.actual >= 0 })
        results.interfaces = samples.series(options.sampleInterval)
        results.rawCounters = samples.raw()
        results.workloads = workloads.results
        results.mptcpEvents = mptcp.events
        results.mptcpCounters = MPTCPWatch.growth(before: countersBefore, after: countersAfter)
        results.metadataBefore = metadataBefore
        results.metadataAfter = HostMetadata.collect(lab: lab, plan: plan)
        results.seed = t.run.seed.map { $0 + options.seedOffset }
        results.computeImpacts()
        results.computePathUse()
        try RunReport.write(results, to: dir)
        if !options.keep { _ = try? lab.down(t.name); tornDown = true }
        return Outcome(directory: dir, results: results)
    }

    /// Every host must offer the qdiscs the schedule's profile changes use, checked before `up`.
    func checkFaultNeeds(_ windows: [FaultWindow]) throws {
        var needs: [String: Set<String>] = [:]
        for w in windows { for (h, k) in w.needs { needs[h, default: []].formUnion(k) } }
        var problems: [String] = []
        for (host, kinds) in needs.sorted(by: { $0.key < $1.key }) {
            guard let e = lab.executors[host] else { continue }
            let caps = e.capabilities(sysctls: [])
            if caps.isBlind { continue }
            for k in kinds.sorted() where !caps.has(k) {
                let c = caps.checks.first { $0.name == k }
                problems.append("    - \(host): \(k): \(c?.detail ?? "missing"); \(c?.fix ?? "")")
            }
        }
        if !problems.isEmpty {
            throw LabError("the schedule changes profiles with qdiscs this kernel lacks:\n" + problems.joined(separator: "\n"),
                           fix: "`pathbed doctor` shows every check; nothing was changed")
        }
    }
}

/// The schedule's steps in time order: each window's changes, then its revert. A built-in
/// step is due `lead` seconds before its time (its hosts wait for the moment themselves); an
/// external plugin's at its time.
struct Playbook {
    enum Kind: Equatable { case change(Int), revert }
    struct Step { var at: Double; var due: Double; var window: Int; var kind: Kind }
    private var steps: [Step]

    init(_ windows: [FaultWindow], lead: Double = 0) {
        var s: [Step] = []
        for (i, w) in windows.enumerated() {
            let ahead = w.external != nil ? 0 : lead
            let n = max(w.changes.count, 1)
            for k in 0..<n {
                let at = w.external != nil ? w.start : w.changes[k].at
                s.append(Step(at: at, due: max(at - ahead, 0), window: i, kind: .change(k)))
            }
            s.append(Step(at: w.end, due: max(w.end - ahead, 0), window: i, kind: .revert))
        }
        // At one time, reverts first (a link comes back before the next fault on it begins).
        steps = s.sorted { ($0.at, $0.kind == .revert ? 0 : 1, $0.window) < ($1.at, $1.kind == .revert ? 0 : 1, $1.window) }
    }

    var upcoming: Step? { steps.first }

    mutating func next(at now: Double) -> Step? {
        guard let i = steps.firstIndex(where: { now >= $0.due }) else { return nil }
        // Never ahead of an earlier step: steps leave in time order.
        guard i == 0 else { return nil }
        return steps.removeFirst()
    }
}

/// The events of a run, filled in as the hosts report their changes.
final class EventBook: @unchecked Sendable {
    private var items: [RunResults.Event]
    private let lock = NSLock()
    init(_ items: [RunResults.Event]) { self.items = items }
    func update(_ i: Int, _ f: (inout RunResults.Event) -> Void) { lock.withLock { f(&items[i]) } }
    var events: [RunResults.Event] { lock.withLock { items } }
}

/// One change on several hosts: when the first began and the last finished.
final class PendingChange: @unchecked Sendable {
    private var left: Int
    private var began = UInt64.max, finished: UInt64 = 0
    private let lock = NSLock()
    init(hosts: Int) { left = hosts }
    /// Returns the change's span once every host has reported.
    func done(_ t: ChangeTiming) -> (UInt64, UInt64)? {
        lock.withLock {
            began = min(began, t.began); finished = max(finished, t.finished); left -= 1
            return left == 0 ? (began, finished) : nil
        }
    }
}

/// Sends changes to hosts in order, one queue per host, without holding up the schedule.
final class ChangeDispatcher: @unchecked Sendable {
    private var queues: [String: DispatchQueue] = [:]
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var errors: [any Error] = []

    func send(host: String, label: String, _ work: @escaping () throws -> Void) {
        let work = Unchecked(work)
        let q = lock.withLock { () -> DispatchQueue in
            if let q = queues[host] { return q }
            let q = DispatchQueue(label: "pathbed.changes.\(host)")
            queues[host] = q
            return q
        }
        q.async(group: group) { [self] in
            do { try work.value() } catch { lock.withLock { errors.append(LabError("\(label) on \(host): \(error)")) } }
        }
    }

    var failure: (any Error)? { lock.withLock { errors.first } }
    func waitUntilIdle() { group.wait() }
}

/// The run's clock: seconds since the barrier, on this machine's CLOCK_MONOTONIC; a host's
/// timestamps are moved onto it with that host's offset.
final class RunClock: @unchecked Sendable {
    private var zero: UInt64 = monotonicNanoseconds()
    private let lock = NSLock()
    func start() { lock.withLock { zero = monotonicNanoseconds() } }
    var now: Double { Double(Int64(bitPattern: monotonicNanoseconds() &- lock.withLock { zero })) / 1e9 }
    /// Run seconds as this machine's CLOCK_MONOTONIC, nanoseconds.
    func nanoseconds(_ seconds: Double) -> UInt64 {
        UInt64(bitPattern: Int64(bitPattern: lock.withLock { zero }) + Int64(seconds * 1e9))
    }
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
    private let parent: StopFlag?
    /// Set when this one is set, or its parent is.
    init(parent: StopFlag? = nil) { self.parent = parent }
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } || Interrupts.signal != 0 || (parent?.isSet ?? false) }
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
        let all = series(0.1)
        // Over the last second of the samples (a series whose traffic stopped counts as idle).
        let now = all.compactMap(\.times.last).max() ?? 0
        let s = all.compactMap { x -> (String, Double)? in x.mean(from: now - 1, to: now + 0.01).map { (x.name, $0) } }
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
