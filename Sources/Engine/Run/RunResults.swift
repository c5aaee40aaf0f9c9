import Foundation
import Report

/// Everything a run measured: results.json, documented in docs/results.md.
public struct RunResults: Codable, Sendable {
    public static let formatVersion = 1
    public var format = "pathbed-results"
    public var version = RunResults.formatVersion
    public var pathbed = pathbedVersion
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

    public struct MPTCPEvent: Codable, Sendable {
        public var t: Double
        public var node: String
        /// CREATED, ESTABLISHED, CLOSED, ANNOUNCED, REMOVED, SF_ESTABLISHED, SF_CLOSED, ...
        public var type: String
        public var detail: String
    }

    public struct HostInfo: Codable, Sendable {
        public var kernel: String
        public var hostname: String
        public var version: String
        /// The host's monotonic clock minus the controller's, as the agent's handshake estimated it.
        public var clockOffsetSeconds: Double
        public var reach: String
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

        public init(name: String, plugin: String, node: String, target: String, mptcp: Bool, started: Double, exitCode: Int32, error: String?,
                    series: [Series], metrics: [String: Double]? = nil, output: String? = nil) {
            self.name = name; self.plugin = plugin; self.node = node; self.target = target; self.mptcp = mptcp; self.started = started
            self.exitCode = exitCode; self.error = error; self.series = series; self.metrics = metrics; self.output = output
        }
    }

    public struct FaultImpact: Codable, Sendable {
        public var event: String
        public var impact: Impact
    }

    public struct RawSample: Codable, Sendable {
        public var host: String
        public var t: Double
        public var counters: [InterfaceCounters]
    }

    public init(lab: String, file: String, started: Date, durationSeconds: Double, hosts: [String: HostInfo],
                sampleIntervalSeconds: Double, events: [Event]) {
        self.lab = lab; self.file = file; self.started = started; self.durationSeconds = durationSeconds
        self.hosts = hosts; self.sampleIntervalSeconds = sampleIntervalSeconds; self.events = events
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
        let throughput = workloads.flatMap(\.series).filter { $0.unit == "Mbit/s" }
        for (i, e) in events.enumerated() {
            guard let back = e.revertActual else { continue }
            let until = i + 1 < events.count ? events[i + 1].actual : durationSeconds
            for s in throughput {
                impacts.append(FaultImpact(event: e.label, impact: Recovery.impact(of: s, faultStart: e.actual, faultEnd: back, until: until)))
            }
        }
    }
}

public enum RunReport {
    /// Writes results.json, one CSV of all series on the common grid, SVG plots and summary.txt.
    public static func write(_ r: RunResults, to dir: String) throws {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]; e.dateEncodingStrategy = .iso8601
        try e.encode(r).write(to: URL(fileURLWithPath: "\(dir)/results.json"))
        try render(r, to: dir)
    }

    public static func read(_ dir: String) throws -> RunResults {
        let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: "\(dir)/results.json")) } catch {
            throw LabError("\(dir) has no results.json: \(error.localizedDescription)", fix: "give the directory `pathbed run` wrote")
        }
        let r = try d.decode(RunResults.self, from: data)
        guard r.format == "pathbed-results", r.version <= RunResults.formatVersion else {
            throw LabError("\(dir)/results.json is format \(r.format) version \(r.version); this Pathbed reads version \(RunResults.formatVersion)")
        }
        return r
    }

    /// CSV, SVG and summary.txt from results (`pathbed report DIR` renders them again).
    public static func render(_ r: RunResults, to dir: String) throws {
        let step = r.sampleIntervalSeconds
        let busy = r.interfaces.filter { ($0.values.max() ?? 0) > 0.05 }
        let throughput = r.workloads.flatMap(\.series).filter { $0.unit == "Mbit/s" }
        let rtt = r.workloads.flatMap(\.series).filter { $0.unit == "ms" }
        try Render.csv(throughput + rtt + r.interfaces, step: step, end: r.durationSeconds).write(toFile: "\(dir)/series.csv", atomically: true, encoding: .utf8)
        let marks = r.events.map { Mark(label: $0.label, start: $0.actual, end: $0.revertActual ?? r.durationSeconds) }
            + r.mptcpEvents.filter { $0.type.hasPrefix("SF_") && $0.t >= 0 }.map { Mark(label: "\($0.node) \($0.type) \($0.detail)", start: $0.t) }
        try Render.svg(title: "\(r.lab): throughput per interface (received)", unit: "Mbit/s", series: busy, marks: marks, end: r.durationSeconds)
            .write(toFile: "\(dir)/interfaces.svg", atomically: true, encoding: .utf8)
        if !throughput.isEmpty {
            try Render.svg(title: "\(r.lab): throughput per workload", unit: "Mbit/s", series: throughput, marks: marks, end: r.durationSeconds)
                .write(toFile: "\(dir)/workloads.svg", atomically: true, encoding: .utf8)
        }
        if !rtt.isEmpty {
            try Render.svg(title: "\(r.lab): RTT", unit: "ms", series: rtt, marks: marks, end: r.durationSeconds)
                .write(toFile: "\(dir)/rtt.svg", atomically: true, encoding: .utf8)
        }
        try summary(r).write(toFile: "\(dir)/summary.txt", atomically: true, encoding: .utf8)
    }

    /// The table printed at the end of a run.
    public static func summary(_ r: RunResults) -> String {
        var out = "run of lab \(r.lab) (\(r.file)), \(String(format: "%.0f", r.durationSeconds)) s, "
            + r.hosts.sorted { $0.key < $1.key }.map { "\($0.key): Linux \($0.value.kernel)" }.joined(separator: ", ") + "\n\n"
        var rows: [[String]] = []
        for w in r.workloads {
            for s in w.series {
                let v = s.values
                let stats = Summary(v)
                let metric = s.unit == "Mbit/s" ? "throughput" : w.plugin == "ping" ? "RTT" : s.name.components(separatedBy: "(").last.map { String($0.dropLast()) } ?? s.unit
                rows.append([w.name, metric,
                             stats.map { String(format: "%.2f", $0.mean) } ?? "-", stats.map { String(format: "%.2f", $0.median) } ?? "-",
                             stats.map { String(format: "%.2f", $0.standardDeviation) } ?? "-", s.unit, w.error ?? ""])
            }
        }
        out += Render.table(["workload", "metric", "mean", "median", "sd", "unit", "note"], rows) + "\n"
        let figures = r.workloads.flatMap { w in (w.metrics ?? [:]).sorted { $0.key < $1.key }.map { [w.name, $0.key, String(format: "%.4g", $0.value)] } }
        if !figures.isEmpty { out += "\n" + Render.table(["workload", "figure", "value"], figures) + "\n" }
        let use = r.workloads.compactMap { w in w.pathUse.map { u in [w.name, w.node, u.sorted { $0.key < $1.key }.map { String(format: "%@ %.0f %%", $0.key, $0.value * 100) }.joined(separator: ", ")] } }
        if !use.isEmpty { out += "\n" + Render.table(["workload", "node", "path use (share of its bytes per interface)"], use) + "\n" }
        if !r.events.isEmpty {
            out += "\n" + Render.table(["fault", "planned s", "actual s", "revert planned s", "revert actual s"], r.events.map {
                [$0.label, String(format: "%.2f", $0.planned), String(format: "%.3f", $0.actual),
                 $0.revertPlanned.map { String(format: "%.2f", $0) } ?? "-", $0.revertActual.map { String(format: "%.3f", $0) } ?? "-"]
            }) + "\n"
        }
        out += RunStatistics.timing([r])
        if !r.mptcpCounters.isEmpty {
            out += "\n" + Render.table(["node", "MPTcpExt counters that grew during the run"], r.mptcpCounters.sorted { $0.key < $1.key }.map { node, c in
                [node, c.sorted { $0.key < $1.key }.map { "\($0.key)=\($0.value)" }.joined(separator: " ")]
            }) + "\n"
        }
        let subflowEvents = r.mptcpEvents.filter { $0.type.hasPrefix("SF_") || $0.type == "ANNOUNCED" || $0.type == "REMOVED" }
        if !subflowEvents.isEmpty {
            out += "\nMPTCP subflow events (ip mptcp monitor): " + subflowEvents.prefix(12).map { String(format: "%.1f s %@ %@", $0.t, $0.node, $0.type) }.joined(separator: "; ")
                + (subflowEvents.count > 12 ? "; ... (\(subflowEvents.count) in all, in results.json)" : "") + "\n"
        }
        if !r.impacts.isEmpty {
            out += "\n" + Render.table(["fault", "workload", "before Mbit/s", "during", "after", "recovery s"], r.impacts.map {
                [$0.event, $0.impact.series, $0.impact.before.map { String(format: "%.2f", $0) } ?? "-", $0.impact.during.map { String(format: "%.2f", $0) } ?? "-",
                 $0.impact.after.map { String(format: "%.2f", $0) } ?? "-", $0.impact.recoverySeconds.map { String(format: "%.1f", $0) } ?? "not recovered"]
            }) + "\n"
            out += "\nrecovery: from the fault's end (the link's return) until the throughput (1 s moving mean) is back to 95 % of its mean over the 5 s before the fault.\n"
        }
        return out
    }
}
