import Planning
import TopologyModel

/// `partition`: the named nodes and the rest of the lab stop reaching each other (blackhole
/// rules ahead of every routing table, on both sides), whatever the paths between them.
enum PartitionFault: FaultPlugin {
    static func describe(_ f: FaultEvent, _ nodes: [String], index i: Int, _ c: inout FaultContext) -> [FaultWindow] {
        let t = c.topology
        let inside = Set(nodes)
        var addresses: [String: [IPNetwork]] = [:]
        for l in t.links { for e in l.endpoints { if let n = e.nodeName, let a = e.address { addresses[n, default: []].append(IPNetwork(address: a.address, prefixLength: a.address.bitWidth)) } } }
        let insideAddresses = inside.sorted().flatMap { addresses[$0] ?? [] }
        let outsideAddresses = t.nodes.filter { !inside.contains($0.name) }.flatMap { addresses[$0.name] ?? [] }
        // One action per destination: partitions that overlap in a node compose, each rule
        // lifted only when no partition in force still needs it.
        let actions = t.nodes.flatMap { n in
            (inside.contains(n.name) ? outsideAddresses : insideAddresses).map { d in
                HostAction(host: n.host, action: .partition(namespace: t.namespace(of: n.name), destinations: [d]))
            }
        }
        let d = f.duration.seconds
        return Faults.starts(f, &c).enumerated().map { k, s in
            FaultWindow(event: i, kind: f.name, label: Faults.label(f, nodes.joined(separator: "+"), k), start: s, end: s + d, changes: [(s, actions)])
        }
    }
}
