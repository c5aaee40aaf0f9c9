/// Where something stands in a topology file (1-based line and column).
public struct SourceLocation: Hashable, Sendable, Codable, CustomStringConvertible {
    public var file: String
    public var line: Int
    public var column: Int
    public init(file: String, line: Int, column: Int) { self.file = file; self.line = line; self.column = column }
    public var description: String { line > 0 ? "\(file):\(line):\(column)" : file }
}

/// One problem found in a topology file: where, which key, what is wrong and what to do.
public struct Diagnostic: Error, Hashable, Sendable, CustomStringConvertible {
    public var location: SourceLocation
    /// The offending key as a path, e.g. `links[2].endpoints[0]`; empty for the whole file.
    public var path: String
    public var message: String
    /// What the user should do about it.
    public var hint: String?
    /// An error stops the file; a warning (a lab wired so that it cannot do what it says) is
    /// said and the lab still comes up, unless `--strict`.
    public var severity: Severity = .error

    public enum Severity: String, Sendable, Hashable { case error, warning }

    public init(_ location: SourceLocation, path: String, _ message: String, hint: String? = nil, severity: Severity = .error) {
        self.location = location; self.path = path; self.message = message; self.hint = hint; self.severity = severity
    }

    public var description: String {
        var s = "\(location): \(severity.rawValue): "
        if !path.isEmpty { s += "\(path): " }
        s += message
        if let hint { s += "\n    fix: \(hint)" }
        return s
    }
}

/// All problems found in one file. Thrown by `TopologyLoader` so that a user sees every error at once.
public struct TopologyErrors: Error, CustomStringConvertible, Sendable {
    public var diagnostics: [Diagnostic]
    public init(_ diagnostics: [Diagnostic]) { self.diagnostics = diagnostics }
    public var description: String {
        diagnostics.map(\.description).joined(separator: "\n")
            + "\n\(diagnostics.count) error\(diagnostics.count == 1 ? "" : "s")"
    }
}

/// Suggests the closest candidate to a misspelled name ("did you mean ...").
func closest(to word: String, in candidates: some Sequence<String>) -> String? {
    var best: (String, Int)?
    for c in candidates {
        let d = editDistance(word.lowercased(), c.lowercased())
        if d <= max(2, word.count / 3), d < (best?.1 ?? .max) { best = (c, d) }
    }
    return best?.0
}

func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var previous = Array(0...b.count)
    for i in 1...a.count {
        var current = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            current[j] = min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        previous = current
    }
    return previous[b.count]
}

func didYouMean(_ word: String, _ candidates: some Sequence<String>) -> String {
    if let c = closest(to: word, in: candidates) { return "did you mean '\(c)'?" }
    return ""
}
