import Foundation

/// Figures across runs: the repetitions of `run --repeat N` (mean, median, standard deviation
/// per metric, as the origin study's tables give them), and two sets of runs side by side
/// (`pathbed report A B`).
public enum RunStatistics {
    /// Each run's figures by metric name: a workload's mean per series, its own metrics, and
    /// per fault (repetition numbers dropped, so that a flap's repetitions pool) its impact.
    public static func figures(_ r: RunResults) -> [(String, Double)] {
        var out: [(String, Double)] = []
        for w in r.workloads {
            for s in w.series where !s.values.isEmpty {
                out.append(("\(w.name) \(metricName(s)) mean \(s.unit)", s.values.reduce(0, +) / Double(s.values.count)))
            }
            for (k, v) in (w.metrics ?? [:]).sorted(by: { $0.key < $1.key }) where !k.hasPrefix("mean ") { out.append(("\(w.name) \(k)", v)) }
            // A workload's own paths: its subflows' shares where its sockets were read; else its
            // node's bytes (not for ping: they would be the other workloads' of that node).
            if let shares = r.subflowShares(w.name) {
                for (k, v) in shares.sorted(by: { $0.key < $1.key }) { out.append(("\(w.name) subflow share \(k) %", v * 100)) }
            } else if w.plugin != "ping" {
                for (k, v) in (w.pathUse ?? [:]).sorted(by: { $0.key < $1.key }) { out.append(("\(w.name) path use \(k) %", v * 100)) }
            }
        }
        for i in r.impacts {
            let fault = i.event.replacingOccurrences(of: #" #\d+$"#, with: "", options: .regularExpression)
            let w = i.impact.series.components(separatedBy: " (").first ?? i.impact.series
            if let v = i.impact.before { out.append(("\(fault) / \(w): before Mbit/s", v)) }
            if let v = i.impact.during { out.append(("\(fault) / \(w): during Mbit/s", v)) }
            if let v = i.impact.after { out.append(("\(fault) / \(w): after Mbit/s", v)) }
            if let v = i.impact.recoverySeconds { out.append(("\(fault) / \(w): recovery s", v)) }
        }
        return out
    }

    /// What a workload's series measures, in the words of tables: throughput, RTT, or the
    /// series' own name in parentheses (`transfer time`, a plugin's metric).
    public static func metricName(_ s: Series) -> String {
        switch s.quantity {
        case .throughput: return "throughput"
        case .rtt: return "RTT"
        case .congestionWindow: return "cwnd"
        case .subflowCount: return "subflows"
        case .transferTime, .transferGoodput, .pluginMetric:
            guard let open = s.name.lastIndex(of: "("), s.name.hasSuffix(")") else { return s.unit }
            return String(s.name[s.name.index(after: open)..<s.name.index(before: s.name.endIndex)])
        }
    }

    /// One run's figures, one value per metric: a fault repeated within the run (a flap) is
    /// averaged first, so that runs, not repetitions, are the independent draws.
    public static func perRun(_ r: RunResults) -> [(String, Double)] {
        var order: [String] = []
        var sums: [String: (Double, Int)] = [:]
        for (k, v) in figures(r) where v.isFinite {
            if sums[k] == nil { order.append(k) }
            let (s, n) = sums[k, default: (0, 0)]
            sums[k] = (s + v, n + 1)
        }
        return order.map { ($0, sums[$0]!.0 / Double(sums[$0]!.1)) }
    }

    /// Fault impacts that never recovered, by the recovery metric they are missing from.
    static func notRecovered(_ runs: [RunResults]) -> [String: Int] {
        var out: [String: Int] = [:]
        for r in runs {
            for i in r.impacts where i.impact.recoverySeconds == nil {
                let fault = i.event.replacingOccurrences(of: #" #\d+$"#, with: "", options: .regularExpression)
                let w = i.impact.series.components(separatedBy: " (").first ?? i.impact.series
                out["\(fault) / \(w): recovery s", default: 0] += 1
            }
        }
        return out
    }

    /// Metric → per-run values across runs, in first-seen order.
    static func pooled(_ runs: [RunResults]) -> [(String, [Double])] {
        var order: [String] = []
        var values: [String: [Double]] = [:]
        for r in runs {
            for (k, v) in perRun(r) {
                if values[k] == nil { order.append(k) }
                values[k, default: []].append(v)
            }
        }
        // A recovery that never happened in any run still gets its row (n = 0).
        for k in notRecovered(runs).keys.sorted() where values[k] == nil { order.append(k); values[k] = [] }
        return order.map { ($0, values[$0]!) }
    }

    /// One metric across runs.
    public struct Aggregate: Codable, Sendable, Equatable {
        public var metric: String
        /// Runs that gave a value.
        public var n: Int
        public var mean: Double?
        public var standardDeviation: Double?
        public var median: Double?
        public var min: Double?
        public var max: Double?
        /// The 95 % interval of the mean (Student's t); absent with fewer than two runs.
        public var ciLow: Double?
        public var ciHigh: Double?
        /// Fault impacts (over all runs and repetitions) that did not recover before the run or
        /// the next fault ended: not in the values, counted here.
        public var notRecovered: Int?
        /// The per-run values.
        public var values: [Double]
    }

    public static func aggregates(_ runs: [RunResults]) -> [Aggregate] {
        let missing = notRecovered(runs)
        return pooled(runs).map { k, v in
            let s = Summary(v), ci = Inference.meanInterval(v)
            // Figures that overflow (values near 1e308 from a results file) are left out, not written as infinities.
            func finite(_ x: Double?) -> Double? { x.flatMap { $0.isFinite ? $0 : nil } }
            return Aggregate(metric: k, n: v.count, mean: finite(s?.mean), standardDeviation: v.count > 1 ? finite(s?.standardDeviation) : nil, median: finite(s?.median),
                             min: v.min(), max: v.max(), ciLow: ci?.low, ciHigh: ci?.high, notRecovered: missing[k], values: v)
        }
    }

    /// What `--repeat` writes beside its summary: aggregates.json.
    public struct AggregatesFile: Codable, Sendable {
        public var format = "pathbed-aggregates"
        public var version = 1
        public var lab: String
        public var runs: Int
        public var confidence = Inference.confidence
        public var interval = Inference.method
        public var metrics: [Aggregate]
    }

    public static func aggregatesJSON(_ runs: [RunResults]) throws -> Data {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try e.encode(AggregatesFile(lab: runs.first?.lab ?? "", runs: runs.count, metrics: aggregates(runs)))
    }

    /// aggregates.csv: one row per metric (RFC 4180; empty cells where a figure does not exist).
    public static func aggregatesCSV(_ runs: [RunResults]) -> String {
        var out = "metric,n,mean,sd,median,min,max,ci95_low,ci95_high,not_recovered\r\n"
        for a in aggregates(runs) {
            out += ([Render.csvField(a.metric), "\(a.n)"] + [a.mean, a.standardDeviation, a.median, a.min, a.max, a.ciLow, a.ciHigh].map(Render.csvNumber)
                    + ["\(a.notRecovered ?? 0)"]).joined(separator: ",") + "\r\n"
        }
        return out
    }

    /// The table of `--repeat N`.
    public static func table(_ runs: [RunResults]) -> String {
        let aggregates = aggregates(runs)
        let rows = aggregates.map { a -> [String] in
            func c(_ v: Double?) -> String { v.map(f) ?? "-" }
            let ci = a.ciLow.map { "\(f($0)) to \(f(a.ciHigh!))" } ?? "-"
            return [a.metric, "\(a.n)", c(a.mean), ci, c(a.standardDeviation), c(a.median), c(a.min), c(a.max), a.notRecovered.map(String.init) ?? ""]
        }
        var out = "\(runs.count) runs of lab \(runs.first?.lab ?? "?")\n\n"
        out += Render.table(["metric", "n", "mean", "95 % CI of the mean", "sd", "median", "min", "max", "not recovered"], rows) + "\n"
        out += "\nn: runs with the figure; a fault repeated within a run is averaged first (runs are the independent draws). "
            + "CI: \(Inference.method).\n"
        out += timing(runs)
        // Each repetition's health and links: a suspect one is said, with why.
        let checks = runs.enumerated().map { i, r -> [String] in
            let outside = r.calibration.map { c in "\(c.filter(\.isOutside).count) of \(c.count) outside" } ?? (i > 0 && runs[0].calibration != nil ? "(as run 1)" : "not verified")
            return ["\(i + 1)", safeText(r.health?.verdict ?? "unknown", singleLine: true), safeText(r.health?.reasons.first ?? "", singleLine: true), outside]
        }
        if runs.contains(where: { $0.health != nil || $0.calibration != nil }) {
            out += "\n" + Render.table(["run", "health", "why", "links verified"], checks) + "\n"
        }
        let faults = runs.flatMap(\.impacts).filter { $0.impact.recoverySeconds == nil }.count
        if faults > 0 { out += "\n\(faults) fault impacts did not recover before the run (or the next fault) ended: counted under \"not recovered\", not in the recovery figures.\n" }
        // Names and texts come from results files: made safe for a terminal, as a summary is.
        return safeText(out)
    }

    /// One metric of a set against the baseline set.
    public struct Difference: Codable, Sendable, Equatable {
        public var metric: String
        public var baseline: Aggregate?
        public var other: Aggregate?
        /// (mean(other) / mean(baseline) - 1) * 100.
        public var percent: Double?
        public var welch: Inference.Welch?
        /// `differs` (p < 0.05), `within noise` (the interval of the difference holds 0), or
        /// why it is not judged (fewer than two runs on a side, or the metric only on one side).
        public var verdict: String
    }

    /// What Welch's test says of B against A, in a word or two.
    static func verdict(_ w: Inference.Welch) -> String {
        w.low == w.high ? (w.difference == 0 ? "equal (no spread)" : "differs (no spread)")
            : w.p < 1 - Inference.confidence ? "differs" : "within noise"
    }

    /// Sets of runs against the first.
    public struct Comparison: Codable, Sendable {
        public var format = "pathbed-comparison"
        public var version = 1
        public var method = Inference.comparisonMethod
        public var baseline: String
        public var sets: [String: Int]
        /// What differs between the sets besides the figures: the file, the kernels, the
        /// settings, the queues.
        public var notes: [String]
        /// Per other set (by its name), each metric against the baseline.
        public var against: [String: [Difference]]
        public var order: [String]
    }

    public static func compare(_ sets: [(name: String, runs: [RunResults])]) -> Comparison {
        let base = sets[0]
        var against: [String: [Difference]] = [:]
        var notes: [String] = []
        let pa = aggregates(base.runs)
        for other in sets.dropFirst() {
            let pb = aggregates(other.runs)
            let da = Dictionary(pa.map { ($0.metric, $0) }, uniquingKeysWith: { x, _ in x })
            let db = Dictionary(pb.map { ($0.metric, $0) }, uniquingKeysWith: { x, _ in x })
            var keys = pa.map(\.metric)
            for k in pb.map(\.metric) where da[k] == nil { keys.append(k) }
            against[other.name] = keys.map { k in
                let a = da[k], b = db[k]
                var d = Difference(metric: k, baseline: a, other: b, percent: nil, welch: nil, verdict: "")
                if let x = a?.mean, let y = b?.mean, x != 0, ((y / x - 1) * 100).isFinite { d.percent = (y / x - 1) * 100 }
                if a == nil || b == nil || a?.n == 0 || b?.n == 0 {
                    d.verdict = "only in \(a == nil || a?.n == 0 ? "B" : "A")"
                } else if let w = Inference.welch(a!.values, b!.values) {
                    d.welch = w
                    d.verdict = verdict(w)
                } else {
                    d.verdict = a!.n < 2 || b!.n < 2 ? "not judged (n < 2)" : "not judged (figures too large or too small to test)"
                }
                return d
            }
            notes += differences(base, other)
        }
        return Comparison(baseline: base.name, sets: Dictionary(sets.map { ($0.name, $0.runs.count) }, uniquingKeysWith: { x, _ in x }),
                          notes: notes, against: against, order: sets.map(\.name))
    }

    /// What differs between two sets of runs besides their figures.
    static func differences(_ a: (name: String, runs: [RunResults]), _ b: (name: String, runs: [RunResults])) -> [String] {
        var notes: [String] = []
        let tag = "\(a.name) against \(b.name)"
        func list(_ s: Set<String>) -> String { s.isEmpty ? "none" : s.sorted().joined(separator: ", ") }
        let labsA = Set(a.runs.map(\.lab)), labsB = Set(b.runs.map(\.lab))
        if labsA != labsB { notes.append("\(tag): runs of different labs (\(list(labsA)) against \(list(labsB))): metrics with the same name may not measure the same thing") }
        let filesA = Set(a.runs.map(\.file)), filesB = Set(b.runs.map(\.file))
        if labsA == labsB, filesA != filesB { notes.append("\(tag): different topology files (\(list(filesA)) against \(list(filesB)))") }
        let kernelsA = Set(a.runs.flatMap { $0.hosts.map { "\($0.key) \($0.value.kernel)" } }), kernelsB = Set(b.runs.flatMap { $0.hosts.map { "\($0.key) \($0.value.kernel)" } })
        if kernelsA != kernelsB { notes.append("\(tag): kernels differ (\(list(kernelsA.subtracting(kernelsB))) against \(list(kernelsB.subtracting(kernelsA))))") }
        // Settings per node and kind: `client congestion control: cubic against reno`.
        func settings(_ runs: [RunResults]) -> [String: Set<String>] {
            var out: [String: Set<String>] = [:]
            for r in runs {
                for s in r.settings ?? [] {
                    out["\(s.node) congestion control", default: []].insert(s.congestionControl ?? "-")
                    out["\(s.node) MPTCP scheduler", default: []].insert(s.scheduler ?? "-")
                    out["\(s.node) path manager", default: []].insert(s.pathManager ?? "-")
                }
            }
            return out
        }
        let sa = settings(a.runs), sb = settings(b.runs)
        let changed = Set(sa.keys).union(sb.keys).sorted().filter { sa[$0] != sb[$0] }
        if !changed.isEmpty {
            notes.append("\(tag): settings differ: " + changed.prefix(8).map { "\($0) \(list(sa[$0] ?? [])) against \(list(sb[$0] ?? []))" }.joined(separator: "; ")
                         + (changed.count > 8 ? "; and \(changed.count - 8) more" : ""))
        }
        // Profiles as the files set them: `profile slow: rate 6mbit against rate 12mbit`.
        func profiles(_ runs: [RunResults]) -> [String: Set<String>] {
            var out: [String: Set<String>] = [:]
            for r in runs { for (name, text) in r.profiles ?? [:] { out[name, default: []].insert(text) } }
            return out
        }
        let pa = profiles(a.runs), pb = profiles(b.runs)
        let changedProfiles = Set(pa.keys).union(pb.keys).sorted().filter { pa[$0] != pb[$0] }
        if !changedProfiles.isEmpty, !(a.runs.allSatisfy { $0.profiles == nil } || b.runs.allSatisfy { $0.profiles == nil }) {
            notes.append("\(tag): profiles differ: " + changedProfiles.prefix(8).map { "\($0): \(list(pa[$0] ?? [])) against \(list(pb[$0] ?? []))" }.joined(separator: "; ")
                         + (changedProfiles.count > 8 ? "; and \(changedProfiles.count - 8) more" : ""))
        }
        func queues(_ runs: [RunResults]) -> Set<String> {
            Set(runs.flatMap { ($0.queues ?? []).map { q in
                "\(q.link) \(q.end) \(q.profile): \(q.packets) packets" + (q.milliseconds.map { String(format: " (%.1f ms at the rate)", $0) } ?? "") + " (\(q.rule))\(q.during.map { " during \($0)" } ?? "")"
            } })
        }
        let qa = queues(a.runs), qb = queues(b.runs)
        if qa != qb { notes.append("\(tag): queues differ (\(list(qa.subtracting(qb))) against \(list(qb.subtracting(qa))))") }
        let seedsA = Set(a.runs.compactMap(\.seed)), seedsB = Set(b.runs.compactMap(\.seed))
        if seedsA != seedsB, !(seedsA.isEmpty && seedsB.isEmpty) { notes.append("\(tag): schedule seeds differ") }
        let suspectA = a.runs.filter { $0.health?.verdict == "suspect" }.count, suspectB = b.runs.filter { $0.health?.verdict == "suspect" }.count
        if suspectA + suspectB > 0 {
            notes.append("\(tag): health SUSPECT in \(suspectA) of \(a.runs.count) runs of \(a.name) and \(suspectB) of \(b.runs.count) of \(b.name) (a host kept busy): their figures may be the machine's, not the lab's")
        }
        return notes
    }

    /// The comparison as a table per other set.
    public static func comparisonText(_ c: Comparison) -> String {
        var out = "A: \(c.baseline) (\(c.sets[c.baseline] ?? 0) runs)\n"
        let letters = "BCDEFGHIJKLMNOPQRSTUVWXYZ".map(String.init)
        for (i, name) in c.order.dropFirst().enumerated() { out += "\(i < letters.count ? letters[i] : "#\(i + 2)"): \(name) (\(c.sets[name] ?? 0) runs)\n" }
        if !c.notes.isEmpty { out += c.notes.map { "note: \($0)" }.joined(separator: "\n") + "\n" }
        for (i, name) in c.order.dropFirst().enumerated() {
            let letter = i < letters.count ? letters[i] : "#\(i + 2)"
            func cell(_ a: Aggregate?) -> String {
                guard let a, let m = a.mean else { return "-" }
                return "\(f(m))" + (a.ciLow.map { " [\(f($0)), \(f(a.ciHigh!))]" } ?? "") + " n=\(a.n)"
            }
            let rows = (c.against[name] ?? []).map { d -> [String] in
                let diff = d.welch.map { "\(f($0.difference)) [\(f($0.low)), \(f($0.high))]" } ?? "-"
                let missing = [d.baseline?.notRecovered, d.other?.notRecovered]
                return [d.metric, cell(d.baseline), cell(d.other), diff, d.percent.map { String(format: "%+.1f %%", $0) } ?? "-",
                        d.welch.map { String(format: "%.3g", $0.p) } ?? "-", d.verdict,
                        missing.allSatisfy({ $0 == nil }) ? "" : "\(missing[0] ?? 0) / \(missing[1] ?? 0)"]
            }
            out += "\n\(letter) against A:\n" + Render.table(["metric", "A mean [95 % CI]", "\(letter) mean [95 % CI]", "\(letter) - A [95 % CI]", "\(letter) vs A", "p", "verdict", "not recovered (A / \(letter))"], rows) + "\n"
        }
        out += "\n\(c.method); `differs` where p < 0.05, `within noise` where the interval of the difference holds 0. Values are per-run (a fault repeated within a run is averaged first).\n"
        return safeText(out)
    }

    /// comparison.csv: one row per other set and metric.
    public static func comparisonCSV(_ c: Comparison) -> String {
        var out = "baseline,other,metric,baseline_n,baseline_mean,baseline_ci95_low,baseline_ci95_high,baseline_not_recovered,other_n,other_mean,other_ci95_low,other_ci95_high,other_not_recovered,difference,difference_ci95_low,difference_ci95_high,percent,welch_t,welch_df,p,verdict\r\n"
        for name in c.order.dropFirst() {
            for d in c.against[name] ?? [] {
                let a = d.baseline, b = d.other, w = d.welch
                let t: Double? = w?.t ?? nil
                let names: [String] = [Render.csvField(c.baseline), Render.csvField(name), Render.csvField(d.metric), "\(a?.n ?? 0)"]
                let sideA: [String] = [a?.mean, a?.ciLow, a?.ciHigh].map(Render.csvNumber) + ["\(a?.notRecovered ?? 0)", "\(b?.n ?? 0)"]
                let sideB: [String] = [b?.mean, b?.ciLow, b?.ciHigh].map(Render.csvNumber) + ["\(b?.notRecovered ?? 0)"]
                let test: [String] = [w?.difference, w?.low, w?.high, d.percent, t, w?.degreesOfFreedom, w?.p].map(Render.csvNumber)
                out += (names + sideA + sideB + test + [Render.csvField(d.verdict)]).joined(separator: ",") + "\r\n"
            }
        }
        return out
    }

    /// Two sets of runs side by side (kept for callers of one pair).
    public static func comparison(_ a: [RunResults], _ b: [RunResults], names: (String, String)) -> String {
        comparisonText(compare([(names.0, a), (names.1, b)]))
    }

    /// How well the schedule kept its times: started (the controller began the change) and
    /// applied (every host had made it) against planned, in milliseconds, over every event and
    /// revert of the runs.
    public static func timing(_ runs: [RunResults]) -> String {
        var started: [Double] = [], applied: [Double] = []
        for r in runs {
            for e in r.events {
                started.append((e.actual - e.planned) * 1000)
                applied.append((e.applied - e.planned) * 1000)
                if let p = e.revertPlanned, let a = e.revertActual { started.append((a - p) * 1000) }
            }
        }
        guard !started.isEmpty else { return "" }
        /// The nearest-rank percentile.
        func p(_ xs: [Double], _ q: Double) -> Double {
            let s = xs.sorted()
            return s[min(s.count - 1, max(0, Int((q / 100 * Double(s.count)).rounded(.up)) - 1))]
        }
        return "\nschedule timing, ms after the planned time (\(started.count) changes, \(applied.count) injections):\n"
            + Render.table(["", "p50", "p99", "max"], [
                ["started (injections and reverts)", f(p(started, 50)), f(p(started, 99)), f(started.max()!)],
                ["applied on every host (injections)", f(p(applied, 50)), f(p(applied, 99)), f(applied.max()!)],
            ]) + "\n"
    }

    static func f(_ x: Double) -> String { abs(x) >= 100 ? String(format: "%.1f", x) : String(format: "%.2f", x) }

    /// The runs of a directory: its results.json, or those of its repetitions (rep-1, rep-2, ...).
    public static func load(_ dir: String) throws -> [RunResults] { try loadRepetitions(dir).runs }

    /// The repetitions of a directory (`rep-1`, `rep-2`, ..., in their order), and what was left
    /// out: a repetition that ended early is no draw of the same experiment (it is said, and its
    /// own report stays in its directory).
    public static func loadRepetitions(_ dir: String) throws -> (runs: [RunResults], names: [String], leftOut: [String]) {
        if FileManager.default.fileExists(atPath: "\(dir)/results.json") {
            let r = try RunReport.read(dir)
            return ([r], [(dir as NSString).lastPathComponent], [])
        }
        var odd: [String] = []
        let reps = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .compactMap { name -> (Int, String)? in
                guard name.hasPrefix("rep-") else { return nil }
                // rep-K with K from 1 to 1000 (as `run --repeat` writes them), a real directory.
                var st = stat()
                guard let k = Int(name.dropFirst(4)), (1...1000).contains(k), String(k) == name.dropFirst(4) else { odd.append(name); return nil }
                guard lstat("\(dir)/\(name)", &st) == 0, (st.st_mode & S_IFMT) == S_IFDIR else { odd.append(name); return nil }
                return (k, name)
            }
            .sorted { $0.0 < $1.0 }.map(\.1)
        guard !reps.isEmpty else {
            if FileManager.default.fileExists(atPath: "\(dir)/study.json") {
                throw ReportError("\(dir) is a study's directory: its report is \(dir)/study.txt (with study.csv, comparison.txt and throughput.svg)",
                                  fix: "`pathbed report \(dir)/variant-K` renders one variant's runs again; `pathbed report \(dir)/variant-1 \(dir)/variant-2` compares two; `pathbed study FILE --out \(dir)` writes the study's report again")
            }
            throw ReportError("\(dir) holds neither results.json nor repetitions (rep-1, rep-2, ...)", fix: "give a directory that `pathbed run` wrote")
        }
        var runs: [RunResults] = [], names: [String] = [], leftOut: [String] = []
        for name in odd.sorted().prefix(5) {
            leftOut.append("\(dir)/\(safeText(String(name.prefix(60)), singleLine: true)) is no repetition `pathbed run --repeat` wrote (rep-1 to rep-1000, a directory, not a link): left out")
        }
        for name in reps {
            let r = try RunReport.read("\(dir)/\(name)")
            if let why = r.endedEarly { leftOut.append("\(dir)/\(name) ended early (\(safeText(String(why.prefix(200)), singleLine: true))): left out of the figures across runs"); continue }
            runs.append(r); names.append(name)
        }
        guard !runs.isEmpty else { throw ReportError("every repetition in \(dir) ended early: there is nothing to put together", fix: "run it again") }
        // Repetitions are draws of one lab: runs of several are refused, not averaged.
        let labs = Set(runs.map(\.lab))
        if labs.count > 1 {
            throw ReportError("the repetitions in \(dir) are runs of different labs (\(labs.sorted().prefix(4).map { safeText($0, singleLine: true) }.joined(separator: ", "))): their figures are no draws of one experiment",
                              fix: "put each lab's runs in a directory of their own, and compare them with `pathbed report A B`")
        }
        return (runs, names, leftOut)
    }
}
