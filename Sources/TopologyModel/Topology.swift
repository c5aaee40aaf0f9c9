/// A validated lab: every reference resolved, every address assigned, every unit checked.
///
/// Produced by `TopologyLoader`; nothing here touches the kernel.
public struct Topology: Sendable {
    public var name: String
    public var description: String?
    public var file: String
    public var hosts: [Host]
    public var profiles: [LinkProfile]
    public var nodes: [Node]
    public var bridges: [Bridge]
    public var links: [Link]
    public var workloads: [Workload]
    public var schedule: [FaultEvent]
    public var run: RunSettings
    /// The lab's `tunnel:`: how links between hosts are carried unless a link says otherwise.
    public var tunnel: TunnelKind = .gretap

    public func host(named name: String) -> Host? { hosts.first { $0.name == name } }
    public func node(named name: String) -> Node? { nodes.first { $0.name == name } }
    public func bridge(named name: String) -> Bridge? { bridges.first { $0.name == name } }
    public func profile(named name: String) -> LinkProfile? { profiles.first { $0.name == name } }

    /// Namespace names: `pb.LAB` holds the lab's bridges on a host, `pb.LAB.NODE` is a node.
    /// Lab and node names cannot contain dots, so no two labs' names can collide.
    public var bridgeNamespace: String { "pb.\(name)" }
    public func namespace(of node: String) -> String { "pb.\(name).\(node)" }

    /// Bridge ports are named NODE.INTERFACE, or BRIDGE.PEER between two bridges. Node names hold
    /// no dots, so these never collide; validation checks they fit in 15 bytes.
    public static func bridgePortName(bridge: String, peer: Endpoint) -> String {
        switch peer {
        case let .interface(node, name, _): return "\(node).\(name)"
        case let .bridge(other): return "\(bridge).\(other)"
        }
    }
}

/// A tunnel's identity on a host: its kind and its key or VNI.
public struct TunnelID: Sendable, Hashable, Codable, CustomStringConvertible {
    public var kind: TunnelKind
    public var id: UInt32
    public init(kind: TunnelKind, id: UInt32) { self.kind = kind; self.id = id }
    public var description: String { "\(kind.rawValue) \(kind.idName) \(id)" }
}

/// How a link between two hosts is carried over their underlay.
public enum TunnelKind: String, Sendable, Hashable, Codable, CaseIterable {
    /// Ethernet over GRE with a key (the origin study's tunnel).
    case gretap
    /// Ethernet over UDP (port 4789) with a 24-bit VNI: for kernels without GRE and for clusters.
    case vxlan

    /// Bytes the tunnel adds to an inner frame over an IPv4 underlay.
    public var overhead: Int {
        switch self {
        case .gretap: Topology.gretapOverhead
        case .vxlan: Topology.vxlanOverhead
        }
    }
    /// What its identifier is called: a GRE key, a VXLAN VNI.
    public var idName: String { self == .gretap ? "key" : "VNI" }
}

extension Topology {
    /// Bytes a keyed gretap tunnel over IPv4 adds to an inner frame: outer IPv4 header 20 +
    /// GRE header 4 + key 4 + inner Ethernet header 14.
    public static let gretapOverhead = 42
    /// Bytes a VXLAN tunnel over IPv4 adds: outer IPv4 header 20 + UDP 8 + VXLAN 8 + inner Ethernet 14.
    public static let vxlanOverhead = 50
    /// The UDP port VXLAN tunnels use (IANA's).
    public static let vxlanPort: UInt16 = 4789

    /// Ports a Linux bridge takes at most: port numbers run from 1 to BR_MAX_PORTS - 1 (1023);
    /// the 1024th gives EXFULL ("Exchange full"), measured.
    public static let maximumBridgePorts = 1023
}

public struct Host: Sendable, Hashable {
    public var name: String
    public var location: SourceLocation
    /// Nil for this machine.
    public var ssh: String?
    public var underlay: IPAddress?
    public var underlayInterface: String?
    public var mtu: Int?
    public var mptcp: Bool
    /// The VM `pathbed vm up FILE` boots for this host (nil: none; the host is reached as it says).
    public var vm: VMSettings? = nil
    /// How this host's links to other hosts are carried unless a link says (`vxlan` for a kernel
    /// without GRE); nil: the lab's `tunnel:`.
    public var tunnel: TunnelKind? = nil
    /// This machine: no `ssh:` and no `vm:`.
    public var isLocal: Bool { ssh == nil && vm == nil }
}

/// A host as a local VM (`pathbed vm up FILE`): its kernel, memory and CPUs.
public struct VMSettings: Sendable, Hashable {
    public enum Kernel: Sendable, Hashable {
        /// The newest distribution kernel in /boot with GRE, VXLAN, netem and MPTCP.
        case distribution
        /// A kernel image file (bzImage, vmlinuz) or a kernel build tree, as virtme-ng takes them;
        /// an absolute path (the file's relative path resolved against the topology's directory).
        case path(String)
    }
    public var kernel: Kernel = .distribution
    /// Where `kernel:` was written, for errors about the path.
    public var kernelLocation: SourceLocation?
    public var memoryMiB: Int = 1024
    public var cpus: Int = 1
    public init() {}
}

extension LinkProfile {
    /// What the profile sets, in the file's words (`rate 6mbit, delay 10ms`): what a comparison
    /// of two runs names when their profiles differ.
    public var settingsText: String {
        var parts: [String] = []
        if let rate { parts.append("rate \(rate)") }
        if let delay { parts.append("delay \(delay)") }
        if let jitter { parts.append("jitter \(jitter)") }
        if let delayCorrelation { parts.append("delay-correlation \(delayCorrelation)") }
        if let distribution { parts.append("distribution \(distribution.rawValue)") }
        if let loss { parts.append("loss \(loss)") }
        if let duplicate { parts.append("duplicate \(duplicate)") }
        if let corrupt { parts.append("corrupt \(corrupt)") }
        if let reorder { parts.append("reorder \(reorder.percent)") }
        if let queue { parts.append("queue \(queue)") }
        if direction != .both { parts.append("direction \(direction.rawValue)") }
        return parts.isEmpty ? "(nothing)" : parts.joined(separator: ", ")
    }
}

public struct LinkProfile: Sendable, Hashable {
    public enum Direction: String, Sendable, Codable { case both, forward, reverse }
    public enum Distribution: String, Sendable, Codable { case uniform, normal, pareto, paretonormal }

    public var name: String
    public var location: SourceLocation
    public var rate: Bitrate?
    public var delay: Duration?
    public var jitter: Duration?
    public var delayCorrelation: Percent?
    public var distribution: Distribution?
    public var loss: Loss?
    public var duplicate: Percent?
    public var corrupt: Percent?
    public var reorder: Reorder?
    /// The queue of each shaped direction (nil: the default rule, `.bdp`).
    public var queue: Queue?
    public var direction: Direction

    /// How long a shaped direction's queue is (docs/topology.md, "Queues").
    public enum Queue: Hashable, Sendable, CustomStringConvertible {
        /// The bandwidth-delay product (the rate times twice the delay), never less than the
        /// floor (`QueueSizing`): the default.
        case bdp
        /// This long at the rate, whatever the delay.
        case time(Duration)
        /// This many packets.
        case packets(Int)
        /// netem's own default: 1000 packets, as a hand-built `tc qdisc add ... netem` has.
        case netem

        public var description: String {
            switch self {
            case .bdp: "bdp"
            case let .time(d): "\(d)"
            case let .packets(n): n == 1 ? "1 packet" : "\(n) packets"
            case .netem: "netem"
            }
        }
    }

    /// The most tbf's 32-bit rate field holds (bytes per second); above it a rate is htb's.
    public static let tbfMaxBitsPerSecond = UInt64(Int32.max) * 8

    /// True when a kernel needs netem for this profile (anything beyond a rate).
    public var needsNetem: Bool {
        delay != nil || jitter != nil || loss != nil || duplicate != nil || corrupt != nil || reorder != nil
    }

    public init(name: String, location: SourceLocation, direction: Direction = .both) {
        self.name = name; self.location = location; self.direction = direction
    }

    /// A short human summary, e.g. `20mbit 10ms loss 1%`.
    public var summary: String {
        var parts: [String] = []
        if let rate { parts.append("\(rate)") }
        if let delay { parts.append(jitter.map { "\(delay)±\($0)" } ?? "\(delay)") }
        if let loss { parts.append("loss \(loss)") }
        if let duplicate { parts.append("dup \(duplicate)") }
        if let corrupt { parts.append("corrupt \(corrupt)") }
        if let reorder { parts.append("reorder \(reorder.percent)") }
        if direction != .both { parts.append("(\(direction.rawValue) only)") }
        return parts.isEmpty ? "unshaped" : parts.joined(separator: " ")
    }
}

public enum Loss: Sendable, Hashable, CustomStringConvertible {
    case random(Percent, correlation: Percent?)
    /// netem's `gemodel p r 1-h 1-k`: `badLoss` is 1-h, `goodLoss` is 1-k.
    case gilbertElliott(p: Percent, r: Percent, badLoss: Percent, goodLoss: Percent)

    public var description: String {
        switch self {
        case let .random(p, c): return c.map { "\(p) (corr \($0))" } ?? "\(p)"
        case let .gilbertElliott(p, r, bad, good): return "gemodel p=\(p) r=\(r) bad=\(bad) good=\(good)"
        }
    }
}

public struct Reorder: Sendable, Hashable {
    public var percent: Percent
    public var correlation: Percent?
    public var gap: Int?
}

public struct Route: Sendable, Hashable {
    /// Nil for the default route.
    public var destination: IPNetwork?
    public var via: IPAddress?
    public var device: String?
    public var source: IPAddress?
    public var metric: Int?
    public var table: Int?
    public var location: SourceLocation

    public var destinationText: String { destination.map(\.description) ?? "default" }
    /// The route's IP family: from its destination, else its gateway, else IPv4 (`default`).
    public var family: IPAddress.Family { destination?.family ?? via?.family ?? source?.family ?? .ipv4 }
}

public struct MPTCPEndpoint: Sendable, Hashable {
    public enum Flag: String, Sendable, Codable, CaseIterable { case subflow, signal, backup, fullmesh }
    public var interface: String
    public var flags: [Flag]
    /// Filled by validation from the interface's first address of the right family when not given.
    public var address: IPAddress?
    public var id: Int?
    public var location: SourceLocation
}

public struct MPTCPSettings: Sendable, Hashable {
    public enum PathManager: String, Sendable, Codable { case kernel, userspace }
    public var enabled: Bool
    public var endpoints: [MPTCPEndpoint]
    public var subflows: Int?
    public var addAddrAccepted: Int?
    public var scheduler: String?
    public var pathManager: PathManager?
    public var location: SourceLocation
}

public struct Node: Sendable, Hashable {
    public var name: String
    public var location: SourceLocation
    public var host: String
    public var forwarding: Bool?
    public var routes: [Route]
    public var mptcp: MPTCPSettings?
    public var congestionControl: String?
    /// Resolved by validation: explicit setting, else on for MPTCP nodes with several addressed interfaces.
    public var sourceRouting: Bool
    public var sysctls: [Sysctl]
}

public struct Sysctl: Sendable, Hashable {
    public var key: String
    public var value: String
    public init(key: String, value: String) { self.key = key; self.value = value }
}

public struct Bridge: Sendable, Hashable {
    public var name: String
    public var location: SourceLocation
    public var host: String
    public var subnet: IPNetwork?
    public var stp: Bool
}

/// One end of a link.
public enum Endpoint: Sendable, Hashable, CustomStringConvertible {
    /// A node interface; `address` is filled by validation (explicit, or drawn from the subnet).
    case interface(node: String, name: String, address: IPNetwork?)
    case bridge(String)

    public var description: String {
        switch self {
        case let .interface(node, name, _): return "\(node):\(name)"
        case let .bridge(b): return b
        }
    }
    public var nodeName: String? { if case let .interface(n, _, _) = self { return n }; return nil }
    public var interfaceName: String? { if case let .interface(_, i, _) = self { return i }; return nil }
    public var bridgeName: String? { if case let .bridge(b) = self { return b }; return nil }
    public var address: IPNetwork? { if case let .interface(_, _, a) = self { return a }; return nil }
}

public struct Link: Sendable, Hashable {
    /// Position in the file's `links:` list, from 0.
    public var index: Int
    public var name: String
    public var location: SourceLocation
    public var endpoints: [Endpoint]
    /// Profile names for traffic leaving endpoint 0 (forward) and endpoint 1 (reverse).
    public var forwardProfile: String?
    public var reverseProfile: String?
    public var subnet: IPNetwork?
    public var mtu: Int
    /// The host of each end (a bridge's host, or the node's host).
    public var hosts: [String]
    /// Set when the two ends are on different hosts: carried by a tunnel (`tunnel`) with this
    /// key (gretap) or VNI (vxlan).
    public var tunnelKey: UInt32?
    /// How the link crosses hosts (the link's `tunnel:`, else the lab's, else gretap).
    public var tunnel: TunnelKind = .gretap
    /// The file's `merge:` (default true): a plain link between two bridges may join them into one kernel bridge.
    public var merge: Bool = true
    /// The file's `capture:`: every run captures this link's packets.
    public var capture: Bool = false
    /// Both ends are bridges.
    public var joinsBridges: Bool { endpoints.count == 2 && endpoints.allSatisfy { $0.bridgeName != nil } }

    public var crossesHosts: Bool { hosts[0] != hosts[1] }
    public var label: String { "\(endpoints[0]) -- \(endpoints[1])" }
}
