/// What a run does in a lab: workloads, faults and run settings, as the validator resolved them.

/// A free-form value handed to plugins as JSON.
public indirect enum JSONValue: Sendable, Hashable, Codable {
    case string(String), number(Double), bool(Bool), null
    case array([JSONValue]), object([String: JSONValue])

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.singleValueContainer()
        switch self {
        case let .string(s): try c.encode(s)
        case let .number(n): try c.encode(n)
        case let .bool(b): try c.encode(b)
        case .null: try c.encodeNil()
        case let .array(a): try c.encode(a)
        case let .object(o): try c.encode(o)
        }
    }
    public init(from decoder: any Decoder) throws {
        let c = try decoder.singleValueContainer()
        if c.decodeNil() { self = .null }
        else if let b = try? c.decode(Bool.self) { self = .bool(b) }
        else if let n = try? c.decode(Double.self) { self = .number(n) }
        else if let s = try? c.decode(String.self) { self = .string(s) }
        else if let a = try? c.decode([JSONValue].self) { self = .array(a) }
        else { self = .object(try c.decode([String: JSONValue].self)) }
    }
}

/// A workload as the validator resolved it: its kind with typed options, each range-checked
/// once, its nodes checked and its target address found. A run re-checks nothing of this.
public struct Workload: Sendable, Hashable {
    /// The workloads Pathbed plays itself; any other `plugin:` is the path of an external one.
    public static let builtInPlugins = ["iperf3", "ping", "transfer", "command"]

    public var name: String
    public var location: SourceLocation
    /// The `plugin:` as written (a built-in's name, or an external plugin's path), for reports.
    public var plugin: String
    /// Open MPTCP sockets (through mptcpize where the tool has no MPTCP of its own) in the client.
    public var mptcp: Bool
    /// And in the server: only where its node has MPTCP (a plain server takes MPTCP's fallback to TCP).
    public var mptcpServer: Bool
    public var start: Duration
    /// Positive: every workload ends.
    public var duration: Duration
    public var kind: Kind

    public init(name: String, location: SourceLocation, plugin: String, mptcp: Bool, mptcpServer: Bool, start: Duration, duration: Duration, kind: Kind) {
        self.name = name; self.location = location; self.plugin = plugin; self.mptcp = mptcp; self.mptcpServer = mptcpServer
        self.start = start; self.duration = duration; self.kind = kind
    }

    public enum Kind: Sendable, Hashable {
        case iperf3(Iperf3)
        case ping(Ping)
        case transfer(Transfer)
        case command(Command)
        case external(External)
    }

    /// iperf3 between two nodes: `iperf3 -s` in the server, the client connects to `target`.
    public struct Iperf3: Sendable, Hashable {
        public var client: String
        public var server: String
        public var target: IPAddress
        /// The server sends (`-R`): a download.
        public var reverse: Bool
        /// Parallel streams (`-P`), 1 to 128.
        public var streams: Int
        /// The client's own address to send from (`-B`).
        public var bind: IPAddress?
        public init(client: String, server: String, target: IPAddress, reverse: Bool = false, streams: Int = 1, bind: IPAddress? = nil) {
            self.client = client; self.server = server; self.target = target; self.reverse = reverse; self.streams = streams; self.bind = bind
        }
    }

    /// ping from a node to a target, one echo every `interval`.
    public struct Ping: Sendable, Hashable {
        public var client: String
        public var target: IPAddress
        /// 10 ms to 10 s.
        public var interval: Duration
        /// The source address to send from (`-I`).
        public var bind: IPAddress?
        public init(client: String, target: IPAddress, interval: Duration = .ms(200), bind: IPAddress? = nil) {
            self.client = client; self.target = target; self.interval = interval; self.bind = bind
        }
    }

    /// Files of the given sizes, fetched from an HTTP server in `server` by curl in `client`.
    public struct Transfer: Sendable, Hashable {
        public var client: String
        public var server: String
        public var target: IPAddress
        /// Bytes, each 1 B to 16 GiB.
        public var sizes: [UInt64]
        /// Transfers of each size, 1 to 10,000.
        public var repeats: Int
    }

    /// A long-lived program in a node, and optionally its server side in another.
    public struct Command: Sendable, Hashable {
        public var node: String
        public var argv: [String]
        public var server: String?
        public var serverArgv: [String]?
        /// TCP ports the server side must listen on before the run starts.
        public var serverPorts: [Int]
        public init(node: String, argv: [String], server: String? = nil, serverArgv: [String]? = nil, serverPorts: [Int] = []) {
            self.node = node; self.argv = argv; self.server = server; self.serverArgv = serverArgv; self.serverPorts = serverPorts
        }
    }

    /// A program of the user's, speaking the plugin protocol (docs/plugins.md).
    public struct External: Sendable, Hashable {
        /// Absolute path of an executable regular file.
        public var program: String
        /// Where it runs (the `client:` or `node:`), and its server side's node.
        public var node: String
        public var server: String?
        /// `with:`, passed on as written.
        public var options: JSONValue?
    }

    /// The nodes the workload runs in (its client side first).
    public var nodes: [String] {
        switch kind {
        case let .iperf3(w): return [w.client, w.server]
        case let .ping(w): return [w.client]
        case let .transfer(w): return [w.client, w.server]
        case let .command(w): return [w.node] + (w.server.map { [$0] } ?? [])
        case let .external(w): return [w.node] + (w.server.map { [$0] } ?? [])
        }
    }
}

/// A fault as the validator resolved it: its kind with typed options, its link or nodes found,
/// its trace read. A run re-checks nothing of this.
public struct FaultEvent: Sendable, Hashable {
    /// The `fault:` names, as written in files and results.
    public enum Name: String, Sendable, Codable, CaseIterable {
        case linkDown = "link-down", linkFlap = "link-flap", profile, lossBurst = "loss-burst", partition, trace, plugin
    }
    /// How repetitions are spaced when `random:` is given.
    public enum Spacing: String, Sendable, Codable { case exponential, uniform }

    public var location: SourceLocation
    public var at: Duration
    /// Positive: every fault ends.
    public var duration: Duration
    /// The period of repetitions (with `count` above 1).
    public var every: Duration?
    public var count: Int
    /// Random gaps between repetitions, seeded by `run.seed`.
    public var random: Spacing?
    public var kind: Kind

    public enum Kind: Sendable, Hashable {
        /// Both ends of a link down; `reannounce`: its MPTCP endpoints added again when it returns.
        case linkDown(link: Int, reannounce: Bool)
        /// As `linkDown`, named for repeated faults.
        case linkFlap(link: Int, reannounce: Bool)
        /// The link switched to another profile of the file.
        case profile(link: Int, profile: String)
        /// The link's profile with this random loss added.
        case lossBurst(link: Int, loss: Percent)
        /// The link's rate (and delay, loss) replayed from a CSV file, row by row.
        case trace(link: Int, file: String, rows: [TraceRow])
        /// The nodes and the rest of the lab stop reaching each other.
        case partition(nodes: [String])
        /// An external program plays it (docs/plugins.md).
        case plugin(External)
    }

    /// A fault of the user's: the program, the node it runs in (and a peer), its link if any.
    public struct External: Sendable, Hashable {
        public var program: String
        /// `plugin:` as written, for labels.
        public var written: String
        public var node: String
        public var peer: String?
        public var link: Int?
        public var options: JSONValue?
    }

    public var name: Name {
        switch kind {
        case .linkDown: .linkDown
        case .linkFlap: .linkFlap
        case .profile: .profile
        case .lossBurst: .lossBurst
        case .trace: .trace
        case .partition: .partition
        case .plugin: .plugin
        }
    }

    /// The link it acts on, if any.
    public var link: Int? {
        switch kind {
        case let .linkDown(l, _), let .linkFlap(l, _), let .profile(l, _), let .lossBurst(l, _), let .trace(l, _, _): return l
        case .partition: return nil
        case let .plugin(e): return e.link
        }
    }

    /// When the last repetition ends (validation made sure this does not overflow).
    public var end: Duration {
        let lastStart = at + (every ?? .zero) * Int64(count - 1)
        return lastStart + duration
    }
}

/// One row of a trace: from `time` seconds after the fault's start, the link's rate, and its
/// delay and loss when given.
public struct TraceRow: Sendable, Hashable {
    public var time: Double
    public var rate: Bitrate
    public var delay: Duration?
    public var loss: Percent?
    public init(time: Double, rate: Bitrate, delay: Duration? = nil, loss: Percent? = nil) {
        self.time = time; self.rate = rate; self.delay = delay; self.loss = loss
    }
}

public struct RunSettings: Sendable, Hashable {
    public var duration: Duration?
    public var seed: Int?
    /// `capture-snaplen:` bytes kept of each captured packet (64-65535).
    public var captureSnaplen: Int?
    /// `capture-limit:` the most megabytes captured per link (1-2000).
    public var captureLimitMB: Int?
    /// `capture-filter:` a pcap filter for the captures (printable ASCII, at most 1,000 characters).
    public var captureFilter: String?
}

/// A capture filter as `dumpcap -f` takes it (pcap-filter syntax; dumpcap itself checks it
/// when it starts, and its words are the error): printable ASCII on one line, at most 1,000
/// characters.
public enum CaptureFilter {
    public static let pattern = "^[ -~]{1,1000}$"
    public static func isAcceptable(_ s: String) -> Bool { s.range(of: pattern, options: .regularExpression) != nil }
}
