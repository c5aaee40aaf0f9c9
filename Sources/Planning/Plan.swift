import NetlinkTypes
import TopologyModel

/// An interface inside a namespace.
public struct InterfaceRef: Codable, Hashable, Sendable, CustomStringConvertible {
    public var namespace: String
    public var name: String
    public init(namespace: String, name: String) { self.namespace = namespace; self.name = name }
    public var description: String { "\(name)@\(namespace)" }
}

/// How one link end's egress is shaped: the qdisc tree (netlink's `Shaping`, the one type from
/// the planner to the kernel) and the profile of the file it comes from, for people reading a
/// plan, a reconcile or a fault.
public struct QdiscSpec: Hashable, Sendable {
    public var profile: String
    public var shaping: Shaping

    public init(profile: String, shaping: Shaping) { self.profile = profile; self.shaping = shaping }

    /// The tree for a rate (bits per second), a token bucket, tbf's byte fifo and netem: tbf for a
    /// rate alone (htb past tbf's range), htb with netem below it for both, netem alone for no rate.
    public init?(profile: String, rateBitsPerSecond: UInt64?, burstBytes: UInt32?, limitBytes: UInt32?, netem: NetemParameters?) {
        self.profile = profile
        switch (rateBitsPerSecond, netem) {
        case let (rate?, nil) where rate <= Shaping.tbfMaxBitsPerSecond:
            shaping = .tbf(rateBytes: rate / 8, burstBytes: burstBytes ?? 3028, limitBytes: limitBytes ?? 100_000)
        case let (rate?, netem):
            shaping = .htb(rateBytes: rate / 8, burstBytes: burstBytes ?? 3028, netem: netem)
        case let (nil, netem?):
            shaping = .netem(netem)
        case (nil, nil):
            return nil
        }
    }

    public var kinds: [Shaping.Kind] { shaping.kinds }
    public var rateBitsPerSecond: UInt64? { shaping.rateBitsPerSecond }
    public var netem: NetemParameters? { shaping.netem }
}

extension QdiscSpec: Codable {
    // Flat, as plans and journals have always carried it: a rate, a bucket, tbf's fifo, netem.
    enum CodingKeys: String, CodingKey { case profile, rateBitsPerSecond, burstBytes, limitBytes, netem }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        guard let spec = QdiscSpec(profile: try c.decode(String.self, forKey: .profile),
                                   rateBitsPerSecond: try c.decodeIfPresent(UInt64.self, forKey: .rateBitsPerSecond),
                                   burstBytes: try c.decodeIfPresent(UInt32.self, forKey: .burstBytes),
                                   limitBytes: try c.decodeIfPresent(UInt32.self, forKey: .limitBytes),
                                   netem: try c.decodeIfPresent(NetemParameters.self, forKey: .netem)) else {
            throw DecodingError.dataCorruptedError(forKey: .profile, in: c, debugDescription: "a qdisc needs a rate or netem")
        }
        self = spec
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(profile, forKey: .profile)
        try c.encodeIfPresent(shaping.rateBitsPerSecond, forKey: .rateBitsPerSecond)
        try c.encodeIfPresent(shaping.burstBytes, forKey: .burstBytes)
        try c.encodeIfPresent(shaping.limitBytes, forKey: .limitBytes)
        try c.encodeIfPresent(shaping.netem, forKey: .netem)
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
public enum LabOperation: Codable, Hashable, Sendable {
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
    /// A VXLAN tunnel (UDP 4789) to one remote, made in the host's namespace and moved into the node's.
    case createVxlan(InterfaceRef, local: IPAddress, remote: IPAddress, vni: UInt32, mtu: UInt32, group: UInt32)
    case enslave(InterfaceRef, bridge: String)
    case addAddress(InterfaceRef, address: IPNetwork)
    case setUp(InterfaceRef)
    case setQdisc(InterfaceRef, QdiscSpec)
    case addRoute(namespace: String, RouteSpec)
    case addRule(namespace: String, from: IPAddress, table: UInt32, priority: UInt32)
    case setMPTCPLimits(namespace: String, subflows: UInt32?, addAddrAccepted: UInt32?)
    case addMPTCPEndpoint(namespace: String, address: IPAddress, device: String, id: UInt8, flags: [MPTCPEndpoint.Flag])

    // Changes to a running lab (reconcile only): undoing one of the above, or waiting for the kernel.
    case deleteRoute(namespace: String, RouteSpec)
    case deleteRule(namespace: String, from: IPAddress, table: UInt32, priority: UInt32)
    case deleteMPTCPEndpoint(namespace: String, id: UInt8)
    /// Waits until the kernel has freed a device that a removed namespace took with it (the peer
    /// end here of a veth whose other end was there), so that the one made in its place does not
    /// find its name taken: the kernel frees a namespace's devices after the deletion returns.
    case awaitGone(InterfaceRef)

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
             let .setMPTCPLimits(ns, _, _), let .addMPTCPEndpoint(ns, _, _, _, _),
             let .deleteRoute(ns, _), let .deleteRule(ns, _, _, _), let .deleteMPTCPEndpoint(ns, _):
            return ns
        case let .awaitGone(r):
            return r.namespace
        case let .createBridge(r, _, _), let .createVeth(r, _, _, _), let .createGretap(r, _, _, _, _, _), let .createVxlan(r, _, _, _, _, _), let .enslave(r, _),
             let .addAddress(r, _), let .setUp(r), let .setQdisc(r, _):
            return r.namespace
        }
    }

    static let phases = ["removals", "underlay", "namespaces", "sysctls", "bridges", "links", "addresses", "interfaces up", "link profiles", "routes", "mptcp"]

    var phaseRank: Int { Self.phases.firstIndex(of: phase) ?? Self.phases.count }

    /// A phase name, to group a printed plan.
    public var phase: String {
        switch self {
        case .setUnderlayMTU: return "underlay"
        case .disableMPTCP: return "sysctls"
        case .createNamespace: return "namespaces"
        case .setSysctl: return "sysctls"
        case .createBridge: return "bridges"
        case .createVeth, .createGretap, .createVxlan, .enslave: return "links"
        case .addAddress: return "addresses"
        case .setUp: return "interfaces up"
        case .setQdisc: return "link profiles"
        case .addRoute, .addRule: return "routes"
        case .setMPTCPLimits, .addMPTCPEndpoint: return "mptcp"
        case .deleteRoute, .deleteRule, .deleteMPTCPEndpoint, .awaitGone: return "removals"
        }
    }
}

/// Everything `up` does on one host, in order.
public struct HostPlan: Codable, Sendable {
    public var host: String
    /// `local`, or the ssh target.
    public var reach: String
    public var operations: [LabOperation]

    public init(host: String, reach: String, operations: [LabOperation]) { self.host = host; self.reach = reach; self.operations = operations }

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
    public init(lab: String, hosts: [HostPlan]) { self.lab = lab; self.hosts = hosts }
    public var operationCount: Int { hosts.reduce(0) { $0 + $1.operations.count } }
}

extension LabPlan {
    /// The routes of `ref`'s namespace that go through it: the kernel drops them when it goes
    /// down, and a fault that takes it down puts them back with it.
    public func routes(through ref: InterfaceRef, host: String) -> [RouteSpec] {
        guard let ops = hosts.first(where: { $0.host == host })?.operations else { return [] }
        let nets = ops.compactMap { op -> IPNetwork? in if case let .addAddress(r, a) = op, r == ref { return a } else { return nil } }
        return ops.compactMap { op -> RouteSpec? in
            guard case let .addRoute(ns, r) = op, ns == ref.namespace else { return nil }
            if r.device == ref.name { return r }
            if r.device == nil, let via = r.via, nets.contains(where: { $0.contains(via) }) { return r }
            return nil
        }
    }

    /// The MPTCP endpoints the plan adds on `ref`, to be added again when it comes back.
    public func endpoints(on ref: InterfaceRef, host: String) -> [ReannouncedEndpoint] {
        (hosts.first { $0.host == host }?.operations ?? []).compactMap { op in
            guard case let .addMPTCPEndpoint(ns, address, device, id, flags) = op, ns == ref.namespace, device == ref.name else { return nil }
            return ReannouncedEndpoint(address: address, id: id, flags: flags)
        }
    }
}
