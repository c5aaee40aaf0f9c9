import Foundation

/// The agent's wire protocol: one JSON object per line on the agent's stdin (requests) and
/// stdout (replies and events). docs/agent.md specifies it message by message.
public enum AgentProtocol {
    /// Bumped on any change a peer of the previous version would misread. Both ends must agree.
    public static let version = 2
    /// The agent says it is alive this often, also while it works on a long request.
    public static let heartbeatSeconds = 1.0
    /// The controller gives up on a host that has said nothing for this long.
    public static let silenceLimitSeconds = 20.0
    /// The agent gives up on a controller whose heartbeats stopped this long ago.
    public static let controllerSilenceSeconds = 6.0
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
        /// Fault changes (`actions`), made at `at` (the host's CLOCK_MONOTONIC, ns) if given, each
        /// with a revert deadline (`revertAfter`) the agent keeps. The answer has `began`.
        case inject
        /// Undoes `actions`, at `at` if given.
        case revert
        /// Byte counters of namespaces' interfaces, streamed as `sample` events until the duration passes or `cancel`.
        case sampleCounters
        /// Bytes (`data`, base64) for the stdin of the running `run` request `target`; `close` ends that stdin.
        case input
        /// The controller is alive (every second, from a thread of its own; no answer). An agent
        /// that has heard one and then nothing for `controllerSilenceSeconds` takes its
        /// controller for gone (a cut management path gives no end of file): it reverts its
        /// faults and stops what it runs.
        case heartbeat
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
    public var actions: [FaultAction]?
    public var at: UInt64?
    public var revertAfter: Double?
    public var interval: Double?
    public var duration: Double?
    /// `run`: give the command a stdin that `input` requests fill (else it reads /dev/null).
    public var input: Bool?
    public var data: String?
    public var close: Bool?

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
    /// inject, revert: when the host began the changes (its CLOCK_MONOTONIC, ns); `clock` is when it finished.
    public var began: UInt64?

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
    private var closed = false

    /// Closes the descriptor; later sends do nothing (its number may be reused by then).
    func close() { lock.withLock { if !closed { closed = true; _ = Glibc.close(fd) } } }
    var isClosed: Bool { lock.withLock { closed } }

    init(fd: Int32) {
        self.fd = fd
        encoder = JSONEncoder(); encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
    }

    func send<T: Encodable>(_ value: T) {
        guard var data = try? encoder.encode(value) else { return }
        data.append(0x0A)
        lock.withLock {
            guard !broken && !closed else { return }
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
