import TopologyModel

/// An interface inside a namespace.
public struct InterfaceRef: Codable, Hashable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public init(namespace: String, name: String) { self.namespace = namespace; self.name = name }
    public var description: String { "\(name)@\(namespace)" }
}

/// netem parameters in kernel-friendly units.
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
    public var limitPackets: Int

    public init(limitPackets: Int) { self.limitPackets = limitPackets }
}

/// How one interface's egress is shaped.
public struct QdiscSpec: Codable, Hashable, Sendable {
    /// Rate limit, bits per second (tbf alone, or htb above netem).
    public var rateBitsPerSecond: UInt64?
    public var burstBytes: Int?
    /// Queue length in bytes for tbf.
    public var limitBytes: Int?
    public var netem: NetemSpec?
    /// The profile it comes from, for people reading a plan.
    public var profile: String

    public init(profile: String) { self.profile = profile }

    /// Which qdiscs the kernel must offer for this spec.
    public var kinds: [String] {
        switch (rateBitsPerSecond != nil, netem != nil) {
        case (true, true): return ["htb", "netem"]
        case (true, false): return ["tbf"]
        case (false, true): return ["netem"]
        case (false, false): return []
        }
    }
}

/// One kernel change `up` makes, in order. Every object carries the lab's ownership tag.
public enum Operation: Codable, Hashable, Sendable {
    case setUnderlayMTU(interface: String?, mtu: Int)
    case createNamespace(name: String)
    case setSysctl(namespace: String, key: String, value: String)
    case createBridge(InterfaceRef, stp: Bool)
    case createVeth(InterfaceRef, peer: InterfaceRef, mtu: Int)
    case createGretap(InterfaceRef, local: String, remote: String, key: UInt32, mtu: Int)
    case enslave(InterfaceRef, bridge: String)
    case addAddress(InterfaceRef, address: String)
    case setUp(InterfaceRef)
    case setQdisc(InterfaceRef, QdiscSpec)
    case addRoute(namespace: String, destination: String, via: String?, device: String?, source: String?, metric: Int?, table: Int?, scopeLink: Bool)
    case addRule(namespace: String, from: String, table: Int, priority: Int)
    case setMPTCPLimits(namespace: String, subflows: Int?, addAddrAccepted: Int?)
    case addMPTCPEndpoint(namespace: String, address: String, device: String, id: Int, flags: [String])

    /// The namespace an operation works in (nil for the host's own).
    public var namespace: String? {
        switch self {
        case .setUnderlayMTU: return nil
        case let .createNamespace(n): return n
        case let .setSysctl(ns, _, _), let .addRoute(ns, _, _, _, _, _, _, _), let .addRule(ns, _, _, _),
             let .setMPTCPLimits(ns, _, _), let .addMPTCPEndpoint(ns, _, _, _, _):
            return ns
        case let .createBridge(r, _), let .createVeth(r, _, _), let .createGretap(r, _, _, _, _), let .enslave(r, _),
             let .addAddress(r, _), let .setUp(r), let .setQdisc(r, _):
            return r.namespace
        }
    }

    /// The same change as an iproute2 / tc / sysctl command, for people reading a plan.
    public var command: String {
        switch self {
        case let .setUnderlayMTU(interface, mtu):
            return "ip link set \(interface ?? "<underlay interface>") mtu \(mtu)"
        case let .createNamespace(name):
            return "ip netns add \(name)"
        case let .setSysctl(ns, key, value):
            return "ip netns exec \(ns) sysctl -w \(key)=\(value)"
        case let .createBridge(r, stp):
            return "ip -n \(r.namespace) link add \(r.name) type bridge stp_state \(stp ? 1 : 0)"
        case let .createVeth(a, b, mtu):
            return "ip link add \(a.name) netns \(a.namespace) mtu \(mtu) type veth peer \(b.name) netns \(b.namespace) mtu \(mtu)"
        case let .createGretap(r, local, remote, key, mtu):
            return "ip link add \(r.name) netns \(r.namespace) mtu \(mtu) type gretap local \(local) remote \(remote) key \(key)"
        case let .enslave(r, bridge):
            return "ip -n \(r.namespace) link set \(r.name) master \(bridge)"
        case let .addAddress(r, address):
            return "ip -n \(r.namespace) addr add \(address) dev \(r.name)"
        case let .setUp(r):
            return "ip -n \(r.namespace) link set \(r.name) up"
        case let .setQdisc(r, q):
            return Self.tcCommands(r, q).joined(separator: "; ")
        case let .addRoute(ns, dest, via, dev, src, metric, table, scopeLink):
            var s = "ip -n \(ns) route add \(dest)"
            if let via { s += " via \(via)" }
            if let dev { s += " dev \(dev)" }
            if scopeLink { s += " scope link" }
            if let src { s += " src \(src)" }
            if let metric { s += " metric \(metric)" }
            if let table { s += " table \(table)" }
            return s
        case let .addRule(ns, from, table, priority):
            return "ip -n \(ns) rule add from \(from) table \(table) priority \(priority)"
        case let .setMPTCPLimits(ns, subflows, addAddr):
            var s = "ip -n \(ns) mptcp limits set"
            if let subflows { s += " subflows \(subflows)" }
            if let addAddr { s += " add_addr_accepted \(addAddr)" }
            return s
        case let .addMPTCPEndpoint(ns, address, dev, id, flags):
            return "ip -n \(ns) mptcp endpoint add \(address) dev \(dev) id \(id) \(flags.joined(separator: " "))"
        }
    }

    static func tcCommands(_ r: InterfaceRef, _ q: QdiscSpec) -> [String] {
        let prefix = "tc -n \(r.namespace) qdisc add dev \(r.name)"
        var netemText = ""
        if let n = q.netem {
            var parts: [String] = []
            if n.delayMicroseconds > 0 || n.jitterMicroseconds > 0 {
                parts.append("delay \(n.delayMicroseconds)us")
                if n.jitterMicroseconds > 0 { parts.append("\(n.jitterMicroseconds)us") }
                if let c = n.delayCorrelation { parts.append("\(trimmed(c))%") }
                if let d = n.distribution { parts.append("distribution \(d)") }
            }
            if let l = n.loss { parts.append("loss random \(trimmed(l))%" + (n.lossCorrelation.map { " \(trimmed($0))%" } ?? "")) }
            if let g = n.gemodel { parts.append("loss gemodel " + g.map { "\(trimmed($0))%" }.joined(separator: " ")) }
            if let d = n.duplicate { parts.append("duplicate \(trimmed(d))%") }
            if let c = n.corrupt { parts.append("corrupt \(trimmed(c))%") }
            if let r = n.reorder { parts.append("reorder \(trimmed(r))%" + (n.reorderCorrelation.map { " \(trimmed($0))%" } ?? "") + (n.gap.map { " gap \($0)" } ?? "")) }
            parts.append("limit \(n.limitPackets)")
            netemText = "netem " + parts.joined(separator: " ")
        }
        switch (q.rateBitsPerSecond, q.netem) {
        case let (rate?, _?):
            return [
                "\(prefix) root handle 1: htb default 1",
                "tc -n \(r.namespace) class add dev \(r.name) parent 1: classid 1:1 htb rate \(Bitrate(bitsPerSecond: rate)) ceil \(Bitrate(bitsPerSecond: rate)) burst \(q.burstBytes ?? 0)",
                "\(prefix) parent 1:1 handle 10: \(netemText)",
            ]
        case let (rate?, nil):
            return ["\(prefix) root handle 1: tbf rate \(Bitrate(bitsPerSecond: rate)) burst \(q.burstBytes ?? 0) limit \(q.limitBytes ?? 0)"]
        case (nil, _?):
            return ["\(prefix) root handle 1: \(netemText)"]
        case (nil, nil):
            return []
        }
    }

    var phaseRank: Int {
        ["underlay", "namespaces", "sysctls", "bridges", "links", "addresses", "interfaces up", "link profiles", "routes", "mptcp"].firstIndex(of: phase)!
    }

    /// A phase name, to group a printed plan.
    public var phase: String {
        switch self {
        case .setUnderlayMTU: return "underlay"
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

func trimmed(_ v: Double) -> String {
    v == v.rounded() ? String(Int64(v)) : String(v)
}

/// Everything `up` does on one host, in order.
public struct HostPlan: Codable, Sendable {
    public var host: String
    /// `local`, or the ssh target.
    public var reach: String
    public var operations: [Operation]
}

/// Everything `up` does, per host.
public struct LabPlan: Codable, Sendable {
    public var lab: String
    public var hosts: [HostPlan]
    public var operationCount: Int { hosts.reduce(0) { $0 + $1.operations.count } }
}
