import TopologyModel

/// A plan as people read it: per host, phases, numbered commands, and what crosses hosts.
public enum PlanText {
    public static func render(_ plan: LabPlan, topology t: Topology) -> String {
        var out = "lab \(plan.lab): \(plan.operationCount) operations on \(plan.hosts.count) host\(plan.hosts.count == 1 ? "" : "s")\n"
        let tunnels = t.links.filter(\.crossesHosts)
        if !tunnels.isEmpty {
            out += "tunnels (gretap, one key per link; inner MTU + 42 bytes must fit the underlay MTU):\n"
            for l in tunnels {
                out += "  \(l.name): \(l.label)  \(l.hosts[0]) <-> \(l.hosts[1])  key \(l.tunnelKey ?? 0)  mtu \(l.mtu)\n"
            }
        }
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
