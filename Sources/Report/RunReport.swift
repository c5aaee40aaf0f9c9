import Foundation

public enum RunReport {
    /// Writes results.json, one CSV of all series on the common grid, SVG plots and summary.txt.
    public static func write(_ r: RunResults, to dir: String) throws {
        var r = r
        let dropped = r.dropNonFinite()
        if dropped > 0 { r.problems = (r.problems ?? []) + ["\(dropped) values out of range (not finite, or more than 1e15 in size) were left out"] }
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]; e.dateEncodingStrategy = .iso8601
        try e.encode(r).write(to: URL(fileURLWithPath: "\(dir)/results.json"), options: .atomic)
        try render(r, to: dir)
    }

    /// The largest results.json read (a run of hours at 100 ms with hundreds of interfaces).
    static let maximumBytes = 2 << 30

    public static func read(_ dir: String) throws -> RunResults {
        let path = "\(dir)/results.json"
        // Opened once, checked and read through the same descriptor, never past the limit: a
        // size from stat() says nothing of a /proc file (0 bytes, then endless).
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK)
        guard fd >= 0 else {
            throw ReportError("\(dir) has no results.json (\(String(cString: strerror(errno))))", fix: "give the directory `pathbed run` wrote")
        }
        defer { close(fd) }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            throw ReportError("\(path) is not a regular file", fix: "give the directory `pathbed run` wrote")
        }
        guard st.st_size <= maximumBytes else { throw ReportError("\(path) is larger than 2 GiB: not a results file Pathbed wrote") }
        var data = Data()
        var chunk = [UInt8](repeating: 0, count: 1 << 20)
        while true {
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress, $0.count) }
            if n < 0 { if errno == EINTR { continue }; throw ReportError("cannot read \(path): \(String(cString: strerror(errno)))", fix: "check its permissions") }
            if n == 0 { break }
            data.append(contentsOf: chunk[0..<n])
            // A file that goes on past the size it said (a /proc file) is no results file.
            guard data.count <= maximumBytes, data.count <= Int(st.st_size) + (1 << 20) else {
                throw ReportError("\(path) goes on past its size (\(st.st_size) bytes): not a results file Pathbed wrote")
            }
        }
        let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601
        var r: RunResults
        do { r = try d.decode(RunResults.self, from: data) } catch {
            var why = Self.describe(error)
            // JSON that parses, yet "corrupted": a value that does not fit its field.
            if case .dataCorrupted? = error as? DecodingError, (try? JSONSerialization.jsonObject(with: data)) != nil {
                why = "a value does not fit its field (a number out of range, or negative where it cannot be; a date not in ISO 8601)"
            }
            throw ReportError("\(path) is not a results file this Pathbed reads: \(why)", fix: "give the results.json `pathbed run` wrote, unchanged")
        }
        guard r.format == "pathbed-results", r.version <= RunResults.formatVersion else {
            throw ReportError("\(path) is format \(r.format) version \(r.version); this Pathbed reads version \(RunResults.formatVersion)")
        }
        if let problem = r.problemForReading() { throw ReportError("\(path): \(problem)", fix: "give the results.json `pathbed run` wrote, unchanged") }
        // A value no run writes (1e19 Mbit/s, a time of 1e300 s) is left out, and said.
        let dropped = r.dropNonFinite()
        if dropped > 0 { r.problems = (r.problems ?? []) + ["\(dropped) values out of range in \(path) (not finite, or more than 1e15 in size) were left out when it was read"] }
        return r
    }

    /// A decoding error in words: where in the file, and what was wrong.
    static func describe(_ error: any Error) -> String {
        func at(_ path: [any CodingKey]) -> String { path.isEmpty ? "the top" : path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined() }
        switch error as? DecodingError {
        case let .dataCorrupted(c)?: return "\(c.debugDescription) at \(at(c.codingPath))"
        case let .keyNotFound(k, c)?: return "`\(k.stringValue)` is missing at \(at(c.codingPath))"
        case let .typeMismatch(_, c)?, let .valueNotFound(_, c)?: return "\(c.debugDescription) at \(at(c.codingPath))"
        default: return "\(error)"
        }
    }

    /// Which way the interfaces plot counts bytes.
    public enum Direction: String, Sendable, CaseIterable { case received, sent, both }

    /// The interfaces' rates one way (the received ones are in results.json; the sent ones
    /// come from the raw counters, named as they are: `NODE:IF tx`).
    static func interfaceSeries(_ r: RunResults, _ direction: Direction) -> [Series] {
        switch direction {
        case .received: return r.interfaces
        // From the sample before the start on, as the received ones are.
        case .sent: return Series.interfaceRates(r.rawCounters.filter { $0.t >= -r.sampleIntervalSeconds }.map { ($0.t, $0.counters) }, received: false)
        case .both: return r.interfaces + Series.interfaceRates(r.rawCounters.filter { $0.t >= -r.sampleIntervalSeconds }.map { ($0.t, $0.counters) }, received: false)
        }
    }

    /// Series worth a line: a peak of at least 5 % of the busiest one's (and above 0.05 Mbit/s).
    static func busy(_ series: [Series]) -> (kept: [Series], leftOut: Int) {
        let top = series.compactMap { $0.values.max() }.max() ?? 0
        let kept = series.filter { ($0.values.max() ?? 0) > max(0.05, 0.05 * top) }
        return (kept, series.count - kept.count)
    }

    /// A bridge port's series that repeats a node interface's (the same traffic: a bridge with
    /// two members passes from one to the other) is left out of a plot: within 3 % of the other's
    /// bytes over the run and sample by sample (the median difference under 5 % of its mean).
    static func withoutRepeats(_ series: [Series]) -> (kept: [Series], repeats: Int) {
        let nodes = series.filter { !$0.name.hasPrefix("bridges:") }
        func mean(_ s: Series) -> Double { s.values.isEmpty ? 0 : s.values.reduce(0, +) / Double(s.values.count) }
        let kept = series.filter { b in
            guard b.name.hasPrefix("bridges:"), mean(b) > 0.05 else { return true }
            let mb = mean(b)
            return !nodes.contains { n in
                let mn = mean(n)
                guard abs(mn - mb) <= 0.03 * mb, n.times.count > 4 else { return false }
                let grid = 0.1, end = min(b.times.last ?? 0, n.times.last ?? 0)
                guard end > 1, Int(end / grid) < 2_000_000 else { return false }
                let gb = b.nearestOnGrid(step: grid, end: end), gn = n.nearestOnGrid(step: grid, end: end)
                let diffs = zip(gb, gn).compactMap { x, y -> Double? in guard let x, let y else { return nil }; return abs(x - y) }.sorted()
                return !diffs.isEmpty && diffs[diffs.count / 2] < 0.05 * mb
            }
        }
        return (kept, series.count - kept.count)
    }

    /// The marks of a run's plots: faults as windows, subflows opened and closed as ticks.
    static func marks(_ r: RunResults) -> [Mark] {
        // A subflow is seen by both ends: ticks from the MPTCP workloads' clients only (every
        // node's where those said nothing).
        let subflowEvents = r.mptcpEvents.filter { $0.type.hasPrefix("SF_") && $0.t >= 0 }
        let clients = Set(r.workloads.filter(\.mptcp).map(\.node))
        let fromClients = subflowEvents.filter { clients.contains($0.node) }
        return r.events.map { Mark(label: $0.label, start: $0.actual, end: $0.revertActual ?? r.durationSeconds) }
            + (fromClients.isEmpty ? subflowEvents : fromClients).map {
                Mark(label: "\($0.node) \($0.type) \($0.detail)", start: $0.t,
                     kind: $0.type == "SF_ESTABLISHED" ? "opened" : $0.type == "SF_CLOSED" ? "closed" : nil)
            }
    }

    /// Throughput series drawn as people read them: every sample faint, the 1 s moving mean
    /// (the one recovery times use) over it.
    static func smoothedLines(_ series: [Series]) -> [Render.Line] {
        series.enumerated().flatMap { i, s -> [Render.Line] in
            [Render.Line(s, color: i, style: .faint),
             Render.Line(s.smoothed(window: Recovery.smoothingSeconds), color: i, style: .bold, legend: "\(s.name), 1 s mean")]
        }
    }

    /// RTT lines are broken where echoes got no reply (two samples more than 3 intervals apart).
    /// `colorsOf`: the series of another plot whose colours lines of the same name keep.
    static func rttLines(_ series: [Series], colorsOf other: [Series] = []) -> [Render.Line] {
        series.enumerated().map { i, s in
            let gaps = zip(s.times.dropFirst(), s.times).map { $0 - $1 }.filter { $0 > 0 }.sorted()
            let typical = gaps.isEmpty ? 1 : gaps[gaps.count / 2]
            return Render.Line(s, color: other.firstIndex { $0.name == s.name } ?? i, gap: 3 * typical)
        }
    }

    /// CSV, SVG and summary.txt from results (`pathbed report DIR` renders them again).
    public static func render(_ r: RunResults, to dir: String, interfaces direction: Direction = .received) throws {
        let step = r.sampleIntervalSeconds
        let throughput = r.workloads.flatMap(\.series).filter { $0.quantity == .throughput }
        let rtt = r.workloads.flatMap(\.series).filter { $0.quantity == .rtt }
        // Every series, a plugin's metrics and a transfer's figures included (empty cells where a
        // series has no sample near a grid point).
        let others = r.workloads.flatMap(\.series).filter { $0.quantity != .throughput && $0.quantity != .rtt }
        try Render.csv(throughput + rtt + others + r.interfaces, step: step, end: r.durationSeconds).write(toFile: "\(dir)/series.csv", atomically: true, encoding: .utf8)
        try (Render.tidyHeader + tidy(r, run: (dir as NSString).lastPathComponent, variant: r.lab)).write(toFile: "\(dir)/tidy.csv", atomically: true, encoding: .utf8)
        let marks = marks(r)
        let (active, leftOut) = busy(interfaceSeries(r, direction))
        let (shown, repeats) = withoutRepeats(active)
        let what = direction == .both ? "received and sent" : direction.rawValue
        var notes: [String] = []
        if leftOut > 0 { notes.append("\(leftOut) near-idle series left out (peak under 5 % of the busiest)") }
        if repeats > 0 { notes.append("\(repeats) bridge port\(repeats == 1 ? "" : "s") left out: the same traffic as a node's interface") }
        if !notes.isEmpty { notes.append(direction == .received ? "series.csv has them all" : "results.json's rawCounters have every interface's bytes") }
        try Render.svg(title: "\(r.lab): throughput per interface (\(what))", unit: "Mbit/s",
                       lines: smoothedLines(shown), marks: marks, end: r.durationSeconds,
                       note: notes.isEmpty ? nil : notes.joined(separator: "; "))
            .write(toFile: "\(dir)/interfaces.svg", atomically: true, encoding: .utf8)
        if !throughput.isEmpty {
            try Render.svg(title: "\(r.lab): throughput per workload", unit: "Mbit/s", lines: smoothedLines(throughput), marks: marks, end: r.durationSeconds)
                .write(toFile: "\(dir)/workloads.svg", atomically: true, encoding: .utf8)
        }
        if !rtt.isEmpty {
            try Render.svg(title: "\(r.lab): RTT", unit: "ms", lines: rttLines(rtt), marks: marks, end: r.durationSeconds,
                           note: "a line is broken where echoes got no reply")
                .write(toFile: "\(dir)/rtt.svg", atomically: true, encoding: .utf8)
        }
        // Each workload's subflows, as its sending side saw them.
        let sending = r.sendingSubflows.flatMap(\.subflows)
        if !sending.isEmpty {
            // Each workload's MPTCP connections that carried data, at the data level, above its
            // subflows (named by token where a workload has several).
            let levels = r.sendingSubflows.flatMap { e -> [Series] in
                let all = r.sendingConnections(e.workload, side: e.side).map(\.connection)
                // Those that carried a share of it (iperf3's control connection carries a few bytes).
                let most = all.map(\.sent).max() ?? 0
                let carried = all.filter { $0.sent > 0 && $0.sent >= most / 100 }
                return carried.map { c in var s = c.throughput; s.name = "\(e.workload): data level" + (carried.count > 1 ? " \(c.token)" : ""); return s }
            }.filter { !$0.values.isEmpty }
            let (tput, idle) = busy(levels + sending.map(\.throughput))
            try Render.svg(title: "\(r.lab): throughput per subflow (sending side)", unit: "Mbit/s", lines: smoothedLines(tput), marks: marks, end: r.durationSeconds,
                           note: "from each socket's bytes acknowledged and received (TCP_INFO; a connection's data level: MPTCP_INFO; every 100 ms, or every second under software emulation)" + (idle > 0 ? "; \(idle) near-idle left out" : ""))
                .write(toFile: "\(dir)/subflows.svg", atomically: true, encoding: .utf8)
            let shown = Set(tput.map(\.name))
            let srtt = sending.map { ($0, $0.measuredRTT) }.filter { shown.contains($0.1.name) }.map(\.1)
            try Render.svg(title: "\(r.lab): smoothed RTT per subflow (sending side)", unit: "ms", lines: rttLines(srtt, colorsOf: tput), marks: marks, end: r.durationSeconds,
                           note: "the kernel's srtt of each subflow (TCP_INFO), where it had data acknowledged")
                .write(toFile: "\(dir)/subflows-rtt.svg", atomically: true, encoding: .utf8)
        }
        // A plugin's own metrics: one plot per unit (`plugin-ms.svg`, `plugin-2.svg` for a unit
        // that is no file name), never on the RTT plot.
        let byUnit = Dictionary(grouping: others.filter { $0.quantity == .pluginMetric }, by: \.unit)
        for (i, (unit, series)) in byUnit.sorted(by: { $0.key < $1.key }).enumerated() {
            let spelled = unit.replacingOccurrences(of: "/", with: "-per-").replacingOccurrences(of: "%", with: "percent")
            let safe = spelled.allSatisfy { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-") } && !unit.isEmpty && spelled.count <= 24 ? spelled : "\(i + 1)"
            try Render.svg(title: "\(r.lab): plugin metrics\(unit.isEmpty ? "" : " (\(unit))")", unit: unit, series: series, marks: marks, end: r.durationSeconds)
                .write(toFile: "\(dir)/plugin-\(safe).svg", atomically: true, encoding: .utf8)
        }
        try summary(r).write(toFile: "\(dir)/summary.txt", atomically: true, encoding: .utf8)
    }

    /// A run's every series in long form (tidy.csv): a workload's as `WORKLOAD: SERIES`, an
    /// interface's as `interface NODE:IF`.
    public static func tidy(_ r: RunResults, run: String, variant: String) -> String {
        let subflows = (r.subflows ?? []).filter { $0.workload != nil }.flatMap { sf -> [Series] in
            let name = "subflow \(sf.workload!) \(sf.side ?? "?") \(sf.label)"
            var tput = sf.throughput; tput.name = name + " throughput"
            var rtt = sf.measuredRTT; rtt.name = name + " srtt"
            return [tput, rtt, Series(name: name + " cwnd", unit: "segments", quantity: .congestionWindow, times: sf.times, values: sf.cwnd.map(Double.init))]
        }
        let connections = (r.connections ?? []).filter { $0.workload != nil }.flatMap { c -> [Series] in
            let name = "connection \(c.workload!) \(c.side ?? "?") \(c.token)"
            var tput = c.throughput; tput.name = name + " throughput"
            return [tput, Series(name: name + " subflows", unit: "subflows", quantity: .subflowCount, times: c.times, values: c.subflows.map(Double.init))]
        }
        return Render.tidy(r.workloads.flatMap(\.series) + r.interfaces.map { var s = $0; s.name = "interface \(s.name)"; return s } + subflows + connections, run: run, variant: variant)
    }

    /// Each workload's subflows: bytes, share, RTT, retransmissions, window.
    static func subflowTable(_ r: RunResults) -> String {
        let sending = r.sendingSubflows
        guard !sending.isEmpty else { return r.subflowNote.map { "\nsubflows: \(safeText($0, singleLine: true))\n" } ?? "" }
        var rows: [[String]] = []
        let idle = (r.subflows ?? []).filter { $0.workload != nil }.count - r.sendingSubflows.map { $0.subflows.count }.reduce(0, +)
        for (w, side, subflows) in sending {
            let total = Double(subflows.map(\.bytes).reduce(0, &+))
            for sf in subflows {
                let srtt = sf.srttMs.filter { $0 > 0 }
                let retrans = (sf.retransmits.last ?? 0) - (sf.retransmits.first ?? 0)
                rows.append([w, side, sf.path ?? sf.interface ?? "?", "\(sf.local) → \(sf.remote)", String(format: "%.2f", Double(sf.bytes) / 1e6),
                             total > 0 ? String(format: "%.0f", Double(sf.bytes) / total * 100) : "-",
                             srtt.isEmpty ? "-" : String(format: "%.1f", srtt.reduce(0, +) / Double(srtt.count)), "\(max(0, retrans))",
                             "\(sf.cwnd.max() ?? 0)", String(format: "%.1f-%.1f", sf.times.first ?? 0, sf.times.last ?? 0)])
            }
        }
        // Each connection's data level against what its subflows carried (MPTCP_INFO).
        var levels: [[String]] = []
        for (w, side, _) in sending {
            for (c, carried) in r.sendingConnections(w, side: side) where c.sent > 0 {
                levels.append([w, side, c.token, String(format: "%.2f", Double(c.sent) / 1e6), String(format: "%.2f", Double(carried) / 1e6),
                               carried >= c.sent ? String(format: "%.1f", Double(carried - c.sent) / Double(c.sent) * 100) : "-",
                               "\(c.subflows.max() ?? 0)", String(format: "%.1f-%.1f", c.times.first ?? 0, c.times.last ?? 0)])
            }
        }
        let levelTable = levels.isEmpty ? "" : "\nMPTCP connections (the data level, MPTCP_INFO): data sent and acknowledged against the bytes their subflows had acknowledged over the same samples (the rest: data sent on more than one subflow, reinjected):\n"
            + Render.table(["workload", "side", "token", "data MB", "subflows MB", "more %", "most subflows", "seen s"], levels) + "\n"
        return "\nsubflows (every TCP socket of the workloads, from the kernel every 100 ms or, under software emulation, every second; the sending side's view):\n"
            + Render.table(["workload", "side", "path (client's end)", "local → remote", "MB", "share %", "srtt mean ms", "retransmitted segments", "max cwnd", "seen s"], rows) + "\n" + levelTable
            + "(the other side's view of each, and \(max(0, idle)) sockets that carried nothing, are in results.json)\n"
            + (r.subflowNote.map { "(\(safeText($0, singleLine: true)))\n" } ?? "")
    }

    /// What was captured, and what tshark found in it.
    static func captureTable(_ r: RunResults) -> String {
        guard let captures = r.captures, !captures.isEmpty else { return "" }
        let filters = Set(captures.compactMap(\.filter))
        var out = "\npackets captured (capture.pcapng, one interface per row, named NODE:INTERFACE (link LINK)"
            + (filters.isEmpty ? "" : "; only what the filter \(filters.sorted().map { "`\(safeText(String($0.prefix(200)), singleLine: true))`" }.joined(separator: ", ")) kept") + "):\n"
        out += Render.table(["link", "captured on", "host", "packets", "MB", "note"], captures.map {
            [$0.link, $0.end, $0.host, "\($0.packets)", String(format: "%.2f", Double($0.bytes) / 1e6),
             ($0.atLimit ? "stopped at its limit (--capture-limit)" : "") + (($0.droppedByKernel ?? 0) > 0 ? " \($0.droppedByKernel!) dropped by the kernel" : "")]
        }) + "\n"
        if let s = r.captureSummary {
            let options = s.options.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", ")
            out += "MPTCP in the capture (\(safeText(s.tool, singleLine: true)); a packet seen on two links counts twice): \(s.mptcpStreams) TCP streams with MPTCP options, \(s.joinSYNs) MP_JOIN SYNs; packets per option: \(options.isEmpty ? "none" : options)\n"
            if !s.expert.isEmpty {
                out += "tshark's MPTCP notes: " + s.expert.sorted { $0.value > $1.value }.prefix(10).map { "\(safeText($0.key, singleLine: true)) (\($0.value))" }.joined(separator: "; ") + "\n"
            }
        }
        return out
    }

    /// The table printed at the end of a run.
    public static func summary(_ r: RunResults) -> String { safeText(rawSummary(r)) }

    /// Each link's figures delivered against configured (`pathbed verify`, a run's pre-flight).
    public static func calibrationTable(_ c: [RunResults.Calibration]) -> String {
        func f(_ v: Double?) -> String {
            guard let v, v.isFinite else { return "-" }
            return v >= 100 ? String(format: "%.0f", v) : v >= 10 ? String(format: "%.1f", v) : String(format: "%.2f", v)
        }
        let shown = 60
        var rows = c.prefix(shown).map { x in
            [safeText(x.link, singleLine: true), safeText(x.direction, singleLine: true), safeText("\(x.metric) (\(x.unit))", singleLine: true), f(x.configured), f(x.delivered),
             x.low == nil && x.high == nil ? "-" : x.low == nil ? "up to \(f(x.high))" : "\(f(x.low))-\(f(x.high))", x.verdict == "outside" ? "OUTSIDE" : x.verdict,
             safeText(x.note ?? "", singleLine: true)]
        }
        if c.count > shown { rows.append(["... \(c.count - shown) more in results.json", "", "", "", "", "", "", ""]) }
        return Render.table(["link", "direction", "figure", "configured", "delivered", "accepted", "verdict", "note"], rows) + "\n"
    }

    /// The figures outside tolerance, said first and loudly: the run's figures may not mean what the file says.
    public static func outsideTolerance(_ c: [RunResults.Calibration]) -> String? {
        let bad = c.filter(\.isOutside)
        guard !bad.isEmpty else { return nil }
        return "LINKS OUTSIDE TOLERANCE (\(bad.count) of \(c.count) figures; what this run measures over them may not be what the file configures):\n"
            + bad.prefix(20).map { x in
                "  - \(safeText("\(x.link) \(x.direction) \(x.metric)", singleLine: true)): delivered \(x.delivered.map { String(format: "%.2f", $0) } ?? "nothing"), configured \(x.configured.map { String(format: "%.2f", $0) } ?? "-") \(safeText(x.unit, singleLine: true))"
                    + (x.low != nil || x.high != nil ? " (accepted \(x.low.map { String(format: "%.2f", $0) } ?? "-")-\(x.high.map { String(format: "%.2f", $0) } ?? "-"))" : "")
                    + (x.note.map { "; " + safeText($0, singleLine: true) } ?? "")
            }.joined(separator: "\n") + (bad.count > 20 ? "\n  - ..." : "") + "\n\n"
    }

    /// The run's health: its verdict, each host's CPU and Pathbed's own, each shaped queue's drops.
    static func healthTables(_ h: RunResults.Health) -> String {
        func p(_ v: Double) -> String { v.isFinite ? String(format: "%.1f", v) : "-" }
        var out = "health: " + (h.verdict == "valid" ? "valid (no host's CPUs saturated more than 10 % of the run, no steal above 10 %)" : "SUSPECT (above)") + "\n"
        if !h.hosts.isEmpty {
            out += Render.table(["host", "runs under", "CPUs", "busy %", "softirq %", "steal %", "saturated, % of the run", "Pathbed, % of a CPU"],
                                h.hosts.prefix(40).map { x in [safeText(x.host, singleLine: true), safeText(x.virtualization ?? "unknown", singleLine: true), "\(x.cpus)",
                                                               p(x.cpuBusy), p(x.softirq), p(x.steal), p(x.saturated), p(x.pathbedCPU)] }) + "\n"
        }
        let queues = h.queues.filter { $0.drops > 0 || $0.backlogMaxPackets > 0 }
        if !queues.isEmpty {
            var rows = queues.prefix(40).map { q in [safeText(q.end, singleLine: true), safeText(q.kind, singleLine: true), "\(q.drops)", "\(q.overlimits)", "\(q.backlogMaxPackets) / \(q.backlogMaxBytes)"] }
            if queues.count > 40 { rows.append(["... \(queues.count - 40) more in results.json", "", "", "", ""]) }
            out += "\nshaped queues that dropped or held packets (all of them in results.json, health.queues):\n"
                + Render.table(["shaped queue", "qdisc", "drops", "overlimits", "deepest backlog (skbs, a GSO packet one / bytes)"], rows) + "\n"
        }
        return out
    }

    /// Each node's effective congestion control, scheduler and path manager, and where each came
    /// from (a reader of the file may expect cubic where the host's default was bbr).
    static func settingsTable(_ settings: [RunResults.NodeSettings]) -> String {
        func cell(_ v: String?, _ from: String) -> String {
            guard let v else { return "-" }
            return safeText(v, singleLine: true) + (from == "file" ? " (file)" : " (host's default)")
        }
        let shown = 40
        var rows = settings.prefix(shown).map { s in
            [safeText(s.node, singleLine: true), safeText(s.host, singleLine: true), cell(s.congestionControl, s.congestionControlFrom),
             cell(s.scheduler, s.schedulerFrom), cell(s.pathManager, s.pathManagerFrom)]
        }
        if settings.count > shown { rows.append(["... \(settings.count - shown) more in results.json", "", "", "", ""]) }
        return Render.table(["node", "host", "congestion control", "MPTCP scheduler", "path manager"], rows) + "\n"
    }

    /// The shaped directions' queues, one row per profile and length (a lab of many links
    /// shaped alike is a few rows).
    static func queueTable(_ queues: [RunResults.Queue]) -> String {
        struct Key: Hashable { var profile: String; var rule: String; var packets: Int; var forDelay: String; var milliseconds: String; var during: String }
        var order: [Key] = []
        var ends: [Key: [String]] = [:]
        for q in queues {
            // From a results file (read checks the ranges): a figure out of range is shown as
            // unknown, never computed with; names on one line each.
            let ms = q.milliseconds.flatMap { $0.isFinite && (0...1e12).contains($0) ? String(format: "%.1f", $0) : nil } ?? "-"
            let held = q.forDelay.flatMap { q.packets >= 0 && (0...q.packets).contains($0) ? "\($0)" : nil } ?? "-"
            let k = Key(profile: safeText(q.profile, singleLine: true), rule: safeText(q.rule, singleLine: true), packets: q.packets, forDelay: held, milliseconds: ms, during: q.during.map { safeText($0, singleLine: true) } ?? "the run")
            if ends[k] == nil { order.append(k) }
            ends[k, default: []].append(safeText("\(q.link) \(q.end)", singleLine: true))
        }
        let shown = 40
        var rows = order.prefix(shown).map { k -> [String] in
            let e = ends[k] ?? []
            return [k.profile, k.rule, "\(k.packets)", k.forDelay, k.milliseconds, k.during, e.count > 3 ? e.prefix(2).joined(separator: ", ") + ", ... (\(e.count) in all)" : e.joined(separator: ", ")]
        }
        if order.count > shown { rows.append(["... \(order.count - shown) more in results.json", "", "", "", "", "", ""]) }
        return Render.table(["profile", "queue", "packets", "held for the delay", "queued: ms at the rate", "in force", "shaped directions (link, end)"], rows) + "\n"
    }

    static func rawSummary(_ r: RunResults) -> String {
        var out = "run of lab \(r.lab) (\(r.file)), \(String(format: "%.0f", r.durationSeconds)) s, "
            + r.hosts.sorted { $0.key < $1.key }.map { "\($0.key): Linux \($0.value.kernel)" }.joined(separator: ", ") + "\n\n"
        if let why = r.endedEarly { out += "THE RUN ENDED EARLY: \(why)\n(what was measured until then is below)\n\n" }
        if let problems = r.problems, !problems.isEmpty {
            out += "PROBLEMS:\n" + problems.map { "  - \($0)" }.joined(separator: "\n") + "\n\n"
        }
        if let c = r.calibration, let loud = outsideTolerance(c) { out += loud }
        if let h = r.health, h.verdict != "valid" {
            out += "HEALTH: SUSPECT\n" + h.reasons.prefix(10).map { "  - " + safeText($0, singleLine: true) }.joined(separator: "\n") + "\n\n"
        }
        if let warnings = r.warnings, !warnings.isEmpty {
            out += "WARNINGS (the lab's wiring; `pathbed validate` says the same):\n"
                + warnings.prefix(20).map { "  - " + safeText($0, singleLine: true) }.joined(separator: "\n")
                + (warnings.count > 20 ? "\n  - ... \(warnings.count - 20) more in results.json" : "") + "\n\n"
        }
        // What was left out to stay within bounds (not a failure, but never silent).
        let notes = r.workloads.flatMap { w in (w.notes ?? []).map { "\(w.name): \($0)" } }
        if !notes.isEmpty { out += "NOTES:\n" + notes.map { "  - \($0)" }.joined(separator: "\n") + "\n\n" }
        var rows: [[String]] = []
        for w in r.workloads {
            for s in w.series {
                let v = s.values
                let stats = Summary(v)
                let metric = RunStatistics.metricName(s)
                rows.append([w.name, metric,
                             stats.map { String(format: "%.2f", $0.mean) } ?? "-", stats.map { String(format: "%.2f", $0.median) } ?? "-",
                             stats.map { String(format: "%.2f", $0.standardDeviation) } ?? "-", s.unit, w.error ?? ""])
            }
        }
        out += Render.table(["workload", "metric", "mean", "median", "sd", "unit", "note"], rows) + "\n"
        let figures = r.workloads.flatMap { w in (w.metrics ?? [:]).sorted { $0.key < $1.key }.map { [w.name, $0.key, String(format: "%.4g", $0.value)] } }
        if !figures.isEmpty { out += "\n" + Render.table(["workload", "figure", "value"], figures) + "\n" }
        let use = r.workloads.compactMap { w in w.pathUse.map { u in [w.name, w.node, u.sorted { $0.key < $1.key }.map { String(format: "%@ %.0f %%", $0.key, $0.value * 100) }.joined(separator: ", ")] } }
        if !use.isEmpty { out += "\n" + Render.table(["workload", "node", "path use (its node's bytes per interface while it ran; other workloads there count too)"], use) + "\n" }
        out += subflowTable(r)
        out += captureTable(r)
        if !r.events.isEmpty {
            out += "\n" + Render.table(["fault", "planned s", "actual s", "revert planned s", "revert actual s"], r.events.map {
                [$0.label, String(format: "%.2f", $0.planned), String(format: "%.3f", $0.actual),
                 $0.revertPlanned.map { String(format: "%.2f", $0) } ?? "-", $0.revertActual.map { String(format: "%.3f", $0) } ?? "-"]
            }) + "\n"
        }
        out += RunStatistics.timing([r])
        if let c = r.calibration, !c.isEmpty {
            out += "\nlinks verified before the run (pathbed verify; --no-verify skips it):\n" + calibrationTable(c)
                + (r.calibrationNote.map { "(" + safeText(String($0.prefix(2000)), singleLine: true) + ")\n" } ?? "")
        } else if let note = r.calibrationNote {
            out += "\nlinks: " + safeText(String(note.prefix(2000)), singleLine: true) + "\n"
        }
        if let h = r.health { out += "\n" + healthTables(h) }
        if let settings = r.settings, !settings.isEmpty { out += "\n" + settingsTable(settings) }
        if let queues = r.queues, !queues.isEmpty { out += "\n" + queueTable(queues) }
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
