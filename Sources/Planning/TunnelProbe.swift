import TopologyModel

/// The proof of the MTU plan: before any traffic, a don't-fragment ping of the full inner MTU
/// goes through every tunnel (gretap or vxlan), both ways. A tunnel that drops it fails `up`, which says
/// which tunnel and the largest size that did get through.
public struct TunnelProbe: Sendable, Hashable {
    public var link: String
    public var key: UInt32
    public var mtu: Int
    /// Where the ping starts (host, namespace, node) and the address it is sent to.
    public var fromHost: String
    public var fromNamespace: String
    public var fromLabel: String
    public var to: IPAddress
    public var toLabel: String

    /// ICMP payload that fills `mtu` exactly (IP and ICMP headers taken off).
    public var payload: Int { mtu - (to.family == .ipv6 ? 48 : 28) }

    public func argv(payload: Int, count: Int = 2) -> [String] {
        ["ping", to.family == .ipv6 ? "-6" : "-4", "-n", "-q", "-M", "do", "-s", String(payload), "-c", String(count), "-i", "0.2", "-w", "6", to.description]
    }

    public var kind: TunnelKind = .gretap

    public var label: String { "\(kind.rawValue) tunnel of link \(link) (\(kind.idName) \(key)), \(fromLabel) -> \(toLabel)" }

    /// Two probes per tunnel, one each way, between addressed node interfaces on either side.
    /// A bridge end is stood for by a node on the same bridge and host.
    public static func plan(_ t: Topology) -> [TunnelProbe] {
        var out: [TunnelProbe] = []
        for link in t.links where link.crossesHosts {
            guard let key = link.tunnelKey, let a = stand(t, link, 0), let b = stand(t, link, 1), a.address.family == b.address.family else { continue }
            for (x, y) in [(a, b), (b, a)] {
                out.append(TunnelProbe(link: link.name, key: key, mtu: link.mtu, fromHost: x.host, fromNamespace: t.namespace(of: x.node),
                                       fromLabel: "\(x.node) on \(x.host)", to: y.address.address, toLabel: "\(y.node) (\(y.address.address)) on \(y.host)",
                                       kind: link.tunnel))
            }
        }
        return out
    }

    struct End { var host: String; var node: String; var address: IPNetwork }

    static func stand(_ t: Topology, _ link: Link, _ i: Int) -> End? {
        let host = link.hosts[i]
        switch link.endpoints[i] {
        case let .interface(node, _, address?):
            return End(host: host, node: node, address: address)
        case .interface:
            return nil
        case let .bridge(bridge):
            for other in t.links where other.index != link.index && !other.crossesHosts {
                for (j, e) in other.endpoints.enumerated() where e.bridgeName == bridge {
                    if case let .interface(node, _, address?) = other.endpoints[1 - j], other.hosts[1 - j] == host {
                        return End(host: host, node: node, address: address)
                    }
                }
            }
            return nil
        }
    }
}
