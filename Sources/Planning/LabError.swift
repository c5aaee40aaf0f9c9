#if canImport(Glibc)
import Glibc
#endif

/// Why `up`, `down` or `exec` refused or failed, and what to do.
public struct LabError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var fix: String?
    public init(_ message: String, fix: String? = nil) { self.message = message; self.fix = fix }
    public var description: String { "error: \(message)" + (fix.map { "\n    fix: \($0)" } ?? "") }
}

/// An error's text in two parts, the problem and its fix (when it gives one), so that an error
/// that wraps another says one problem and one fix, not a fix in the middle of its sentence.
public func problemAndFix(_ error: any Error) -> (problem: String, fix: String?) {
    if let e = error as? LabError { return (e.message, e.fix) }
    var text = "\(error)"
    if text.hasPrefix("error: ") { text.removeFirst(7) }
    guard let r = text.range(of: "\n    fix: ") else { return (text, nil) }
    return (String(text[..<r.lowerBound]), String(text[r.upperBound...]))
}

/// `up` stopped because of a signal (Ctrl-C, SIGTERM, SIGHUP).
public struct Interrupted: Error, CustomStringConvertible, Sendable {
    public var signal: Int32
    public init(signal: Int32) { self.signal = signal }
    public var description: String { "interrupted by \(signal == SIGINT ? "SIGINT (Ctrl-C)" : signal == SIGTERM ? "SIGTERM" : signal == SIGHUP ? "SIGHUP" : "signal \(signal)")" }
}

/// This build's version, the same on every host of a lab (the agent's handshake compares it).
public let pathbedVersion = "0.4.0"
