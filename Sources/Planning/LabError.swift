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

/// `up` stopped because of a signal (Ctrl-C, SIGTERM, SIGHUP).
public struct Interrupted: Error, CustomStringConvertible, Sendable {
    public var signal: Int32
    public init(signal: Int32) { self.signal = signal }
    public var description: String { "interrupted by \(signal == SIGINT ? "SIGINT (Ctrl-C)" : signal == SIGTERM ? "SIGTERM" : signal == SIGHUP ? "SIGHUP" : "signal \(signal)")" }
}

/// This build's version, the same on every host of a lab (the agent's handshake compares it).
public let pathbedVersion = "0.4.0"
