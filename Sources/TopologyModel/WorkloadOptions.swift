import Foundation

/// A built-in plugin's `with:` options: each read once, typed and range-checked, its errors at
/// the option's own place in the file; any key the plugin does not read is an error too.
struct Options {
    let validator: TopologyValidator
    let object: [String: JSONValue]
    let path: String
    private(set) var read: Set<String> = []
    private(set) var isValid = true
    private var everything = false

    init(_ validator: TopologyValidator, _ value: JSONValue?, _ path: String) {
        self.validator = validator; self.path = path
        switch value {
        case nil, .null?: object = [:]
        case let .object(o)?: object = o
        default:
            object = [:]
            validator.error(path, "`with:` holds the plugin's options as a mapping", hint: "write e.g. `with: {reverse: true}`")
            isValid = false
        }
    }

    mutating func fail(_ key: String, _ message: String, hint: String) {
        validator.error("\(path).\(key)", message, hint: hint)
        isValid = false
    }

    mutating func value(_ key: String) -> JSONValue? {
        read.insert(key)
        if case .null? = object[key] { return nil }
        return object[key]
    }

    /// External plugins get `with:` as written: no key is unknown to them.
    mutating func passThrough() { everything = true }

    /// Every key no option read is an error (a typo would otherwise be ignored).
    mutating func finish() {
        guard !everything else { return }
        for key in object.keys.sorted() where !read.contains(key) {
            let s = didYouMean(key, read)
            fail(key, "unknown option '\(key)'" + (s.isEmpty ? "" : "; \(s)"), hint: read.isEmpty ? "this plugin takes no options" : "its options: \(read.sorted().joined(separator: ", "))")
        }
    }

    mutating func bool(_ key: String) -> Bool? {
        guard let v = value(key) else { return nil }
        if case let .bool(b) = v { return b }
        fail(key, "`\(key)` is true or false", hint: "write e.g. `\(key): true`")
        return nil
    }

    mutating func string(_ key: String) -> String? {
        guard let v = value(key) else { return nil }
        if case let .string(s) = v, !s.isEmpty { return s }
        fail(key, "`\(key)` is a text", hint: "write e.g. `\(key): traces/lte.csv`")
        return nil
    }

    mutating func integer(_ key: String, _ range: ClosedRange<Int>) -> Int? {
        guard let v = value(key) else { return nil }
        guard case let .number(n) = v, n.isFinite, n == n.rounded(), n >= Double(range.lowerBound), n <= Double(range.upperBound) else {
            fail(key, "`\(key)` is a whole number from \(range.lowerBound) to \(range.upperBound)", hint: "write e.g. `\(key): \(range.lowerBound)`")
            return nil
        }
        return Int(n)
    }

    /// Seconds, written as a number of seconds (`0.1`) or a duration (`100ms`).
    mutating func seconds(_ key: String, _ range: ClosedRange<Double>) -> Double? {
        guard let v = value(key) else { return nil }
        var seconds: Double?
        switch v {
        case let .number(n): seconds = n
        case let .string(s): if case let .success(d) = Duration.parse(s) { seconds = d.seconds }
        default: break
        }
        guard let s = seconds, s.isFinite, range.contains(s) else {
            fail(key, "`\(key)` is a time from \(trim(range.lowerBound)) s to \(trim(range.upperBound)) s", hint: "write e.g. `\(key): 100ms` or `\(key): 0.1`")
            return nil
        }
        return s
    }

    mutating func address(_ key: String) -> IPAddress? {
        guard let v = value(key) else { return nil }
        if case let .string(s) = v, let a = IPAddress(s) { return a }
        fail(key, "`\(key)` is an IP address", hint: "write e.g. `\(key): 10.0.1.2`")
        return nil
    }

    /// A command: a list of arguments, or one shell line (run by `sh -c`).
    mutating func command(_ key: String) -> [String]? {
        guard let v = value(key) else { return nil }
        // A NUL cannot be in an argument (the kernel would cut it there, silently).
        let hasNUL: (String) -> Bool = { $0.utf8.contains(0) }
        switch v {
        case let .string(s) where hasNUL(s):
            fail(key, "`\(key)` holds a NUL character, which no argument can hold", hint: "remove it"); return nil
        case let .array(a) where a.contains(where: { if case let .string(s) = $0 { return hasNUL(s) } else { return false } }):
            fail(key, "`\(key)` holds a NUL character, which no argument can hold", hint: "remove it"); return nil
        case let .string(s) where !s.isEmpty: return ["sh", "-c", s]
        case let .array(a):
            let argv = a.compactMap { if case let .string(s) = $0 { return s } else { return nil } }
            if argv.count == a.count, !argv.isEmpty, !argv[0].isEmpty { return argv }
        default: break
        }
        fail(key, "`\(key)` is a list of arguments or one shell line", hint: "write e.g. `\(key): [iperf3, -c, 10.0.3.2]`")
        return nil
    }

    /// TCP ports: one, or a list, each 1 to 65535.
    mutating func ports(_ key: String) -> [Int]? {
        guard let v = value(key) else { return nil }
        let list: [JSONValue]
        if case let .array(a) = v { list = a } else { list = [v] }
        let ports = list.compactMap { item -> Int? in
            if case let .number(n) = item, n.isFinite, n == n.rounded(), n >= 1, n <= 65535 { return Int(n) }
            return nil
        }
        guard ports.count == list.count, !ports.isEmpty, ports.count <= 64 else {
            fail(key, "`\(key)` is a TCP port from 1 to 65535, or a list of at most 64", hint: "write e.g. `\(key): [8080, 8443]`")
            return nil
        }
        return ports
    }

    /// `sizes: [16kB, 1MB, 50MB]` (or one `size:`): each 1 B to 16 GiB.
    mutating func sizes() -> [UInt64]? {
        let list: [(String, JSONValue)]
        if let v = value("sizes") {
            guard case let .array(a) = v else {
                fail("sizes", "`sizes` is a list of sizes", hint: "write e.g. `sizes: [16kB, 1MB, 50MB]`"); _ = value("size"); return nil
            }
            list = a.enumerated().map { ("sizes[\($0.offset)]", $0.element) }
            if value("size") != nil { fail("size", "give `size` or `sizes`, not both", hint: "list every size under `sizes:`") }
        } else if let one = value("size") {
            list = [("size", one)]
        } else {
            return []
        }
        var out: [UInt64] = []
        for (key, v) in list {
            var bytes: UInt64?
            switch v {
            case let .string(text): bytes = Self.bytes(text)
            case let .number(n) where n.isFinite && n == n.rounded(): bytes = n >= 1 && n <= Self.maximumBytes ? UInt64(n) : nil
            default: break
            }
            guard let b = bytes, b >= 1, Double(b) <= Self.maximumBytes else {
                fail(key, "not a size from 1 B to 16 GiB", hint: "write sizes like 16kB, 1MB, 50MB, 1GiB")
                continue
            }
            out.append(b)
        }
        return isValid ? out : nil
    }

    static let maximumBytes = Double(1 << 34)

    /// `16kB`, `1MB`, `50MB`, `1GiB`, `1000` (bytes): kB and MB are powers of 1000, KiB and MiB
    /// of 1024. Nil beyond 16 GiB (checked before any conversion).
    static func bytes(_ text: String) -> UInt64? {
        let s = text.trimmingSpaces
        let units: [(String, Double)] = [("KiB", 1024), ("MiB", 1_048_576), ("GiB", 1_073_741_824), ("kB", 1e3), ("KB", 1e3), ("MB", 1e6), ("GB", 1e9), ("B", 1)]
        var value: Double?
        for (u, k) in units where s.hasSuffix(u) {
            guard let v = Double(s.dropLast(u.count).trimmingSpaces) else { return nil }
            value = v * k
            break
        }
        guard let v = value ?? Double(s), v.isFinite, v >= 1, v <= maximumBytes else { return nil }
        return UInt64(v.rounded())
    }
}
