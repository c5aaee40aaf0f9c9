import TopologyModel

/// Turns a validated topology into the ordered operations `up` performs on each host.
///
/// Order per host: underlay MTU, namespaces, sysctls, bridges, links (veth, gretap, enslave),
/// addresses, interfaces up, link profiles, routes and rules, MPTCP limits and endpoints.
/// Routes come after addresses and `up` because the kernel checks gateways against them.
public enum Planner {
    public static func plan(_ t: Topology) -> LabPlan {
        let group = Ownership.group(lab: t.name)
        let hostsByName = Dictionary(t.hosts.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let profilesByName = Dictionary(t.profiles.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var perHost: [String: [LabOperation]] = Dictionary(uniqueKeysWithValues: t.hosts.map { ($0.name, []) })
        func add(_ host: String, _ op: LabOperation) { perHost[host, default: []].append(op) }

        // Underlay MTU on hosts with tunnels.
        let tunnelHosts = Set(t.links.filter(\.crossesHosts).flatMap(\.hosts))
        for h in t.hosts where tunnelHosts.contains(h.name) {
            if let mtu = h.mtu { add(h.name, .setUnderlayMTU(interface: h.underlayInterface, address: h.underlay, mtu: UInt32(mtu))) }
        }
        // Namespaces: the bridge namespace where a host has bridge ends, then one per node.
        let bridgeHosts = Set(t.links.flatMap { link in link.endpoints.enumerated().compactMap { $0.element.bridgeName != nil ? link.hosts[$0.offset] : nil } }
            + t.bridges.map(\.host))
        for h in t.hosts where bridgeHosts.contains(h.name) {
            add(h.name, .createNamespace(name: t.bridgeNamespace, lab: t.name))
            // Bridge ports are layer 2 only. Without this, every port that comes up sends IPv6
            // DAD and MLD packets that flood across all joined bridges: linear 1000 took minutes.
            add(h.name, .setSysctl(namespace: t.bridgeNamespace, key: "net.ipv6.conf.default.disable_ipv6", value: "1"))
            add(h.name, .setSysctl(namespace: t.bridgeNamespace, key: "net.ipv6.conf.all.disable_ipv6", value: "1"))
        }
        for n in t.nodes { add(n.host, .createNamespace(name: t.namespace(of: n.name), lab: t.name)) }

        // Sysctls.
        let ipv6Nodes = Set(t.links.flatMap { $0.endpoints.compactMap { e -> String? in
            if case let .interface(node, _, a?) = e, a.family == .ipv6 { return node } else { return nil }
        } } + t.nodes.filter { $0.routes.contains { $0.family == .ipv6 } }.map(\.name))
        for n in t.nodes {
            let ns = t.namespace(of: n.name)
            let mptcpHost = hostsByName[n.host]?.mptcp ?? true
            // A node without IPv6 addresses gets no IPv6 link-local ones either: otherwise each of
            // its interfaces sends DAD, MLD and router solicitations as it comes up, which a bridge
            // floods to every port (linear 10000: 40 such packets a second at every node, the CPU's
            // backlog overrun, ARP requests lost) and which count in the lab's measurements. IPv6
            // stays on: an address added by hand works.
            if !ipv6Nodes.contains(n.name) {
                add(n.host, .setSysctl(namespace: ns, key: "net.ipv6.conf.default.addr_gen_mode", value: "1"))
            }
            if n.forwarding == true {
                add(n.host, .setSysctl(namespace: ns, key: "net.ipv4.ip_forward", value: "1"))
                add(n.host, .setSysctl(namespace: ns, key: "net.ipv6.conf.all.forwarding", value: "1"))
            }
            if n.forwarding == true || n.sourceRouting {
                // Asymmetric paths are the point of a multipath lab; strict reverse-path filtering drops them.
                add(n.host, .setSysctl(namespace: ns, key: "net.ipv4.conf.all.rp_filter", value: "0"))
                add(n.host, .setSysctl(namespace: ns, key: "net.ipv4.conf.default.rp_filter", value: "0"))
            }
            // A host declared plain: MPTCP off in every namespace of the lab there, so that an
            // MPTCP peer falls back to TCP as it would with a kernel without MPTCP.
            if !mptcpHost { add(n.host, .disableMPTCP(namespace: ns)) }
            if let m = n.mptcp, mptcpHost || !m.enabled {
                if mptcpHost { add(n.host, .setSysctl(namespace: ns, key: "net.mptcp.enabled", value: m.enabled ? "1" : "0")) }
                // A new namespace starts with the default scheduler: kernels before 6.6 have no
                // other, and no sysctl for it, so `default` is never written.
                if let s = m.scheduler, s != "default" { add(n.host, .setSysctl(namespace: ns, key: "net.mptcp.scheduler", value: s)) }
                if let pm = m.pathManager { add(n.host, .setSysctl(namespace: ns, key: "net.mptcp.pm_type", value: pm == .kernel ? "0" : "1")) }
            }
            if let cc = n.congestionControl { add(n.host, .setSysctl(namespace: ns, key: "net.ipv4.tcp_congestion_control", value: cc)) }
            for s in n.sysctls { add(n.host, .setSysctl(namespace: ns, key: s.key, value: s.value)) }
        }

        // Bridges: one kernel bridge for the bridges that plain links join (see `kernelBridges`).
        let merged = kernelBridges(t)
        for b in t.bridges where merged.bridgeOf[b.name, default: b.name] == b.name {
            add(b.host, .createBridge(InterfaceRef(namespace: t.bridgeNamespace, name: b.name), stp: b.stp, group: group))
        }

        // Links: each end becomes an interface in its node's namespace, or a port on its bridge.
        var upLater: [(String, InterfaceRef)] = []
        var addressOps: [(String, LabOperation)] = []
        var qdiscOps: [(String, LabOperation)] = []
        for link in t.links where !merged.links.contains(link.index) {
            let refs = link.endpoints.enumerated().map { (i, e) in endRef(t, link, i, e) }
            if link.crossesHosts, let key = link.tunnelKey {
                for i in 0..<2 {
                    // Validation made sure both hosts have an underlay address.
                    guard let local = hostsByName[link.hosts[i]]?.underlay, let remote = hostsByName[link.hosts[1 - i]]?.underlay else { continue }
                    switch link.tunnel {
                    case .gretap: add(link.hosts[i], .createGretap(refs[i], local: local, remote: remote, key: key, mtu: UInt32(link.mtu), group: group))
                    case .vxlan: add(link.hosts[i], .createVxlan(refs[i], local: local, remote: remote, vni: key, mtu: UInt32(link.mtu), group: group))
                    }
                }
            } else {
                add(link.hosts[0], .createVeth(refs[0], peer: refs[1], mtu: UInt32(link.mtu), group: group))
            }
            for (i, e) in link.endpoints.enumerated() {
                if let b = e.bridgeName { add(link.hosts[i], .enslave(refs[i], bridge: merged.bridgeOf[b, default: b])) }
                if let a = e.address { addressOps.append((link.hosts[i], .addAddress(refs[i], address: a))) }
                upLater.append((link.hosts[i], refs[i]))
                if let q = qdisc(profilesByName, link, end: i) { qdiscOps.append((link.hosts[i], .setQdisc(refs[i], q))) }
            }
        }
        for (h, op) in addressOps { add(h, op) }
        for b in t.bridges where merged.bridgeOf[b.name, default: b.name] == b.name {
            add(b.host, .setUp(InterfaceRef(namespace: t.bridgeNamespace, name: b.name)))
        }
        for (h, r) in upLater { add(h, .setUp(r)) }
        for n in t.nodes { add(n.host, .setUp(InterfaceRef(namespace: t.namespace(of: n.name), name: "lo"))) }
        for (h, op) in qdiscOps { add(h, op) }

        // Routes, per-interface source routing, MPTCP.
        let interfacesByNode = t.addressesByNode
        let routing = ForwardingIndex(t)
        for n in t.nodes {
            let ns = t.namespace(of: n.name)
            for r in n.routes {
                add(n.host, .addRoute(namespace: ns, RouteSpec(destination: r.destination, family: r.family, via: r.via, device: r.device,
                                                               source: r.source, metric: r.metric.map(UInt32.init), table: r.table.map(UInt32.init))))
            }
            if n.sourceRouting {
                // One table per interface, skipping tables the node's own routes use.
                let taken = Set(n.routes.compactMap(\.table))
                var table = sourceRoutingFirstTable
                for (i, (iface, address)) in (interfacesByNode[n.name] ?? []).enumerated() {
                    // Never the kernel's own tables: 253 default, 254 main, 255 local.
                    while taken.contains(table) || (253...255).contains(table) { table += 1 }
                    add(n.host, .addRoute(namespace: ns, RouteSpec(destination: address.network, family: address.family, device: iface,
                                                                   source: address.address, table: UInt32(table), scopeLink: true)))
                    // Copy the routes whose gateway sits on this interface into its table; where
                    // none does, a default through the link's one forwarding neighbour (subflows
                    // from this address reach nothing beyond its subnet otherwise). `plan` says so.
                    for r in n.routes where r.table == nil {
                        guard let via = r.via, address.contains(via), r.device == nil || r.device == iface else { continue }
                        // With its metric: two routes to one destination differ only by it.
                        add(n.host, .addRoute(namespace: ns, RouteSpec(destination: r.destination, family: r.family, via: via, device: iface,
                                                                       metric: r.metric.map(UInt32.init), table: UInt32(table))))
                    }
                    if let gateway = sourceRoutingGateway(t, n, iface, address, routing) {
                        add(n.host, .addRoute(namespace: ns, RouteSpec(destination: nil, family: address.family, via: gateway, device: iface, table: UInt32(table))))
                    }
                    add(n.host, .addRule(namespace: ns, from: address.address, table: UInt32(table), priority: UInt32(1000 + i)))
                    table += 1
                }
            }
            if let m = n.mptcp, m.enabled, hostsByName[n.host]?.mptcp ?? true {
                if m.subflows != nil || m.addAddrAccepted != nil {
                    add(n.host, .setMPTCPLimits(namespace: ns, subflows: m.subflows.map(UInt32.init), addAddrAccepted: m.addAddrAccepted.map(UInt32.init)))
                }
                var nextID = 1
                let used = Set(m.endpoints.compactMap(\.id))
                for e in m.endpoints {
                    guard let address = e.address else { continue }
                    var id = e.id ?? nextID
                    if e.id == nil { while used.contains(id) { id += 1 }; nextID = id + 1 }
                    add(n.host, .addMPTCPEndpoint(namespace: ns, address: address, device: e.interface, id: UInt8(clamping: id), flags: e.flags))
                }
            }
        }
        return LabPlan(lab: t.name, hosts: t.hosts.map { h in
            // Stable sort by phase: all routes after all qdiscs, all MPTCP settings after all routes.
            let ops = (perHost[h.name] ?? []).enumerated().sorted { ($0.element.phaseRank, $0.offset) < ($1.element.phaseRank, $1.offset) }.map(\.element)
            return HostPlan(host: h.name, reach: h.ssh.map { "ssh \($0)" } ?? (h.vm != nil ? "a local VM: pathbed vm up FILE" : "local"), operations: ops)
        })
    }

    /// Which bridges of the file are made as one kernel bridge.
    public struct KernelBridges: Sendable, Equatable {
        /// The kernel bridge each bridge of the file is part of (absent: its own).
        public var bridgeOf: [String: String] = [:]
        /// Links between bridges that are made as no kernel object at all.
        public var links: Set<Int> = []
    }

    /// Bridges joined by plain links are made as one kernel bridge, named after the first of
    /// them in the file, and the links between them as nothing.
    ///
    /// A veth pair between two bridges on one host, with no profile, carries every frame
    /// unchanged: one bridge forwards the same frames, with far fewer kernel devices. Devices
    /// are what a lab costs the kernel, to create and even more to free after `down`
    /// (docs/benchmarks.md): linear 1000 is 1 bridge and 1000 veth pairs instead of 1000 bridges
    /// and 1999 pairs. A link stays a veth pair between two bridges when it has a profile, a
    /// fault in the schedule, `merge: false`, crosses hosts, or touches a bridge with `stp: true`.
    /// (A loop of plain links, which would flood without STP, becomes one loop-free bridge.)
    public static func kernelBridges(_ t: Topology) -> KernelBridges {
        let stp = Set(t.bridges.filter(\.stp).map(\.name))
        let faulted = Set(t.schedule.compactMap(\.link))
        let order = Dictionary(t.bridges.enumerated().map { ($0.element.name, $0.offset) }, uniquingKeysWith: { a, _ in a })
        var sets = DisjointSets(t.bridges.map(\.name))
        var out = KernelBridges()
        // Ports per kernel bridge (by its root): every link end on one of its bridges, less the
        // ends of the links merged away. A merge that would pass `mergedBridgePorts` is not made,
        // and that link stays a veth pair between two kernel bridges (one port on each).
        var ports: [String: Int] = [:]
        for link in t.links { for e in link.endpoints { if let b = e.bridgeName { ports[b, default: 0] += 1 } } }
        for link in t.links where link.joinsBridges && link.merge && !link.crossesHosts
            && link.forwardProfile == nil && link.reverseProfile == nil && !faulted.contains(link.index) {
            guard let a = link.endpoints[0].bridgeName, let b = link.endpoints[1].bridgeName,
                  !stp.contains(a), !stp.contains(b), sets.contains(a), sets.contains(b) else { continue }
            let (ra, rb) = (sets.find(a), sets.find(b))
            let joined = ra == rb ? ports[ra, default: 0] - 2 : ports[ra, default: 0] + ports[rb, default: 0] - 2
            guard joined <= mergedBridgePorts else { continue }
            out.links.insert(link.index)
            // The root is the bridge that comes first in the file.
            sets.union(a, b) { ra, rb in order[ra, default: 0] < order[rb, default: 0] ? ra : rb }
            ports[sets.find(a)] = joined
        }
        for b in t.bridges {
            let r = sets.find(b.name)
            if r != b.name { out.bridgeOf[b.name] = r }
        }
        return out
    }

    /// Ports a kernel bridge made of merged bridges has at most. The kernel takes 1023 per bridge,
    /// but a broadcast (ARP) is flooded to every port at once, each copy queued in the CPU's
    /// backlog: past `net.core.netdev_max_backlog` (1000) the copies are dropped, and with 1023
    /// ports a node behind the last ports was never found (measured: linear 1100 as two bridges
    /// of 1023 and 79 ports, 5,678 copies dropped, no reply across). In a chain of bridges the
    /// next bridge's flood is queued while the last one's copies still wait, so up to twice this
    /// many are queued at once: with 512, linear 3000 (six bridges) lost the ARP requests to its
    /// far end; 256 keeps two floods at half the backlog.
    public static let mergedBridgePorts = 256

    /// The kernel-side name of a link end: the interface in its node, or the port on its bridge.
    public static func endRef(_ t: Topology, _ link: Link, _ i: Int, _ e: Endpoint) -> InterfaceRef {
        switch e {
        case let .interface(node, name, _):
            return InterfaceRef(namespace: t.namespace(of: node), name: name)
        case let .bridge(b):
            return InterfaceRef(namespace: t.bridgeNamespace, name: Topology.bridgePortName(bridge: b, peer: link.endpoints[1 - i]))
        }
    }

    /// Source-routing tables are numbered from here, one per interface.
    public static let sourceRoutingFirstTable = 100

    /// Each node's addressed interfaces in file order (one pass over the links).
    /// The gateway a node's source-routing table for an interface gets a default route through:
    /// the link's one forwarding neighbour, where the node's own routes give the table nothing
    /// beyond its subnet.
    public static func sourceRoutingGateway(_ t: Topology, _ n: Node, _ iface: String, _ address: IPNetwork, _ routing: ForwardingIndex) -> IPAddress? {
        guard n.sourceRouting, !t.sourceRoutingTableReachesBeyondSubnet(node: n, interface: iface, address: address) else { return nil }
        return routing.gateway(node: n.name, interface: iface, family: address.family)
    }


    /// The profile shaping traffic that leaves end `end` of `link`, as a qdisc.
    public static func qdisc(_ profiles: [String: LinkProfile], _ link: Link, end: Int) -> QdiscSpec? {
        profile(profiles, link, end: end).flatMap { QueueSizing.qdisc(for: $0, mtu: link.mtu) }
    }

    /// The profile shaping what leaves end `end` of `link` (nil: none).
    public static func profile(_ profiles: [String: LinkProfile], _ link: Link, end: Int) -> LinkProfile? {
        guard let name = end == 0 ? link.forwardProfile : link.reverseProfile, let p = profiles[name] else { return nil }
        if link.forwardProfile == link.reverseProfile {  // one profile for the link: honour its direction
            if p.direction == .forward && end != 0 { return nil }
            if p.direction == .reverse && end != 1 { return nil }
        }
        return p
    }
}
