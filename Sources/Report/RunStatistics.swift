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
            for (k, v) in (w.pathUse ?? [:]).sorted(by: { $0.key < $1.key }) { out.append(("\(w.name) path use \(k) %", v * 100)) }
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
        case .transferTime, .transferGoodput, .pluginMetric:
            guard let open = s.name.lastIndex(of: "("), s.name.hasSuffix(")") else { return s.unit }
            return String(s.name[s.name.index(after: open)..<s.name.index(before: s.name.endIndex)])
        }
    }

    /// Metric → values across runs, in first-seen order.
    static func pooled(_ runs: [RunResults]) -> [(String, [Double])] {
        var order: [String] = []
        var values: [String: [Double]] = [:]
        for r in runs {
            for (k, v) in figures(r) where v.isFinite {
                if values[k] == nil { order.append(k) }
                values[k, default: []].append(v)
            }
        }
        return order.map { ($0, values[$0]!) }
    }

    /// The table of `--repeat N`.
    public static func table(_ runs: [RunResults]) -> String {
        let rows = pooled(runs).map { k, v -> [String] in
            let s = Summary(v)!
            return [k, "\(v.count)", f(s.mean), f(s.median), f(s.standardDeviation), f(v.min()!), f(v.max()!)]
        }
        var out = "\(runs.count) runs of lab \(runs.first?.lab ?? "?")\n\n"
        out += Render.table(["metric", "n", "mean", "median", "sd", "min", "max"], rows) + "\n"
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
        if faults > 0 { out += "\n\(faults) fault impacts did not recover before the run (or the next fault) ended: left out of the recovery rows.\n" }
        // Names and texts come from results files: made safe for a terminal, as a summary is.
        return safeText(out)
    }

    /// Two sets of runs side by side: mean ± sd of each, and B against A.
    public static func comparison(_ a: [RunResults], _ b: [RunResults], names: (String, String)) -> String {
        let pa = Dictionary(pooled(a), uniquingKeysWith: { x, _ in x }), pb = pooled(b)
        var keys = pooled(a).map(\.0)
        for (k, _) in pb where !keys.contains(k) { keys.append(k) }
        let pbd = Dictionary(pb, uniquingKeysWith: { x, _ in x })
        let rows = keys.map { k -> [String] in
            let sa = pa[k].flatMap(Summary.init), sb = pbd[k].flatMap(Summary.init)
            func cell(_ s: Summary?) -> String { s.map { "\(f($0.mean)) ± \(f($0.standardDeviation)) (n=\($0.count))" } ?? "-" }
            let ratio: String
            if let x = sa?.mean, let y = sb?.mean, x != 0 { ratio = String(format: "%+.1f %%", (y / x - 1) * 100) } else { ratio = "-" }
            return [k, cell(sa), cell(sb), ratio]
        }
        // What differs between the two sets besides the figures, said first.
        var notes: [String] = []
        let labsA = Set(a.map(\.lab)), labsB = Set(b.map(\.lab))
        if labsA != labsB { notes.append("A and B are runs of different labs (\(labsA.sorted().joined(separator: ", ")) against \(labsB.sorted().joined(separator: ", "))): metrics with the same name may not measure the same thing") }
        let filesA = Set(a.map(\.file)), filesB = Set(b.map(\.file))
        if labsA == labsB, filesA != filesB { notes.append("A and B come from different topology files (\(filesA.sorted().joined(separator: ", ")) against \(filesB.sorted().joined(separator: ", ")))") }
        let kernelsA = Set(a.flatMap { $0.hosts.values.map(\.kernel) }), kernelsB = Set(b.flatMap { $0.hosts.values.map(\.kernel) })
        if kernelsA != kernelsB { notes.append("A ran on Linux \(kernelsA.sorted().joined(separator: ", ")), B on Linux \(kernelsB.sorted().joined(separator: ", "))") }
        let onlyA = Set(pa.keys).subtracting(pbd.keys).count, onlyB = Set(pbd.keys).subtracting(pa.keys).count
        if onlyA + onlyB > 0 { notes.append("\(onlyA) metrics only in A, \(onlyB) only in B (shown with -)") }
        return safeText("A: \(names.0) (\(a.count) runs)\nB: \(names.1) (\(b.count) runs)\n"
            + (notes.isEmpty ? "" : notes.map { "note: \($0)" }.joined(separator: "\n") + "\n") + "\n"
            + Render.table(["metric", "A mean ± sd", "B mean ± sd", "B vs A"], rows) + "\n")
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
    public static func load(_ dir: String) throws -> [RunResults] {
        if FileManager.default.fileExists(atPath: "\(dir)/results.json") { return [try RunReport.read(dir)] }
        let reps = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? [])
            .filter { $0.hasPrefix("rep-") }.sorted { (Int($0.dropFirst(4)) ?? 0) < (Int($1.dropFirst(4)) ?? 0) }
        guard !reps.isEmpty else {
            throw ReportError("\(dir) holds neither results.json nor repetitions (rep-1, rep-2, ...)", fix: "give a directory that `pathbed run` wrote")
        }
        return try reps.map { try RunReport.read("\(dir)/\($0)") }
    }
}
