import Planning
import TopologyModel

/// `link-down` and `link-flap`: both ends of the link down for `for`, routes back with them;
/// with `reannounce`, the MPTCP endpoints on each end are added again when it returns.
enum LinkDownFault: FaultPlugin {
    static func describe(_ f: FaultEvent, _ options: (link: Int, reannounce: Bool), index i: Int, _ c: inout FaultContext) -> [FaultWindow] {
        let link = c.topology.links[options.link]
        let actions = (0..<2).map { end -> HostAction in
            let ref = Planner.endRef(c.topology, link, end, link.endpoints[end])
            let host = link.hosts[end]
            let endpoints = options.reannounce ? c.plan.endpoints(on: ref, host: host) : []
            return HostAction(host: host, action: .linkDown(link: ref, routes: c.plan.routes(through: ref, host: host),
                                                            reannounce: endpoints.isEmpty ? nil : endpoints))
        }
        let d = f.duration.seconds
        return Faults.starts(f, &c).enumerated().map { k, s in
            FaultWindow(event: i, kind: f.name, label: Faults.label(f, link.name, k), start: s, end: s + d, changes: [(s, actions)])
        }
    }
}
