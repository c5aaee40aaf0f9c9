import Foundation

/// A time window to shade on a plot (a fault), or an instant to mark (an event).
public struct Mark: Codable, Sendable, Equatable {
    public var label: String
    public var start: Double
    /// Nil: an instant.
    public var end: Double?
    /// An instant's kind: `opened` / `closed` (a subflow), or nil (another event).
    public var kind: String?
    public init(label: String, start: Double, end: Double? = nil, kind: String? = nil) { self.label = label; self.start = start; self.end = end; self.kind = kind }
}

public enum Render {
    public static let maximumCell = 200
    /// Series side by side on a common grid, as CSV (RFC 4180, as a strict reader takes it:
    /// `time_s,"NAME (UNIT)",...`). A cell holds the sample nearest its grid time within half a
    /// step, or nothing: a lost sample is an empty cell, never the value before it carried over.
    public static func csv(_ series: [Series], step: Double, end: Double) -> String {
        // At most `maximumRows` rows: a longer run's grid is widened to fit.
        let step = max(step, end / Double(maximumRows - 1))
        var out = "time_s" + series.map { "," + csvField("\($0.name) (\($0.unit))") }.joined() + "\r\n"
        let grids = series.map { $0.nearestOnGrid(step: step, end: end) }
        let n = grids.map(\.count).max() ?? 0
        for i in 0..<n {
            out += String(format: "%.3f", Double(i) * step)
            for g in grids { out += "," + (i < g.count ? g[i].map { String(format: "%.4f", $0) } ?? "" : "") }
            out += "\r\n"
        }
        return out
    }

    /// Long ("tidy") form, one row per sample, as pandas' `read_csv` and R's `read.csv` take it:
    /// `run,variant,series,quantity,unit,time_s,value`.
    public static let tidyHeader = "run,variant,series,quantity,unit,time_s,value\r\n"
    public static func tidy(_ series: [Series], run: String, variant: String) -> String {
        var out = ""
        let r = csvField(run), v = csvField(variant)
        for s in series {
            let prefix = "\(r),\(v),\(csvField(s.name)),\(s.quantity.rawValue),\(csvField(s.unit)),"
            for (t, x) in zip(s.times, s.values) where t.isFinite && x.isFinite {
                out += prefix + String(format: "%.3f", t) + "," + String(format: "%.6g", x) + "\r\n"
            }
        }
        return out
    }

    /// A text field of a CSV file: always quoted, quotes doubled, control characters (a newline
    /// in a name from a results file) replaced, so that every row is one line.
    public static func csvField(_ s: String) -> String {
        var clean = String(String.UnicodeScalarView(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7F ? " " : $0 }))
        // A spreadsheet takes text that starts with = + - @ as a formula (OWASP's CSV injection):
        // such text is kept, after a `'` (a minus sign before a digit stays: a number's).
        if let first = clean.first, "=+@".contains(first) || first == "-" && !(clean.dropFirst().first?.isNumber ?? false) { clean = "'" + clean }
        return "\"" + clean.replacingOccurrences(of: "\"", with: "\"\"") + "\""
    }

    /// A number of a CSV file; empty where there is none.
    public static func csvNumber(_ v: Double?) -> String {
        guard let v, v.isFinite else { return "" }
        return String(format: "%.6g", v)
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

    /// Red and pink last: the fault windows are shaded pink.
    /// About how wide a text is at 12 px in a sans-serif font (DejaVu Sans' advances: narrow
    /// letters and punctuation 0.32 em, capitals and m/w 0.78 em, the rest 0.6 em).
    static func textWidth(_ text: String) -> Double {
        text.reduce(0) { sum, c in
            let narrow: Set<Character> = ["i", "l", "j", "t", "f", "r", "I", ".", ",", ":", ";", "!", "|", "'", "(", ")", "[", "]", "/", " ", "1", "-"]
            let em: Double = narrow.contains(c) ? 0.32 : (c.isUppercase || c == "m" || c == "w" || c == "…") ? 0.78 : 0.6
            return sum + em * 12
        }
    }

    /// A legend that fits `width`: too long, it loses its middle, never its end (`(n=3)`, `1 s mean`).
    static func fitted(_ text: String, width: Double) -> String {
        guard textWidth(text) > width else { return text }
        let chars = Array(text)
        let tail = min(13, chars.count / 2)
        var head = max(0, chars.count - tail - 1)
        while head > 0, textWidth(String(chars[..<head]) + "…" + String(chars.suffix(tail))) > width { head -= 1 }
        return String(chars[..<head]) + "…" + String(chars.suffix(tail))
    }

    /// Series colours: no green and no red, the colours of subflows opened and closed.
    static let palette = ["#1f77b4", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf", "#7f7f7f"]

    static func escape(_ s: String) -> String {
        // Only what XML 1.0 allows (#x9 | #x20-#xD7FF | #xE000-#xFFFD | #x10000-): a NUL, another
        // control character or U+FFFE makes the file unreadable. DEL is legal but shown as `?` too.
        let s = String(String.UnicodeScalarView(s.unicodeScalars.map { c -> Unicode.Scalar in
            let v = c.value
            let legal = v == 0x9 || (0x20...0xD7FF).contains(v) && v != 0x7F || (0xE000...0xFFFD).contains(v) || v >= 0x10000
            return legal ? c : "?"
        }))
        return s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }

    /// A line plot over time: one line per series, fault windows shaded, events marked.
    public static func svg(title: String, unit: String, series: [Series], marks: [Mark], end: Double, width: Int = 900, height: Int = 420) -> String {
        svg(title: title, unit: unit, lines: series.enumerated().map { Line($0.element, color: $0.offset) }, marks: marks, end: end, width: width, height: height)
    }

    /// One line of a plot.
    public struct Line: Sendable {
        public enum Style: Sendable { case plain, faint, bold }
        public var series: Series
        public var color: Int
        public var style: Style
        /// The legend's words; nil: no legend entry (the faint raw samples under a mean).
        public var legend: String?
        /// A band around the line (the spread across repetitions), one low and high per sample.
        public var band: (low: [Double], high: [Double])?
        /// The line is broken where two samples are further apart than this (lost echoes).
        public var gap: Double?
        public init(_ series: Series, color: Int, style: Style = .plain, legend: String? = nil, band: (low: [Double], high: [Double])? = nil, gap: Double? = nil) {
            self.series = series; self.color = color; self.style = style; self.legend = legend ?? series.name; self.band = band; self.gap = gap
            if style == .faint && legend == nil { self.legend = nil }
        }
    }

    /// The legend's words for an instant mark's kind.
    static func markLegend(_ kind: String) -> String {
        switch kind {
        case "opened": return "subflow opened"
        case "closed": return "subflow closed"
        default: return "MPTCP event"
        }
    }

    public static func svg(title: String, unit: String, lines: [Line], marks: [Mark], end: Double, width: Int = 960, height: Int = 420, note: String? = nil) -> String {
        let left = 60.0, right = 260.0, top = 40.0, bottom = 50.0
        let w = Double(width) - left - right, h = Double(height) - top - bottom
        func highest(_ ls: [Line]) -> Double { ls.flatMap { $0.series.values + ($0.band?.high ?? []) }.filter(\.isFinite).max() ?? 1 }
        // The axis fits the lines drawn full; a faint sample's spike above them is cut at the top
        // (said in the legend), so that one 100 ms burst does not flatten every line.
        let solid = lines.filter { $0.style != .faint }
        let all = highest(lines), main = solid.isEmpty ? all : highest(solid)
        let clipped = all > main * 1.6
        // A few outliers of the lines themselves (an RTT of 2 s among 50 ms ones) are cut too:
        // the axis ends at twice their 95th percentile.
        let values = solid.flatMap(\.series.values).filter(\.isFinite).sorted()
        let p95 = values.isEmpty ? main : values[min(values.count - 1, Int(Double(values.count) * 0.95))]
        let outliers = p95 > 0 && main > 3 * p95
        let maxValue = max(outliers ? p95 * 2 : clipped ? main * 1.35 : all * 1.1, 1e-9)
        let yStep = niceStep(maxValue / 5), xStep = niceStep(max(end, 1) / 10)
        func x(_ t: Double) -> Double { left + t / max(end, 1e-9) * w }
        func y(_ v: Double) -> Double { top + h - min(max(v, 0), maxValue * 1.02) / maxValue * h }
        var s = """
            <svg xmlns="http://www.w3.org/2000/svg" width="\(width)" height="\(height)" font-family="sans-serif" font-size="12">
            <rect width="100%" height="100%" fill="white"/>
            <text x="\(left)" y="22" font-size="15">\(escape(title))</text>

            """
        // A window's label goes on the first row where it does not run into an earlier one.
        var rowEnds: [Double] = []
        var labels = ""  // drawn over the grid
        var ticks: [String: Set<Int>] = [:]  // instants by kind and pixel: hundreds of events stay marks
        var tickTitles: [String: [String]] = [:]
        for m in marks {
            if let e = m.end {
                s += "<rect x=\(q(x(m.start))) y=\(q(top)) width=\(q(max(1, x(e) - x(m.start)))) height=\(q(h)) fill=\"#f4c7c3\" opacity=\"0.6\"><title>\(escape(m.label))</title></rect>\n"
                // Inside the plot: a label that would run past its right edge ends there.
                let width = Double(m.label.count) * 6.6
                let lx = max(left + 3, min(x(m.start) + 3, left + w - width - 3))
                let row = rowEnds.firstIndex { $0 <= lx } ?? rowEnds.count
                if row == rowEnds.count { rowEnds.append(0) }
                rowEnds[row] = lx + width + 4
                labels += "<text x=\(q(lx)) y=\(q(top + 14 + Double(row) * 14)) fill=\"#a33\">\(escape(m.label))</text>\n"
            } else {
                let kind = m.kind ?? "event"
                // A time far outside the run (a results file from outside) is no pixel to convert.
                guard m.start.isFinite, m.start >= -end, m.start <= 2 * max(end, 1) else { continue }
                let px = Int(x(m.start).rounded())
                if ticks[kind, default: []].insert(px).inserted, tickTitles[kind, default: []].count < 200 { tickTitles[kind, default: []].append(m.label) }
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
        // Lines and bands stay inside the frame (a sample after the run's end, a spike cut at the top).
        s += "<clipPath id=\"frame\"><rect x=\(q(left)) y=\(q(top)) width=\(q(w)) height=\(q(h))/></clipPath>\n<g clip-path=\"url(#frame)\">\n"
        // Bands first, then faint lines, then the lines themselves.
        for line in lines {
            guard let band = line.band, band.low.count == line.series.times.count, band.high.count == line.series.times.count, !band.low.isEmpty else { continue }
            let pts = zip(line.series.times, band.high).map { "\(String(format: "%.1f", x($0.0))),\(String(format: "%.1f", y($0.1)))" }
                + zip(line.series.times, band.low).reversed().map { "\(String(format: "%.1f", x($0.0))),\(String(format: "%.1f", y($0.1)))" }
            s += "<polygon class=\"band\" fill=\"\(palette[line.color % palette.count])\" opacity=\"0.18\" stroke=\"none\" points=\"\(pts.joined(separator: " "))\"/>\n"
        }
        for line in lines.sorted(by: { ($0.style == .faint ? 0 : 1) < ($1.style == .faint ? 0 : 1) }) {
            let color = palette[line.color % palette.count]
            let (strokeWidth, opacity) = line.style == .faint ? ("1", "0.3") : line.style == .bold ? ("2.2", "1") : ("1.5", "1")
            // Pieces between gaps: a line is not drawn across lost samples.
            var pieces: [Series] = []
            var piece = Series(name: line.series.name, unit: line.series.unit, quantity: line.series.quantity)
            for (t, v) in zip(line.series.times, line.series.values) where t.isFinite && v.isFinite {
                if let gap = line.gap, let last = piece.times.last, t - last > gap { pieces.append(piece); piece.times = []; piece.values = [] }
                piece.times.append(t); piece.values.append(v)
            }
            pieces.append(piece)
            for p in pieces where !p.times.isEmpty {
                let points = decimated(p, x: x, budget: 4 * width).map { "\(String(format: "%.1f", x($0.0))),\(String(format: "%.1f", y($0.1)))" }.joined(separator: " ")
                let cls = line.style == .faint ? "raw" : "series"
                if p.times.count == 1 {
                    s += "<circle class=\"\(cls)\" cx=\(q(x(p.times[0]))) cy=\(q(y(p.values[0]))) r=\"1.8\" fill=\"\(color)\" opacity=\"\(opacity)\"/>\n"
                } else {
                    s += "<polyline class=\"\(cls)\" fill=\"none\" stroke=\"\(color)\" stroke-width=\"\(strokeWidth)\" opacity=\"\(opacity)\" points=\"\(points)\"/>\n"
                }
            }
        }
        s += "</g>\n"
        // Instants as ticks along the bottom edge, a colour per kind.
        let tickColors = ["opened": "#2ca02c", "closed": "#d62728"]
        for (kind, pixels) in ticks.sorted(by: { $0.key < $1.key }) {
            let color = tickColors[kind] ?? "#555"
            let offset = kind == "closed" ? 10.0 : 0
            s += "<g class=\"ticks\" stroke=\"\(color)\" stroke-width=\"1.5\"><title>\(escape(tickTitles[kind, default: []].joined(separator: "; ")))</title>"
            for px in pixels.sorted() { s += "<line x1=\"\(px)\" x2=\"\(px)\" y1=\(q(top + h - offset)) y2=\(q(top + h - offset - 9))/>" }
            s += "</g>\n"
        }
        // The legend, right of the plot: lines first, then the marks' kinds.
        var row = 0
        for line in lines {
            guard let legend = line.legend else { continue }
            let ly = top + 10 + Double(row) * 18
            let color = palette[line.color % palette.count]
            // A long legend loses its middle, not its end (`(n=3)`, `1 s mean`).
            let shown = fitted(legend, width: Double(width) - (left + w + 36) - 6)
            s += "<g class=\"legend\"><title>\(escape(legend))</title><line x1=\(q(left + w + 12)) x2=\(q(left + w + 32)) y1=\(q(ly)) y2=\(q(ly)) stroke=\"\(color)\" stroke-width=\"2\"/>"
            s += "<text x=\(q(left + w + 36)) y=\(q(ly + 4))>\(escape(shown))</text></g>\n"
            row += 1
        }
        for (kind, pixels) in ticks.sorted(by: { $0.key < $1.key }) {
            let ly = top + 10 + Double(row) * 18
            let count = marks.filter { $0.end == nil && ($0.kind ?? "event") == kind }.count
            s += "<g class=\"legend\"><line x1=\(q(left + w + 22)) x2=\(q(left + w + 22)) y1=\(q(ly - 5)) y2=\(q(ly + 5)) stroke=\"\(tickColors[kind] ?? "#555")\" stroke-width=\"2\"/>"
            s += "<text x=\(q(left + w + 36)) y=\(q(ly + 4))>\(escape(markLegend(kind))) (\(count) events)</text></g>\n"
            _ = pixels
            row += 1
        }
        if outliers {
            let ly = top + 10 + Double(row) * 18
            s += "<g class=\"legend\"><text x=\(q(left + w + 12)) y=\(q(ly + 4)) fill=\"#555\">\u{2191} above \(label(maxValue)): cut (max \(label(main)))</text></g>\n"
            row += 1
        }
        if lines.contains(where: { $0.style == .faint }) {
            let ly = top + 10 + Double(row) * 18
            s += "<g class=\"legend\"><line x1=\(q(left + w + 12)) x2=\(q(left + w + 32)) y1=\(q(ly)) y2=\(q(ly)) stroke=\"#999\" stroke-width=\"1\" opacity=\"0.5\"/>"
            s += "<text x=\(q(left + w + 36)) y=\(q(ly + 4)) fill=\"#555\">faint: every sample\(clipped ? " (cut at the top)" : "")</text></g>\n"
            row += 1
        }
        // A note under the legend, wrapped to its column.
        if let note {
            var lineText = "", wrapped: [String] = []
            for word in note.split(separator: " ") {
                if lineText.count + word.count + 1 > 40, !lineText.isEmpty { wrapped.append(lineText); lineText = "" }
                lineText += (lineText.isEmpty ? "" : " ") + word
            }
            if !lineText.isEmpty { wrapped.append(lineText) }
            for (i, text) in wrapped.prefix(8).enumerated() {
                s += "<text class=\"note\" x=\(q(left + w + 12)) y=\(q(top + 14 + Double(row) * 18 + Double(i) * 13)) font-size=\"10.5\" fill=\"#555\">\(escape(text))</text>\n"
            }
        }
        return s + "</svg>\n"
    }

    static func q(_ v: Double) -> String { "\"\(String(format: "%.1f", v))\"" }

    static func label(_ v: Double) -> String {
        guard v.isFinite, abs(v) < 1e15 else { return String(format: "%g", v) }
        return v == v.rounded() && abs(v) < 1e15 ? String(Int(v)) : String(format: "%.1f", v)
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
