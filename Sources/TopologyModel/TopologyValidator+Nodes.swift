import Foundation

/// Nodes: routes, source routing, MPTCP, sysctls.
extension TopologyValidator {
    // MARK: Nodes

    mutating func resolveNodes(interfaces: [String: [String: Int]]) {
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
            if written.nodes[ni].sourceRouting == nil {
                node.sourceRouting = (node.mptcp?.enabled ?? false) && addresses.count > 1
            }
            topology.nodes[ni] = node
        }
    }
}
