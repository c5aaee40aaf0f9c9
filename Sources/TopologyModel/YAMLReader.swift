import Foundation
import Yams

/// Reads YAML safely and walks it with line/column marks, collecting every problem it finds.
///
/// Safety: the file is checked for size, NUL bytes and UTF-8 before libyaml sees it; libyaml caps
/// nesting depth; an alias used as a mapping key (which would make Yams hash an expanded alias
/// bomb) is refused up front; and the walk itself has a node budget, so an alias bomb used as a
/// value ends in a clean error instead of a hang.
final class YAMLReader {
    let file: String
    private(set) var diagnostics: [Diagnostic] = []
    /// "shape.key" for every field the decoder asked for (see `ObjectReader`).
    private(set) var fieldsRead: Set<String> = []
    private var budget: Int

    static let maxFileSize = 16 << 20
    static let maxNodes = 2_000_000

    init(file: String, nodeBudget: Int = YAMLReader.maxNodes) {
        self.file = file
        self.budget = nodeBudget
    }

    // MARK: Reporting

    func location(_ node: Yams.Node?) -> SourceLocation {
        guard let mark = node?.mark else { return SourceLocation(file: file, line: 0, column: 0) }
        return SourceLocation(file: file, line: mark.line, column: mark.column)
    }

    func error(_ node: Yams.Node?, _ path: String, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(location(node), path: path, message, hint: hint))
    }

    func error(at location: SourceLocation, _ path: String, _ message: String, hint: String? = nil) {
        diagnostics.append(Diagnostic(location, path: path, message, hint: hint))
    }

    func noteRead(_ shape: ObjectShape, _ key: String) { fieldsRead.insert("\(shape.name).\(key)") }

    /// Counts a visited node; false once the document has expanded past the budget.
    func spend(_ node: Yams.Node, _ path: String) -> Bool {
        budget -= 1
        if budget == 0 {
            error(node, path, "the document expands to more than \(YAMLReader.maxNodes) values (a YAML alias bomb?)",
                  hint: "remove the nested aliases (*name) that multiply the document")
        }
        return budget > 0
    }

    // MARK: Parsing

    /// Parses bytes into a root mapping node, or records why not.
    func parse(_ data: Data) -> Yams.Node? {
        let whole = SourceLocation(file: file, line: 0, column: 0)
        if data.count > YAMLReader.maxFileSize {
            error(at: whole, "", "the file is \(data.count) bytes; topology files are limited to \(YAMLReader.maxFileSize >> 20) MiB",
                  hint: "is this the right file?")
            return nil
        }
        if let nul = data.firstIndex(of: 0) {
            let (line, column) = lineAndColumn(of: nul - data.startIndex, in: data)
            error(at: SourceLocation(file: file, line: line, column: column), "",
                  "the file contains binary data (a NUL byte), not YAML text", hint: "pass a YAML topology file")
            return nil
        }
        guard let text = String(validating: data, as: UTF8.self) else {
            let offset = firstInvalidUTF8(data)
            let (line, column) = lineAndColumn(of: offset, in: data)
            error(at: SourceLocation(file: file, line: line, column: column), "",
                  "the file is not valid UTF-8 (bad byte 0x\(String(data[data.startIndex + offset], radix: 16)))",
                  hint: "save the file as UTF-8")
            return nil
        }
        if text.allSatisfy({ $0.isWhitespace }) || text.split(separator: "\n").allSatisfy({ $0.trimmingSpaces.hasPrefix("#") || $0.trimmingSpaces.isEmpty }) {
            error(at: whole, "", "the file is empty", hint: "a topology needs at least `name:` and `nodes:`; see topologies/ for examples")
            return nil
        }
        if let (line, column) = aliasUsedAsKey(text) {
            error(at: SourceLocation(file: file, line: line, column: column), "",
                  "an alias (*name) is used as a mapping key, which is not supported",
                  hint: "write the key out; aliases are fine as values")
            return nil
        }
        let root: Yams.Node?
        do {
            root = try Yams.compose(yaml: text)
        } catch let e as YamlError {
            report(e, text: text)
            return nil
        } catch {
            self.error(at: whole, "", "cannot read YAML: \(error)")
            return nil
        }
        guard let root else {
            error(at: whole, "", "the file is empty", hint: "a topology needs at least `name:` and `nodes:`")
            return nil
        }
        guard case .mapping = root else {
            error(root, "", "the top level is \(kind(root)), but a topology is a mapping",
                  hint: "start the file with keys such as `name: mylab` and `nodes:`")
            return nil
        }
        return root
    }

    private func report(_ e: YamlError, text: String) {
        func at(_ mark: Mark) -> SourceLocation { SourceLocation(file: file, line: mark.line, column: mark.column) }
        func tabHint(_ mark: Mark) -> String? {
            let lines = text.split(separator: "\n", omittingEmptySubsequences: false)
            guard mark.line >= 1, mark.line <= lines.count else { return nil }
            return lines[mark.line - 1].contains("\t") ? "YAML does not allow tabs for indentation; indent with spaces" : nil
        }
        switch e {
        case let .scanner(context, problem, mark, _), let .parser(context, problem, mark, _), let .composer(context, problem, mark, _):
            var message = "invalid YAML: \(problem)"
            if let context { message += " \(context.text) at \(context.mark.line):\(context.mark.column)" }
            var hint = tabHint(mark)
            if problem.contains("nesting level") { hint = "the document is nested too deeply; a topology needs only a few levels" }
            if hint == nil, problem.contains("expected ',' or ']'") || problem.contains("expected ',' or '}'") || problem.contains("flow") {
                hint = "close every '[' with ']' and every '{' with '}'"
            }
            error(at: at(mark), "", message, hint: hint ?? "check the YAML syntax at this position")
        case let .duplicatedKeysInMapping(duplicates, context):
            error(at: at(context.mark), "", "duplicate key \(duplicates.map { "'\($0)'" }.joined(separator: ", ")) in one mapping",
                  hint: "each key may appear once; names of nodes, bridges and profiles must be unique")
        case let .reader(problem, offset, _, _):
            var loc = SourceLocation(file: file, line: 0, column: 0)
            if let offset { let (l, c) = lineAndColumn(of: offset, in: Data(text.utf8)); loc = SourceLocation(file: file, line: l, column: c) }
            error(at: loc, "", "cannot read the file as YAML: \(problem)", hint: "save the file as UTF-8 text")
        default:
            error(at: SourceLocation(file: file, line: 0, column: 0), "", "invalid YAML: \(e)")
        }
    }

    // MARK: Typed values

    func kind(_ node: Yams.Node) -> String {
        switch node {
        case .mapping: return "a mapping"
        case .sequence: return "a list"
        case let .scalar(s): return s.string.isEmpty ? "empty" : "'\(s.string)'"
        case .alias: return "an alias"
        }
    }

    func scalar(_ node: Yams.Node, _ path: String, expected: String) -> String? {
        guard case let .scalar(s) = node else {
            error(node, path, "expected \(expected), found \(kind(node))")
            return nil
        }
        return s.string
    }

    func mapping(_ node: Yams.Node, _ path: String, expected: String) -> [(key: String, keyNode: Yams.Node, value: Yams.Node)]? {
        guard case let .mapping(m) = node else {
            if case let .scalar(s) = node, s.string.isEmpty, s.style == .plain { return [] }  // `nodes:` left empty
            error(node, path, "expected \(expected), found \(kind(node))")
            return nil
        }
        var out: [(String, Yams.Node, Yams.Node)] = []
        for (k, v) in m {
            guard spend(v, path) else { return nil }
            guard case let .scalar(ks) = k else {
                error(k, path, "a key must be a plain name, found \(kind(k))")
                continue
            }
            out.append((ks.string, k, v))
        }
        return out
    }

    func sequence(_ node: Yams.Node, _ path: String, expected: String) -> [Yams.Node]? {
        guard case let .sequence(s) = node else {
            if case let .scalar(sc) = node, sc.string.isEmpty, sc.style == .plain { return [] }
            error(node, path, "expected \(expected), found \(kind(node))")
            return nil
        }
        for item in s where !spend(item, path) { return nil }
        return Array(s)
    }

    func bool(_ node: Yams.Node, _ path: String) -> Bool? {
        guard let s = scalar(node, path, expected: "true or false") else { return nil }
        switch s.lowercased() {
        case "true", "yes", "on": return true
        case "false", "no", "off": return false
        default: error(node, path, "expected true or false, found '\(s)'"); return nil
        }
    }

    func integer(_ node: Yams.Node, _ path: String, min: Int, max: Int) -> Int? {
        guard let s = scalar(node, path, expected: "a whole number") else { return nil }
        guard let v = Int(s) else {
            error(node, path, "expected a whole number, found '\(s)'")
            return nil
        }
        guard v >= min, v <= max else {
            error(node, path, "\(v) is out of range", hint: "use a value from \(min) to \(max)")
            return nil
        }
        return v
    }

    func name(_ node: Yams.Node, _ path: String, what: String = "a name") -> String? {
        guard let s = scalar(node, path, expected: what) else { return nil }
        guard isName(s) else {
            error(node, path, "'\(s)' is not a valid name", hint: "use letters, digits, '-' and '_', starting with a letter or digit")
            return nil
        }
        return s
    }

    func string(_ node: Yams.Node, _ path: String, pattern: String?, what: String) -> String? {
        guard let s = scalar(node, path, expected: what) else { return nil }
        if let pattern, s.range(of: pattern, options: .regularExpression) == nil {
            error(node, path, "'\(s)' is not \(what)")
            return nil
        }
        return s
    }

    func unit<T>(_ node: Yams.Node, _ path: String, what: String, _ parse: (String) -> Result<T, UnitError>) -> T? {
        guard let s = scalar(node, path, expected: what) else { return nil }
        switch parse(s) {
        case let .success(v): return v
        case let .failure(e): error(node, path, e.message, hint: e.hint); return nil
        }
    }

    func bitrate(_ n: Yams.Node, _ p: String) -> Bitrate? { unit(n, p, what: "a bit rate (e.g. 20mbit)", Bitrate.parse) }
    func duration(_ n: Yams.Node, _ p: String) -> Duration? { unit(n, p, what: "a duration (e.g. 20ms)", Duration.parse) }
    func percent(_ n: Yams.Node, _ p: String) -> Percent? { unit(n, p, what: "a percentage (e.g. 1%)", Percent.parse) }

    func address(_ node: Yams.Node, _ path: String) -> IPAddress? {
        guard let s = scalar(node, path, expected: "an IP address") else { return nil }
        guard let a = IPAddress(s) else {
            error(node, path, "'\(s)' is not an IP address", hint: s.contains("/") ? "write the address without a prefix length" : "write e.g. 10.0.1.1 or 2001:db8::1")
            return nil
        }
        return a
    }

    func network(_ node: Yams.Node, _ path: String) -> IPNetwork? {
        guard let s = scalar(node, path, expected: "an address with prefix length") else { return nil }
        guard let n = IPNetwork(s) else {
            error(node, path, "'\(s)' is not an address with a prefix length", hint: "write e.g. 10.0.1.0/24")
            return nil
        }
        return n
    }

    func choice(_ node: Yams.Node, _ path: String, _ options: [String]) -> String? {
        guard let s = scalar(node, path, expected: "one of \(options.joined(separator: ", "))") else { return nil }
        guard options.contains(s) else {
            let suggestion = didYouMean(s, options)
            error(node, path, "'\(s)' is not one of \(options.joined(separator: ", "))" + (suggestion.isEmpty ? "" : "; \(suggestion)"))
            return nil
        }
        return s
    }

    /// Converts any YAML value to JSON for plugins.
    func json(_ node: Yams.Node, _ path: String) -> JSONValue? {
        guard spend(node, path) else { return nil }
        switch node {
        case let .scalar(s):
            if s.style != .plain { return .string(s.string) }
            switch s.string.lowercased() {
            case "true": return .bool(true)
            case "false": return .bool(false)
            case "null", "~", "": return .null
            default: return Double(s.string).map(JSONValue.number) ?? .string(s.string)
            }
        case let .sequence(seq):
            var out: [JSONValue] = []
            for (i, item) in seq.enumerated() { guard let v = json(item, "\(path)[\(i)]") else { return nil }; out.append(v) }
            return .array(out)
        case let .mapping(m):
            var out: [String: JSONValue] = [:]
            for (k, v) in m {
                guard case let .scalar(ks) = k else { error(k, path, "keys must be plain strings"); return nil }
                guard let jv = json(v, "\(path).\(ks.string)") else { return nil }
                out[ks.string] = jv
            }
            return .object(out)
        case .alias:
            return nil
        }
    }
}

/// The keys of one YAML mapping, checked against its `ObjectShape`.
struct ObjectReader {
    let reader: YAMLReader
    let shape: ObjectShape
    let path: String
    let node: Yams.Node
    private var values: [String: (keyNode: Yams.Node, value: Yams.Node)] = [:]

    /// Nil (with a diagnostic) when `node` is not a mapping. Unknown keys and missing required
    /// keys are reported here; the object is still read so that later errors show too.
    init?(_ reader: YAMLReader, _ node: Yams.Node, path: String, shape: ObjectShape) {
        self.reader = reader; self.shape = shape; self.path = path; self.node = node
        guard let pairs = reader.mapping(node, path, expected: "a \(shape.name) mapping (\(shape.fields.map(\.key).joined(separator: ", ")))") else {
            return nil
        }
        for (key, keyNode, value) in pairs {
            if key == "<<" {  // YAML merge key: explicit keys win
                mergeFrom(value)
                continue
            }
            guard shape.field(key) != nil else {
                let suggestion = didYouMean(key, shape.fields.map(\.key))
                reader.error(keyNode, path.isEmpty ? key : "\(path).\(key)",
                             "unknown key '\(key)' in \(shape.name)" + (suggestion.isEmpty ? "" : "; \(suggestion)"),
                             hint: "known keys: \(shape.fields.map(\.key).joined(separator: ", "))")
                continue
            }
            values[key] = (keyNode, value)
        }
        for f in shape.fields where f.required && values[f.key] == nil {
            reader.error(node, path, "missing required key '\(f.key)' in \(shape.name)", hint: f.description)
        }
    }

    private mutating func mergeFrom(_ value: Yams.Node) {
        let sources: [Yams.Node]
        if case let .sequence(s) = value { sources = Array(s) } else { sources = [value] }
        for source in sources {
            guard case let .mapping(m) = source else {
                reader.error(source, path, "a merge key (<<) needs a mapping or a list of mappings")
                continue
            }
            for (k, v) in m {
                guard case let .scalar(ks) = k, shape.field(ks.string) != nil else {
                    reader.error(k, path, "unknown key '\(k.string ?? "?")' merged into \(shape.name)")
                    continue
                }
                if values[ks.string] == nil { values[ks.string] = (k, v) }
            }
        }
    }

    func childPath(_ key: String) -> String { path.isEmpty ? key : "\(path).\(key)" }

    /// The value under `key` and its path. `key` must be a field of the shape.
    subscript(_ key: String) -> (node: Yams.Node, path: String)? {
        precondition(shape.field(key) != nil, "decoder asked for '\(key)', which is not in shape \(shape.name)")
        reader.noteRead(shape, key)
        return values[key].map { ($0.value, childPath(key)) }
    }

    func has(_ key: String) -> Bool { values[key] != nil }
    func keyLocation(_ key: String) -> SourceLocation { reader.location(values[key]?.keyNode ?? node) }
}

func isName(_ s: String) -> Bool {
    guard let first = s.unicodeScalars.first, first.isASCIIAlnum else { return false }
    return s.unicodeScalars.allSatisfy { $0.isASCIIAlnum || $0 == "-" || $0 == "_" }
}

extension Unicode.Scalar {
    var isASCIIAlnum: Bool { ("a"..."z").contains(self) || ("A"..."Z").contains(self) || ("0"..."9").contains(self) }
}

/// 1-based line and column (in bytes) of a byte offset.
func lineAndColumn(of offset: Int, in data: Data) -> (Int, Int) {
    var line = 1, column = 1
    for b in data.prefix(offset) {
        if b == UInt8(ascii: "\n") { line += 1; column = 1 } else { column += 1 }
    }
    return (line, column)
}

func firstInvalidUTF8(_ data: Data) -> Int {
    let bytes = Array(data)
    var i = 0
    while i < bytes.count {
        let b = bytes[i]
        let len: Int
        if b < 0x80 { len = 1 } else if b & 0xE0 == 0xC0 { len = 2 } else if b & 0xF0 == 0xE0 { len = 3 } else if b & 0xF8 == 0xF0 { len = 4 } else { return i }
        if i + len > bytes.count { return i }
        if String(validating: bytes[i..<(i + len)], as: UTF8.self) == nil { return i }
        i += len
    }
    return i
}

/// Finds an alias used as a mapping key (`*a: x` or `? *a`), line by line, outside quotes and comments.
func aliasUsedAsKey(_ text: String) -> (Int, Int)? {
    for (lineIndex, line) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
        let chars = Array(line)
        var i = 0
        var quote: Character?
        var previous: Character = " "
        while i < chars.count {
            let c = chars[i]
            if let q = quote {
                if c == q { quote = nil }
            } else if c == "\"" || c == "'" {
                quote = c
            } else if c == "#" && (previous == " " || i == 0) {
                break
            } else if c == "*" && " [{,?".contains(previous) || (c == "*" && i == 0) {
                var j = i + 1
                while j < chars.count, !" ,[]{}:".contains(chars[j]) { j += 1 }
                var k = j
                while k < chars.count, chars[k] == " " { k += 1 }
                let explicitKey = chars[..<i].allSatisfy { $0 == " " || $0 == "?" || $0 == "-" } && chars[..<i].contains("?")
                if j > i + 1, (k < chars.count && chars[k] == ":") || explicitKey {
                    return (lineIndex + 1, i + 1)
                }
            }
            previous = c
            i += 1
        }
    }
    return nil
}
