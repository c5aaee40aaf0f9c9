import Foundation
import Yams

/// A study (`pathbed study FILE`): one base topology, the settings that vary (each by its path
/// in the file, with a list of values; the lists are crossed), and the runs per variant.
///
/// ```yaml
/// study: rates-and-schedulers
/// base: ../topologies/two-paths.yaml
/// repeat: 3
/// vary:
///   - { path: profiles.path.rate, values: [5mbit, 10mbit] }
///   - { path: nodes.client.mptcp.scheduler, values: [default, redundant] }
/// ```
public struct StudyFile: Sendable {
    public var name: String
    public var file: String
    /// The base topology file (absolute, or relative to the current directory).
    public var base: String
    public var repeats: Int
    public var factors: [Factor]
    /// The base file's text, read once when the study file was.
    public var baseText = ""
    /// Settings every variant has (`set:`): the base adapted to the study, before what varies.
    public var fixed: [(path: String, segments: [String], value: String)] = []

    public struct Factor: Sendable, Equatable {
        /// The path as written, and its segments (`nodes.client.sysctls[net.ipv4.tcp_ecn]`:
        /// `nodes`, `client`, `sysctls`, `net.ipv4.tcp_ecn`).
        public var path: String
        public var segments: [String]
        /// Each value as YAML text (a scalar, or a flow mapping or list).
        public var values: [String]
        public var location: SourceLocation
        /// `name:` what variant labels call the setting (default: the path's last key), and
        /// `labels:` a word per value in place of the value (a mapping reads badly in a table).
        public var name: String? = nil
        public var labels: [String]? = nil
    }

    /// One combination of values: its number (from 1), its words, and each factor's value.
    public struct Variant: Sendable, Equatable {
        public var number: Int
        public var label: String
        public var values: [(path: String, value: String)]
        public static func == (a: Variant, b: Variant) -> Bool { a.number == b.number && a.label == b.label }
    }

    public static let maximumVariants = 1000
    public static let maximumRuns = 10_000
    public static let maximumValues = 100

    /// Reads and checks a study file; every problem with its line and column.
    public static func load(path: String) throws -> StudyFile {
        guard let data = FileManager.default.contents(atPath: path), data.count <= 1 << 20 else {
            throw TopologyErrors([Diagnostic(SourceLocation(file: path, line: 0, column: 0), path: "", "cannot read the study file (or it is over 1 MiB)", hint: "give a study file (docs/studies.md)")])
        }
        return try parse(String(decoding: data, as: UTF8.self), file: path)
    }

    /// A YAML alias (`*name`): refused in studies, whose files are written out again with every
    /// alias expanded (nine nested ones made a 548-byte file that never finished).
    static func hasAlias(_ text: String) -> Bool {
        text.range(of: #"(^|[\s\[\{,:\-])\*[^\s,\]\}]"#, options: .regularExpression) != nil
    }

    /// The base's text, read once: a regular file of at most 16 MiB without aliases.
    static func readBase(_ path: String) -> Result<String, StudyError> {
        var st = stat()
        guard stat(path, &st) == 0 else { return .failure(StudyError("the base topology \(path) does not exist")) }
        guard (st.st_mode & S_IFMT) == S_IFREG else { return .failure(StudyError("the base topology \(path) is not a regular file")) }
        guard st.st_size <= off_t(YAMLReader.maxFileSize), let data = FileManager.default.contents(atPath: path), data.count <= YAMLReader.maxFileSize else {
            return .failure(StudyError("the base topology \(path) is over 16 MiB or cannot be read"))
        }
        let text = String(decoding: data, as: UTF8.self)
        if hasAlias(text) { return .failure(StudyError("the base topology \(path) uses YAML aliases (*name): a study writes its variants out, and cannot with aliases")) }
        return .success(text)
    }

    public static func parse(_ text: String, file: String) throws -> StudyFile {
        var problems: [Diagnostic] = []
        if hasAlias(text) {
            throw TopologyErrors([Diagnostic(SourceLocation(file: file, line: 0, column: 0), path: "", "the study file uses YAML aliases (*name): write each value out", hint: nil)])
        }
        func at(_ node: Yams.Node?) -> SourceLocation {
            let mark: Mark?
            switch node {
            case let .scalar(x)?: mark = x.mark
            case let .mapping(x)?: mark = x.mark
            case let .sequence(x)?: mark = x.mark
            case let .alias(x)?: mark = x.mark
            case nil: mark = nil
            }
            return SourceLocation(file: file, line: mark?.line ?? 0, column: mark?.column ?? 0)
        }
        func fail(_ node: Yams.Node?, _ message: String, _ hint: String? = nil) { problems.append(Diagnostic(at(node), path: "", message, hint: hint)) }
        let root: Yams.Node
        do {
            guard let r = try Yams.compose(yaml: text) else { throw TopologyErrors([Diagnostic(at(nil), path: "", "the study file is empty", hint: "docs/studies.md shows one")]) }
            root = r
        } catch let e as TopologyErrors { throw e } catch {
            throw TopologyErrors([Diagnostic(at(nil), path: "", "not YAML: \(error)", hint: nil)])
        }
        guard let map = root.mapping else { throw TopologyErrors([Diagnostic(at(root), path: "", "a study file is a mapping (study, base, repeat, vary)", hint: nil)]) }
        for (k, _) in map where !["study", "base", "repeat", "set", "vary", "description"].contains(k.string ?? "") {
            fail(k, "unknown key `\(k.string ?? "?")`", "a study has study, description, base, repeat, set and vary")
        }
        func valueText(_ v: Yams.Node) -> String { Self.flow(v) }
        var fixed: [(path: String, segments: [String], value: String)] = []
        if let set = root["set"] {
            if let list = set.sequence {
                for e in list {
                    for (k, _) in e.mapping ?? [:] where !["path", "value"].contains(k.string ?? "") { fail(k, "unknown key `\(k.string ?? "?")` in a `set:` entry", "it takes path and value") }
                    guard let path = e["path"]?.string, let segments = Self.segments(path), let value = e["value"] else {
                        fail(e, "each entry of `set:` is { path, value }: a setting of the base file and the value every variant gives it"); continue
                    }
                    fixed.append((path, segments, valueText(value)))
                }
            } else { fail(set, "`set:` is a list of { path, value }") }
        }
        let name = root["study"]?.string ?? ""
        if root["study"] == nil { fail(root, "`study:` is missing: the study's name", "add e.g. `study: rates`") }
        else if LabName.problem(name) != nil { fail(root["study"], "`study: \(name)`: \(LabName.problem(name)!)", "letters, digits, `-` and `_`") }
        let baseWritten = root["base"]?.string ?? ""
        var base = "", baseText = ""
        if baseWritten.isEmpty { fail(root["base"] ?? root, "`base:` is missing: the topology file the variants change", "add e.g. `base: ../topologies/two-paths.yaml`") } else {
            base = baseWritten.hasPrefix("/") ? baseWritten : (((file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(baseWritten) as NSString).standardizingPath
            switch Self.readBase(base) {
            case let .success(t): baseText = t
            case let .failure(why): fail(root["base"], why.description, "paths are relative to the study file")
            }
        }
        var repeats = 1
        if let r = root["repeat"] {
            if let n = r.int, (1...100).contains(n) { repeats = n } else { fail(r, "`repeat: \(r.string ?? "?")` is not a number of runs from 1 to 100") }
        }
        var factors: [Factor] = []
        if let vary = root["vary"] {
            guard let list = vary.sequence, !list.isEmpty else { throw TopologyErrors(problems + [Diagnostic(at(vary), path: "", "`vary:` is a list of { path, values }", hint: "e.g. `- { path: profiles.path.rate, values: [5mbit, 10mbit] }`")]) }
            for f in list {
                guard let path = f["path"]?.string, !path.isEmpty else { fail(f, "each entry of `vary:` needs `path:`, a setting of the base file", "e.g. `path: profiles.path.rate`"); continue }
                for (k, _) in f.mapping ?? [:] where !["path", "values", "name", "labels"].contains(k.string ?? "") { fail(k, "unknown key `\(k.string ?? "?")` in a `vary:` entry", "it takes path, values, and optionally name and labels") }
                guard let segments = Self.segments(path) else { fail(f["path"], "`\(path)` is not a path: KEY.KEY... (a key with dots in brackets: sysctls[net.ipv4.tcp_ecn])"); continue }
                guard let values = f["values"]?.sequence, !values.isEmpty, values.count <= maximumValues else {
                    fail(f["values"] ?? f, "`values:` of \(path) is a list of 1 to \(maximumValues) values"); continue
                }
                let texts = values.map(valueText)
                if Set(texts).count != texts.count { fail(f["values"], "`values:` of \(path) repeats a value") }
                if factors.contains(where: { $0.segments == segments }) { fail(f["path"], "\(path) varies twice", "give all its values in one entry") }
                var factor = Factor(path: path, segments: segments, values: texts, location: at(f["path"]))
                if let n = f["name"] {
                    if let word = n.string, Self.isLabel(word) { factor.name = word } else {
                        fail(n, "`name:` of \(path) is 1 to 40 letters, digits, spaces, `-`, `_`, `+`, `.` or `/`", "e.g. `name: scenario`")
                    }
                }
                if let l = f["labels"] {
                    let words = l.sequence?.compactMap(\.string) ?? []
                    if l.sequence?.count != values.count || words.count != values.count {
                        fail(l, "`labels:` of \(path) gives one word per value: \(values.count)", "or leave labels out: the values name the variants")
                    } else if let bad = words.first(where: { !Self.isLabel($0) }) {
                        fail(l, "label `\(bad.prefix(60))` of \(path): 1 to 40 letters, digits, spaces, `-`, `_`, `+`, `.` or `/`")
                    } else if Set(words).count != words.count {
                        fail(l, "`labels:` of \(path) repeats a label")
                    } else {
                        factor.labels = words
                    }
                }
                factors.append(factor)
            }
        } else { fail(root, "`vary:` is missing: what changes between the variants", "add e.g. `vary: [{ path: profiles.path.rate, values: [5mbit, 10mbit] }]`") }
        // Multiplied with a bound (ten lists of 100 values overflow an Int).
        let count = factors.reduce(1) { min($0 * $1.values.count, maximumVariants + 1) }
        if !factors.isEmpty && count > maximumVariants { fail(root["vary"], "\(count) variants: at most \(maximumVariants)", "vary fewer settings or values") }
        if !factors.isEmpty && count * repeats > maximumRuns { fail(root["repeat"] ?? root["vary"], "\(count) variants of \(repeats) runs: at most \(maximumRuns) runs in all") }
        if !problems.isEmpty { throw TopologyErrors(problems.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }) }
        var study = StudyFile(name: name, file: file, base: base, repeats: repeats, factors: factors)
        study.fixed = fixed
        study.baseText = baseText
        return study
    }

    /// A value on one line, as YAML reads it back to the same value: a quoted string stays a
    /// string (`"[a]"`, `"1"`), a mapping or list is written in flow style.
    static func flow(_ v: Yams.Node) -> String {
        switch v {
        case let .scalar(s):
            let quoted = s.style == .singleQuoted || s.style == .doubleQuoted || s.style == .literal || s.style == .folded
            if !quoted, !s.string.contains(where: { $0.isNewline }) { return s.string }
            let json = (try? JSONEncoder().encode(s.string)).map { String(decoding: $0, as: UTF8.self) } ?? "\"\""
            return json
        case let .mapping(m): return "{" + m.map { "\(flow($0.key)): \(flow($0.value))" }.joined(separator: ", ") + "}"
        case let .sequence(q): return "[" + q.map(flow).joined(separator: ", ") + "]"
        case .alias: return "*"
        }
    }

    /// `a.b[c.d].e` → a, b, c.d, e; nil for an empty segment or unbalanced brackets.
    static func segments(_ path: String) -> [String]? {
        var out: [String] = [], current = "", inBracket = false, closed = false
        for ch in path {
            switch ch {
            case "[" where !inBracket:
                if !current.isEmpty { out.append(current); current = "" }
                inBracket = true
            case "[" where inBracket: return nil
            case "]" where !inBracket: return nil
            case "]" where inBracket:
                guard !current.isEmpty else { return nil }
                out.append(current); current = ""; inBracket = false; closed = true
                continue
            case "." where !inBracket:
                // `a..b` and `.a` have an empty key; `a[b.c].d` has none.
                if !current.isEmpty { out.append(current) } else if !closed { return nil }
                current = ""
            default: current.append(ch)
            }
            closed = false
        }
        if inBracket { return nil }
        if !current.isEmpty { out.append(current) }
        return out.isEmpty || out.count > 32 ? nil : out
    }

    /// A factor's name or a value's label: words a table and a file name can hold.
    static func isLabel(_ s: String) -> Bool {
        (1...40).contains(s.count) && s.unicodeScalars.allSatisfy { $0.isASCII && (CharacterSet.alphanumerics.contains($0) || " -_+./".unicodeScalars.contains($0)) }
            && s.first != " " && s.last != " "
    }

    /// Every combination, the first factor varying slowest.
    public var variants: [Variant] {
        // (path, value, the value's words in the label)
        var combos: [[(String, String, String)]] = [[]]
        for f in factors { combos = combos.flatMap { c in f.values.indices.map { c + [(f.path, f.values[$0], f.labels?[$0] ?? f.values[$0])] } } }
        // A label names a factor by its `name:`, else its last segment, or its whole path where two share one.
        let lasts = factors.map { $0.segments.last ?? $0.path }
        let short = Dictionary(factors.map { f in (f.path, f.name ?? (lasts.filter { $0 == f.segments.last }.count > 1 ? f.path : (f.segments.last ?? f.path))) }, uniquingKeysWith: { a, _ in a })
        return combos.enumerated().map { i, c in
            Variant(number: i + 1, label: c.map { "\(short[$0.0] ?? $0.0)=\($0.2)" }.joined(separator: ", "), values: c.map { (path: $0.0, value: $0.1) })
        }
    }

    /// The base file with a variant's values put in: YAML text, or why a path does not fit
    /// the file (a key under a scalar, a list item by a name no item has).
    public func topologyText(_ v: Variant) throws -> String {
        guard var root = try Yams.compose(yaml: baseText) else { throw StudyError("the base topology \(base) is empty") }
        for f in fixed {
            root = try Self.set(root, f.segments[...], try Yams.compose(yaml: f.value) ?? Yams.Node(""), path: f.path, depth: 0)
        }
        for (path, value) in v.values {
            let f = factors.first { $0.path == path }!
            let node = try Yams.compose(yaml: value) ?? Yams.Node("")
            root = try Self.set(root, f.segments[...], node, path: path, depth: 0)
        }
        return try Yams.serialize(node: root)
    }

    static func set(_ node: Yams.Node, _ segments: ArraySlice<String>, _ value: Yams.Node, path: String, depth: Int) throws -> Yams.Node {
        guard let key = segments.first else { return value }
        let rest = segments.dropFirst()
        switch node {
        case var .mapping(m):
            let k = Yams.Node(key)
            // A missing key is added (`nodes.client.congestion-control`, `schedule.0.with.x`), except
            // a name under a top-level key on the way to a setting: `profiles.pth.rate` is a typo
            // that would add a profile nobody uses.
            guard let child = m[k] ?? (rest.isEmpty || depth != 1 ? Yams.Node([(Yams.Node, Yams.Node)]()) : nil) else {
                let keys = m.keys.compactMap(\.string)
                throw StudyError("\(path): the base file has no `\(key)` here (\(keys.isEmpty ? "nothing" : "it has " + keys.prefix(20).joined(separator: ", ")))")
            }
            m[k] = try set(child, rest, value, path: path, depth: depth + 1)
            return .mapping(m)
        case var .sequence(s):
            // An index, or the item whose `name:` is the segment.
            let index = Int(key).flatMap { s.indices.contains($0) ? $0 : nil } ?? s.firstIndex { $0["name"]?.string == key }
            guard let i = index else {
                let names = s.compactMap { $0["name"]?.string }
                throw StudyError("\(path): no item `\(key)` in the list (\(names.isEmpty ? "give an index from 0 to \(s.count - 1)" : "items: " + names.joined(separator: ", ")))")
            }
            s[i] = try set(s[i], rest, value, path: path, depth: depth + 1)
            return .sequence(s)
        case .scalar, .alias:
            throw StudyError("\(path): `\(key)` is under a value, not a mapping or list")
        }
    }
}

public struct StudyError: Error, CustomStringConvertible, Sendable {
    public var description: String
    public init(_ d: String) { description = d }
}
