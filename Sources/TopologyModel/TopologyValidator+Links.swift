import Foundation

/// Links: ends, interface names, tunnel keys, MTUs.
extension TopologyValidator {
    // MARK: Links

    /// Returns each node's interfaces (name -> link index), checking references and names.
    mutating func resolveLinks() -> [String: [String: Int]] {
        var interfaces: [String: [String: Int]] = [:]
        var usedLinkNames: [String: Int] = [:]
        var usedTunnelIDs: [TunnelID: Int] = [:]
        var bridgePairs: [Set<String>: Int] = [:]
        var bridgePorts: [String: Int] = [:]
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
                        error(ep, "interface \(node):\(name) is used by two links (links[\(topology.links[previous].index)] and links[\(link.index)])",
                              hint: "give each link its own interface name, e.g. \(name.dropLast())\(Int(String(name.last ?? "0")).map { $0 + 1 } ?? 1)")
                    } else {
                        // Its position in `topology.links` (a link's `index` is its place in the file).
                        interfaces[node, default: [:]][name] = li
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
                    bridgePorts[b, default: 0] += 1
                    if bridgePorts[b] == Topology.maximumBridgePorts + 1 {
                        error(ep, "bridge '\(b)' has more than \(Topology.maximumBridgePorts) ports; a Linux bridge takes at most \(Topology.maximumBridgePorts) (BR_MAX_PORTS)",
                              hint: "spread its links over several bridges joined by links (Pathbed makes bridges joined by plain links one kernel bridge where they fit)")
                    }
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
                if !link.joinsBridges, written.links[li].merge != nil {
                    error("\(path).merge", "`merge:` applies only to a link between two bridges",
                          hint: "remove `merge:` from this link; a link with a node's interface is always a veth pair (or a tunnel)")
                }
                if link.joinsBridges, link.capture {
                    error("\(path).capture", "a link between two bridges has no node end to capture on",
                          hint: "capture on a link from a node to one of these bridges, or remove `capture: true`")
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
                // The link's own `tunnel:`, else its hosts' (vxlan when either asks for it), else the lab's.
                if written.links[li].tunnel == nil {
                    let asked = hosts.compactMap { name in topology.hosts.first { $0.name == name }?.tunnel }
                    if !asked.isEmpty { link.tunnel = asked.contains(.vxlan) ? .vxlan : .gretap }
                }
                link.tunnelKey = link.tunnel == .vxlan ? Self.vxlanID(lab: topology.name, linkIndex: link.index)
                    : Self.tunnelKey(lab: topology.name, linkIndex: link.index)
                let id = TunnelID(kind: link.tunnel, id: link.tunnelKey!)
                if let other = usedTunnelIDs[id] {
                    error(path, "link \(link.name) would share \(link.tunnel.rawValue) \(link.tunnel.idName) \(id.id) with links[\(other)]: a lab holds at most 65,536 tunnels of a kind",
                          hint: "carry some links with the other kind of tunnel (`tunnel:`), or split the lab")
                }
                usedTunnelIDs[id] = link.index
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

    /// Why an underlay address cannot carry a tunnel, or nil when it can: IPv4 unicast only
    /// (Pathbed's gretap and VXLAN tunnels are over IPv4), not the loopback or a wildcard.
    static func unusableUnderlay(_ a: IPAddress) -> String? {
        guard a.family == .ipv4 else { return "which is IPv6 (tunnels between hosts run over IPv4)" }
        let b = a.description.split(separator: ".").compactMap { UInt8($0) }
        guard b.count == 4 else { return nil }
        if b == [0, 0, 0, 0] { return "the wildcard address" }
        if b == [255, 255, 255, 255] { return "the broadcast address" }
        if b[0] == 127 { return "a loopback address" }
        if b[0] >= 224 { return b[0] < 240 ? "a multicast address" : "a reserved address" }
        return nil
    }

    /// A stable VXLAN VNI per link (24 bits): 8 from the lab's name, 16 from the link's position.
    /// A host takes one VXLAN device per VNI and port, whatever its remote: `up` checks the host.
    static func vxlanID(lab: String, linkIndex: Int) -> UInt32 {
        (tunnelKey(lab: lab, linkIndex: linkIndex) >> 16 & 0xFF) << 16 | UInt32((linkIndex + 1) & 0xFFFF)
    }

    /// Names the kernel refuses, or that clash with /proc/sys/net/*/conf/{all,default}.
    static let reservedInterfaceNames: Set<String> = [".", "..", "lo", "all", "default"]

    func checkInterfaceName(_ name: String, _ path: String) {
        if name.utf8.count > Self.interfaceNameLimit {
            error(path, "interface name '\(name)' is \(name.utf8.count) bytes; Linux allows \(Self.interfaceNameLimit)",
                  hint: "use a shorter name, e.g. '\(Self.utf8Prefix(name, Self.interfaceNameLimit))'")
        } else if name.isEmpty || Self.reservedInterfaceNames.contains(name)
                    || name.unicodeScalars.contains(where: { $0 == "/" || $0 == ":" || $0 == "%" || $0.properties.isWhitespace || $0.value < 0x20 || $0.value == 0x7F }) {
            // '%' too: the kernel reads `eth%d` as a template and names the device eth0, eth1...
            error(path, "'\(name)' cannot be an interface name", hint: "use letters, digits, '-', '_' and '.' (no '/', ':', '%' or spaces), and none of lo, all, default")
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

    // MARK: MTU

    func checkMTUs() {
        var reported: Set<String> = []
        for link in topology.links where link.crossesHosts && !link.hosts.contains("") {
            let path = "links[\(link.index)]"
            for hostName in link.hosts {
                guard let host = topology.host(named: hostName) else { continue }
                if host.underlay == nil {
                    error("hosts.\(hostName)", "host '\(hostName)' has no `underlay` address, but \(path) (\(link.label)) crosses to another host in a \(link.tunnel.rawValue) tunnel",
                          hint: "add `underlay: ADDRESS` (the address the other host reaches it at)")
                }
                let underlayMTU = host.mtu ?? 1500
                if let u = host.underlay, let why = Self.unusableUnderlay(u), reported.insert("u \(hostName)").inserted {
                    error("hosts.\(hostName).underlay", "host '\(hostName)' has the underlay address \(u), \(why): \(path) (\(link.label)) cannot be carried in a \(link.tunnel.rawValue) tunnel from it",
                          hint: "give the IPv4 address the other hosts reach this one at")
                }
                if let u = host.underlay, let other = link.hosts.first(where: { $0 != hostName }), topology.host(named: other)?.underlay == u,
                   reported.insert("same \(link.hosts.sorted())").inserted {
                    error("hosts.\(hostName).underlay", "hosts '\(link.hosts[0])' and '\(link.hosts[1])' have the same underlay address \(u): a tunnel between them would start and end on one host",
                          hint: "give each host the address the others reach it at")
                }
                let overhead = link.tunnel.overhead
                if underlayMTU - overhead < 576 {
                    if reported.insert("mtu \(hostName) \(link.tunnel)").inserted {
                        error("hosts.\(hostName).mtu", "host '\(hostName)' has an underlay MTU of \(underlayMTU): a \(link.tunnel.rawValue) tunnel (\(overhead) bytes) leaves less than 576 bytes for \(path) (\(link.label))",
                              hint: "raise `mtu:` of host '\(hostName)' to at least \(link.mtu + overhead)")
                    }
                } else if link.mtu + overhead > underlayMTU {
                    error(link.mtu == 1500 && !fileSetsMTU(link) ? path : "\(path).mtu",
                          "link MTU \(link.mtu) does not fit through a \(link.tunnel.rawValue) tunnel over host '\(hostName)' (underlay MTU \(underlayMTU), tunnel overhead \(overhead) bytes)",
                          hint: "raise `mtu:` of host '\(hostName)' to at least \(link.mtu + overhead) (the origin study used 5000), or set the link's `mtu:` to at most \(underlayMTU - overhead)")
                }
            }
        }
        // All links on one bridge segment should share an MTU, or large frames are dropped silently.
        for seg in segments() where !seg.bridges.isEmpty {
            let mtus = Set(seg.links.map { topology.links[$0].mtu })
            if mtus.count > 1 {
                error("links[\(topology.links[seg.links.last!].index)].mtu", "links on bridge \(seg.bridges.joined(separator: "+")) have different MTUs (\(mtus.sorted().map(String.init).joined(separator: ", ")))",
                      hint: "give every link on one bridge the same `mtu:`")
            }
        }
    }

    func fileSetsMTU(_ link: Link) -> Bool { written.wrote("links[\(link.index)].mtu") }
}
