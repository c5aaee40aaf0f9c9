import Foundation
import Planning
import TopologyModel

/// The agent's wire protocol: one JSON object per line on the agent's stdin (requests) and
/// stdout (replies and events). Each line is `{"id": N, "CASE": {FIELDS}}`: the request's id and
/// one key, the message's name, whose object holds exactly that message's fields. docs/agent.md
/// specifies it message by message.
public enum AgentProtocol {
    /// Bumped on any change a peer of the previous version would misread. Both ends must agree.
    public static let version = 5
    /// The agent says it is alive this often, also while it works on a long request.
    public static let heartbeatSeconds = 1.0
    /// The controller gives up on a host that has said nothing for this long.
    public static let silenceLimitSeconds = 20.0
    /// ... or this long for a VM `pathbed vm up` booted under software emulation: there a guest
    /// whose one CPU is busy with its network stack (netem and htb queues full under a download)
    /// can starve every process of it for over 20 s (a VM test's run failed so, once in CI).
    public static let emulatedSilenceLimitSeconds = 60.0
    /// The agent gives up on a controller whose heartbeats stopped this long ago.
    public static let controllerSilenceSeconds = 6.0
    /// The longest line either end reads; a longer one is a protocol error, not a reason to wait.
    public static let lineLimit = 64 << 20
}

/// A request from the controller.
public enum AgentRequest: Codable, Sendable, Equatable {
    /// First request: versions are compared, the agent answers with its host.
    case hello(protocol: Int, version: String, host: String)
    case info
    case capabilities(sysctls: [String])
    case apply(operations: [LabOperation])
    case rollBack
    case namespaceNames
    case namespaces(lab: String)
    case interfaces(namespace: String)
    case removeLab(lab: String, waitForKernel: Bool)
    case stopProcesses(lab: String, sparing: [Int32]?)
    case processes(lab: String)
    case removeNamespaces(names: [String])
    case deleteLink(link: InterfaceRef)
    case setProfile(link: InterfaceRef, from: QdiscSpec?, to: QdiscSpec?)
    case restoreMTUs(mtus: [MTUChange], lab: String)
    /// The underlays whose MTU records on the host name `lab` among their holders; only those
    /// `underlays` name (an interface, or the address one holds: what the topology gives the host).
    case heldMTUs(lab: String, underlays: [String])
    /// A command to its end; with `input`, its stdin is what `input` requests about this one bring.
    case run(argv: [String], namespace: String?, timeout: Double?, input: Bool)
    case tunnelKeys
    /// Fault changes, made at `at` (the host's CLOCK_MONOTONIC, ns) if given, each with a revert
    /// deadline the agent keeps (`revertAfter` seconds).
    case inject(actions: [FaultAction], at: UInt64?, revertAfter: Double?)
    /// Undoes fault changes, at `at` if given.
    case revert(actions: [FaultAction], at: UInt64?)
    /// Byte counters of namespaces' interfaces, streamed as `sample` events until `duration`
    /// passes or the request is cancelled.
    case sampleCounters(namespaces: [String], sockets: [String]?, interval: Double, duration: Double)
    /// Bytes (base64) for the stdin of the running `run` request `target`; `close` ends that stdin.
    case input(target: Int, data: String, close: Bool)
    /// The controller is alive (every second; no answer). An agent that has heard one and then
    /// nothing for `controllerSilenceSeconds` takes its controller for gone: it reverts its faults
    /// and stops what it runs.
    case heartbeat
    /// Stops request `target` (an `apply` rolls back; a `run` has its process group killed).
    case cancel(target: Int)
    /// Ends the session: the agent stops what it runs and exits.
    case bye

    /// The message's name on the wire.
    public var name: String {
        switch self {
        case .hello: "hello"
        case .info: "info"
        case .capabilities: "capabilities"
        case .apply: "apply"
        case .rollBack: "rollBack"
        case .namespaceNames: "namespaceNames"
        case .namespaces: "namespaces"
        case .interfaces: "interfaces"
        case .removeLab: "removeLab"
        case .stopProcesses: "stopProcesses"
        case .processes: "processes"
        case .removeNamespaces: "removeNamespaces"
        case .deleteLink: "deleteLink"
        case .setProfile: "setProfile"
        case .restoreMTUs: "restoreMTUs"
        case .heldMTUs: "heldMTUs"
        case .run: "run"
        case .tunnelKeys: "tunnelKeys"
        case .inject: "inject"
        case .revert: "revert"
        case .sampleCounters: "sampleCounters"
        case .input: "input"
        case .heartbeat: "heartbeat"
        case .cancel: "cancel"
        case .bye: "bye"
        }
    }
}

/// A tunnel key (gretap) or VNI (vxlan) in use on a host, and the device that uses it.
public struct KeyedTunnel: Codable, Sendable, Equatable {
    public var key: UInt32
    public var use: TunnelUse
    /// gretap (a GRE key) or vxlan (a VNI).
    public var kind: TunnelKind
}

/// A line from the agent: the end of a request (its result, or `error`), an event about a
/// request under way (`progress`, `output`, `sample`), or a `heartbeat`.
public enum AgentReply: Codable, Sendable {
    // Events.
    case heartbeat
    case progress(done: Int)
    /// Output bytes (base64: commands may write anything).
    case output(stream: StandardStream, data: String)
    case sample(clock: UInt64, counters: [InterfaceCounters], health: HealthSample?, sockets: [SocketReading]?)

    // Results.
    /// The request ended and has nothing to say (removeNamespaces, deleteLink, setProfile).
    case done
    case hello(protocol: Int, host: HostInfo)
    case info(host: HostInfo)
    case capabilities(found: Capabilities)
    case applied(changedMTUs: [MTUChange])
    /// heldMTUs: each underlay a lab holds raised, with the MTU it had before.
    case mtus(mtus: [MTUChange])
    /// What could not be undone (rollBack, restoreMTUs).
    case failures(failures: [String])
    case namespaceNames(names: [String])
    case namespaces(namespaces: [NamespaceState])
    case interfaces(interfaces: [InterfaceState])
    case removal(report: RemovalReport)
    case stopped(count: Int)
    case processes(pids: [Int32])
    case exit(code: Int32)
    case tunnelKeys(keys: [KeyedTunnel])
    /// inject, revert: when the host began the changes (its CLOCK_MONOTONIC, ns); the line's
    /// `clock` is when it finished.
    case changed(began: UInt64)
    /// The request failed: `kind` is `failed`, `interrupted` (with its signal) or `protocol`.
    case error(kind: AgentError.Kind, message: String, fix: String?, signal: Int32?)

    /// A failure, as a reply.
    public static func failure(_ e: AgentError) -> AgentReply { .error(kind: e.kind, message: e.message, fix: e.fix, signal: e.signal) }

    /// The failure this reply says, if it says one.
    public var failure: AgentError? {
        if case let .error(kind, message, fix, signal) = self { return AgentError(kind: kind, message: message, fix: fix, signal: signal) }
        return nil
    }

    /// True for the lines that say something about a request under way (the request goes on).
    public var isEvent: Bool {
        switch self {
        case .heartbeat, .progress, .output, .sample: true
        default: false
        }
    }
}

/// Why a request failed on the agent's side.
public struct AgentError: Codable, Sendable, Error {
    public enum Kind: String, Codable, Sendable { case failed, interrupted, protocolError = "protocol" }
    public var kind: Kind
    public var message: String
    public var fix: String?
    /// For `interrupted`: the signal.
    public var signal: Int32?

    public init(kind: Kind, message: String, fix: String? = nil, signal: Int32? = nil) {
        self.kind = kind; self.message = message; self.fix = fix; self.signal = signal
    }
}

/// A request and its id, as one line: `{"id": 3, "apply": {"operations": [...]}}`.
public struct RequestLine: Codable, Sendable {
    public var id: Int
    public var request: AgentRequest
    public init(id: Int, _ request: AgentRequest) { self.id = id; self.request = request }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WireKey.self)
        try c.encode(id, forKey: WireKey("id"))
        try request.encode(to: encoder)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WireKey.self)
        id = try c.decode(Int.self, forKey: WireKey("id"))
        request = try AgentRequest(from: decoder)
    }
}

/// A reply and the request it answers (nil: a heartbeat), stamped with the host's
/// CLOCK_MONOTONIC in nanoseconds when the line was written.
public struct ReplyLine: Codable, Sendable {
    public var id: Int?
    public var clock: UInt64
    public var reply: AgentReply
    public init(id: Int?, _ reply: AgentReply, clock: UInt64 = monotonicNanoseconds()) { self.id = id; self.reply = reply; self.clock = clock }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: WireKey.self)
        try c.encodeIfPresent(id, forKey: WireKey("id"))
        try c.encode(clock, forKey: WireKey("clock"))
        try reply.encode(to: encoder)
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: WireKey.self)
        id = try c.decodeIfPresent(Int.self, forKey: WireKey("id"))
        clock = try c.decode(UInt64.self, forKey: WireKey("clock"))
        reply = try AgentReply(from: decoder)
    }
}

/// The envelope's own keys, beside the message's.
struct WireKey: CodingKey {
    var stringValue: String
    init(_ s: String) { stringValue = s }
    init(stringValue: String) { self.stringValue = stringValue }
    var intValue: Int? { nil }
    init?(intValue: Int) { nil }
}

/// Writes JSON lines to a file descriptor, one whole line per write, from any thread.
final class LineWriter: @unchecked Sendable {
    let fd: Int32
    private let lock = NSLock()
    private let encoder: JSONEncoder
    private(set) var broken = false
    private var closed = false
    /// When the write under way began (0: none): a write blocked for seconds means the peer stopped reading.
    private let writing = NSLock()
    private var writingSince: UInt64 = 0
    var isStuckWriting: Bool {
        writing.withLock { writingSince > 0 && monotonicNanoseconds() - writingSince > 5_000_000_000 }
    }

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
            writing.withLock { writingSince = monotonicNanoseconds() }
            defer { writing.withLock { writingSince = 0 } }
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

/// Reads lines from a file descriptor (blocking), at most `limit` bytes each, in time linear in
/// what it reads: each byte is searched for a newline once, and the buffer is compacted only
/// when its consumed part is at least half of it (a 60 MB line is not copied per read).
final class LineReader {
    enum Line { case line(Data), tooLong(Int), end }
    let fd: Int32
    let limit: Int
    private var buffer: [UInt8] = []
    /// Where the current line begins in `buffer`, and how much of it was searched already.
    private var start = 0
    private var scanned = 0
    private var chunk = [UInt8](repeating: 0, count: 65536)
    /// Skipping the rest of a line that was too long.
    private var skipping = false

    init(fd: Int32, limit: Int = AgentProtocol.lineLimit) { self.fd = fd; self.limit = limit }

    /// The next line without its newline; `tooLong` for a line past the limit (its bytes are
    /// dropped as they come, never kept); `end` at end of file or on a read error.
    func next() -> Line {
        while true {
            if let nl = buffer[(start + scanned)...].firstIndex(of: 0x0A) {
                let line = Data(buffer[start..<nl])
                start = nl + 1
                scanned = 0
                if start >= buffer.count - start { buffer.removeFirst(start); start = 0 }
                if skipping { skipping = false; continue }
                return .line(line)
            }
            scanned = buffer.count - start
            if scanned > limit {
                let dropped = scanned
                buffer.removeAll(keepingCapacity: true)
                start = 0; scanned = 0
                if !skipping { skipping = true; return .tooLong(dropped) }
            }
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { return .end }
            if start > 0 && start >= buffer.count - start { buffer.removeFirst(start); start = 0 }
            buffer.append(contentsOf: chunk[0..<n])
        }
    }
}
