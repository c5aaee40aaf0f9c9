import Foundation

/// The agent's wire protocol: one JSON object per line on the agent's stdin (requests) and
/// stdout (replies and events). docs/agent.md specifies it message by message.
public enum AgentProtocol {
    /// Bumped on any change a peer of the previous version would misread. Both ends must agree.
    public static let version = 1
    /// The agent says it is alive this often, also while it works on a long request.
    public static let heartbeatSeconds = 1.0
    /// The controller gives up on a host that has said nothing for this long.
    public static let silenceLimitSeconds = 20.0
}

/// A request from the controller. `method` names it; the fields it needs are set, the rest are nil.
public struct AgentRequest: Codable, Sendable {
    public var id: Int
    public var method: Method
    public enum Method: String, Codable, Sendable {
        /// First request: versions are compared, the agent answers with its host's `info`.
        case hello
        case info, capabilities, apply, rollBack, namespaces, interfaces, removeLab, removeNamespaces
        case deleteLink, setProfile, changedMTUs, restoreMTUs, run, tunnelKeys
        /// A link end down (with a revert deadline the agent keeps) or up with its routes.
        case setLink
        /// Byte counters of namespaces' interfaces, streamed as `sample` events until the duration passes or `cancel`.
        case sampleCounters
        /// Stops the request `target` (an `apply` rolls back; a `run` has its process group killed).
        case cancel
        /// Ends the session: the agent stops what it runs and exits.
        case bye
    }
    public var `protocol`: Int?
    public var version: String?
    public var host: String?
    public var sysctls: [String]?
    public var operations: [Operation]?
    public var lab: String?
    public var waitForKernel: Bool?
    public var namespace: String?
    public var names: [String]?
    public var link: InterfaceRef?
    public var from: QdiscSpec?
    public var to: QdiscSpec?
    public var mtus: [MTUChange]?
    public var argv: [String]?
    public var timeout: Double?
    public var target: Int?
    public var up: Bool?
    public var routes: [RouteSpec]?
    public var revertAfter: Double?
    public var interval: Double?
    public var duration: Double?

    public init(id: Int, method: Method) { self.id = id; self.method = method }
}

/// A line from the agent: an event about request `id` (`progress`, `output`), a `heartbeat`,
/// or the end of request `id` (`event` nil) with its result or its error.
public struct AgentReply: Codable, Sendable {
    public enum Event: String, Codable, Sendable { case progress, output, heartbeat, sample }
    public var id: Int?
    public var event: Event?
    /// The host's CLOCK_MONOTONIC in nanoseconds when the line was written (every line has it).
    public var clock: UInt64
    public var error: AgentError?

    // Results, by method.
    public var `protocol`: Int?
    public var info: HostInfo?
    public var capabilities: Capabilities?
    public var failures: [String]?
    public var namespaces: [NamespaceState]?
    public var interfaces: [InterfaceState]?
    public var report: RemovalReport?
    public var mtus: [MTUChange]?
    public var exitCode: Int32?
    public var keys: [String: String]?

    // Events.
    public var done: Int?
    public var stream: OutputStream?
    /// Output bytes, base64 (commands may write anything).
    public var data: String?
    public var sample: CounterSample?

    public init(id: Int?, event: Event? = nil) { self.id = id; self.event = event; self.clock = monotonicNanoseconds() }
}

/// Why a request failed on the agent's side.
public struct AgentError: Codable, Sendable, Error {
    public enum Kind: String, Codable, Sendable { case failed, interrupted, protocolError = "protocol" }
    public var kind: Kind
    public var message: String
    public var fix: String?
    /// For `interrupted`: the signal.
    public var signal: Int32?
}

/// Writes JSON lines to a file descriptor, one whole line per write, from any thread.
final class LineWriter: @unchecked Sendable {
    let fd: Int32
    private let lock = NSLock()
    private let encoder: JSONEncoder
    private(set) var broken = false

    init(fd: Int32) {
        self.fd = fd
        encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    func send<T: Encodable>(_ value: T) {
        guard var data = try? encoder.encode(value) else { return }
        data.append(0x0A)
        lock.withLock {
            guard !broken else { return }
            data.withUnsafeBytes { raw in
                var offset = 0
                while offset < raw.count {
                    let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                    if n < 0 { if errno == EINTR { continue }; broken = true; return }
                    offset += n
                }
            }
        }
    }
}

/// Reads lines from a file descriptor (blocking), at most `limit` bytes each.
final class LineReader {
    let fd: Int32
    private var buffer: [UInt8] = []
    private var chunk = [UInt8](repeating: 0, count: 65536)
    static let limit = 64 << 20

    init(fd: Int32) { self.fd = fd }

    /// The next line without its newline; nil at end of file or on a read error.
    func next() -> Data? {
        while true {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = Data(buffer[..<nl])
                buffer.removeSubrange(...nl)
                return line
            }
            if buffer.count > Self.limit { return nil }
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
