#if canImport(Glibc)
import Glibc
#endif

/// An address in network byte order with a prefix length, as netlink carries it.
public struct NetlinkAddress: Sendable, Hashable, CustomStringConvertible {
    /// 4 bytes (IPv4) or 16 (IPv6).
    public var bytes: [UInt8]
    public var prefixLength: Int

    public init(bytes: [UInt8], prefixLength: Int) {
        precondition(bytes.count == 4 || bytes.count == 16, "an address has 4 or 16 bytes")
        self.bytes = bytes; self.prefixLength = prefixLength
    }

    public var family: Int32 { bytes.count == 4 ? AF_INET : AF_INET6 }

    public var description: String {
        var buffer = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN))
        bytes.withUnsafeBytes { _ = inet_ntop(family, $0.baseAddress, &buffer, socklen_t(buffer.count)) }
        let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        return prefixLength == bytes.count * 8 ? text : "\(text)/\(prefixLength)"
    }
}

/// Attributes every link the lab creates shares (as vishvananda/netlink's `LinkAttrs`).
public struct LinkAttributes: Sendable, Hashable {
    public var name: String
    public var mtu: UInt32?
    /// The lab's ownership tag: a device group (`ip link show group N`).
    public var group: UInt32
    public init(name: String, mtu: UInt32? = nil, group: UInt32 = 0) { self.name = name; self.mtu = mtu; self.group = group }
}

/// A link to create, as vishvananda/netlink's typed link structs.
public enum LinkSpec: Sendable, Hashable {
    /// A veth pair, each end created straight in its namespace (descriptors).
    case veth(LinkAttributes, nsfd: Int32, peer: LinkAttributes, peerNsfd: Int32)
    case bridge(LinkAttributes, stp: Bool)
    /// A keyed gretap tunnel between two underlay addresses (IPv4), created in namespace `nsfd`.
    case gretap(LinkAttributes, nsfd: Int32, local: NetlinkAddress, remote: NetlinkAddress, key: UInt32)
    /// A VXLAN tunnel to one remote (unicast) over UDP `port`, created in the handle's namespace.
    case vxlan(LinkAttributes, local: NetlinkAddress, remote: NetlinkAddress, vni: UInt32, port: UInt16)

    public var attributes: LinkAttributes {
        switch self {
        case let .veth(a, _, _, _), let .bridge(a, _), let .gretap(a, _, _, _, _), let .vxlan(a, _, _, _, _): return a
        }
    }
}

/// A route as netlink carries it; destination nil is the default route of `family`.
public struct NetlinkRoute: Sendable, Hashable, CustomStringConvertible {
    public var family: Int32
    public var destination: NetlinkAddress?
    public var via: NetlinkAddress?
    public var device: String?
    public var source: NetlinkAddress?
    public var metric: UInt32?
    public var table: UInt32?
    public var scopeLink: Bool
    /// The gateway is on the link (RTNH_F_ONLINK): no lookup of it.
    public var onlink = false

    public init(family: Int32, destination: NetlinkAddress?, via: NetlinkAddress?, device: String?, source: NetlinkAddress?,
                metric: UInt32?, table: UInt32?, scopeLink: Bool) {
        self.family = family; self.destination = destination; self.via = via; self.device = device; self.source = source
        self.metric = metric; self.table = table; self.scopeLink = scopeLink
    }

    public var description: String {
        "\(destination.map(\.description) ?? "default")\(via.map { " via \($0)" } ?? "")\(device.map { " dev \($0)" } ?? "")\(table.map { " table \($0)" } ?? "")"
    }
}

/// netem parameters: microseconds and percentages, converted to the kernel's units inside.
public struct NetemParameters: Sendable, Hashable, Codable {
    public var delayMicroseconds: UInt32 = 0, jitterMicroseconds: UInt32 = 0
    public var delayCorrelation: Double?, distribution: String?
    /// Random loss (percent) and its correlation.
    public var loss: Double?, lossCorrelation: Double?
    /// Gilbert-Elliott loss: p, r, 1-h, 1-k in percent.
    public var gemodel: [Double]?
    public var duplicate: Double?, corrupt: Double?, reorder: Double?, reorderCorrelation: Double?, gap: UInt32?
    public var limitPackets: UInt32 = 1000
    public init(limitPackets: UInt32 = 1000) { self.limitPackets = limitPackets }
}

/// How an interface's egress is shaped: the qdisc tree Pathbed builds (root handle 1:). The one
/// description of a qdisc from the planner to the kernel.
public enum Shaping: Sendable, Hashable {
    /// tbf alone: rate in bytes per second (at most `Int32.max`: libnl's field), bucket and queue in bytes.
    case tbf(rateBytes: UInt64, burstBytes: UInt32, limitBytes: UInt32)
    /// htb root with class 1:1 at a 64-bit rate, and netem 10: below it when given.
    case htb(rateBytes: UInt64, burstBytes: UInt32, netem: NetemParameters?)
    /// netem alone as the root.
    case netem(NetemParameters)

    /// A kind of qdisc, as the kernel names it.
    public enum Kind: String, Sendable, Codable, CaseIterable { case tbf, htb, netem }

    /// libnl 3.7 sets tbf's rate as a 32-bit signed count of bytes per second (17.18 Gbit/s);
    /// faster rates go through htb, whose rate is 64 bits.
    public static let tbfMaxBitsPerSecond = UInt64(Int32.max) * 8

    public var rootKind: Kind {
        switch self { case .tbf: return .tbf; case .htb: return .htb; case .netem: return .netem }
    }

    /// Every qdisc kind the tree uses (the kernel must offer each).
    public var kinds: [Kind] {
        switch self {
        case .tbf: return [.tbf]
        case let .htb(_, _, netem): return netem == nil ? [.htb] : [.htb, .netem]
        case .netem: return [.netem]
        }
    }

    /// The rate limit in bits per second, if the tree has one.
    public var rateBitsPerSecond: UInt64? {
        switch self {
        case let .tbf(rate, _, _), let .htb(rate, _, _): return rate * 8
        case .netem: return nil
        }
    }

    public var netem: NetemParameters? {
        switch self {
        case let .htb(_, _, n): return n
        case let .netem(n): return n
        case .tbf: return nil
        }
    }

    /// The token bucket in bytes (tbf, htb).
    public var burstBytes: UInt32? {
        switch self {
        case let .tbf(_, b, _), let .htb(_, b, _): return b
        case .netem: return nil
        }
    }

    /// tbf's byte fifo.
    public var limitBytes: UInt32? { if case let .tbf(_, _, l) = self { return l }; return nil }
}

/// How a qdisc request treats what is already there.
public enum QdiscMode: Sendable {
    /// Fails if a qdisc is there (`tc qdisc add`).
    case add
    /// Changes the parameters of the qdiscs in place (`tc qdisc change`): same kinds, no gap in shaping.
    case change
    /// Swaps the root atomically (`tc qdisc replace`), for a change of kind.
    case replace
}

/// The state of an interface as the kernel reports it.
public struct LinkInfo: Sendable, Hashable {
    public var index: Int32
    public var name: String
    public var kind: String?
    public var mtu: UInt32
    public var isUp: Bool
    public var master: Int32
    public var group: UInt32
    public var alias: String?
    /// The input key of a gre or gretap device (nil for other kinds, or a tunnel without a key).
    public var greKey: UInt32? = nil
    /// The VNI of a vxlan device (nil for other kinds).
    public var vxlanID: UInt32? = nil
    /// Byte counters, as the kernel keeps them.
    public var rxBytes: UInt64 = 0
    public var txBytes: UInt64 = 0
    /// Operationally up (IFF_RUNNING): carrier on, and the kernel has given it its qdisc.
    public var isRunning = false

    public init(index: Int32, name: String, kind: String?, mtu: UInt32, isUp: Bool, master: Int32, group: UInt32, alias: String?) {
        self.index = index; self.name = name; self.kind = kind; self.mtu = mtu; self.isUp = isUp; self.master = master; self.group = group; self.alias = alias
    }
}

/// A qdisc as the kernel reports it (read back after it is set).
public struct QdiscInfo: Sendable, Hashable {
    public var interfaceIndex: Int32
    public var kind: String
    public var handle: UInt32
    public var parent: UInt32
    /// tbf: bytes per second.
    public var rateBytesPerSecond: UInt64?
    /// tbf: bytes; netem: packets.
    public var limit: UInt32?
    /// netem: microseconds.
    public var delayMicroseconds: UInt32?
    public var jitterMicroseconds: UInt32?
    /// netem: percent.
    public var lossPercent: Double?
    /// The kernel's counters: packets dropped, times the rate held a packet back, and what waits
    /// now (bytes, packets). Zero where the kernel says nothing.
    public var drops: UInt64 = 0
    public var overlimits: UInt64 = 0
    public var backlogBytes: UInt64 = 0
    public var backlogPackets: UInt64 = 0

    public init(interfaceIndex: Int32, kind: String, handle: UInt32, parent: UInt32) {
        self.interfaceIndex = interfaceIndex; self.kind = kind; self.handle = handle; self.parent = parent
    }
}
