import Foundation

extension RunResults {
    /// One TCP socket of a workload, sampled from the kernel every 100 ms as `ss -tiM` reads it
    /// (INET_DIAG with TCP_INFO; for MPTCP, one per subflow, tied to its connection's token).
    public struct Subflow: Codable, Sendable, Equatable {
        /// The workload whose connection it belongs to (by its port), nil where none claims it.
        public var workload: String?
        /// The node it was sampled in, and that node's side of the workload (`client`, `server`).
        public var node: String
        public var side: String?
        /// The MPTCP connection's token as this node knows it; nil for plain TCP.
        public var token: String?
        /// `ADDR:PORT` (IPv4-mapped IPv6 addresses written as IPv4).
        public var local: String
        public var remote: String
        /// The node's interface that holds the local address (or that the socket is bound to).
        public var interface: String?
        /// The path it takes, named by the client's end: `NODE:INTERFACE` of the address on the
        /// workload's client side (the server sees every subflow arrive on one interface).
        public var path: String?
        /// Run seconds of each sample, and the socket's figures then.
        public var times: [Double]
        /// tcpi_bytes_acked (data this end sent and had acknowledged) and tcpi_bytes_received.
        public var bytesAcked: [UInt64]
        public var bytesReceived: [UInt64]
        /// Congestion window (segments), smoothed RTT (ms), retransmitted segments in all.
        public var cwnd: [Int]
        public var srttMs: [Double]
        public var retransmits: [Int]

        public init(workload: String?, node: String, side: String?, token: String?, local: String, remote: String, interface: String?) {
            self.workload = workload; self.node = node; self.side = side; self.token = token; self.local = local; self.remote = remote
            self.interface = interface; times = []; bytesAcked = []; bytesReceived = []; cwnd = []; srttMs = []; retransmits = []
        }

        /// Bytes it carried (sent and acknowledged, plus received) over its samples.
        public var bytes: UInt64 {
            guard let a0 = bytesAcked.first, let a1 = bytesAcked.last, let r0 = bytesReceived.first, let r1 = bytesReceived.last else { return 0 }
            return (a1 >= a0 ? a1 - a0 : 0) + (r1 >= r0 ? r1 - r0 : 0)
        }
        /// Bytes this end sent (and had acknowledged).
        public var sent: UInt64 { guard let a0 = bytesAcked.first, let a1 = bytesAcked.last, a1 >= a0 else { return 0 }; return a1 - a0 }

        /// What a table or legend calls it: its path and the client's port.
        public var label: String {
            let clientEnd = side == "server" ? remote : local
            return "\(path ?? interface ?? "?") :\(clientEnd.split(separator: ":").last ?? "")"
        }

        /// Its smoothed RTT where it had data acknowledged since the sample before (an idle
        /// subflow's srtt is its last estimate, not a measurement).
        public var measuredRTT: Series {
            var s = Series(name: "\(workload.map { "\($0): " } ?? "")\(label)", unit: "ms", quantity: .rtt)
            for i in times.indices.dropFirst() where bytesAcked[i] > bytesAcked[i - 1] && srttMs[i] > 0 {
                s.times.append(times[i]); s.values.append(srttMs[i])
            }
            return s
        }

        /// Its throughput (Mbit/s) from the byte counters.
        public var throughput: Series {
            var s = Series.rate(name: label, times: times, bytes: zip(bytesAcked, bytesReceived).map { $0 &+ $1 })
            s.name = "\(workload.map { "\($0): " } ?? "")\(label)"
            return s
        }

        /// Why it cannot be read: arrays of different lengths, or figures no kernel gives.
        func problem() -> String? {
            let n = times.count
            guard [bytesAcked.count, bytesReceived.count, cwnd.count, srttMs.count, retransmits.count].allSatisfy({ $0 == n }) else {
                return "subflow \(local) → \(remote): its arrays have different lengths"
            }
            guard times.allSatisfy({ $0.isFinite && abs($0) <= 1e10 }), srttMs.allSatisfy({ $0.isFinite && $0 >= 0 && $0 <= 1e7 }),
                  cwnd.allSatisfy({ $0 >= 0 }), retransmits.allSatisfy({ $0 >= 0 }) else {
                return "subflow \(local) → \(remote): a time, RTT, window or count out of range"
            }
            return nil
        }
    }
}

extension RunResults {
    /// One MPTCP connection of a workload, sampled with its subflows (INET_DIAG with MPTCP_INFO,
    /// as `ss -Mi` reads it): the data level, above its subflows.
    public struct Connection: Codable, Sendable, Equatable {
        public var workload: String?
        public var node: String
        public var side: String?
        /// Its token on this node (the one its subflows carry, as in `subflows`).
        public var token: String
        /// `ADDR:PORT` of its first subflow.
        public var local: String
        public var remote: String
        public var times: [Double]
        /// Data this end sent and had acknowledged at the MPTCP level, and data received: the
        /// kernel's byte counters (`byteCounters`, 6.2 and later) or its data sequence numbers
        /// snd_una and rcv_nxt (6.1): either way, differences are bytes.
        public var dataAcked: [UInt64]
        public var dataReceived: [UInt64]
        public var byteCounters: Bool
        /// Its subflows at each sample.
        public var subflows: [Int]

        public init(workload: String?, node: String, side: String?, token: String, local: String, remote: String, byteCounters: Bool) {
            self.workload = workload; self.node = node; self.side = side; self.token = token; self.local = local; self.remote = remote
            self.byteCounters = byteCounters; times = []; dataAcked = []; dataReceived = []; subflows = []
        }

        /// Data it sent (and had acknowledged) and received over its samples.
        public var sent: UInt64 { guard let a = dataAcked.first, let b = dataAcked.last else { return 0 }; return b &- a < 1 << 62 ? b &- a : 0 }
        public var received: UInt64 { guard let a = dataReceived.first, let b = dataReceived.last else { return 0 }; return b &- a < 1 << 62 ? b &- a : 0 }

        /// Its data-level throughput (Mbit/s), both directions.
        public var throughput: Series {
            guard let a0 = dataAcked.first, let r0 = dataReceived.first else { return Series(name: "", unit: "Mbit/s", quantity: .throughput) }
            let carried = zip(dataAcked, dataReceived).map { a, r in (a &- a0) &+ (r &- r0) }
            var s = Series.rate(name: "", times: times, bytes: carried)
            s.name = "\(workload.map { "\($0): " } ?? "")connection (data level)"
            return s
        }

        func problem() -> String? {
            let n = times.count
            guard [dataAcked.count, dataReceived.count, subflows.count].allSatisfy({ $0 == n }) else {
                return "connection \(token): its arrays have different lengths"
            }
            guard times.allSatisfy({ $0.isFinite && abs($0) <= 1e10 }), subflows.allSatisfy({ (0...255).contains($0) }) else {
                return "connection \(token): a time or subflow count out of range"
            }
            return nil
        }
    }

    /// A workload's MPTCP connections as its sending side saw them, each with the bytes its
    /// subflows had acknowledged over the same samples (more than its data: data sent on more
    /// than one subflow, reinjected).
    public func sendingConnections(_ workload: String, side: String) -> [(connection: Connection, subflowBytes: UInt64)] {
        let mine = (connections ?? []).filter { $0.workload == workload && $0.side == side }
        return mine.map { c in
            guard let from = c.times.first, let to = c.times.last else { return (c, 0) }
            let sf = (subflows ?? []).filter { $0.workload == workload && $0.side == side && $0.token == c.token }
            // Each subflow's bytes acknowledged at its last sample up to the connection's first
            // and last samples (the connection leaves ESTABLISHED before its subflows do).
            func at(_ s: Subflow, _ t: Double) -> UInt64? { s.times.lastIndex { $0 <= t + 1e-6 }.map { s.bytesAcked[$0] } ?? s.bytesAcked.first }
            let carried = sf.map { s -> UInt64 in
                guard let a = at(s, from), let b = at(s, to), b >= a, s.times.count == s.bytesAcked.count else { return 0 }
                return b - a
            }
            return (c, carried.reduce(0, &+))
        }
    }
}

extension RunResults {
    /// Each workload's sockets as its sending side saw them (the side that had the more bytes
    /// acknowledged: its smoothed RTT is the path's), those that carried data, by workload.
    public var sendingSubflows: [(workload: String, side: String, subflows: [Subflow])] {
        var names: [String] = []
        for s in subflows ?? [] { if let w = s.workload, !names.contains(w) { names.append(w) } }
        return names.compactMap { w in
            let mine = (subflows ?? []).filter { $0.workload == w }
            let bySide = Dictionary(grouping: mine, by: { $0.side ?? "?" })
            guard let side = bySide.max(by: { a, b in a.value.map(\.sent).reduce(0, &+) < b.value.map(\.sent).reduce(0, &+) })?.key else { return nil }
            let carried = bySide[side]!.filter { $0.bytes > 0 }
            return carried.isEmpty ? nil : (w, side, carried)
        }
    }

    /// A workload's bytes per interface, as shares of its own sockets' bytes (its path use,
    /// not its node's): nil where its sockets were not sampled.
    public func subflowShares(_ workload: String) -> [String: Double]? {
        guard let e = sendingSubflows.first(where: { $0.workload == workload }) else { return nil }
        let total = Double(e.subflows.map(\.bytes).reduce(0, &+))
        guard total > 0 else { return nil }
        return Dictionary(grouping: e.subflows, by: { $0.path ?? $0.interface ?? "?" }).mapValues { Double($0.map(\.bytes).reduce(0, &+)) / total }
    }
}

/// One established TCP socket as a host's sampler read it (INET_DIAG; Runs turns each
/// `SocketReading` into one).
public struct SocketLine: Sendable, Equatable {
    public var localAddress: String
    public var localPort: Int
    public var remoteAddress: String
    public var remotePort: Int
    /// The device of `ADDR%DEV:PORT`, when bound.
    public var device: String?
    /// An MPTCP subflow's connection token on this end (hex); nil for plain TCP.
    public var token: String?
    public var cwnd: Int = 0
    public var srttMs: Double = 0
    public var bytesAcked: UInt64 = 0
    public var bytesReceived: UInt64 = 0
    public var retransmits: Int = 0

    public init(localAddress: String, localPort: Int, remoteAddress: String, remotePort: Int, device: String? = nil) {
        self.localAddress = localAddress; self.localPort = localPort; self.remoteAddress = remoteAddress
        self.remotePort = remotePort; self.device = device
    }
}

/// Subflows from the socket readings of one node: sockets grouped by their addresses, each
/// tied to its MPTCP connection and workload (by the port the workload's server listens on).
public struct SubflowTable: Sendable {
    public struct Claim: Sendable {
        public var workload: String
        public var client: String
        public var server: String
        public var ports: [Int]
        public init(workload: String, client: String, server: String, ports: [Int]) { self.workload = workload; self.client = client; self.server = server; self.ports = ports }
    }
    /// The most sockets kept per node (a run that opens thousands keeps the first).
    public static let maximumSockets = 512
    /// The most samples kept per socket (an hour at 100 ms).
    public static let maximumSamples = 36_000

    let node: String
    /// Address → interface in this node, and address → `NODE:INTERFACE` in the lab.
    let interfaces: [String: String]
    let paths: [String: String]
    private var order: [String] = []
    private var sockets: [String: RunResults.Subflow] = [:]
    public private(set) var leftOut = 0

    public init(node: String, interfaces: [String: String], paths: [String: String] = [:]) { self.node = node; self.interfaces = interfaces; self.paths = paths }

    /// One batch of `ss`'s lines taken at run second `t`.
    public mutating func add(_ lines: [SocketLine], at t: Double) {
        for s in lines {
            let key = "\(s.localAddress):\(s.localPort)>\(s.remoteAddress):\(s.remotePort)"
            if sockets[key] == nil {
                guard sockets.count < Self.maximumSockets else { leftOut += 1; continue }
                order.append(key)
                sockets[key] = RunResults.Subflow(workload: nil, node: node, side: nil, token: s.token, local: "\(s.localAddress):\(s.localPort)",
                                                  remote: "\(s.remoteAddress):\(s.remotePort)", interface: s.device ?? interfaces[s.localAddress])
            }
            guard sockets[key]!.times.count < Self.maximumSamples else { leftOut += 1; continue }
            sockets[key]!.times.append(t); sockets[key]!.bytesAcked.append(s.bytesAcked); sockets[key]!.bytesReceived.append(s.bytesReceived)
            sockets[key]!.cwnd.append(s.cwnd); sockets[key]!.srttMs.append(s.srttMs); sockets[key]!.retransmits.append(s.retransmits)
        }
    }

    /// The sockets, each claimed by the workload whose server port its connection uses: in
    /// the client node the remote port, in the server node the local one. A subflow's ports
    /// are its connection's (a join may use others): those of any subflow of the same token
    /// that a workload claims.
    public func subflows(_ claims: [Claim]) -> [RunResults.Subflow] {
        var claimedTokens: [String: (Int, Int)] = [:]
        for key in order {
            let s = sockets[key]!
            guard let token = s.token, claimedTokens[token] == nil else { continue }
            let lp = Int(s.local.split(separator: ":").last ?? "") ?? 0, rp = Int(s.remote.split(separator: ":").last ?? "") ?? 0
            if claims.contains(where: { ($0.client == node && $0.ports.contains(rp)) || ($0.server == node && $0.ports.contains(lp)) }) { claimedTokens[token] = (lp, rp) }
        }
        return order.map { key in
            var s = sockets[key]!
            let ports: (Int, Int) = s.token.flatMap { claimedTokens[$0] }
                ?? (Int(s.local.split(separator: ":").last ?? "") ?? 0, Int(s.remote.split(separator: ":").last ?? "") ?? 0)
            let localAddress = String(s.local[..<(s.local.lastIndex(of: ":") ?? s.local.endIndex)])
            let remoteAddress = String(s.remote[..<(s.remote.lastIndex(of: ":") ?? s.remote.endIndex)])
            if let c = claims.first(where: { $0.client == node && $0.ports.contains(ports.1) }) {
                s.workload = c.workload; s.side = "client"; s.path = paths[localAddress]
            } else if let c = claims.first(where: { $0.server == node && $0.ports.contains(ports.0) }) {
                s.workload = c.workload; s.side = "server"; s.path = paths[remoteAddress]
            } else {
                s.path = paths[localAddress]
            }
            return s
        }
    }
}
