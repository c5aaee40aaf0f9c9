import Foundation

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
        let routing = ForwardingIndex(t)
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

        // 0. A VM's kernel given by a path that is not there (here): `vm up FILE` will refuse it.
        for h in t.hosts {
            guard let vm = h.vm, case let .path(p) = vm.kernel, !FileManager.default.fileExists(atPath: p) else { continue }
            warn(vm.kernelLocation ?? h.location, "hosts.\(h.name).vm.kernel", "the kernel \(p) of host '\(h.name)' does not exist here: `pathbed vm up` will refuse to boot it",
                 fix: "give a kernel image (bzImage, vmlinuz) or a built kernel tree; relative paths are taken from this file's directory")
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

        // A link with both ends on one node: the kernel delivers their traffic locally, never
        // over the link (its profile shapes nothing).
        for l in t.links where l.endpoints.count == 2 {
            if let a = l.endpoints[0].nodeName, a == l.endpoints[1].nodeName {
                warn(l.location, "links[\(l.index)]", "both ends of link \(l.name) are on node '\(a)': traffic between them stays inside the node and never crosses the link",
                     fix: "join two different nodes (a link to itself measures nothing)")
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
            // Joins to announced addresses take slots of the subflows limit too.
            let joins = min(announcedTo, accepted)
            if joins > 0, max(0, subflowEndpoints.count - 1) + joins > limit {
                warn(m.location, path, "the subflows limit is \(limit)\(m.subflows == nil ? " (the kernel's default)" : ""), but node '\(n.name)' would open \(max(0, subflowEndpoints.count - 1)) subflow\(subflowEndpoints.count == 2 ? "" : "s") from its endpoints and \(joins) to addresses it accepts: \(limit == 0 ? "it opens none" : "some stay unopened")",
                     fix: "set `limits: { subflows: \(min(max(0, subflowEndpoints.count - 1) + joins, 8)) }` on node '\(n.name)'")
            }
            if m.pathManager == .userspace, !m.endpoints.isEmpty {
                warn(m.location, path, "node '\(n.name)' has endpoints, but its path manager is `userspace`: endpoints and limits are the kernel path manager's, and nothing opens subflows from them",
                     fix: "use `path-manager: kernel` (the default), or open subflows from a program of your own (a plugin)")
            }
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
                let routers = routing.neighbours(node: n.name, interface: iface, family: address.family)
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
}

/// Who forwards next to each node interface, found once for a whole lab: each link by its node
/// ends, each bridge's segment (bridges joined by links), and the node interfaces on each
/// segment. A question is then a lookup, not a walk over every link (a walk per interface made
/// `validate` of 200 dual-homed MPTCP nodes on bridges take 53 s).
public struct ForwardingIndex: Sendable {
    let forwarding: Set<String>
    let linkOf: [String: Int]
    var segmentOf: [String: String] = [:]
    var onSegment: [String: [Endpoint]] = [:]
    let links: [Link]

    public init(_ t: Topology) {
        links = t.links
        forwarding = Set(t.nodes.filter { $0.forwarding == true }.map(\.name))
        var linkOf: [String: Int] = [:]
        for (i, l) in t.links.enumerated() {
            for e in l.endpoints { if let n = e.nodeName, let f = e.interfaceName, linkOf["\(n):\(f)"] == nil { linkOf["\(n):\(f)"] = i } }
        }
        self.linkOf = linkOf
        var sets = DisjointSets(t.bridges.map(\.name))
        for l in t.links where l.joinsBridges {
            let names = l.endpoints.compactMap(\.bridgeName)
            if names.count == 2, sets.contains(names[0]), sets.contains(names[1]) { sets.union(names[0], names[1]) }
        }
        for b in t.bridges { segmentOf[b.name] = sets.find(b.name) }
        for l in t.links where !l.joinsBridges {
            guard let b = l.endpoints.compactMap(\.bridgeName).first, let seg = segmentOf[b] else { continue }
            onSegment[seg, default: []] += l.endpoints.filter { $0.nodeName != nil }
        }
    }

    /// The nodes with `forwarding: true` on a node's interface's link (or on the bridges at its
    /// other end), with their addresses of the family.
    public func neighbours(node: String, interface: String, family: IPAddress.Family) -> [(node: String, address: IPAddress)] {
        guard let i = linkOf["\(node):\(interface)"], i < links.count else { return [] }
        let link = links[i]
        guard let other = link.endpoints.first(where: { !($0.nodeName == node && $0.interfaceName == interface) }) else { return [] }
        let candidates = other.bridgeName.flatMap { segmentOf[$0] }.map { onSegment[$0] ?? [] } ?? [other]
        return candidates.compactMap { e in
            guard let m = e.nodeName, m != node, forwarding.contains(m), let a = e.address, a.family == family else { return nil }
            return (m, a.address)
        }
    }

    public func gateway(node: String, interface: String, family: IPAddress.Family) -> IPAddress? {
        let routers = neighbours(node: node, interface: interface, family: family)
        return routers.count == 1 ? routers[0].address : nil
    }
}
