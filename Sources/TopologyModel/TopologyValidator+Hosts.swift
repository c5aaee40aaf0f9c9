import Foundation

/// Hosts, names and profiles.
extension TopologyValidator {
    // MARK: Hosts

    mutating func resolveHosts() {
        if topology.hosts.isEmpty {
            topology.hosts = [Host(name: Self.defaultHostName, location: written.location(""), ssh: nil, underlay: nil,
                                   underlayInterface: nil, mtu: nil, mptcp: true)]
        }
        // A VM's kernel given by a relative path is the topology's neighbour.
        let base = ((written.pathsRelativeTo ?? topology.file) as NSString).deletingLastPathComponent
        for i in topology.hosts.indices {
            guard case let .path(p)? = topology.hosts[i].vm?.kernel, !p.hasPrefix("/") else { continue }
            let joined = ((base.isEmpty ? FileManager.default.currentDirectoryPath : base) as NSString).appendingPathComponent(p)
            let absolute = joined.hasPrefix("/") ? joined : (FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(joined)
            topology.hosts[i].vm?.kernel = .path((absolute as NSString).standardizingPath)
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

    func checkNameClashes() {
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

    func checkProfiles() {
        for (li, link) in topology.links.enumerated() {
            let directional = written.links[li].directional
            for (key, name) in [("forward", link.forwardProfile), ("reverse", link.reverseProfile)] {
                guard let name, profile(name) == nil else { continue }
                let path = directional ? "links[\(link.index)].profile.\(key)" : "links[\(link.index)].profile"
                if key == "reverse", !directional { continue }  // reported once
                let s = didYouMean(name, topology.profiles.map(\.name))
                error(path, "unknown profile '\(name)'" + (s.isEmpty ? "" : "; \(s)"),
                      hint: topology.profiles.isEmpty ? "declare it under `profiles:`" : "declare it under `profiles:` or use one of \(topology.profiles.map(\.name).joined(separator: ", "))")
            }
            // A one-way profile on a link given per direction would shape less than the user wrote.
            if directional {
                for name in [link.forwardProfile, link.reverseProfile].compactMap({ $0 }) {
                    if let p = profile(name), p.direction != .both {
                        error("links[\(link.index)].profile", "profile '\(name)' shapes only the \(p.direction.rawValue) direction but is used per direction here",
                              hint: "remove `direction:` from profile '\(name)'; the link already says which direction it shapes")
                    }
                }
            }
        }
    }
}
