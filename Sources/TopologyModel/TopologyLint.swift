/// Warnings for a lab that is valid but wired so that it cannot do what it says: `validate`
/// prints them (`--strict` makes them errors), `up` and `run` say them before the first change.
/// Each names where in the file, what will happen, and the fix.
public enum TopologyLint {
    public static func warnings(_ t: Topology) -> [Diagnostic] {
        var out: [Diagnostic] = []
        func warn(_ at: SourceLocation, _ path: String, _ message: String, fix: String) {
            out.append(Diagnostic(at, path: path, message, hint: fix, severity: .warning))
        }
        let nodes = Dictionary(t.nodes.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let hostMPTCP = Dictionary(t.hosts.map { ($0.name, $0.mptcp) }, uniquingKeysWith: { a, _ in a })
        let addresses = t.addressesByNode
        func mptcpOn(_ n: Node) -> Bool { (n.mptcp?.enabled ?? false) && hostMPTCP[n.host] ?? true }
        func signals(_ n: Node) -> [MPTCPEndpoint] { mptcpOn(n) ? (n.mptcp?.endpoints ?? []).filter { $0.flags.contains(.signal) } : [] }

        // The address a workload's client connects to: the kernel announces every `signal`
        // endpoint of the server but that one (the first subflow's).
        func target(_ w: Workload) -> IPAddress? {
            switch w.kind {
            case let .iperf3(x): return x.target
            case let .transfer(x): return x.target
            default: return nil
            }
        }
        // The MPTCP peers of each node: the other side of each `mptcp: true` workload.
        var peers: [String: Set<String>] = [:]
        for w in t.workloads where w.mptcp && w.nodes.count == 2 {
            peers[w.nodes[0], default: []].insert(w.nodes[1])
            peers[w.nodes[1], default: []].insert(w.nodes[0])
        }

        // 1. `mptcp: true` workloads whose ends cannot speak MPTCP, or have one path only.
        for (i, w) in t.workloads.enumerated() where w.mptcp {
            let path = "workloads[\(i)]"
            // (A client without MPTCP is the validator's error.)
            guard let client = nodes[w.nodes[0]] else { continue }
            if w.nodes.count == 2, let server = nodes[w.nodes[1]] {
                if hostMPTCP[server.host] == false || server.mptcp?.enabled == false {
                    let why = hostMPTCP[server.host] == false ? "is on host '\(server.host)', declared `mptcp: false`" : "has MPTCP off (`mptcp: false`)"
                    warn(w.location, path, "workload '\(w.name)' asks for MPTCP, but its server '\(server.name)' \(why): the connection falls back to TCP",
                         fix: "serve from a node with MPTCP (a proxy in front of a plain server, as topologies/thesis-two-vms.yaml does), or set `mptcp: false` on the workload")
                    continue
                }
                let clientPaths = client.mptcp?.endpoints.filter { $0.flags.contains(.subflow) || $0.flags.contains(.fullmesh) } ?? []
                let announced = signals(server).filter { $0.address != target(w) }
                let interfaces = (addresses[client.name]?.count ?? 0) + (addresses[server.name]?.count ?? 0)
                if client.mptcp == nil || (clientPaths.isEmpty && announced.isEmpty), interfaces > 2 {
                    let why = client.mptcp == nil ? "its client '\(client.name)' has no `mptcp:` settings" : "its client '\(client.name)' has no `subflow` endpoint"
                    warn(w.location, path, "workload '\(w.name)' asks for MPTCP, but \(why) and its server '\(server.name)' announces no address (`signal`): the connection keeps its first subflow, one path",
                         fix: "give node '\(client.name)' `mptcp: { endpoints: { IFACE: subflow, ... }, limits: { subflows: N } }` for each further path")
                }
            }
        }

        for n in t.nodes {
            guard let m = n.mptcp, mptcpOn(n) else { continue }
            let path = "nodes.\(n.name).mptcp"
            // 2. Endpoints the limits leave unused (the kernel's defaults: 2 subflows, 0 accepted addresses).
            // The first subflow leaves from one of them and needs no slot of the limit.
            let subflowEndpoints = m.endpoints.filter { $0.flags.contains(.subflow) }
            let limit = m.subflows ?? 2
            if subflowEndpoints.count - 1 > limit {
                let unused = subflowEndpoints.suffix(subflowEndpoints.count - 1 - limit).map(\.interface).joined(separator: ", ")
                warn(m.location, path, "\(subflowEndpoints.count) `subflow` endpoints, but the subflows limit is \(limit)\(m.subflows == nil ? " (the kernel's default)" : ""): besides the first subflow a connection opens at most \(limit) more, so \(unused) may stay unused",
                     fix: "set `limits: { subflows: \(min(subflowEndpoints.count - 1, 8)) }` on node '\(n.name)'")
            }
            var announcedTo = 0, announcers: [String] = []
            for w in t.workloads where w.mptcp && w.nodes.count == 2 && w.nodes[0] == n.name {
                guard let peer = nodes[w.nodes[1]] else { continue }
                let s = signals(peer).filter { $0.address != target(w) }.count
                if s > 0 { announcedTo = max(announcedTo, s); if !announcers.contains(peer.name) { announcers.append(peer.name) } }
            }
            let accepted = m.addAddrAccepted ?? 0
            if announcedTo > accepted {
                warn(m.location, path, "\(announcers.joined(separator: ", ")) announce\(announcers.count == 1 ? "s" : "") \(announcedTo) address\(announcedTo == 1 ? "" : "es") (`signal` endpoints), but node '\(n.name)' accepts \(accepted)\(m.addAddrAccepted == nil ? " (the kernel's default)" : ""): \(accepted == 0 ? "it opens no subflow to them" : "the rest go unused")",
                     fix: "set `limits: { add-addr-accepted: \(min(announcedTo, 8)) }` on node '\(n.name)'")
            }

            // 3. Source routing: each MPTCP endpoint's interface has its own table; without a
            // route beyond its subnet there, subflows from it reach only that subnet.
            guard n.sourceRouting else { continue }
            for e in m.endpoints {
                guard let (iface, address) = addresses[n.name]?.first(where: { $0.0 == e.interface }),
                      !t.sourceRoutingTableReachesBeyondSubnet(node: n, interface: iface, address: address) else { continue }
                let routers = t.forwardingNeighbours(node: n.name, interface: iface, family: address.family)
                guard routers.count != 1 else { continue }
                let unreachable = (peers[n.name] ?? []).sorted().filter { p in !(addresses[p] ?? []).contains { address.contains($0.1.address) } }
                guard !unreachable.isEmpty else { continue }
                let why = routers.isEmpty ? "no node with `forwarding: true` on that link to route through"
                    : "\(routers.count) nodes that forward on that link (\(routers.map { "\($0.node) \($0.address)" }.joined(separator: ", "))), so Pathbed does not choose"
                let fix = routers.isEmpty ? "add a route through a gateway on \(e.interface) to node '\(n.name)' (`routes: [ { to: default, via: GATEWAY, metric: 100 } ]`), or make the node at the other end of the link forward (`forwarding: true`)"
                    : "add a route through one of them to node '\(n.name)': `routes: [ { to: default, via: \(routers[0].address), metric: 100 } ]`"
                warn(e.location, "\(path).endpoints.\(e.interface)",
                     "subflows from \(e.interface) (\(address.address)) can reach only \(address.network): its source-routing table has no route beyond that subnet, and there \(routers.isEmpty ? "is" : "are") \(why); no subflow from it reaches \(unreachable.joined(separator: ", "))",
                     fix: fix)
            }
        }
        // In the file's order.
        return out.sorted { ($0.location.line, $0.location.column) < ($1.location.line, $1.location.column) }
    }
}

extension Topology {
    /// Each node's addressed interfaces, in link order.
    public var addressesByNode: [String: [(String, IPNetwork)]] {
        var out: [String: [(String, IPNetwork)]] = [:]
        for link in links {
            for e in link.endpoints {
                if let node = e.nodeName, let a = e.address, let name = e.interfaceName { out[node, default: []].append((name, a)) }
            }
        }
        return out
    }

    /// Whether a node's own routes give an interface's source-routing table a route beyond its
    /// subnet (a route whose gateway sits on that interface is copied into it).
    public func sourceRoutingTableReachesBeyondSubnet(node n: Node, interface: String, address: IPNetwork) -> Bool {
        n.routes.contains { r in
            guard r.table == nil, let via = r.via, address.contains(via) else { return false }
            return r.device == nil || r.device == interface
        }
    }

    /// The one forwarding neighbour on a node's interface: the node at the other end of its link
    /// with `forwarding: true`, or the only such node on the bridge (and the bridges joined to it)
    /// at the other end; its address of the family. Nil where there is none, or more than one.
    public func gateway(node: String, interface: String, family: IPAddress.Family) -> IPAddress? {
        let routers = forwardingNeighbours(node: node, interface: interface, family: family)
        return routers.count == 1 ? routers[0].address : nil
    }

    /// The nodes with `forwarding: true` on a node's interface's link (or on the bridges at its
    /// other end), with their addresses of the family.
    public func forwardingNeighbours(node: String, interface: String, family: IPAddress.Family) -> [(node: String, address: IPAddress)] {
        let forwarding = Set(nodes.filter { $0.forwarding == true }.map(\.name))
        guard let link = links.first(where: { $0.endpoints.contains { $0.nodeName == node && $0.interfaceName == interface } }) else { return [] }
        guard let other = link.endpoints.first(where: { !($0.nodeName == node && $0.interfaceName == interface) }) else { return [] }
        var candidates: [(node: String, address: IPAddress)] = []
        func consider(_ e: Endpoint) {
            guard let m = e.nodeName, m != node, forwarding.contains(m), let a = e.address, a.family == family else { return }
            candidates.append((m, a.address))
        }
        if let b = other.bridgeName {
            // The bridges joined to this one by bridge-to-bridge links are one segment.
            var segment: Set<String> = [b], frontier = [b]
            while let x = frontier.popLast() {
                for l in links where l.joinsBridges {
                    let names = l.endpoints.compactMap(\.bridgeName)
                    guard names.contains(x) else { continue }
                    for y in names where segment.insert(y).inserted { frontier.append(y) }
                }
            }
            for l in links where !l.joinsBridges {
                guard l.endpoints.contains(where: { $0.bridgeName.map(segment.contains) == true }) else { continue }
                l.endpoints.forEach(consider)
            }
        } else {
            consider(other)
        }
        return candidates
    }
}
