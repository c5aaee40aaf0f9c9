/// Checks a decoded topology as a whole and resolves it: hosts, references, segments, addresses,
/// MTUs, tunnel keys, MPTCP endpoints, routes, workloads and the fault schedule.
struct TopologyValidator {
    var topology: Topology
    let decoder: TopologyDecoder
    let reader: YAMLReader

    /// Bytes a gretap tunnel adds to an inner frame over IPv4 with a key:
    /// outer IPv4 header 20 + GRE header 4 + key 4 + inner Ethernet header 14.
    static let greOverhead = Topology.gretapOverhead
    static let interfaceNameLimit = 15
    static let defaultHostName = "local"

    /// Positions by name: names do not change during validation, and lookups by scanning
    /// would make validation quadratic in the size of the file.
    private let nodeIndex: [String: Int], bridgeIndex: [String: Int], profileIndex: [String: Int]

    init(_ topology: Topology, decoder: TopologyDecoder, reader: YAMLReader) {
        self.topology = topology; self.decoder = decoder; self.reader = reader
        func index(_ names: [String]) -> [String: Int] { Dictionary(names.enumerated().map { ($1, $0) }, uniquingKeysWith: { a, _ in a }) }
        nodeIndex = index(topology.nodes.map(\.name))
        bridgeIndex = index(topology.bridges.map(\.name))
        profileIndex = index(topology.profiles.map(\.name))
    }

    private func node(_ name: String) -> Node? { nodeIndex[name].map { topology.nodes[$0] } }
    private func bridge(_ name: String) -> Bridge? { bridgeIndex[name].map { topology.bridges[$0] } }
    private func profile(_ name: String) -> LinkProfile? { profileIndex[name].map { topology.profiles[$0] } }

    private func error(_ path: String, _ message: String, hint: String? = nil) {
        reader.error(at: decoder.location(path), path, message, hint: hint)
    }

    mutating func validate() -> Topology {
        resolveHosts()
        checkNameClashes()
        checkProfiles()
        let interfaces = resolveLinks()
        assignAddresses()
        checkMTUs()
        resolveNodes(interfaces: interfaces)
        checkWorkloads()
        checkSchedule()
        return topology
    }

    // MARK: Hosts

    private mutating func resolveHosts() {
        if topology.hosts.isEmpty {
            topology.hosts = [Host(name: Self.defaultHostName, location: decoder.location(""), ssh: nil, underlay: nil,
                                   underlayInterface: nil, mtu: nil, mptcp: true)]
        }
        let names = topology.hosts.map(\.name)
        let locals = topology.hosts.filter(\.isLocal)
        if locals.count > 1 {
            error("hosts.\(locals[1].name)", "hosts '\(locals[0].name)' and '\(locals[1].name)' are both this machine",
                  hint: "give all but one an `ssh:` target, or merge them")
        }
        func resolve(_ declared: String, _ path: String, what: String) -> String {
            if declared.isEmpty {
                if names.count == 1 { return names[0] }
                error(path, "\(what) names no host, and the lab has \(names.count) (\(names.joined(separator: ", ")))",
                      hint: "add `host: \(names[0])` (or another host)")
                return names[0]
            }
            if !names.contains(declared) {
                let s = didYouMean(declared, names)
                error("\(path).host", "unknown host '\(declared)'" + (s.isEmpty ? "" : "; \(s)"),
                      hint: "declare it under `hosts:` or use one of \(names.joined(separator: ", "))")
            }
            return declared
        }
        for i in topology.nodes.indices {
            topology.nodes[i].host = resolve(topology.nodes[i].host, "nodes.\(topology.nodes[i].name)", what: "node '\(topology.nodes[i].name)'")
        }
        for i in topology.bridges.indices {
            topology.bridges[i].host = resolve(topology.bridges[i].host, "bridges.\(topology.bridges[i].name)", what: "bridge '\(topology.bridges[i].name)'")
        }
    }

    /// A node's namespace is pb.LAB.NODE, a file name of at most 255 bytes; 63 keeps every
    /// derived name (namespaces, journals, reports) well inside the kernel's limits.
    static let nodeNameLimit = 63

    private func checkNameClashes() {
        for n in topology.nodes where n.name.utf8.count > Self.nodeNameLimit {
            error("nodes.\(n.name)", "node name '\(Self.utf8Prefix(n.name, 20))...' is \(n.name.utf8.count) bytes; at most \(Self.nodeNameLimit)",
                  hint: "use a shorter name")
        }
        for b in topology.bridges {
            if b.name.utf8.count > Self.interfaceNameLimit {
                error("bridges.\(b.name)", "bridge name '\(b.name)' is \(b.name.utf8.count) bytes; a bridge is an interface, and Linux allows \(Self.interfaceNameLimit)",
                      hint: "use a shorter name, e.g. '\(Self.utf8Prefix(b.name, Self.interfaceNameLimit))'")
            } else if Self.reservedInterfaceNames.contains(b.name) {
                error("bridges.\(b.name)", "'\(b.name)' cannot be a bridge name", hint: "a bridge is an interface: avoid lo, all and default")
            }
        }
        let nodeNames = Set(topology.nodes.map(\.name))
        for b in topology.bridges where nodeNames.contains(b.name) {
            error("bridges.\(b.name)", "'\(b.name)' is both a node and a bridge", hint: "rename one of them; a link endpoint `\(b.name)` must name one thing")
        }
        if topology.nodes.isEmpty {
            error("nodes", "the lab has no nodes", hint: "declare at least one node under `nodes:`")
        }
    }

    private func checkProfiles() {
        for link in topology.links {
            for (key, name) in [("forward", link.forwardProfile), ("reverse", link.reverseProfile)] {
                guard let name, profile(name) == nil else { continue }
                let path = decoder.directionalLinks.contains(link.index) ? "links[\(link.index)].profile.\(key)" : "links[\(link.index)].profile"
                if key == "reverse", !decoder.directionalLinks.contains(link.index) { continue }  // reported once
                let s = didYouMean(name, topology.profiles.map(\.name))
                error(path, "unknown profile '\(name)'" + (s.isEmpty ? "" : "; \(s)"),
                      hint: topology.profiles.isEmpty ? "declare it under `profiles:`" : "declare it under `profiles:` or use one of \(topology.profiles.map(\.name).joined(separator: ", "))")
            }
            // A one-way profile on a link given per direction would shape less than the user wrote.
            if decoder.directionalLinks.contains(link.index) {
                for name in [link.forwardProfile, link.reverseProfile].compactMap({ $0 }) {
                    if let p = profile(name), p.direction != .both {
                        error("links[\(link.index)].profile", "profile '\(name)' shapes only the \(p.direction.rawValue) direction but is used per direction here",
                              hint: "remove `direction:` from profile '\(name)'; the link already says which direction it shapes")
                    }
                }
            }
        }
    }

    // MARK: Links

    /// Returns each node's interfaces (name -> link index), checking references and names.
    private mutating func resolveLinks() -> [String: [String: Int]] {
        var interfaces: [String: [String: Int]] = [:]
        var usedLinkNames: [String: Int] = [:]
        var bridgePairs: [Set<String>: Int] = [:]
        let nodeNames = topology.nodes.map(\.name)
        let bridgeNames = topology.bridges.map(\.name)
        for li in topology.links.indices {
            var link = topology.links[li]
            let path = "links[\(link.index)]"
            var hosts: [String] = []
            for (ei, endpoint) in link.endpoints.enumerated() {
                let ep = "\(path).endpoints[\(ei)]"
                switch endpoint {
                case let .interface(node, name, _):
                    guard let n = self.node(node) else {
                        let s = didYouMean(node, nodeNames + bridgeNames)
                        error(ep, "unknown node '\(node)'" + (s.isEmpty ? "" : "; \(s)"), hint: "declare it under `nodes:` or fix the name")
                        hosts.append("")
                        continue
                    }
                    hosts.append(n.host)
                    checkInterfaceName(name, ep)
                    if let previous = interfaces[node]?[name] {
                        error(ep, "interface \(node):\(name) is used by two links (links[\(previous)] and links[\(link.index)])",
                              hint: "give each link its own interface name, e.g. \(name.dropLast())\(Int(String(name.last ?? "0")).map { $0 + 1 } ?? 1)")
                    } else {
                        interfaces[node, default: [:]][name] = link.index
                    }
                case let .bridge(b):
                    guard let bridge = bridge(b) else {
                        let s = didYouMean(b, bridgeNames + nodeNames.map { "\($0):eth0" })
                        error(ep, "unknown bridge '\(b)'" + (s.isEmpty ? "" : "; \(s)"),
                              hint: "declare it under `bridges:`, or write `node:interface` for a node's interface")
                        hosts.append("")
                        continue
                    }
                    hosts.append(bridge.host)
                }
            }
            link.hosts = hosts
            // Bridge-side port names: `node.interface` for a node, `bridge.peer` between bridges.
            if link.endpoints.count == 2 {
                for (ei, endpoint) in link.endpoints.enumerated() {
                    guard let bridge = endpoint.bridgeName else { continue }
                    let port = Topology.bridgePortName(bridge: bridge, peer: link.endpoints[1 - ei])
                    if port.utf8.count > Self.interfaceNameLimit {
                        error("\(path).endpoints[\(ei)]", "the port on bridge '\(bridge)' would be named '\(port)', \(port.utf8.count) bytes; Linux allows \(Self.interfaceNameLimit)",
                              hint: "bridge ports are named NODE.INTERFACE (or BRIDGE.PEER); shorten the node, interface or bridge name")
                    }
                }
                if case let .bridge(a) = link.endpoints[0], case let .bridge(b) = link.endpoints[1] {
                    if a == b {
                        error(path, "link joins bridge '\(a)' to itself", hint: "remove the link")
                    } else if let other = bridgePairs[[a, b]] {
                        error(path, "bridges '\(a)' and '\(b)' are already joined by links[\(other)]; a second link between the same two bridges is a layer-2 loop (and its ports would share the names \(a).\(b) and \(b).\(a))",
                              hint: "remove one link; for a redundant path, join them through a third bridge with `stp: true` on all three")
                    }
                    bridgePairs[[a, b]] = link.index
                }
                if link.endpoints[0] == link.endpoints[1], link.endpoints[0].nodeName != nil {
                    error(path, "link joins \(link.endpoints[0]) to itself", hint: "use two different interfaces")
                }
            }
            if link.name.isEmpty {
                link.name = link.endpoints.first.map { $0.description } ?? "link\(link.index)"
            } else if let previous = usedLinkNames[link.name] {
                error("\(path).name", "link name '\(link.name)' is already used by links[\(previous)]", hint: "give each link its own name")
            }
            usedLinkNames[link.name] = link.index
            if hosts.count == 2, !hosts.contains(""), hosts[0] != hosts[1] {
                link.tunnelKey = Self.tunnelKey(lab: topology.name, linkIndex: link.index)
            }
            topology.links[li] = link
        }
        return interfaces
    }

    /// A stable GRE key per link: 16 bits from the lab's name, 16 from the link's position,
    /// so that two labs between the same pair of hosts do not share keys.
    static func tunnelKey(lab: String, linkIndex: Int) -> UInt32 {
        var hash: UInt32 = 2_166_136_261
        for b in lab.utf8 { hash = (hash ^ UInt32(b)) &* 16_777_619 }
        return ((hash ^ (hash >> 16)) & 0xFFFF) << 16 | UInt32((linkIndex + 1) & 0xFFFF)
    }

    /// Names the kernel refuses, or that clash with /proc/sys/net/*/conf/{all,default}.
    static let reservedInterfaceNames: Set<String> = [".", "..", "lo", "all", "default"]

    private func checkInterfaceName(_ name: String, _ path: String) {
        if name.utf8.count > Self.interfaceNameLimit {
            error(path, "interface name '\(name)' is \(name.utf8.count) bytes; Linux allows \(Self.interfaceNameLimit)",
                  hint: "use a shorter name, e.g. '\(Self.utf8Prefix(name, Self.interfaceNameLimit))'")
        } else if name.isEmpty || Self.reservedInterfaceNames.contains(name) || name.contains(where: { $0 == "/" || $0 == ":" || $0.isWhitespace }) {
            error(path, "'\(name)' cannot be an interface name", hint: "use letters, digits, '-', '_' and '.', and none of lo, all, default")
        }
    }

    /// The longest prefix of whole characters that fits in `bytes` UTF-8 bytes.
    static func utf8Prefix(_ s: String, _ bytes: Int) -> String {
        var out = "", used = 0
        for c in s {
            let n = String(c).utf8.count
            if used + n > bytes { break }
            out.append(c); used += n
        }
        return out
    }

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
        var parent: [String: String] = [:]
        func find(_ b: String) -> String {
            var x = b
            while let p = parent[x], p != x { x = p }
            return x
        }
        for b in topology.bridges { parent[b.name] = b.name }
        for link in topology.links where link.endpoints.count == 2 {
            if case let .bridge(a) = link.endpoints[0], case let .bridge(b) = link.endpoints[1], parent[a] != nil, parent[b] != nil {
                parent[find(a)] = find(b)
            }
        }
        var byRoot: [String: Int] = [:]
        var result: [Segment] = []
        for b in topology.bridges {
            let r = find(b.name)
            if byRoot[r] == nil { byRoot[r] = result.count; result.append(Segment()) }
            result[byRoot[r]!].bridges.append(b.name)
        }
        for link in topology.links where link.endpoints.count == 2 {
            let bridgeEnd = link.endpoints.firstIndex { $0.bridgeName.map { parent[$0] != nil } ?? false }
            if let be = bridgeEnd, let seg = byRoot[find(link.endpoints[be].bridgeName!)] {
                result[seg].links.append(link.index)
                for (e, ep) in link.endpoints.enumerated() where ep.nodeName != nil { result[seg].members.append((link.index, e)) }
            } else if link.endpoints.allSatisfy({ $0.nodeName != nil }) {
                result.append(Segment(bridges: [], links: [link.index], members: [(link.index, 0), (link.index, 1)]))
            }
        }
        return result
    }

    private mutating func assignAddresses() {
        var allSegments = segments()
        // The subnet of each segment: from its bridges and its links, which must agree.
        for si in allSegments.indices {
            var seg = allSegments[si]
            var declared: [(IPNetwork, String)] = []
            for b in seg.bridges { if let s = bridge(b)?.subnet { declared.append((s, "bridges.\(b).subnet")) } }
            for l in seg.links { if let s = topology.links[l].subnet { declared.append((s, "links[\(l)].subnet")) } }
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
                    error(path, "subnet \(other) differs from \(first.0) declared at \(decoder.location(first.1)) for the same layer-2 segment",
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
                error(path, "subnet \(net) overlaps \(other) declared at \(decoder.location(otherPath))",
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
                let path = "links[\(m.link)].endpoints[\(m.end)]"
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

    // MARK: MTU

    private func checkMTUs() {
        for link in topology.links where link.crossesHosts && !link.hosts.contains("") {
            let path = "links[\(link.index)]"
            for hostName in link.hosts {
                guard let host = topology.host(named: hostName) else { continue }
                if host.underlay == nil {
                    error("hosts.\(hostName)", "host '\(hostName)' has no `underlay` address, but \(path) (\(link.label)) crosses to another host in a gretap tunnel",
                          hint: "add `underlay: ADDRESS` (the address the other host reaches it at)")
                }
                let underlayMTU = host.mtu ?? 1500
                if link.mtu + Self.greOverhead > underlayMTU {
                    error(link.mtu == 1500 && !decoderHasMTU(link) ? path : "\(path).mtu",
                          "link MTU \(link.mtu) does not fit through a gretap tunnel over host '\(hostName)' (underlay MTU \(underlayMTU), tunnel overhead \(Self.greOverhead) bytes)",
                          hint: "raise `mtu:` of host '\(hostName)' to at least \(link.mtu + Self.greOverhead) (the origin study used 5000), or set the link's `mtu:` to at most \(underlayMTU - Self.greOverhead)")
                }
            }
        }
        // All links on one bridge segment should share an MTU, or large frames are dropped silently.
        for seg in segments() where !seg.bridges.isEmpty {
            let mtus = Set(seg.links.map { topology.links[$0].mtu })
            if mtus.count > 1 {
                error("links[\(seg.links.last!)].mtu", "links on bridge \(seg.bridges.joined(separator: "+")) have different MTUs (\(mtus.sorted().map(String.init).joined(separator: ", ")))",
                      hint: "give every link on one bridge the same `mtu:`")
            }
        }
    }

    private func decoderHasMTU(_ link: Link) -> Bool { decoder.locations["links[\(link.index)].mtu"] != nil }

    // MARK: Nodes

    private mutating func resolveNodes(interfaces: [String: [String: Int]]) {
        for ni in topology.nodes.indices {
            var node = topology.nodes[ni]
            let path = "nodes.\(node.name)"
            let ifaces = interfaces[node.name] ?? [:]
            // Addresses of this node, by interface.
            var addresses: [String: [IPNetwork]] = [:]
            for (iface, li) in ifaces {
                for ep in topology.links[li].endpoints where ep.nodeName == node.name && ep.interfaceName == iface {
                    if let a = ep.address { addresses[iface, default: []].append(a) }
                }
            }
            let host = topology.host(named: node.host)
            if var mptcp = node.mptcp {
                if let host, !host.mptcp, mptcp.enabled {
                    error("\(path).mptcp", "node '\(node.name)' sets MPTCP options, but its host '\(host.name)' is declared without MPTCP (`mptcp: false`)",
                          hint: "move the node to an MPTCP host, or remove its `mptcp:` block")
                }
                var ids: Set<Int> = []
                for ei in mptcp.endpoints.indices {
                    var e = mptcp.endpoints[ei]
                    let ep = "\(path).mptcp.endpoints.\(e.interface)"
                    guard ifaces[e.interface] != nil else {
                        let s = didYouMean(e.interface, ifaces.keys)
                        error(ep, "node '\(node.name)' has no interface '\(e.interface)'" + (s.isEmpty ? "" : "; \(s)"),
                              hint: ifaces.isEmpty ? "link an interface of this node first" : "its interfaces: \(ifaces.keys.sorted().joined(separator: ", "))")
                        continue
                    }
                    let own = addresses[e.interface] ?? []
                    if let explicit = e.address {
                        if !own.contains(where: { $0.address == explicit }) {
                            error("\(ep).address", "\(explicit) is not an address of \(node.name):\(e.interface)",
                                  hint: own.isEmpty ? "give the interface an address" : "use one of \(own.map { "\($0.address)" }.joined(separator: ", "))")
                        }
                    } else if let first = own.first {
                        e.address = first.address
                    } else {
                        error(ep, "MPTCP endpoint \(node.name):\(e.interface) has no address to announce",
                              hint: "give the link a `subnet:` or the endpoint an explicit `address:`")
                    }
                    if let id = e.id {
                        if ids.contains(id) { error("\(ep).id", "endpoint id \(id) is used twice on node '\(node.name)'", hint: "use distinct ids, or omit them") }
                        ids.insert(id)
                    }
                    mptcp.endpoints[ei] = e
                }
                if mptcp.endpoints.count > 8 {
                    error("\(path).mptcp.endpoints", "\(mptcp.endpoints.count) endpoints exceed the kernel's maximum of 8 per namespace", hint: "keep at most 8")
                }
                node.mptcp = mptcp
            }
            // Routes: devices, gateways and sources must belong to the node.
            let allAddresses = addresses.values.flatMap { $0 }
            var routeKeys: Set<String> = []
            for (ri, route) in node.routes.enumerated() {
                let rp = "\(path).routes[\(ri)]"
                if let dev = route.device, ifaces[dev] == nil {
                    let s = didYouMean(dev, ifaces.keys)
                    error("\(rp).dev", "node '\(node.name)' has no interface '\(dev)'" + (s.isEmpty ? "" : "; \(s)"),
                          hint: "its interfaces: \(ifaces.keys.sorted().joined(separator: ", "))")
                }
                if let via = route.via {
                    let onLink = allAddresses.filter { $0.contains(via) }
                    if onLink.isEmpty {
                        error("\(rp).via", "gateway \(via) is not in any subnet of node '\(node.name)' (\(allAddresses.map(\.description).joined(separator: ", ")))",
                              hint: "use the address of a neighbour on one of this node's links")
                    } else if onLink.contains(where: { $0.address == via }) {
                        error("\(rp).via", "gateway \(via) is this node's own address", hint: "use the neighbour's address")
                    }
                    if let d = route.destination, d.family != via.family {
                        error("\(rp).via", "gateway \(via) and destination \(d) are of different IP families")
                    }
                }
                if let d = route.destination, !d.isNetworkAddress {
                    error("\(rp).to", "destination \(d) has host bits set", hint: "write \(d.network)")
                }
                if let src = route.source, !allAddresses.contains(where: { $0.address == src }) {
                    error("\(rp).source", "\(src) is not an address of node '\(node.name)'", hint: "use one of \(allAddresses.map { "\($0.address)" }.joined(separator: ", "))")
                }
                let key = "\(route.destinationText)|\(route.table ?? 254)|\(route.metric ?? 0)"
                if routeKeys.contains(key) {
                    error(rp, "a route to \(route.destinationText) with the same table and metric is already declared", hint: "remove one, or give them different metrics")
                }
                routeKeys.insert(key)
            }
            if !decoder.sourceRoutingSet.contains(node.name) {
                node.sourceRouting = (node.mptcp?.enabled ?? false) && addresses.count > 1
            }
            topology.nodes[ni] = node
        }
    }

    // MARK: Workloads and schedule

    private func mptcpEnabled(_ nodeName: String) -> Bool {
        guard let node = node(nodeName), let host = topology.host(named: node.host) else { return false }
        return host.mptcp && (node.mptcp?.enabled ?? true)
    }

    private func checkNodeRef(_ name: String?, _ path: String) {
        guard let name, node(name) == nil else { return }
        let s = didYouMean(name, topology.nodes.map(\.name))
        error(path, "unknown node '\(name)'" + (s.isEmpty ? "" : "; \(s)"), hint: "use a node declared under `nodes:`")
    }

    private func checkWorkloads() {
        var names: [String: Int] = [:]
        for (i, w) in topology.workloads.enumerated() {
            let path = "workloads[\(i)]"
            if let previous = names[w.name] { error("\(path).name", "workload name '\(w.name)' is already used by workloads[\(previous)]", hint: "give each workload its own name") }
            names[w.name] = i
            checkNodeRef(w.client, "\(path).client")
            checkNodeRef(w.server, "\(path).server")
            checkNodeRef(w.node, "\(path).node")
            switch w.plugin {
            case "iperf3":
                if w.client == nil || w.server == nil { error(path, "iperf3 needs a `client` and a `server` node", hint: "add e.g. `client: client, server: server`") }
            case "ping":
                if w.client == nil || (w.server == nil && w.target == nil) { error(path, "ping needs a `client` and a `server` (or `target`)", hint: "add e.g. `client: client, server: server`") }
            case "transfer":
                if w.client == nil || w.server == nil { error(path, "transfer needs a `client` and a `server` node", hint: "add e.g. `client: client, server: server`") }
                if case let .object(o)? = w.options, o["sizes"] != nil || o["size"] != nil {} else {
                    error(path, "transfer needs `with: {sizes: [...]}`, the file sizes to fetch", hint: "add e.g. `with: {sizes: [16kB, 1MB, 50MB], repeat: 3}`")
                }
            case "command":
                if w.node == nil && w.client == nil { error(path, "command needs a `node` to run in", hint: "add e.g. `node: client`") }
                if case let .object(o)? = w.options, o["command"] != nil {} else {
                    error(path, "command needs `with: {command: ...}`: a list of arguments or one shell line", hint: "add e.g. `with: {command: [my-proxy, --port, '8080']}`")
                }
            default:
                if !w.plugin.contains("/") {
                    error("\(path).plugin", "unknown built-in plugin '\(w.plugin)'" + { let s = didYouMean(w.plugin, Workload.builtInPlugins); return s.isEmpty ? "" : "; \(s)" }(),
                          hint: "use \(Workload.builtInPlugins.joined(separator: ", ")), or the path of an external plugin (containing '/')")
                }
            }
            if w.mptcp, let client = w.client, node(client) != nil, !mptcpEnabled(client) {
                error("\(path).mptcp", "workload '\(w.name)' asks for MPTCP, but its client '\(client)' has MPTCP off (its host or node says so)",
                      hint: "run the client on an MPTCP host, or set `mptcp: false`")
            }
            if let server = w.server, w.target == nil, node(server) != nil, !nodeHasAddress(server) {
                error("\(path).server", "server '\(server)' has no address to connect to", hint: "give one of its links a `subnet:`, or set `target:`")
            }
        }
    }

    private func nodeHasAddress(_ node: String) -> Bool {
        topology.links.contains { $0.endpoints.contains { $0.nodeName == node && $0.address != nil } }
    }

    /// The length of the run: `run.duration`, or until the last workload ends.
    static func runLength(_ t: Topology) -> Duration? {
        if let d = t.run.duration { return d }
        let ends = t.workloads.compactMap { w in w.duration.map { w.start + $0 } }
        return ends.max()
    }

    private mutating func checkSchedule() {
        let runLength = Self.runLength(topology)
        for (i, w) in topology.workloads.enumerated() {
            if let d = w.duration, let r = topology.run.duration, w.start + d > r {
                error("workloads[\(i)]", "workload '\(w.name)' runs until \(w.start + d), after the run ends at \(r)",
                      hint: "shorten it or lengthen `run.duration`")
            }
        }
        for fi in topology.schedule.indices {
            var f = topology.schedule[fi]
            let path = "schedule[\(fi)]"
            let needsLink: Set<FaultEvent.Kind> = [.linkDown, .linkFlap, .profile, .lossBurst, .trace]
            if let text = decoder.faultLinks[path] ?? nil {
                if let idx = topology.links.firstIndex(where: { $0.name == text || $0.endpoints.contains { $0.description == text } }) {
                    f.link = idx
                } else {
                    let candidates = topology.links.map(\.name) + topology.links.flatMap { $0.endpoints.map(\.description) }
                    let s = didYouMean(text, candidates)
                    error("\(path).link", "no link is named or ends at '\(text)'" + (s.isEmpty ? "" : "; \(s)"),
                          hint: "name a link (its `name:`) or one of its ends as node:interface")
                }
            } else if needsLink.contains(f.kind) {
                error(path, "fault `\(f.kind.rawValue)` needs a `link`", hint: "add e.g. `link: client:lte0`")
            }
            if f.duration == nil {
                error(path, "fault `\(f.kind.rawValue)` has no `for:` duration; every fault must be reverted", hint: "add e.g. `for: 10s`")
            }
            switch f.kind {
            case .profile:
                if let p = f.profile {
                    if profile(p) == nil {
                        let s = didYouMean(p, topology.profiles.map(\.name))
                        error("\(path).profile", "unknown profile '\(p)'" + (s.isEmpty ? "" : "; \(s)"), hint: "declare it under `profiles:`")
                    }
                } else { error(path, "fault `profile` needs `profile:`, the profile to switch to", hint: "add e.g. `profile: lte-bad`") }
            case .lossBurst:
                if f.loss == nil { error(path, "fault `loss-burst` needs `loss:`", hint: "add e.g. `loss: 30%`") }
            case .partition:
                if f.nodes.isEmpty { error(path, "fault `partition` needs `nodes:`, the nodes to cut off", hint: "add e.g. `nodes: [server]`") }
                for (ni, n) in f.nodes.enumerated() { checkNodeRef(n, "\(path).nodes[\(ni)]") }
            case .plugin:
                if f.plugin == nil { error(path, "fault `plugin` needs `plugin:`, the external program", hint: "add e.g. `plugin: ./faults/my-fault`") }
                else if f.nodes.isEmpty && f.link == nil { error(path, "an external fault runs in a node: name it with `nodes: [NODE]` (or a `link:`)", hint: "add e.g. `nodes: [client]`") }
            case .trace:
                if case let .object(o)? = f.options, case .string? = o["file"] {} else {
                    error(path, "fault `trace` needs `with: {file: PATH}`, a CSV of time,rate[,delay[,loss]]", hint: "add e.g. `with: {file: traces/lte.csv}`")
                }
            case .linkDown, .linkFlap:
                break
            }
            if f.count > 1 {
                if let every = f.every {
                    if let d = f.duration, d >= every {
                        error("\(path).every", "repetitions every \(every) overlap: each lasts \(d)", hint: "make `every` longer than `for`")
                    }
                } else {
                    error(path, "`count: \(f.count)` needs `every:`, the period", hint: "add e.g. `every: 20s`")
                }
            } else if f.random != nil {
                error("\(path).random", "`random:` spaces repetitions: it needs `count:` above 1 and `every:`", hint: "add e.g. `every: 30s, count: 5`")
            } else if f.every != nil, decoder.locations["\(path).count"] == nil {
                error("\(path).every", "`every:` without `count:` repeats nothing", hint: "add e.g. `count: 3`")
            }
            if let runLength {
                if f.end > runLength {
                    error(path, "the fault ends at \(f.end), after the run ends at \(runLength)",
                          hint: "start it earlier, shorten it, or lengthen the run (`run: {duration: ...}` or the workloads)")
                }
            } else {
                error(path, "the run has no length, so the fault cannot be placed in it",
                      hint: "add a workload with a `duration:`, or `run: {duration: 60s}`")
            }
            topology.schedule[fi] = f
        }
    }
}
