import Foundation

/// Layer-2 segments and their addresses.
extension TopologyValidator {
    // MARK: Segments and addresses

    /// A layer-2 segment: a point-to-point link, or bridges joined by links and everything on them.
    struct Segment {
        var bridges: [String] = []
        var links: [Int] = []
        /// (link index, endpoint index) of every node interface on the segment, in file order.
        var members: [(link: Int, end: Int)] = []
        var subnet: IPNetwork?
        var subnetPath: String?
    }

    func segments() -> [Segment] {
        // Union-find over bridges joined by bridge-bridge links.
        var sets = DisjointSets(topology.bridges.map(\.name))
        for link in topology.links where link.endpoints.count == 2 {
            if case let .bridge(a) = link.endpoints[0], case let .bridge(b) = link.endpoints[1], sets.contains(a), sets.contains(b) {
                sets.union(a, b)
            }
        }
        var byRoot: [String: Int] = [:]
        var result: [Segment] = []
        for b in topology.bridges {
            let r = sets.find(b.name)
            if byRoot[r] == nil { byRoot[r] = result.count; result.append(Segment()) }
            result[byRoot[r]!].bridges.append(b.name)
        }
        // Positions in `topology.links` (a link's `index` is its place in the file, and a link
        // that failed to parse has none here: indexing by it trapped).
        for (position, link) in topology.links.enumerated() where link.endpoints.count == 2 {
            let bridgeEnd = link.endpoints.firstIndex { $0.bridgeName.map { sets.contains($0) } ?? false }
            if let be = bridgeEnd, let seg = byRoot[sets.find(link.endpoints[be].bridgeName!)] {
                result[seg].links.append(position)
                for (e, ep) in link.endpoints.enumerated() where ep.nodeName != nil { result[seg].members.append((position, e)) }
            } else if link.endpoints.allSatisfy({ $0.nodeName != nil }) {
                result.append(Segment(bridges: [], links: [position], members: [(position, 0), (position, 1)]))
            }
        }
        return result
    }

    mutating func assignAddresses() {
        var allSegments = segments()
        // The subnet of each segment: from its bridges and its links, which must agree.
        for si in allSegments.indices {
            var seg = allSegments[si]
            var declared: [(IPNetwork, String)] = []
            for b in seg.bridges { if let s = bridge(b)?.subnet { declared.append((s, "bridges.\(b).subnet")) } }
            for l in seg.links { if let s = topology.links[l].subnet { declared.append((s, "links[\(topology.links[l].index)].subnet")) } }
            for (net, path) in declared where !net.isNetworkAddress {
                error(path, "subnet \(net) has host bits set", hint: "write the network address: \(net.network)")
            }
            for (net, path) in declared {
                if let reserved = Self.reservedRange(overlapping: net) {
                    error(path, "subnet \(net) overlaps \(reserved), which interfaces cannot use",
                          hint: "use a private range such as 10.0.0.0/24 or fd00::/64")
                }
            }
            if let first = declared.first {
                for (other, path) in declared.dropFirst() where other.network != first.0.network {
                    error(path, "subnet \(other) differs from \(first.0) declared at \(written.location(first.1)) for the same layer-2 segment",
                          hint: "one segment (a link, or bridges joined by links) has one subnet; declare it once")
                }
                seg.subnet = first.0.network
                seg.subnetPath = first.1
            }
            allSegments[si] = seg
        }
        // Subnets of different segments must not overlap: sorted by first address, each one
        // overlaps an earlier one exactly when it starts before the furthest end seen so far.
        let declaredSubnets = allSegments.compactMap { seg in seg.subnet.map { ($0, seg.subnetPath!) } }
            .sorted { ($0.0.family == .ipv4 ? 0 : 1, $0.0.network.address.value, $0.0.prefixLength) < ($1.0.family == .ipv4 ? 0 : 1, $1.0.network.address.value, $1.0.prefixLength) }
        var furthest: (IPNetwork, String, UInt128)?
        for (net, path) in declaredSubnets {
            let start = net.network.address.value
            let end = start | ~net.mask & (net.family == .ipv4 ? UInt128(UInt32.max) : UInt128.max)
            if let (other, otherPath, otherEnd) = furthest, other.family == net.family, start <= otherEnd {
                error(path, "subnet \(net) overlaps \(other) declared at \(written.location(otherPath))",
                      hint: "each link or bridge segment needs its own subnet")
            }
            if furthest == nil || furthest!.0.family != net.family || end > furthest!.2 { furthest = (net, path, end) }
        }
        var seen: [IPAddress: String] = [:]
        for seg in allSegments {
            // Explicit addresses first: they must lie in the segment's subnet and be unique.
            var taken: Set<IPAddress> = []
            var toAssign: [(link: Int, end: Int)] = []
            for m in seg.members {
                let path = "links[\(topology.links[m.link].index)].endpoints[\(m.end)]"
                guard let explicit = topology.links[m.link].endpoints[m.end].address else { toAssign.append(m); continue }
                if let reserved = Self.reservedRange(overlapping: explicit.network) {
                    error("\(path).address", "address \(explicit) lies in \(reserved), which interfaces cannot use",
                          hint: "use a private range such as 10.0.0.0/24 or fd00::/64")
                }
                if let subnet = seg.subnet {
                    if !subnet.contains(explicit.address) {
                        error("\(path).address", "address \(explicit) is outside the segment's subnet \(subnet)",
                              hint: "use an address in \(subnet), or change the subnet")
                    } else if explicit.prefixLength != subnet.prefixLength {
                        error("\(path).address", "address \(explicit) has prefix /\(explicit.prefixLength) but the subnet is \(subnet)",
                              hint: "write \(explicit.address)/\(subnet.prefixLength)")
                    }
                }
                if let other = seen[explicit.address] {
                    error("\(path).address", "address \(explicit.address) is already used by \(other)", hint: "give each interface its own address")
                }
                seen[explicit.address] = topology.links[m.link].endpoints[m.end].description
                taken.insert(explicit.address)
            }
            guard let subnet = seg.subnet, !toAssign.isEmpty else { continue }
            let (first, count) = subnet.usableHosts
            let needed = UInt128(toAssign.count + taken.count)
            if needed > count {
                error(seg.subnetPath!, "subnet \(subnet) has \(count) usable address\(count == 1 ? "" : "es") but \(needed) interfaces need one",
                      hint: "use a shorter prefix, e.g. /\(Self.prefixFitting(Int(needed), family: subnet.family))")
                continue
            }
            var next = first
            for m in toAssign {
                while taken.contains(next) { next = next.adding(1)! }
                let address = IPNetwork(address: next, prefixLength: subnet.prefixLength)
                if case let .interface(node, name, _) = topology.links[m.link].endpoints[m.end] {
                    topology.links[m.link].endpoints[m.end] = .interface(node: node, name: name, address: address)
                    seen[next] = "\(node):\(name)"
                }
                taken.insert(next)
            }
        }
        for link in topology.links where link.subnet != nil && link.endpoints.allSatisfy({ $0.bridgeName != nil }) {
            error("links[\(link.index)].subnet", "a link between two bridges carries no addresses", hint: "put the subnet on the bridges")
        }
    }

    /// Ranges no interface address may come from: "this network", loopback, multicast and
    /// reserved (IPv4); unspecified/loopback/IPv4-mapped and multicast (IPv6).
    static let reservedRanges = ["0.0.0.0/8", "127.0.0.0/8", "224.0.0.0/3", "::/8", "ff00::/8"].compactMap { IPNetwork($0) }

    static func reservedRange(overlapping net: IPNetwork) -> IPNetwork? {
        reservedRanges.first { $0.overlaps(net) }
    }

    static func prefixFitting(_ hosts: Int, family: IPAddress.Family) -> Int {
        var bits = 1
        while (1 << bits) - (family == .ipv4 ? 2 : 1) < hosts { bits += 1 }
        return (family == .ipv4 ? 32 : 128) - bits
    }
}
