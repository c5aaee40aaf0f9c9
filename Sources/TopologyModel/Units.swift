/// Physical quantities used in topology files.
///
/// Every quantity is written with an explicit unit (`20mbit`, `250us`, `1%`). A bare number
/// where a unit belongs is refused: `delay: 20` is never silently microseconds.

/// A bit rate, in bits per second (SI prefixes, as `tc` reads `kbit`/`mbit`/`gbit`).
public struct Bitrate: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var bitsPerSecond: UInt64
    public init(bitsPerSecond: UInt64) { self.bitsPerSecond = bitsPerSecond }

    public static func mbit(_ value: Double) -> Bitrate { Bitrate(bitsPerSecond: UInt64(value * 1e6)) }
    public static func < (a: Bitrate, b: Bitrate) -> Bool { a.bitsPerSecond < b.bitsPerSecond }

    /// The fastest rate a profile may ask for: 100 Gbit/s (htb's 64-bit rate holds it; veth does not reach it).
    public static let maximum = 1e11

    /// Bytes per second, as the kernel's rate fields want them.
    public var bytesPerSecond: UInt64 { bitsPerSecond / 8 }

    public var description: String { Bitrate.format(bitsPerSecond) }

    static func format(_ bps: UInt64) -> String {
        for (unit, scale) in [("tbit", 1e12), ("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3)] {
            if Double(bps) >= scale { return trim(Double(bps) / scale) + unit }
        }
        return "\(bps)bit"
    }

    static let units: [(suffix: String, scale: Double)] = [
        ("tbit", 1e12), ("gbit", 1e9), ("mbit", 1e6), ("kbit", 1e3), ("bit", 1),
    ]

    /// Parses `20mbit`, `1.5gbit`, `800kbit`, `9600bit` (case-insensitive; `Mbit/s` also accepted).
    public static func parse(_ text: String) -> Result<Bitrate, UnitError> {
        var s = text.trimmingSpaces.lowercased()
        if s.hasSuffix("/s") { s.removeLast(2) }
        if s.hasSuffix("bps") {
            return .failure(UnitError("'\(text)' is ambiguous: tc reads 'bps' as bytes per second",
                                      hint: "write bits per second, e.g. 20mbit"))
        }
        guard let (number, unit) = splitNumber(s) else {
            return .failure(UnitError("'\(text)' is not a bit rate", hint: "write e.g. 20mbit, 1.5gbit or 800kbit"))
        }
        if unit.isEmpty {
            return .failure(UnitError("'\(text)' has no unit", hint: "write e.g. \(text)mbit (units: bit, kbit, mbit, gbit, tbit)"))
        }
        guard let scale = units.first(where: { $0.suffix == unit })?.scale else {
            return .failure(UnitError("unknown rate unit '\(unit)' in '\(text)'", hint: "use bit, kbit, mbit, gbit or tbit"))
        }
        let bps = number * scale
        guard bps >= 1 else { return .failure(UnitError("rate '\(text)' must be greater than zero", hint: "omit 'rate' for an unlimited link")) }
        guard bps <= Bitrate.maximum else { return .failure(UnitError("rate '\(text)' is beyond what a lab can shape", hint: "use at most 100gbit")) }
        return .success(Bitrate(bitsPerSecond: UInt64(bps.rounded())))
    }
}

/// A span of time, in nanoseconds. Used for delays, jitter, start times and durations.
public struct Duration: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var nanoseconds: Int64
    public init(nanoseconds: Int64) { self.nanoseconds = nanoseconds }
    public static let zero = Duration(nanoseconds: 0)
    public static func ms(_ v: Double) -> Duration { Duration(nanoseconds: Int64(v * 1e6)) }
    public static func seconds(_ v: Double) -> Duration { Duration(nanoseconds: Int64(v * 1e9)) }
    public static func < (a: Duration, b: Duration) -> Bool { a.nanoseconds < b.nanoseconds }
    /// Sums and products saturate at the largest duration instead of trapping: a schedule written
    /// to run for longer than that is refused by validation, never a crash.
    public static func + (a: Duration, b: Duration) -> Duration {
        let (v, overflow) = a.nanoseconds.addingReportingOverflow(b.nanoseconds)
        return Duration(nanoseconds: overflow ? (b.nanoseconds > 0 ? .max : .min) : v)
    }
    public static func * (a: Duration, k: Int64) -> Duration {
        let (v, overflow) = a.nanoseconds.multipliedReportingOverflow(by: k)
        return Duration(nanoseconds: overflow ? ((a.nanoseconds > 0) == (k > 0) ? .max : .min) : v)
    }

    public var microseconds: Int64 { nanoseconds / 1_000 }
    public var seconds: Double { Double(nanoseconds) / 1e9 }

    public var description: String {
        let ns = nanoseconds
        if ns == 0 { return "0s" }
        if ns % 1_000_000_000 == 0 { return "\(ns / 1_000_000_000)s" }
        if abs(ns) >= 1_000_000_000 { return trim(Double(ns) / 1e9) + "s" }
        if abs(ns) >= 1_000_000 { return trim(Double(ns) / 1e6) + "ms" }
        if abs(ns) >= 1_000 { return trim(Double(ns) / 1e3) + "us" }
        return "\(ns)ns"
    }

    static let units: [(suffix: String, scale: Double)] = [
        ("ns", 1), ("us", 1e3), ("µs", 1e3), ("ms", 1e6), ("s", 1e9), ("min", 60e9), ("h", 3600e9),
    ]

    /// Parses `20ms`, `250us`, `1.5s`, `2min`. Negative values are refused.
    public static func parse(_ text: String) -> Result<Duration, UnitError> {
        let s = text.trimmingSpaces.lowercased()
        if s.hasPrefix("-") {
            return .failure(UnitError("'\(text)' is negative", hint: "times and delays must be zero or more"))
        }
        guard let (number, unit) = splitNumber(s) else {
            return .failure(UnitError("'\(text)' is not a duration", hint: "write e.g. 20ms, 250us or 1.5s"))
        }
        if unit.isEmpty {
            return .failure(UnitError("'\(text)' has no unit", hint: "write e.g. \(text)ms (units: ns, us, ms, s, min, h)"))
        }
        guard let scale = units.first(where: { $0.suffix == unit })?.scale else {
            return .failure(UnitError("unknown time unit '\(unit)' in '\(text)'", hint: "use ns, us, ms, s, min or h"))
        }
        let ns = number * scale
        guard ns < 1e18 else { return .failure(UnitError("duration '\(text)' is too long", hint: "use at most a few days")) }
        return .success(Duration(nanoseconds: Int64(ns.rounded())))
    }
}

/// A percentage between 0 % and 100 %, e.g. a loss probability.
public struct Percent: Hashable, Comparable, Sendable, CustomStringConvertible {
    public var value: Double
    public init(_ value: Double) { self.value = value }
    public static func < (a: Percent, b: Percent) -> Bool { a.value < b.value }
    public var fraction: Double { value / 100 }
    public var description: String { trim(value) + "%" }

    /// Parses `1%`, `0.5 %`. The `%` is required.
    public static func parse(_ text: String) -> Result<Percent, UnitError> {
        let s = text.trimmingSpaces
        guard s.hasSuffix("%") else {
            if Double(s) != nil {
                return .failure(UnitError("'\(text)' has no unit", hint: "write a percentage with '%', e.g. \(s)%"))
            }
            return .failure(UnitError("'\(text)' is not a percentage", hint: "write e.g. 1% or 0.5%"))
        }
        let numberText = String(s.dropLast()).trimmingSpaces
        guard let v = Double(numberText), v.isFinite else {
            return .failure(UnitError("'\(text)' is not a percentage", hint: "write e.g. 1% or 0.5%"))
        }
        guard v >= 0 else { return .failure(UnitError("'\(text)' is negative", hint: "use a value from 0% to 100%")) }
        guard v <= 100 else { return .failure(UnitError("'\(text)' is over 100%", hint: "use a value from 0% to 100%")) }
        return .success(Percent(v))
    }
}

/// Why a quantity could not be read, and what to write instead.
public struct UnitError: Error, Equatable, Sendable {
    public var message: String
    public var hint: String
    public init(_ message: String, hint: String) { self.message = message; self.hint = hint }
}

/// Splits "20.5mbit" into (20.5, "mbit"). Nil when there is no leading number.
func splitNumber(_ s: String) -> (Double, String)? {
    var end = s.startIndex
    while end < s.endIndex, s[end].isNumber || s[end] == "." { end = s.index(after: end) }
    guard end > s.startIndex, let value = Double(s[s.startIndex..<end]), value.isFinite else { return nil }
    return (value, String(s[end...]).trimmingSpaces)
}

/// Formats a number without a trailing ".0" and with at most three decimals.
func trim(_ v: Double) -> String {
    if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
    var s = String(format3(v))
    while s.hasSuffix("0") { s.removeLast() }
    if s.hasSuffix(".") { s.removeLast() }
    return s
}

private func format3(_ v: Double) -> String {
    let scaled = (v * 1000).rounded() / 1000
    return "\(scaled)"
}

extension StringProtocol {
    var trimmingSpaces: String {
        var s = Substring(self)
        while let f = s.first, f == " " || f == "\t" { s.removeFirst() }
        while let l = s.last, l == " " || l == "\t" { s.removeLast() }
        return String(s)
    }
}
