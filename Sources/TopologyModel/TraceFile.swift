import Foundation

/// A trace for `fault: trace`: CSV rows `time,rate[,delay[,loss]]` (seconds from the fault's
/// start, then units as in profiles: `12mbit`, `40ms`, `1%`). `#` starts a comment; a first
/// row that names the columns is skipped. Read by validation, so that a broken trace is an error
/// with its own file:line:column before anything runs.
enum TraceFile {
    static let maximumBytes = 16 << 20
    static let maximumRows = 100_000

    /// The rows, or nil after reporting every problem (each at the trace's own line and column;
    /// a file that cannot be read, at `at`, where the topology names it).
    static func load(_ file: String, relativeTo topology: String, at: SourceLocation, reader: YAMLReader) -> [TraceRow]? {
        let base = (topology as NSString).deletingLastPathComponent
        let path = file.hasPrefix("/") ? file : (base as NSString).appendingPathComponent(file)
        var st = stat()
        let why: String?
        if stat(path, &st) != 0 { why = String(cString: strerror(errno)) }
        else if (st.st_mode & S_IFMT) == S_IFDIR { why = "it is a directory" }
        else if (st.st_mode & S_IFMT) != S_IFREG { why = "it is not a regular file" }
        else if st.st_size > maximumBytes { why = "it is larger than \(maximumBytes >> 20) MB" }
        else { why = nil }
        guard why == nil, let data = FileManager.default.contents(atPath: path), let text = String(data: data, encoding: .utf8) else {
            reader.error(at: at, "with.file", "cannot read the trace \(path): \(why ?? "it is not UTF-8 text") (a UTF-8 text file of at most \(maximumBytes >> 20) MB)",
                         hint: "check the path; it is relative to the topology file")
            return nil
        }
        var rows: [TraceRow] = []
        var ok = true
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            if line.isEmpty { continue }
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            /// The column (from 1) where cell `i` of this line starts.
            func column(_ i: Int) -> Int {
                var commas = 0, col = 1
                for ch in raw { if commas == i { break }; if ch == "," { commas += 1 }; col += 1 }
                return col
            }
            func fail(_ cell: Int, _ why: String) {
                reader.error(at: SourceLocation(file: path, line: n + 1, column: column(cell)), "trace", why,
                             hint: "rows are time,rate[,delay[,loss]], e.g. `2.5, 12mbit, 40ms, 1%`")
                ok = false
            }
            if rows.isEmpty, ok, Double(cells[0]) == nil, cells[0].lowercased().hasPrefix("t") { continue }  // a header
            guard cells.count >= 2, cells.count <= 4 else { fail(0, "\(cells.count) columns; a row has 2 to 4"); continue }
            guard let time = Double(cells[0]), time.isFinite, time >= 0, time <= 1e9 else { fail(0, "'\(cells[0])' is not a time in seconds"); continue }
            if let prev = rows.last, time <= prev.time { fail(0, "times must increase (\(trim(time)) after \(trim(prev.time)))"); continue }
            if let prev = rows.last, time - prev.time < 0.05 { fail(0, "rows \(trim(prev.time)) s and \(trim(time)) s are closer than 50 ms: at most 20 changes a second"); continue }
            guard case let .success(rate) = Bitrate.parse(cells[1]) else { fail(1, "'\(cells[1])' is not a rate"); continue }
            var row = TraceRow(time: time, rate: rate)
            if cells.count > 2, !cells[2].isEmpty {
                guard case let .success(d) = Duration.parse(cells[2]), d.seconds <= 60 else { fail(2, "'\(cells[2])' is not a delay of at most 60 s"); continue }
                row.delay = d
            }
            if cells.count > 3, !cells[3].isEmpty {
                guard case let .success(p) = Percent.parse(cells[3]) else { fail(3, "'\(cells[3])' is not a loss percentage"); continue }
                row.loss = p
            }
            rows.append(row)
            if rows.count > maximumRows { fail(0, "more than \(maximumRows) rows"); return nil }
        }
        guard ok else { return nil }
        guard let first = rows.first else {
            reader.error(at: at, "with.file", "the trace \(path) has no rows", hint: "write rows of time,rate[,delay[,loss]]")
            return nil
        }
        if first.time != 0 { rows.insert(TraceRow(time: 0, rate: first.rate, delay: first.delay, loss: first.loss), at: 0) }
        return rows
    }
}
