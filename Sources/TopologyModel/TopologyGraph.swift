/// Drawings of a lab: Graphviz dot and Mermaid. Hosts are clusters, profiles label the edges,
/// links that cross hosts are dashed and name their gretap key.
public enum TopologyGraph {
    static func edgeLabel(_ t: Topology, _ l: Link) -> String {
        var parts: [String] = []
        if l.forwardProfile == l.reverseProfile, let p = l.forwardProfile.flatMap(t.profile(named:)) {
            parts.append("\(p.name): \(p.summary)")
        } else {
            if let f = l.forwardProfile.flatMap(t.profile(named:)) { parts.append("→ \(f.name): \(f.summary)") }
            if let r = l.reverseProfile.flatMap(t.profile(named:)) { parts.append("← \(r.name): \(r.summary)") }
        }
        if let key = l.tunnelKey { parts.append("gretap key \(key)") }
        return parts.joined(separator: "\\n")
    }

    static func id(_ s: String) -> String { "n_" + s.map { $0.isLetter || $0.isNumber ? String($0) : "_" }.joined() }

    static func endId(_ e: Endpoint) -> String { id(e.nodeName ?? e.bridgeName ?? "?") + (e.bridgeName != nil ? "_br" : "") }

    public static func dot(_ t: Topology) -> String {
        var s = "graph \"\(t.name)\" {\n  graph [fontname=\"Helvetica\", label=\"lab \(t.name)\"];\n  node [fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=10];\n"
        for h in t.hosts {
            s += "  subgraph \"cluster_\(h.name)\" {\n    label=\"\(h.name)\(h.mptcp ? " (MPTCP)" : " (no MPTCP)")\";\n    style=rounded;\n"
            for n in t.nodes where n.host == h.name {
                let mptcp = (n.mptcp?.enabled ?? false) ? "\\nMPTCP" : ""
                s += "    \(id(n.name)) [shape=box, label=\"\(n.name)\(mptcp)\"];\n"
            }
            for b in t.bridges where b.host == h.name {
                s += "    \(id(b.name))_br [shape=ellipse, label=\"\(b.name)\\n(bridge\(b.subnet.map { " \($0)" } ?? ""))\"];\n"
            }
            s += "  }\n"
        }
        for l in t.links where l.endpoints.count == 2 {
            let a = l.endpoints[0], b = l.endpoints[1]
            var attrs = ["label=\"\(edgeLabel(t, l))\""]
            if let i = a.interfaceName { attrs.append("taillabel=\"\(i)\(a.address.map { "\\n\($0)" } ?? "")\"") }
            if let i = b.interfaceName { attrs.append("headlabel=\"\(i)\(b.address.map { "\\n\($0)" } ?? "")\"") }
            if l.crossesHosts { attrs.append("style=dashed") }
            s += "  \(endId(a)) -- \(endId(b)) [\(attrs.joined(separator: ", "))];\n"
        }
        return s + "}\n"
    }

    public static func mermaid(_ t: Topology) -> String {
        var s = "flowchart LR\n"
        for h in t.hosts {
            s += "  subgraph \(id(h.name))[\"\(h.name)\(h.mptcp ? " (MPTCP)" : " (no MPTCP)")\"]\n"
            for n in t.nodes where n.host == h.name { s += "    \(id(n.name))[\"\(n.name)\"]\n" }
            for b in t.bridges where b.host == h.name { s += "    \(id(b.name))_br((\"\(b.name)\"))\n" }
            s += "  end\n"
        }
        for l in t.links where l.endpoints.count == 2 {
            let label = edgeLabel(t, l).replacingAll("\\n", with: "<br/>")
            let a = l.endpoints[0].interfaceName.map { "\($0) " } ?? ""
            let b = l.endpoints[1].interfaceName.map { " \($0)" } ?? ""
            let text = "\(a)\(label)\(b)".trimmingSpaces
            let arrow = l.crossesHosts ? "-.-" : "---"
            s += "  \(endId(l.endpoints[0])) \(arrow)|\"\(text.isEmpty ? " " : text)\"| \(endId(l.endpoints[1]))\n"
        }
        return s
    }
}

extension String {
    func replacingAll(_ target: String, with replacement: String) -> String {
        split(separator: target, omittingEmptySubsequences: false).joined(separator: replacement)
    }
}
