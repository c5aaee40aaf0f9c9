import Foundation

/// What `run --repeat N` and `report A B ...` write beside their tables: a plot of each
/// workload's throughput across the runs (mean line, the runs' spread as a band), and the
/// runs' series in one tidy file.
extension RunStatistics {
    /// The grid the runs' lines are put on, in seconds: 0.5, or wider for a run so long that
    /// 20,000 points would not cover it.
    static func acrossStep(_ seconds: Double) -> Double { max(0.5, seconds / 20_000) }

    /// One line per set and throughput series: at each grid time the mean over the runs of the
    /// 1 s moving mean, and the lowest and highest run as the band. Nil without throughput.
    public static func acrossRunsPlot(_ sets: [(name: String, runs: [RunResults])], title: String) -> String? {
        var lines: [Render.Line] = []
        var marks: [Mark] = []
        var end = 0.0
        for (setIndex, set) in sets.enumerated() {
            guard let first = set.runs.first else { continue }
            end = max(end, set.runs.map(\.durationSeconds).max() ?? 0)
            // Each set's faults as planned (its runs play the same schedule); a window of another
            // set's own (a study that varies the faults) is lettered.
            for e in first.events {
                let m = Mark(label: e.label, start: e.planned, end: e.revertPlanned ?? first.durationSeconds)
                if marks.contains(where: { $0.start == m.start && $0.end == m.end && $0.label.hasSuffix(m.label) }) { continue }
                marks.append(setIndex == 0 ? m : Mark(label: "\(String(UnicodeScalar(UInt8(65 + min(setIndex, 25))))): \(m.label)", start: m.start, end: m.end))
            }
            var names: [String] = []
            for r in set.runs {
                for w in r.workloads { for s in w.series where s.quantity == .throughput && !names.contains(s.name) { names.append(s.name) } }
            }
            for name in names {
                let step = acrossStep(set.runs.map(\.durationSeconds).max() ?? 0)
                let grids = set.runs.compactMap { r -> [Double?]? in
                    guard let s = r.workloads.flatMap(\.series).first(where: { $0.name == name && $0.quantity == .throughput }) else { return nil }
                    return s.smoothed(window: Recovery.smoothingSeconds).nearestOnGrid(step: step, end: r.durationSeconds)
                }
                let n = grids.map(\.count).max() ?? 0
                var mean = Series(name: name, unit: "Mbit/s", quantity: .throughput)
                var low: [Double] = [], high: [Double] = []
                for i in 0..<n {
                    let v = grids.compactMap { i < $0.count ? $0[i] : nil }
                    guard !v.isEmpty else { continue }
                    mean.times.append(Double(i) * step); mean.values.append(v.reduce(0, +) / Double(v.count))
                    low.append(v.min()!); high.append(v.max()!)
                }
                guard !mean.isEmpty else { continue }
                // Sets by letter (A, B, ...: comparison.txt names them), so the legend keeps the workload.
                let letter = setIndex < 26 ? String(UnicodeScalar(UInt8(65 + setIndex))) : "#\(setIndex + 1)"
                // One throughput series per set (a study's variants): the legend names the set.
                // A set named by its directory is shown by the directory's last name.
                let setName = set.name.contains("/") ? (set.name as NSString).lastPathComponent : set.name
                let legend = sets.count > 1 ? (names.count == 1 ? "\(letter): \(setName)" : "\(letter): \(name)") : name
                lines.append(Render.Line(mean, color: lines.count, style: .bold, legend: "\(legend) (n=\(grids.count))", band: (low, high)))
            }
        }
        guard !lines.isEmpty else { return nil }
        return Render.svg(title: title, unit: "Mbit/s", lines: lines, marks: marks, end: end,
                          note: "line: mean over the runs of the 1 s moving mean; band: lowest to highest run")
    }

    /// Every run's series in long form, `run` numbering the repetitions (or naming the set's
    /// directory), `variant` naming the set.
    public static func tidy(_ sets: [(name: String, runs: [RunResults])]) -> String {
        var out = Render.tidyHeader
        for set in sets {
            for (i, r) in set.runs.enumerated() { out += RunReport.tidy(r, run: "\(set.name)#\(i + 1)", variant: set.name) }
        }
        return out
    }

    /// The files of a set of repetitions: summary.txt, aggregates.json and .csv, tidy.csv,
    /// throughput.svg. Returns the table.
    @discardableResult
    public static func writeRepetitions(_ runs: [RunResults], to dir: String, names: [String]? = nil) throws -> String {
        let table = table(runs)
        try table.write(toFile: "\(dir)/summary.txt", atomically: true, encoding: .utf8)
        try aggregatesJSON(runs).write(to: URL(fileURLWithPath: "\(dir)/aggregates.json"), options: .atomic)
        try aggregatesCSV(runs).write(toFile: "\(dir)/aggregates.csv", atomically: true, encoding: .utf8)
        let set = [(name: runs.first?.lab ?? "runs", runs: runs)]
        var tidy = Render.tidyHeader
        for (i, r) in runs.enumerated() { tidy += RunReport.tidy(r, run: names.flatMap { i < $0.count ? $0[i] : nil } ?? "rep-\(i + 1)", variant: set[0].name) }
        try tidy.write(toFile: "\(dir)/tidy.csv", atomically: true, encoding: .utf8)
        if let svg = acrossRunsPlot(set, title: "\(set[0].name): throughput across \(runs.count) runs") {
            try svg.write(toFile: "\(dir)/throughput.svg", atomically: true, encoding: .utf8)
        }
        return table
    }

    /// The files of a comparison: comparison.txt, .json, .csv, tidy.csv, throughput.svg.
    @discardableResult
    public static func writeComparison(_ sets: [(name: String, runs: [RunResults])], to dir: String) throws -> String {
        let c = compare(sets)
        let text = comparisonText(c)
        try text.write(toFile: "\(dir)/comparison.txt", atomically: true, encoding: .utf8)
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]
        try e.encode(c).write(to: URL(fileURLWithPath: "\(dir)/comparison.json"), options: .atomic)
        try comparisonCSV(c).write(toFile: "\(dir)/comparison.csv", atomically: true, encoding: .utf8)
        try tidy(sets).write(toFile: "\(dir)/tidy.csv", atomically: true, encoding: .utf8)
        if let svg = acrossRunsPlot(sets, title: "throughput across runs: " + sets.indices.map { $0 < 26 ? String(UnicodeScalar(UInt8(65 + $0))) : "#\($0 + 1)" }.joined(separator: ", ") + " (comparison.txt names them)") {
            try svg.write(toFile: "\(dir)/throughput.svg", atomically: true, encoding: .utf8)
        }
        return text
    }
}

extension RunStatistics {
    /// A study's figures: per metric, each variant's n, mean with its 95 % interval, sd, and
    /// its change against the first variant (with Welch's verdict); as text and as CSV.
    public static func studyTable(study: String, _ sets: [(name: String, runs: [RunResults])]) -> (text: String, csv: String) {
        let aggregates = sets.map { ($0.name, Dictionary(RunStatistics.aggregates($0.runs).map { ($0.metric, $0) }, uniquingKeysWith: { a, _ in a })) }
        var metrics: [String] = []
        for s in sets { for a in RunStatistics.aggregates(s.runs) where !metrics.contains(a.metric) { metrics.append(a.metric) } }
        var rows: [[String]] = []
        var csv = "metric,variant,n,mean,sd,ci95_low,ci95_high,not_recovered,percent_vs_first,p_vs_first,verdict_vs_first\r\n"
        let baseline = aggregates.first?.1 ?? [:]
        for m in metrics {
            for (name, agg) in aggregates {
                guard let a = agg[m] else { continue }
                let b = baseline[m]
                var percent: Double?, welch: Inference.Welch?, verdict = ""
                if name != aggregates.first?.0, let b {
                    if let x = b.mean, let y = a.mean, x != 0, ((y / x - 1) * 100).isFinite { percent = (y / x - 1) * 100 }
                    welch = Inference.welch(b.values, a.values)
                    verdict = welch.map(RunStatistics.verdict) ?? (a.n < 2 || b.n < 2 ? "not judged (n < 2)" : "not judged (figures too large or too small to test)")
                }
                rows.append([m, name, "\(a.n)", a.mean.map(f) ?? "-", a.ciLow.map { "\(f($0)) to \(f(a.ciHigh!))" } ?? "-", a.standardDeviation.map(f) ?? "-",
                             a.notRecovered.map(String.init) ?? "", percent.map { String(format: "%+.1f %%", $0) } ?? "", welch.map { String(format: "%.3g", $0.p) } ?? "", verdict])
                csv += ([Render.csvField(m), Render.csvField(name), "\(a.n)"] + [a.mean, a.standardDeviation, a.ciLow, a.ciHigh].map(Render.csvNumber)
                        + ["\(a.notRecovered ?? 0)", Render.csvNumber(percent), Render.csvNumber(welch?.p), Render.csvField(verdict)]).joined(separator: ",") + "\r\n"
            }
        }
        var text = "study \(study): \(sets.count) variants, \(sets.map(\.runs.count).reduce(0, +)) runs\n"
        for (i, s) in sets.enumerated() {
            // A run whose host kept busy is said beside its variant, and above the table.
            let suspect = s.runs.filter { $0.health?.verdict == "suspect" }.count
            text += "  \(i + 1). \(s.name) (\(s.runs.count) runs\(suspect > 0 ? "; health SUSPECT in \(suspect)" : ""))\n"
        }
        let suspects = sets.enumerated().compactMap { i, s -> String? in
            let n = s.runs.filter { $0.health?.verdict == "suspect" }.count
            return n > 0 ? "\(i + 1). \(s.name): \(n) of \(s.runs.count)" : nil
        }
        if !suspects.isEmpty {
            text += "\nWARNING: runs with health SUSPECT (a host's CPUs saturated or stolen from: their figures may be the machine's, not the lab's; each run's summary.txt says why): "
                + suspects.joined(separator: "; ") + ". Run those variants again on a quieter machine before reading their differences.\n"
        }
        text += "\n" + Render.table(["metric", "variant", "n", "mean", "95 % CI of the mean", "sd", "not recovered", "vs first", "p", "verdict"], rows) + "\n"
        text += "\nCI: \(Inference.method). Against the first variant: \(Inference.comparisonMethod). comparison.txt has each variant against the first in full.\n"
        return (safeText(text), csv)
    }
}
