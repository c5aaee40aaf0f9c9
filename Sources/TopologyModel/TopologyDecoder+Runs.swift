import Yams

/// Workloads and faults as written.
extension TopologyDecoder {
    mutating func decodeWorkload(_ index: Int, _ node: Yams.Node, _ path: String) -> WrittenWorkload? {
        at(path, node)
        if misplaced(node, path, hasKey: "fault", lacksKey: "plugin", is: "a fault", belongsUnder: "schedule") { return nil }
        guard let o = ObjectReader(reader, node, path: path, shape: Shapes.workload) else { return nil }
        var w = WrittenWorkload(index: index, name: "", location: reader.location(node), plugin: "")
        if let (n, p) = o["name"] { at(p, n); w.name = reader.name(n, p) ?? "" }
        if let (n, p) = o["plugin"] { at(p, n); w.plugin = reader.string(n, p, pattern: "^[A-Za-z0-9_./-]+$", what: "a plugin name or path") ?? "" }
        if let (n, p) = o["client"] { at(p, n); w.client = reader.name(n, p) }
        if let (n, p) = o["server"] { at(p, n); w.server = reader.name(n, p) }
        if let (n, p) = o["target"] { at(p, n); w.target = reader.address(n, p) }
        if let (n, p) = o["node"] { at(p, n); w.node = reader.name(n, p) }
        if let (n, p) = o["mptcp"] { w.mptcp = reader.bool(n, p) ?? false }
        if let (n, p) = o["at"] { at(p, n); w.start = reader.duration(n, p) ?? .zero }
        if let (n, p) = o["duration"] { at(p, n); w.duration = reader.duration(n, p) }
        if let (n, p) = o["with"] { atEach(p, n); w.options = reader.json(n, p) }
        return w
    }

    /// Records where `node` and the values just inside it were written (a plugin's options,
    /// whose keys the validator checks one by one): two levels, at most 1000 places, so that an
    /// alias bomb costs nothing here (`json` spends the document's budget on it).
    mutating func atEach(_ path: String, _ node: Yams.Node) {
        at(path, node)
        var budget = 1000
        func walk(_ path: String, _ node: Yams.Node, _ depth: Int) {
            guard depth < 2 else { return }
            switch node {
            case let .mapping(m):
                for (k, v) in m {
                    guard budget > 0 else { return }
                    budget -= 1
                    if case let .scalar(ks) = k { at("\(path).\(ks.string)", v); walk("\(path).\(ks.string)", v, depth + 1) }
                }
            case let .sequence(seq):
                for (i, item) in seq.enumerated() {
                    guard budget > 0 else { return }
                    budget -= 1
                    at("\(path)[\(i)]", item); walk("\(path)[\(i)]", item, depth + 1)
                }
            default: break
            }
        }
        walk(path, node, 0)
    }

    mutating func decodeFault(_ index: Int, _ node: Yams.Node, _ path: String) -> WrittenFault? {
        at(path, node)
        if misplaced(node, path, hasKey: "duration", lacksKey: "fault", is: "a workload", belongsUnder: "workloads") { return nil }
        guard let o = ObjectReader(reader, node, path: path, shape: Shapes.fault) else { return nil }
        var f = WrittenFault(index: index, location: reader.location(node), kind: .linkDown)
        var ok = true
        if let (n, p) = o["at"] { at(p, n); if let d = reader.duration(n, p) { f.at = d } else { ok = false } }
        if let (n, p) = o["fault"] {
            at(p, n)
            if let k = reader.choice(n, p, FaultEvent.Name.allCases.map(\.rawValue)).flatMap(FaultEvent.Name.init) { f.kind = k } else { ok = false }
        } else { ok = false }
        if let (n, p) = o["link"] { at(p, n); f.link = reader.scalar(n, p, expected: "a link name or node:interface") }
        if let (n, p) = o["nodes"] {
            at(p, n)
            for (i, item) in (reader.sequence(n, p, expected: "a list of node names") ?? []).enumerated() {
                at("\(p)[\(i)]", item)
                if let s = reader.name(item, "\(p)[\(i)]") { f.nodes.append(s) }
            }
        }
        if let (n, p) = o["for"] { at(p, n); f.duration = reader.duration(n, p) }
        if let (n, p) = o["every"] { at(p, n); f.every = reader.duration(n, p) }
        if let (n, p) = o["count"] { at(p, n); f.count = reader.integer(n, p, min: 1, max: 100_000) ?? 1 }
        if let (n, p) = o["random"] { at(p, n); f.random = reader.choice(n, p, ["exponential", "uniform"]).flatMap(FaultEvent.Spacing.init) }
        if let (n, p) = o["profile"] { at(p, n); f.profile = reader.name(n, p, what: "a profile name") }
        if let (n, p) = o["loss"] { at(p, n); f.loss = reader.percent(n, p) }
        if let (n, p) = o["plugin"] { at(p, n); f.plugin = reader.string(n, p, pattern: "^[A-Za-z0-9_./-]+$", what: "a plugin name or path") }
        if let (n, p) = o["with"] { atEach(p, n); f.options = reader.json(n, p) }
        return ok ? f : nil
    }

    /// An entry written in the wrong list (a workload under `schedule:`, a fault under
    /// `workloads:`): one error that says where it belongs, instead of one per key it does not fit.
    func misplaced(_ node: Yams.Node, _ path: String, hasKey: String, lacksKey: String, is what: String, belongsUnder list: String) -> Bool {
        guard case let .mapping(m) = node else { return false }
        let keys = Set(m.keys.compactMap(\.string))
        guard keys.contains(hasKey), !keys.contains(lacksKey) else { return false }
        reader.error(node, path, "this entry is \(what) (it has `\(hasKey):` and no `\(lacksKey):`), in the wrong list",
                     hint: "move it under `\(list):`")
        return true
    }
}
