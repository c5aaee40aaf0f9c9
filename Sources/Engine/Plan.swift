import TopologyModel

/// An interface inside a namespace.
public struct InterfaceRef: Codable, Hashable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public init(namespace: String, name: String) { self.namespace = namespace; self.name = name }
    public var description: String { "\(name)@\(namespace)" }
}

/// netem parameters in the units people write; converted for the kernel in the netlink layer.
public struct NetemSpec: Codable, Hashable, Sendable {
    public var delayMicroseconds: Int64 = 0
    public var jitterMicroseconds: Int64 = 0
    public var delayCorrelation: Double?
    public var distribution: String?
    /// Random loss (percent) and its correlation.
    public var loss: Double?
    public var lossCorrelation: Double?
    /// Gilbert-Elliott: p, r, 1-h, 1-k in percent.
    public var gemodel: [Double]?
    public var duplicate: Double?
    public var corrupt: Double?
    public var reorder: Double?
    public var reorderCorrelation: Double?
    public var gap: Int?
    public var limitPackets: UInt32

    public init(limitPackets: UInt32) { self.limitPackets = limitPackets }
}

/// How one interface's egress is shaped.
public struct QdiscSpec: Codable, Hashable, Sendable {
    /// Rate limit, bits per second (tbf alone, or htb above netem, or htb alone past tbf's range).
    public var rateBitsPerSecond: UInt64?
    public var burstBytes: UInt32?
    /// Queue length in bytes for tbf.
    public var limitBytes: UInt32?
    public var netem: NetemSpec?
    /// The profile it comes from, for people reading a plan.
    public var profile: String

    public init(profile: String) { self.profile = profile }

    /// libnl 3.7 sets tbf's rate as a 32-bit signed count of bytes per second (17.18 Gbit/s);
    /// faster rates go through htb, whose rate is 64 bits.
    public static let tbfMaxBitsPerSecond = UInt64(Int32.max) * 8

    /// The root qdisc's kind for this spec.
    public var rootKind: String? {
        switch (rateBitsPerSecond, netem != nil) {
        case (let r?, false): return r <= Self.tbfMaxBitsPerSecond ? "tbf" : "htb"
        case (_?, true): return "htb"
        case (nil, true): return "netem"
        case (nil, false): return nil
        }
    }

    /// Which qdiscs the kernel must offer for this spec.
    public var kinds: [String] {
        guard let root = rootKind else { return [] }
        return root == "htb" && netem != nil ? ["htb", "netem"] : [root]
    }
}

/// A route as `up` adds it: destination nil is the default route.
public struct RouteSpec: Codable, Hashable, Sendable {
    public var destination: IPNetwork?
    public var family: IPAddress.Family
    public var via: IPAddress?
    public var device: String?
    public var source: IPAddress?
    public var metric: UInt32?
    public var table: UInt32?
    public var scopeLink: Bool

    public init(destination: IPNetwork?, family: IPAddress.Family, via: IPAddress? = nil, device: String? = nil, source: IPAddress? = nil,
                metric: UInt32? = nil, table: UInt32? = nil, scopeLink: Bool = false) {
        self.destination = destination; self.family = family; self.via = via; self.device = device; self.source = source
        self.metric = metric; self.table = table; self.scopeLink = scopeLink
    }

    public var destinationText: String { destination?.description ?? "default" }
}

/// One kernel change `up` makes, in order. Values are typed and bounded (validation made them):
/// nothing here is text for the executor to parse again. Every object carries the lab's tag.
public enum Operation: Codable, Hashable, Sendable {
    /// The host's underlay interface (named, or the one that has `address`) gets this MTU.
    case setUnderlayMTU(interface: String?, address: IPAddress?, mtu: UInt32)
    /// MPTCP off in a namespace of a host declared plain (a no-op where the kernel has no MPTCP).
    case disableMPTCP(namespace: String)
    /// A namespace, tagged as the lab's (its loopback's alias names the lab).
    case createNamespace(name: String, lab: String)
    case setSysctl(namespace: String, key: String, value: String)
    case createBridge(InterfaceRef, stp: Bool, group: UInt32)
    case createVeth(InterfaceRef, peer: InterfaceRef, mtu: UInt32, group: UInt32)
    case createGretap(InterfaceRef, local: IPAddress, remote: IPAddress, key: UInt32, mtu: UInt32, group: UInt32)
    case enslave(InterfaceRef, bridge: String)
    case addAddress(InterfaceRef, address: IPNetwork)
    case setUp(InterfaceRef)
    case setQdisc(InterfaceRef, QdiscSpec)
    case addRoute(namespace: String, RouteSpec)
    case addRule(namespace: String, from: IPAddress, table: UInt32, priority: UInt32)
    case setMPTCPLimits(namespace: String, subflows: UInt32?, addAddrAccepted: UInt32?)
    case addMPTCPEndpoint(namespace: String, address: IPAddress, device: String, id: UInt8, flags: [MPTCPEndpoint.Flag])

    /// The operation's kind, as its case is named (for timings and summaries).
    public var kind: String {
        let text = "\(self)"
        return String(text.prefix { $0 != "(" })
    }

    /// The namespace an operation works in (nil for the host's own).
    public var namespace: String? {
        switch self {
        case .setUnderlayMTU: return nil
        case let .createNamespace(n, _): return n
        case let .setSysctl(ns, _, _), let .disableMPTCP(ns), let .addRoute(ns, _), let .addRule(ns, _, _, _),
             let .setMPTCPLimits(ns, _, _), let .addMPTCPEndpoint(ns, _, _, _, _):
            return ns
        case let .createBridge(r, _, _), let .createVeth(r, _, _, _), let .createGretap(r, _, _, _, _, _), let .enslave(r, _),
             let .addAddress(r, _), let .setUp(r), let .setQdisc(r, _):
            return r.namespace
        }
    }

    /// The same change as iproute2 / tc commands, for people reading a plan. Every value is
    /// shell-quoted, so pasting the text runs exactly these commands and nothing else.
    public var command: String { commands.joined(separator: "; ") }

    public var commands: [String] {
        switch self {
        case let .setUnderlayMTU(interface, address, mtu):
            return ["ip link set \(interface.map(sh) ?? address.map { "\"$(ip -o addr show to \($0) | cut -d' ' -f2)\"" } ?? "UNDERLAY-INTERFACE") mtu \(mtu)"]
        case let .disableMPTCP(ns):
            return ["ip netns exec \(sh(ns)) sysctl -qw net.mptcp.enabled=0"]
        case let .createNamespace(name, lab):
            return ["ip netns add \(sh(name))", "ip -n \(sh(name)) link set lo alias \(sh(Ownership.namespaceTag(lab: lab)))"]
        case let .setSysctl(ns, key, value):
            return ["ip netns exec \(sh(ns)) sysctl -qw \(sh("\(key)=\(value)"))"]
        case let .createBridge(r, stp, group):
            return ["ip -n \(sh(r.namespace)) link add \(sh(r.name)) group \(group) type bridge stp_state \(stp ? 1 : 0)"]
        case let .createVeth(a, b, mtu, group):
            return ["ip link add \(sh(a.name)) netns \(sh(a.namespace)) mtu \(mtu) group \(group) type veth peer \(sh(b.name)) netns \(sh(b.namespace)) mtu \(mtu) group \(group)"]
        case let .createGretap(r, local, remote, key, mtu, group):
            return ["ip link add \(sh(r.name)) netns \(sh(r.namespace)) mtu \(mtu) group \(group) type gretap local \(local) remote \(remote) key \(key)"]
        case let .enslave(r, bridge):
            return ["ip -n \(sh(r.namespace)) link set \(sh(r.name)) master \(sh(bridge))"]
        case let .addAddress(r, address):
            return ["ip -n \(sh(r.namespace)) addr add \(address) dev \(sh(r.name))" + (address.family == .ipv6 ? " nodad" : "")]
        case let .setUp(r):
            return ["ip -n \(sh(r.namespace)) link set \(sh(r.name)) up"]
        case let .setQdisc(r, q):
            return Self.tcCommands(r, q)
        case let .addRoute(ns, r):
            var s = "ip -n \(sh(ns))\(r.family == .ipv6 ? " -6" : "") route add \(r.destinationText)"
            if let via = r.via { s += " via \(via)" }
            if let dev = r.device { s += " dev \(sh(dev))" }
            if r.scopeLink { s += " scope link" }
            if let src = r.source { s += " src \(src)" }
            if let metric = r.metric { s += " metric \(metric)" }
            if let table = r.table { s += " table \(table)" }
            return [s]
        case let .addRule(ns, from, table, priority):
            return ["ip -n \(sh(ns))\(from.family == .ipv6 ? " -6" : "") rule add from \(from) table \(table) priority \(priority)"]
        case let .setMPTCPLimits(ns, subflows, addAddr):
            var s = "ip -n \(sh(ns)) mptcp limits set"
            if let subflows { s += " subflows \(subflows)" }
            if let addAddr { s += " add_addr_accepted \(addAddr)" }
            return [s]
        case let .addMPTCPEndpoint(ns, address, dev, id, flags):
            return ["ip -n \(sh(ns)) mptcp endpoint add \(address) dev \(sh(dev)) id \(id)" + flags.map { " \($0.rawValue)" }.joined()]
        }
    }

    static func netemArguments(_ n: NetemSpec) -> String {
        var parts: [String] = []
        if n.delayMicroseconds > 0 || n.jitterMicroseconds > 0 {
            parts.append("delay \(n.delayMicroseconds)us")
            if n.jitterMicroseconds > 0 { parts.append("\(n.jitterMicroseconds)us") }
            if let c = n.delayCorrelation { parts.append("\(trimmed(c))%") }
            if let d = n.distribution { parts.append("distribution \(sh(d))") }
        }
        if let l = n.loss { parts.append("loss random \(trimmed(l))%" + (n.lossCorrelation.map { " \(trimmed($0))%" } ?? "")) }
        if let g = n.gemodel { parts.append("loss gemodel " + g.map { "\(trimmed($0))%" }.joined(separator: " ")) }
        if let d = n.duplicate { parts.append("duplicate \(trimmed(d))%") }
        if let c = n.corrupt { parts.append("corrupt \(trimmed(c))%") }
        if let r = n.reorder { parts.append("reorder \(trimmed(r))%" + (n.reorderCorrelation.map { " \(trimmed($0))%" } ?? "") + (n.gap.map { " gap \($0)" } ?? "")) }
        parts.append("limit \(n.limitPackets)")
        return "netem " + parts.joined(separator: " ")
    }

    static func tcCommands(_ r: InterfaceRef, _ q: QdiscSpec, verb: String = "add") -> [String] {
        let prefix = "tc -n \(sh(r.namespace)) qdisc \(verb) dev \(sh(r.name))"
        switch (q.rootKind, q.rateBitsPerSecond, q.netem) {
        case let ("htb"?, rate?, netem):
            let rateText = Bitrate(bitsPerSecond: rate).description
            var lines = [
                "\(prefix) root handle 1: htb default 1",
                "tc -n \(sh(r.namespace)) class \(verb) dev \(sh(r.name)) parent 1: classid 1:1 htb rate \(rateText) ceil \(rateText) burst \(q.burstBytes ?? 0) cburst \(q.burstBytes ?? 0)",
            ]
            if let netem { lines.append("\(prefix) parent 1:1 handle 10: \(netemArguments(netem))") }
            return lines
        case let ("tbf"?, rate?, _):
            return ["\(prefix) root handle 1: tbf rate \(Bitrate(bitsPerSecond: rate)) burst \(q.burstBytes ?? 0) limit \(q.limitBytes ?? 0)"]
        case let ("netem"?, _, netem?):
            return ["\(prefix) root handle 1: \(netemArguments(netem))"]
        default:
            return []
        }
    }

    static let phases = ["underlay", "namespaces", "sysctls", "bridges", "links", "addresses", "interfaces up", "link profiles", "routes", "mptcp"]

    var phaseRank: Int { Self.phases.firstIndex(of: phase) ?? Self.phases.count }

    /// A phase name, to group a printed plan.
    public var phase: String {
        switch self {
        case .setUnderlayMTU: return "underlay"
        case .disableMPTCP: return "sysctls"
        case .createNamespace: return "namespaces"
        case .setSysctl: return "sysctls"
        case .createBridge: return "bridges"
        case .createVeth, .createGretap, .enslave: return "links"
        case .addAddress: return "addresses"
        case .setUp: return "interfaces up"
        case .setQdisc: return "link profiles"
        case .addRoute, .addRule: return "routes"
        case .setMPTCPLimits, .addMPTCPEndpoint: return "mptcp"
        }
    }
}

/// Quotes a value for a POSIX shell when it holds anything beyond a safe set of characters.
public func sh(_ s: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,:/@%+=")
    if !s.isEmpty && s.allSatisfy({ safe.contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

func trimmed(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
}

/// Everything `up` does on one host, in order.
public struct HostPlan: Codable, Sendable {
    public var host: String
    /// `local`, or the ssh target.
    public var reach: String
    public var operations: [Operation]

    /// The namespaces this host's part of the lab creates, in order.
    public var namespaces: [String] {
        operations.compactMap { if case let .createNamespace(n, _) = $0 { return n } else { return nil } }
    }

    /// The sysctl keys it writes (the capability probe checks each one).
    public var sysctlKeys: [String] {
        operations.compactMap { if case let .setSysctl(_, key, _) = $0 { return key } else { return nil } }
    }
}

/// Everything `up` does, per host.
public struct LabPlan: Codable, Sendable {
    public var lab: String
    public var hosts: [HostPlan]
    public var operationCount: Int { hosts.reduce(0) { $0 + $1.operations.count } }
}
