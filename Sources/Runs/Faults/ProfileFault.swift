import NetlinkTypes
import Planning
import TopologyModel

/// `profile`, `loss-burst` and `trace`: a link's shaping changed in place (`tc qdisc change`,
/// or `replace` when the qdiscs differ in kind), then put back as the file says.
enum ProfileFault: FaultPlugin {
    enum Change {
        case profile(String)
        case lossBurst(Percent)
        case trace([TraceRow])
    }

    static func describe(_ f: FaultEvent, _ options: (link: Int, change: Change), index i: Int, _ c: inout FaultContext) -> [FaultWindow] {
        let t = c.topology
        let link = t.links[options.link]
        let profiles = Dictionary(t.profiles.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let refs = (0..<2).map { Planner.endRef(t, link, $0, link.endpoints[$0]) }
        let original = (0..<2).map { Planner.qdisc(profiles, link, end: $0) }
        let d = f.duration.seconds

        /// Each end's shaping under profile `p` (nil: as the file says), changed by `edit`.
        func specs(_ p: LinkProfile?, _ edit: (inout LinkProfile) -> Void) -> [QdiscSpec?] {
            (0..<2).map { end -> QdiscSpec? in
                var base: LinkProfile
                if let p { base = p } else {
                    let name = end == 0 ? link.forwardProfile : link.reverseProfile
                    base = name.flatMap { profiles[$0] } ?? LinkProfile(name: "none", location: f.location)
                    if link.forwardProfile == link.reverseProfile, base.direction != .both,
                       (base.direction == .forward) != (end == 0) { base = LinkProfile(name: "none", location: f.location) }
                }
                base.direction = .both
                edit(&base)
                return QueueSizing.qdisc(for: base, mtu: link.mtu)
            }
        }

        var steps: [(offset: Double, specs: [QdiscSpec?])] = []
        let what: String
        switch options.change {
        case let .profile(name):
            // The validator made sure the profile exists.
            steps = [(0, specs(profiles[name]) { _ in })]
            what = "\(link.name) → \(name)"
        case let .lossBurst(loss):
            steps = [(0, specs(nil) { $0.loss = .random(loss, correlation: nil); $0.name += "+loss \(loss)" })]
            what = link.name
        case let .trace(rows):
            for r in rows {
                steps.append((r.time, specs(nil) { p in
                    p.rate = r.rate; p.name = "trace \(String(format: "%g", r.time)) s"
                    if let delay = r.delay { p.delay = delay }
                    if let loss = r.loss { p.loss = .random(loss, correlation: nil) }
                }))
            }
            what = link.name
        }
        var needs: [String: Set<Shaping.Kind>] = [:]
        for s in steps { for end in 0..<2 { for k in s.specs[end]?.kinds ?? [] { needs[link.hosts[end], default: []].insert(k) } } }
        return Faults.starts(f, &c).enumerated().map { k, s in
            var current = original
            var changes: [(Double, [HostAction])] = []
            for step in steps {
                changes.append((s + step.offset, (0..<2).map { end in
                    HostAction(host: link.hosts[end], action: .profile(link: refs[end], original: original[end], from: current[end], to: step.specs[end]))
                }))
                current = step.specs
            }
            return FaultWindow(event: i, kind: f.name, label: Faults.label(f, what, k), start: s, end: s + d, changes: changes, needs: needs)
        }
    }
}
