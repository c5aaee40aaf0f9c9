import Foundation

/// Everything a run measured: results.json, documented in docs/results.md.
public struct RunResults: Codable, Sendable {
    public static let formatVersion = 1
    public var format = "pathbed-results"
    public var version = RunResults.formatVersion
    /// The Pathbed release that wrote it.
    public var pathbed: String
    public var lab: String
    public var file: String
    public var started: Date
    public var durationSeconds: Double
    public var hosts: [String: HostInfo]
    public var sampleIntervalSeconds: Double
    /// Faults as planned and as they happened, in run seconds.
    public var events: [Event]
    /// Received throughput of every lab interface, from its byte counters.
    public var interfaces: [Series] = []
    public var workloads: [WorkloadResult] = []
    public var impacts: [FaultImpact] = []
    /// The counters as sampled (run seconds, per host).
    public var rawCounters: [RawSample] = []
    /// `ip mptcp monitor` events of every MPTCP node, stamped when they arrived.
    public var mptcpEvents: [MPTCPEvent] = []
    /// How much each MPTCP node's MPTcpExt counters (`/proc/net/netstat`) grew during the run (non-zero ones).
    public var mptcpCounters: [String: [String: Int]] = [:]
    /// Each lab namespace's sysctls and qdiscs before the workloads started and after they ended.
    public var metadataBefore: [String: NamespaceMetadata]?
    public var metadataAfter: [String: NamespaceMetadata]?
    /// The seed of the schedule's random numbers (`run: {seed: N}`), when the file gives one.
    public var seed: Int?
    /// Why the run ended before its end (a signal, a lost host, an error), when it did: what was
    /// measured until then is here all the same.
    public var endedEarly: String?
    /// What went wrong or was left out: workloads that failed, hosts that stopped answering,
    /// values out of range, samples past the limits. Empty for a run that went as planned.
    public var problems: [String]?
    /// Where the lab is wired so that it cannot do what it says (`pathbed validate`'s warnings):
    /// said with the figures, which they may explain.
    public var warnings: [String]?
    /// Each node's congestion control, MPTCP scheduler and path manager as its namespace had them
    /// when the run started, and where each came from; absent in results of releases before.
    public var settings: [NodeSettings]?
    /// Each shaped link measured before the run (`pathbed verify`, the run's pre-flight):
    /// delivered against configured; absent with `--no-verify` and in results of releases before.
    public var calibration: [Calibration]?
    /// How `calibration` came to be, or why it is absent: `before repetition 1 of 3` (a lab
    /// built once is verified once), `not verified: run --no-verify`.
    public var calibrationNote: String?
    /// Whether the machines kept up: each host's CPU and Pathbed's own, each shaped queue's
    /// drops, and a verdict; absent in results of releases before.
    public var health: Health?
    /// Every TCP socket (MPTCP subflows among them) of the workloads' client and server nodes,
    /// sampled every 100 ms from the kernel; absent in results of releases before.
    public var subflows: [Subflow]?
    /// Why some sockets or samples are not in `subflows` (past the limits), when any are not.
    public var subflowNote: String?
    /// Every MPTCP connection of those nodes, at the data level (MPTCP_INFO), sampled with the
    /// subflows; absent in results of releases before and where the kernel has no MPTCP diagnostics.
    public var connections: [Connection]?
    /// Each profile of the file as it set it (`rate 6mbit, delay 10ms`): what `report A B` names
    /// when two runs' profiles differ; absent in results of releases before.
    public var profiles: [String: String]?
    /// Packet captures (`run --capture`), all in capture.pcapng, and what tshark found in them.
    public var captures: [Capture]?
    public var captureSummary: CaptureSummary?

    public struct Health: Codable, Sendable {
        /// `valid`, or `suspect` (why in `reasons`).
        public var verdict: String
        public var reasons: [String]
        public var hosts: [HostHealth]
        public var queues: [QueueHealth]
        public init(verdict: String, reasons: [String], hosts: [HostHealth], queues: [QueueHealth]) {
            self.verdict = verdict; self.reasons = reasons; self.hosts = hosts; self.queues = queues
        }
    }

    /// One host over the run, from its kernel's counters about once a second.
    public struct HostHealth: Codable, Sendable {
        public var host: String
        /// `none`, `KVM`, `software emulation`, `a hypervisor`, or `unknown`.
        public var virtualization: String?
        /// How many seconds of the run the readings cover.
        public var seconds: Double
        public var cpus: Int
        /// Percent of all CPUs' time: busy (all but idle and iowait), in softirq, stolen by the hypervisor.
        public var cpuBusy: Double
        public var softirq: Double
        public var steal: Double
        /// Percent of the run's readings in which the CPUs were at least 90 % busy.
        public var saturated: Double
        /// Pathbed's own CPU there (the run, or the agent), percent of one CPU.
        public var pathbedCPU: Double
        public init(host: String, virtualization: String?, seconds: Double, cpus: Int, cpuBusy: Double, softirq: Double, steal: Double, saturated: Double, pathbedCPU: Double) {
            self.host = host; self.virtualization = virtualization; self.seconds = seconds; self.cpus = cpus; self.cpuBusy = cpuBusy
            self.softirq = softirq; self.steal = steal; self.saturated = saturated; self.pathbedCPU = pathbedCPU
        }
    }

    /// One shaped interface's root qdisc over the run.
    public struct QueueHealth: Codable, Sendable {
        public var host: String
        /// `node:interface`, or `bridges:PORT`.
        public var end: String
        public var kind: String
        public var drops: UInt64
        public var overlimits: UInt64
        public var backlogMaxBytes: UInt64
        public var backlogMaxPackets: UInt64
        public init(host: String, end: String, kind: String, drops: UInt64, overlimits: UInt64, backlogMaxBytes: UInt64, backlogMaxPackets: UInt64) {
            self.host = host; self.end = end; self.kind = kind; self.drops = drops; self.overlimits = overlimits
            self.backlogMaxBytes = backlogMaxBytes; self.backlogMaxPackets = backlogMaxPackets
        }
    }

    /// One figure of a link, delivered against what its profiles configure.
    public struct Calibration: Codable, Sendable, Hashable {
        public var link: String
        /// `forward` (the link's first end sends), `reverse`, or `round trip`.
        public var direction: String
        /// `rtt` (ms, the median of the probes), `goodput` (Mbit/s, one TCP flow), `loss` (%, of the probes, both ways).
        public var metric: String
        public var unit: String
        /// What the profiles configure (for goodput: the rate less the headers of full frames).
        public var configured: Double?
        public var delivered: Double?
        /// The range a delivered figure must fall in (loss: its 95 % interval must hold the configured).
        public var low: Double?
        public var high: Double?
        /// `ok`, `outside`, or `not judged` (why in `note`).
        public var verdict: String
        public var note: String?
        public init(link: String, direction: String, metric: String, unit: String, configured: Double?, delivered: Double?,
                    low: Double?, high: Double?, verdict: String, note: String? = nil) {
            self.link = link; self.direction = direction; self.metric = metric; self.unit = unit; self.configured = configured
            self.delivered = delivered; self.low = low; self.high = high; self.verdict = verdict; self.note = note
        }
        public var isOutside: Bool { verdict == "outside" }
    }

    public struct NodeSettings: Codable, Sendable, Hashable {
        public var node: String
        public var host: String
        /// nil where the kernel did not say (or, for MPTCP's, where MPTCP is off).
        public var congestionControl: String?
        public var scheduler: String?
        public var pathManager: String?
        /// Where each came from: `file` (the topology sets it) or `host` (the namespace
        /// inherited the host's default).
        public var congestionControlFrom: String
        public var schedulerFrom: String
        public var pathManagerFrom: String
        public init(node: String, host: String, congestionControl: String?, scheduler: String?, pathManager: String?,
                    congestionControlFrom: String, schedulerFrom: String, pathManagerFrom: String) {
            self.node = node; self.host = host; self.congestionControl = congestionControl; self.scheduler = scheduler; self.pathManager = pathManager
            self.congestionControlFrom = congestionControlFrom; self.schedulerFrom = schedulerFrom; self.pathManagerFrom = pathManagerFrom
        }
    }
    /// The queue of every shaped direction (docs/topology.md, "Queues"); absent in results of
    /// releases before it was recorded.
    public var queues: [Queue]?

    public struct Queue: Codable, Sendable, Hashable {
        public var link: String
        /// The end whose egress it shapes: `node:interface`, or the bridge.
        public var end: String
        public var host: String
        public var profile: String
        /// The profile's `queue:` rule (`bdp`, a time such as `100ms`, `N packets`, `netem`).
        public var rule: String
        /// The limit, in full frames, and how many of them the delay holds.
        public var packets: Int
        public var forDelay: Int?
        /// How long the rest, the queue proper, takes to leave at the rate; absent without a rate.
        public var milliseconds: Double?
        /// The fault that installs this queue for its window (`fault 2 (profile)`); absent: the
        /// file's profile, for the whole run.
        public var during: String?
        public init(link: String, end: String, host: String, profile: String, rule: String, packets: Int, forDelay: Int, milliseconds: Double?, during: String? = nil) {
            self.link = link; self.end = end; self.host = host; self.profile = profile; self.rule = rule; self.packets = packets
            self.forDelay = forDelay; self.milliseconds = milliseconds; self.during = during
        }
    }

    public struct MPTCPEvent: Codable, Sendable {
        public var t: Double
        public var node: String
        /// CREATED, ESTABLISHED, CLOSED, ANNOUNCED, REMOVED, SF_ESTABLISHED, SF_CLOSED, ...
        public var type: String
        public var detail: String
        public init(t: Double, node: String, type: String, detail: String) { self.t = t; self.node = node; self.type = type; self.detail = detail }
    }

    public struct HostInfo: Codable, Sendable {
        public var kernel: String
        public var hostname: String
        public var version: String
        /// The host's monotonic clock minus the controller's, as the agent's handshake estimated it.
        public var clockOffsetSeconds: Double
        public var reach: String
        public init(kernel: String, hostname: String, version: String, clockOffsetSeconds: Double, reach: String) {
            self.kernel = kernel; self.hostname = hostname; self.version = version; self.clockOffsetSeconds = clockOffsetSeconds; self.reach = reach
        }
    }

    public struct Event: Codable, Sendable {
        public var label: String
        public var kind: String
        public var planned: Double
        public var actual: Double
        /// When the change was done on every host it touched.
        public var applied: Double
        public var revertPlanned: Double?
        public var revertActual: Double?
        public init(label: String, kind: String, planned: Double, actual: Double, applied: Double, revertPlanned: Double?, revertActual: Double?) {
            self.label = label; self.kind = kind; self.planned = planned; self.actual = actual; self.applied = applied
            self.revertPlanned = revertPlanned; self.revertActual = revertActual
        }
    }

    public struct WorkloadResult: Codable, Sendable {
        public var name: String
        public var plugin: String
        public var node: String
        public var target: String
        public var mptcp: Bool
        public var started: Double
        public var exitCode: Int32
        public var error: String?
        public var series: [Series]
        /// Figures the workload computed (a transfer's times per size, a plugin's `result`).
        public var metrics: [String: Double]?
        /// The end of a command's output.
        public var output: String?
        /// When it ended (run seconds).
        public var ended: Double?
        /// Path use: each interface's share of the bytes its node received and sent while it ran.
        public var pathUse: [String: Double]?
        /// What was left out of it (lines or samples past the limits, values out of range).
        public var notes: [String]?

        public init(name: String, plugin: String, node: String, target: String, mptcp: Bool, started: Double, exitCode: Int32, error: String?,
                    series: [Series], metrics: [String: Double]? = nil, output: String? = nil, notes: [String]? = nil) {
            self.name = name; self.plugin = plugin; self.node = node; self.target = target; self.mptcp = mptcp; self.started = started
            self.exitCode = exitCode; self.error = error; self.series = series; self.metrics = metrics; self.output = output
            self.notes = notes
        }
    }

    public struct FaultImpact: Codable, Sendable {
        public var event: String
        public var impact: Impact
    }

    public struct RawSample: Codable, Sendable {
        public var host: String
        public var t: Double
        public var counters: [CounterReading]
        public init(host: String, t: Double, counters: [CounterReading]) { self.host = host; self.t = t; self.counters = counters }
    }

    /// An interface's byte counters as one sample read them.
    public struct CounterReading: Codable, Sendable, Hashable {
        public var namespace: String
        public var interface: String
        public var rxBytes: UInt64
        public var txBytes: UInt64
        public init(namespace: String, interface: String, rxBytes: UInt64, txBytes: UInt64) {
            self.namespace = namespace; self.interface = interface; self.rxBytes = rxBytes; self.txBytes = txBytes
        }
    }

    public init(pathbed: String, lab: String, file: String, started: Date, durationSeconds: Double, hosts: [String: HostInfo],
                sampleIntervalSeconds: Double, events: [Event]) {
        self.pathbed = pathbed
        self.lab = lab; self.file = file; self.started = started; self.durationSeconds = durationSeconds
        self.hosts = hosts; self.sampleIntervalSeconds = sampleIntervalSeconds; self.events = events
    }

    /// Every value a run measured is a finite number: what is not (a plugin's NaN, an overflow)
    /// is left out here, so that results.json can always be written; returns how many.
    public mutating func dropNonFinite() -> Int {
        var dropped = 0
        // In range: finite and at most 1e15 in size (as a plugin's samples must be), times within
        // ten billion seconds (any run a topology can describe): every figure later drawn or converted stays exact and in range.
        func ok(_ v: Double) -> Bool { v.isFinite && abs(v) <= 1e15 }
        func okTime(_ t: Double) -> Bool { t.isFinite && abs(t) <= 1e10 }
        func clean(_ s: inout Series) {
            let keep = zip(s.times, s.values).filter { okTime($0.0) && ok($0.1) }
            dropped += s.times.count - keep.count
            s.times = keep.map(\.0); s.values = keep.map(\.1)
        }
        for i in interfaces.indices { clean(&interfaces[i]) }
        for w in workloads.indices {
            for j in workloads[w].series.indices { clean(&workloads[w].series[j]) }
            if let m = workloads[w].metrics {
                let finite = m.filter { ok($0.value) }
                dropped += m.count - finite.count
                workloads[w].metrics = finite
            }
            // A share is from 0 to 1.
            if let u = workloads[w].pathUse {
                let shares = u.filter { $0.value.isFinite && (0...1).contains($0.value) }
                dropped += u.count - shares.count
                workloads[w].pathUse = shares
            }
        }
        // Events at times no run has (a results file from outside) are left out too.
        let timely = mptcpEvents.filter { okTime($0.t) }
        dropped += mptcpEvents.count - timely.count
        mptcpEvents = timely
        for i in impacts.indices {
            var m = impacts[i].impact
            for kp in [\Impact.before, \Impact.during, \Impact.after, \Impact.recoverySeconds, \Impact.baselineFrom] where m[keyPath: kp].map({ !ok($0) }) == true {
                m[keyPath: kp] = nil; dropped += 1
            }
            impacts[i].impact = m
        }
        let events = self.events.filter { [$0.planned, $0.actual, $0.applied, $0.revertPlanned ?? 0, $0.revertActual ?? 0].allSatisfy(okTime) }
        dropped += self.events.count - events.count
        self.events = events
        if !durationSeconds.isFinite { durationSeconds = 0; dropped += 1 }
        if !sampleIntervalSeconds.isFinite { sampleIntervalSeconds = 0.1; dropped += 1 }
        return dropped
    }

    /// Whether every figure is one a report can be made of; nil when it is, else why not.
    /// (A results file comes from outside: it is checked before any arithmetic on it.)
    public func problemForReading() -> String? {
        guard sampleIntervalSeconds.isFinite, sampleIntervalSeconds >= 0.001, sampleIntervalSeconds <= 3600 else {
            return "sampleIntervalSeconds \(sampleIntervalSeconds) is not from 0.001 to 3600"
        }
        // Any run a topology can describe (at most 2^63 ns, 9.2e9 s) can be read back.
        guard durationSeconds.isFinite, durationSeconds >= 0, durationSeconds <= 1e10 else {
            return "durationSeconds \(durationSeconds) is not from 0 to 10,000,000,000"
        }
        let all = interfaces + workloads.flatMap(\.series)
        for s in all {
            if s.times.count != s.values.count { return "series '\(s.name)' has \(s.times.count) times and \(s.values.count) values" }
            if !(s.times.allSatisfy(\.isFinite) && s.values.allSatisfy(\.isFinite)) { return "series '\(s.name)' holds a value that is not a finite number" }
            if s.times.count > 50_000_000 { return "series '\(s.name)' has more than 50,000,000 samples" }
        }
        for e in events where ![e.planned, e.actual, e.applied].allSatisfy(\.isFinite) { return "event '\(e.label)' has a time that is not a finite number" }
        for r in rawCounters where !r.t.isFinite { return "a raw sample of \(r.host) has a time that is not a finite number" }
        for q in queues ?? [] {
            // What a kernel's 32-bit limit can hold, in frames of at least 1 byte.
            guard (0...Int(Int32.max)).contains(q.packets), (q.forDelay.map { (0...q.packets).contains($0) } ?? true),
                  (q.milliseconds.map { $0.isFinite && (0...1e12).contains($0) } ?? true) else {
                return "the queue of \(q.link) \(q.end) (packets \(q.packets), held for the delay \(q.forDelay.map(String.init) ?? "-"), \(q.milliseconds.map { "\($0)" } ?? "-") ms) is out of range"
            }
        }
        if let h = health {
            for x in h.hosts {
                for v in [x.seconds, x.cpuBusy, x.softirq, x.steal, x.saturated, x.pathbedCPU] where !(v.isFinite && (0...1e10).contains(v)) {
                    return "the health of host \(x.host) holds \(v), not a figure from 0 to 10,000,000,000"
                }
                if !(0...1_000_000).contains(x.cpus) { return "the health of host \(x.host) says \(x.cpus) CPUs" }
            }
        }
        for sf in subflows ?? [] { if let p = sf.problem() { return p } }
        for c in connections ?? [] { if let p = c.problem() { return p } }
        if let p = profiles, p.count > 100_000 || p.contains(where: { $0.key.count > 256 || $0.value.count > 4096 }) { return "the profiles are past their limits (100,000 names, 4,096 characters each)" }
        for c in captures ?? [] where c.packets < 0 || c.bytes < 0 || (c.droppedByKernel ?? 0) < 0 || !(0...65535).contains(c.snaplen ?? 0) || (c.filter?.count ?? 0) > 1000 {
            return "the capture of \(c.link) has a negative count"
        }
        if let s = captureSummary, s.mptcpStreams < 0 || s.joinSYNs < 0 || s.options.values.contains(where: { $0 < 0 }) || s.expert.values.contains(where: { $0 < 0 }) {
            return "the capture summary has a negative count"
        }
        for c in calibration ?? [] {
            // Rates up to 10 Tbit/s, RTTs up to a day, loss 0-100 %: anything else is not a measurement.
            let limit = c.metric == "loss" ? 100.0 : c.metric == "rtt" ? 86_400_000.0 : 1e7
            for v in [c.configured, c.delivered, c.low, c.high] {
                if let v, !(v.isFinite && (0...limit).contains(v)) { return "the calibration of \(c.link) (\(c.metric)) holds \(v), not from 0 to \(limit)" }
            }
        }
        return nil
    }

    /// Each workload's path use, from the byte counters of its node's interfaces between its
    /// start and its end.
    public mutating func computePathUse() {
        for i in workloads.indices {
            let w = workloads[i]
            guard let end = w.ended else { continue }
            let ns = "pb.\(lab).\(w.node)"
            func totals(at t: Double) -> [String: UInt64]? {
                guard let s = rawCounters.last(where: { $0.t <= t && $0.counters.contains { $0.namespace == ns } })
                    ?? rawCounters.first(where: { $0.counters.contains { $0.namespace == ns } }) else { return nil }
                return Dictionary(s.counters.filter { $0.namespace == ns }.map { ($0.interface, $0.rxBytes &+ $0.txBytes) }, uniquingKeysWith: { a, _ in a })
            }
            guard let a = totals(at: w.started), let b = totals(at: end) else { continue }
            var delta: [String: Double] = [:]
            for (name, after) in b {
                let before = a[name] ?? 0
                if after > before { delta[name] = Double(after - before) }
            }
            let sum = delta.values.reduce(0, +)
            guard sum > 0 else { continue }
            workloads[i].pathUse = delta.mapValues { $0 / sum }
        }
    }

    /// For each fault, its impact on every throughput workload (recovery per `Recovery`).
    public mutating func computeImpacts() {
        impacts = []
        let throughput = workloads.flatMap(\.series).filter { $0.quantity == .throughput }
        for (i, e) in events.enumerated() {
            guard let back = e.revertActual else { continue }
            let until = i + 1 < events.count ? events[i + 1].actual : durationSeconds
            // The baseline leaves out an earlier fault reverted less than 5 s before this one.
            let earlierEnd = events[..<i].compactMap(\.revertActual).filter { $0 <= e.actual }.max() ?? 0
            for s in throughput {
                impacts.append(FaultImpact(event: e.label, impact: Recovery.impact(of: s, faultStart: e.actual, faultEnd: back, until: until, notBefore: earlierEnd)))
            }
        }
    }
}


/// What a lab's namespace was set to, read from the kernel before and after a run: the sysctls
/// that decide TCP and MPTCP behaviour, and every qdisc (`tc qdisc show`). Flent keeps the same
/// so that a result says what it was measured on.
public struct NamespaceMetadata: Codable, Sendable, Equatable {
    public var host: String
    public var sysctls: [String: String]
    /// `tc qdisc show` lines.
    public var qdiscs: [String]
    public init(host: String, sysctls: [String: String] = [:], qdiscs: [String] = []) { self.host = host; self.sysctls = sysctls; self.qdiscs = qdiscs }
}

/// A results file or run directory that cannot be read, and what to do.
public struct ReportError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var fix: String?
    public init(_ message: String, fix: String? = nil) { self.message = message; self.fix = fix }
    public var description: String { "error: \(message)" + (fix.map { "\n    fix: \($0)" } ?? "") }
}
