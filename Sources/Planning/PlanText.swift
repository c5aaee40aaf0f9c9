import NetlinkTypes
import TopologyModel

/// A plan as people read it: per host, phases, numbered commands, and what crosses hosts.
public enum PlanText {
    public static func render(_ plan: LabPlan, topology t: Topology) -> String {
        var out = "lab \(plan.lab): \(plan.operationCount) operations on \(plan.hosts.count) host\(plan.hosts.count == 1 ? "" : "s")\n"
        let tunnels = t.links.filter(\.crossesHosts)
        if !tunnels.isEmpty {
            out += "tunnels (one per link: gretap with a key, inner MTU + \(Topology.gretapOverhead) bytes, or vxlan with a VNI, + \(Topology.vxlanOverhead) bytes, must fit the underlay MTU):\n"
            for l in tunnels {
                out += "  \(l.name): \(l.label)  \(l.hosts[0]) <-> \(l.hosts[1])  \(l.tunnel.rawValue) \(l.tunnel.idName) \(l.tunnelKey ?? 0)  mtu \(l.mtu)\n"
            }
        }
        let queues = ShapedQueue.of(t)
        if !queues.isEmpty {
            out += "queues (each shaped direction: its length in packets and in ms at its rate; `queue:` of a profile sets it):\n"
            for q in queues { out += "  \(q.summary)\n" }
        }
        // Routes Pathbed adds that the file does not write: say them.
        var gateways: [String] = []
        let addresses = t.addressesByNode
        let routing = ForwardingIndex(t)
        for n in t.nodes where n.sourceRouting {
            for (iface, address) in addresses[n.name] ?? [] {
                if let g = Planner.sourceRoutingGateway(t, n, iface, address, routing) {
                    gateways.append("  \(n.name): \(iface)'s table routes beyond its subnet through \(g), the link's one forwarding neighbour (no route of the file has a gateway there)")
                } else if n.mptcp?.endpoints.contains(where: { $0.interface == iface }) == true,
                          !t.sourceRoutingTableReachesBeyondSubnet(node: n, interface: iface, address: address) {
                    let routers = routing.neighbours(node: n.name, interface: iface, family: address.family)
                    gateways.append("  \(n.name): \(iface)'s table reaches only \(address.network): "
                                    + (routers.isEmpty ? "no forwarding neighbour there" : "\(routers.count) forwarding neighbours there (\(routers.map(\.node).joined(separator: ", "))), none chosen") + " (`validate` warns where that matters)")
                }
            }
        }
        if !gateways.isEmpty { out += "source routing (default routes the file does not write, and tables without one):\n" + gateways.joined(separator: "\n") + "\n" }
        let merged = Planner.kernelBridges(t)
        if !merged.bridgeOf.isEmpty {
            let groups = Dictionary(grouping: merged.bridgeOf.keys, by: { merged.bridgeOf[$0]! })
            out += "bridges made as one kernel bridge (joined by plain links; `merge: false` on a link keeps it):\n"
            for (root, members) in groups.sorted(by: { $0.key < $1.key }) {
                let names = members.sorted { $0.count != $1.count ? $0.count < $1.count : $0 < $1 }
                let shown = names.count > 6 ? names.prefix(5).joined(separator: ", ") + ", ... \(names.last!)" : names.joined(separator: ", ")
                out += "  \(root): also \(shown) (\(names.count + 1) bridges)\n"
            }
        }
        for h in plan.hosts {
            out += "\nhost \(h.host) (\(h.reach)): \(h.operations.count) operations\n"
            var phase = ""
            for (i, op) in h.operations.enumerated() {
                if op.phase != phase {
                    phase = op.phase
                    out += "  # \(phase)\n"
                }
                out += "  \(String(i + 1).leftPadded(4))  \(op.command)\n"
            }
        }
        return out
    }
}

extension String {
    func leftPadded(_ width: Int) -> String { count >= width ? self : String(repeating: " ", count: width - count) + self }
}

extension LabOperation {
    /// The same change as iproute2 / tc commands, for people reading a plan. Every value is
    /// shell-quoted, so pasting the text runs exactly these commands and nothing else.
    public var command: String { commands.joined(separator: "; ") }

    public var commands: [String] {
        switch self {
        case let .setUnderlayMTU(interface, address, mtu):
            return ["ip link set \(interface.map(sh) ?? address.map { "\"$(ip -o addr show to \($0) | cut -d' ' -f2)\"" } ?? "UNDERLAY-INTERFACE") mtu \(mtu)"]
        case let .disableMPTCP(ns):
            return ["ip netns exec \(sh(ns)) sysctl -qw net.mptcp.enabled=0"]
        case let .createNamespace(name, lab):
            return ["ip netns add \(sh(name))", "ip -n \(sh(name)) link set lo alias \(sh(Ownership.namespaceTag(lab: lab)))"]
        case let .setSysctl(ns, key, value):
            return ["ip netns exec \(sh(ns)) sysctl -qw \(sh("\(key)=\(value)"))"]
        case let .createBridge(r, stp, group):
            return ["ip -n \(sh(r.namespace)) link add \(sh(r.name)) group \(group) type bridge stp_state \(stp ? 1 : 0)"]
        case let .createVeth(a, b, mtu, group):
            return ["ip link add \(sh(a.name)) netns \(sh(a.namespace)) mtu \(mtu) group \(group) type veth peer \(sh(b.name)) netns \(sh(b.namespace)) mtu \(mtu) group \(group)"]
        case let .createGretap(r, local, remote, key, mtu, group):
            return ["ip link add \(sh(r.name)) netns \(sh(r.namespace)) mtu \(mtu) group \(group) type gretap local \(local) remote \(remote) key \(key)"]
        case let .createVxlan(r, local, remote, vni, mtu, group):
            return ["ip link add \(sh(r.name)) netns \(sh(r.namespace)) mtu \(mtu) group \(group) type vxlan id \(vni) local \(local) remote \(remote) dstport \(Topology.vxlanPort)"]
        case let .enslave(r, bridge):
            return ["ip -n \(sh(r.namespace)) link set \(sh(r.name)) master \(sh(bridge))"]
        case let .addAddress(r, address):
            return ["ip -n \(sh(r.namespace)) addr add \(address) dev \(sh(r.name))" + (address.family == .ipv6 ? " nodad" : "")]
        case let .setUp(r):
            return ["ip -n \(sh(r.namespace)) link set \(sh(r.name)) up"]
        case let .setQdisc(r, q):
            return Self.tcCommands(r, q)
        case let .addRoute(ns, r):
            return [Self.routeCommand("add", ns, r)]
        case let .addRule(ns, from, table, priority):
            return ["ip -n \(sh(ns))\(from.family == .ipv6 ? " -6" : "") rule add from \(from) table \(table) priority \(priority)"]
        case let .setMPTCPLimits(ns, subflows, addAddr):
            var s = "ip -n \(sh(ns)) mptcp limits set"
            if let subflows { s += " subflows \(subflows)" }
            if let addAddr { s += " add_addr_accepted \(addAddr)" }
            return [s]
        case let .addMPTCPEndpoint(ns, address, dev, id, flags):
            return ["ip -n \(sh(ns)) mptcp endpoint add \(address) dev \(sh(dev)) id \(id)" + flags.map { " \($0.rawValue)" }.joined()]
        case let .deleteRoute(ns, r):
            return [Self.routeCommand("del", ns, r)]
        case let .deleteRule(ns, from, table, priority):
            return ["ip -n \(sh(ns))\(from.family == .ipv6 ? " -6" : "") rule del from \(from) table \(table) priority \(priority)"]
        case let .deleteMPTCPEndpoint(ns, id):
            return ["ip -n \(sh(ns)) mptcp endpoint delete id \(id)"]
        case let .awaitGone(r):
            return ["while ip -n \(sh(r.namespace)) link show \(sh(r.name)) >/dev/null 2>&1; do sleep 0.05; done"]
        }
    }

    static func routeCommand(_ verb: String, _ ns: String, _ r: RouteSpec) -> String {
        var s = "ip -n \(sh(ns))\(r.family == .ipv6 ? " -6" : "") route \(verb) \(r.destinationText)"
        if let via = r.via { s += " via \(via)" }
        if let dev = r.device { s += " dev \(sh(dev))" }
        if r.scopeLink { s += " scope link" }
        if let src = r.source { s += " src \(src)" }
        if let metric = r.metric { s += " metric \(metric)" }
        if let table = r.table { s += " table \(table)" }
        return s
    }

    static func netemArguments(_ n: NetemParameters) -> String {
        var parts: [String] = []
        if n.delayMicroseconds > 0 || n.jitterMicroseconds > 0 {
            parts.append("delay \(n.delayMicroseconds)us")
            if n.jitterMicroseconds > 0 { parts.append("\(n.jitterMicroseconds)us") }
            if let c = n.delayCorrelation { parts.append("\(trimmed(c))%") }
            if let d = n.distribution { parts.append("distribution \(sh(d))") }
        }
        if let l = n.loss { parts.append("loss random \(trimmed(l))%" + (n.lossCorrelation.map { " \(trimmed($0))%" } ?? "")) }
        if let g = n.gemodel { parts.append("loss gemodel " + g.map { "\(trimmed($0))%" }.joined(separator: " ")) }
        if let d = n.duplicate { parts.append("duplicate \(trimmed(d))%") }
        if let c = n.corrupt { parts.append("corrupt \(trimmed(c))%") }
        if let r = n.reorder { parts.append("reorder \(trimmed(r))%" + (n.reorderCorrelation.map { " \(trimmed($0))%" } ?? "") + (n.gap.map { " gap \($0)" } ?? "")) }
        parts.append("limit \(n.limitPackets)")
        return "netem " + parts.joined(separator: " ")
    }

    static func tcCommands(_ r: InterfaceRef, _ q: QdiscSpec, verb: String = "add") -> [String] {
        let prefix = "tc -n \(sh(r.namespace)) qdisc \(verb) dev \(sh(r.name))"
        switch q.shaping {
        case let .htb(rateBytes, burst, netem):
            let rateText = Bitrate(bitsPerSecond: rateBytes * 8).description
            var lines = [
                "\(prefix) root handle 1: htb default 1",
                "tc -n \(sh(r.namespace)) class \(verb) dev \(sh(r.name)) parent 1: classid 1:1 htb rate \(rateText) ceil \(rateText) burst \(burst) cburst \(burst)",
            ]
            if let netem { lines.append("\(prefix) parent 1:1 handle 10: \(netemArguments(netem))") }
            return lines
        case let .tbf(rateBytes, burst, limit):
            return ["\(prefix) root handle 1: tbf rate \(Bitrate(bitsPerSecond: rateBytes * 8)) burst \(burst) limit \(limit)"]
        case let .netem(netem):
            return ["\(prefix) root handle 1: \(netemArguments(netem))"]
        }
    }
}

extension QdiscSpec {
    /// The shaping in a few words: `tbf 10mbit limit 12500`, `htb 20mbit + netem delay 10000us limit 1000`.
    public var brief: String {
        switch shaping {
        case let .htb(rateBytes, _, netem):
            return "htb \(Bitrate(bitsPerSecond: rateBytes * 8))" + (netem.map { " + " + LabOperation.netemArguments($0) } ?? "")
        case let .tbf(rateBytes, _, limit):
            return "tbf \(Bitrate(bitsPerSecond: rateBytes * 8)) limit \(limit)"
        case let .netem(n):
            return LabOperation.netemArguments(n)
        }
    }
}

/// Quotes a value for a POSIX shell when it holds anything beyond a safe set of characters.
public func sh(_ s: String) -> String {
    let safe = Set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-.,:/@%+=")
    if !s.isEmpty && s.allSatisfy({ safe.contains($0) }) { return s }
    return "'" + s.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

func trimmed(_ v: Double) -> String {
    v == v.rounded() && abs(v) < 1e15 ? String(Int64(v)) : String(v)
}

