import Foundation

/// A time window to shade on a plot (a fault), or an instant to mark (an event).
public struct Mark: Codable, Sendable, Equatable {
    public var label: String
    public var start: Double
    /// Nil: an instant.
    public var end: Double?
    public init(label: String, start: Double, end: Double? = nil) { self.label = label; self.start = start; self.end = end }
}

public enum Render {
    public static let maximumCell = 200
    /// Series side by side on a common grid, as CSV: `time_s,NAME (UNIT),...`; empty cells before a series starts.
    public static func csv(_ series: [Series], step: Double, end: Double) -> String {
        // At most `maximumRows` rows: a longer run's grid is widened to fit.
        let step = max(step, end / Double(maximumRows - 1))
        var out = "time_s," + series.map { "\(quote($0.name)) (\($0.unit))" }.joined(separator: ",") + "\n"
        let grids = series.map { $0.onGrid(step: step, end: end) }
        let n = grids.map(\.count).max() ?? 0
        for i in 0..<n {
            out += String(format: "%.3f", Double(i) * step)
            for g in grids { out += "," + (i < g.count ? g[i].map { String(format: "%.4f", $0) } ?? "" : "") }
            out += "\n"
        }
        return out
    }

    public static let maximumRows = 2_000_000

    /// Points of a series as a plot `width` points wide draws them: where many samples fall on one
    /// horizontal point, their lowest and highest (so that a spike stays), in time order.
    static func decimated(_ s: Series, x: (Double) -> Double, budget: Int) -> [(Double, Double)] {
        let points = Array(zip(s.times, s.values))
        guard points.count > budget else { return points }
        var out: [(Double, Double)] = []
        var bucket = -1.0
        var low: (Double, Double)?, high: (Double, Double)?
        func flush() {
            guard let l = low, let h = high else { return }
            if l.0 == h.0 { out.append(l) } else if l.0 < h.0 { out += [l, h] } else { out += [h, l] }
        }
        for p in points {
            let b = x(p.0).rounded(.down)
            if b != bucket { flush(); bucket = b; low = p; high = p; continue }
            if p.1 < low!.1 { low = p }
            if p.1 > high!.1 { high = p }
        }
        flush()
        return out
    }

    static func quote(_ s: String) -> String { s.contains(",") || s.contains("\"") ? "\"" + s.replacingOccurrences(of: "\"", with: "\"\"") + "\"" : s }

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#7f7f7f", "#bcbd22"]

    static func escape(_ s: String) -> String {
        // XML 1.0 has no place for control characters (a NUL makes the file unreadable).
        let s = String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 && $0 != "\t" || $0.value == 0x7F ? "?" : $0 }))
        return s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// A line plot over time: one line per series, fault windows shaded, events marked.
    public static func svg(title: String, unit: String, series: [Series], marks: [Mark], end: Double, width: Int = 900, height: Int = 420) -> String {
        let left = 60.0, right = 180.0, top = 40.0, bottom = 50.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        let maxValue = max(series.flatMap(\.values).max() ?? 1, 1e-9) * 1.1
        let yStep = niceStep(maxValue / 5), xStep = niceStep(max(end, 1) / 10)
        func x(_ t: Double) -> Double { left + t / max(end, 1e-9) * w }
        func y(_ v: Double) -> Double { top + h - v / maxValue * h }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="15">\(escape(title))</text>

            """
        // A window's label goes on the first row where it does not run into an earlier one.
        var rowEnds: [Double] = []
        var labels = ""  // drawn over the grid
        for m in marks {
            if let e = m.end {
                s += "<rect x=\(q(x(m.start))) y=\(q(top)) width=\(q(max(1, x(e) - x(m.start)))) height=\(q(h)) fill=\"#f4c7c3\" opacity=\"0.6\"><title>\(escape(m.label))</title></rect>\n"
                let lx = x(m.start) + 3, width = Double(m.label.count) * 6.6
                let row = rowEnds.firstIndex { $0 <= lx } ?? rowEnds.count
                if row == rowEnds.count { rowEnds.append(0) }
                rowEnds[row] = lx + width + 4
                labels += "<text x=\(q(lx)) y=\(q(top + 14 + Double(row) * 14)) fill=\"#a33\">\(escape(m.label))</text>\n"
            } else {
                s += "<line x1=\(q(x(m.start))) x2=\(q(x(m.start))) y1=\(q(top)) y2=\(q(top + h)) stroke=\"#888\" stroke-dasharray=\"3,3\"><title>\(escape(m.label))</title></line>\n"
            }
        }
        var v = 0.0
        while v <= maxValue {
            s += "<line x1=\(q(left)) x2=\(q(left + w)) y1=\(q(y(v))) y2=\(q(y(v))) stroke=\"#eee\"/>"
            s += "<text x=\(q(left - 6)) y=\(q(y(v) + 4)) text-anchor=\"end\">\(label(v))</text>\n"
            v += yStep
        }
        var t = 0.0
        while t <= end + 1e-9 {
            s += "<text x=\(q(x(t))) y=\(q(top + h + 18)) text-anchor=\"middle\">\(label(t))</text>\n"
            t += xStep
        }
        s += "<rect x=\(q(left)) y=\(q(top)) width=\(q(w)) height=\(q(h)) fill=\"none\" stroke=\"#333\"/>\n"
        s += labels
        s += "<text x=\(q(left + w / 2)) y=\(q(Double(height) - 10)) text-anchor=\"middle\">time (s)</text>\n"
        s += "<text x=\"14\" y=\(q(top + h / 2)) transform=\"rotate(-90 14 \(top + h / 2))\" text-anchor=\"middle\">\(escape(unit))</text>\n"
        for (i, line) in series.enumerated() {
            let color = palette[i % palette.count]
            let points = decimated(line, x: x, budget: 4 * width).map { "\(String(format: "%.1f", x($0.0))),\(String(format: "%.1f", y($0.1)))" }.joined(separator: " ")
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"1.5\" points=\"\(points)\"/>\n"
            let ly = top + 10 + Double(i) * 18
            s += "<line x1=\(q(left + w + 12)) x2=\(q(left + w + 32)) y1=\(q(ly)) y2=\(q(ly)) stroke=\"\(color)\" stroke-width=\"2\"/>"
            s += "<text x=\(q(left + w + 36)) y=\(q(ly + 4))>\(escape(line.name))</text>\n"
        }
        return s + "</svg>\n"
    }

    static func q(_ v: Double) -> String { "\"\(String(format: "%.1f", v))\"" }

    static func label(_ v: Double) -> String {
        guard v.isFinite, abs(v) < 1e15 else { return String(format: "%g", v) }
        return v == v.rounded() ? String(Int(v)) : String(format: "%.1f", v)
    }

    /// 1, 2 or 5 times a power of ten, near `raw`.
    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        let p = pow(10, floor(log10(raw)))
        for m in [1.0, 2.0, 5.0, 10.0] where raw <= m * p { return m * p }
        return 10 * p
    }

    /// A plain-text table, columns padded.
    public static func table(_ header: [String], _ rows: [[String]]) -> String {
        // A cell is at most `maximumCell` characters, so that one long name from a results
        // file cannot widen every row (a 5,000,000-character name made a 305 MB summary).
        let rows = rows.map { $0.map { $0.count > maximumCell ? String($0.prefix(maximumCell - 3)) + "..." : $0 } }
        let widths = header.indices.map { i in ([header[i]] + rows.map { i < $0.count ? $0[i] : "" }).map(\.count).max() ?? 0 }
        func line(_ cells: [String]) -> String {
            cells.enumerated().map { $0.element.padding(toLength: widths[$0.offset], withPad: " ", startingAt: 0) }.joined(separator: "  ")
        }
        return ([line(header)] + rows.map(line)).joined(separator: "\n")
    }
}
