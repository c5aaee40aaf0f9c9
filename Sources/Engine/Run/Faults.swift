import Foundation
import TopologyModel

/// A fault's change on one host.
struct HostAction: Hashable, Sendable {
    var host: String
    var action: FaultAction
}

/// One repetition of a fault on the run's time line: injected at `start`, reverted at `end`.
/// A built-in fault is a list of host actions (a trace has one list per row, each replacing the
/// last); an external fault is a program that injects and reverts on request.
struct FaultWindow: Sendable {
    var event: Int
    var kind: String
    var label: String
    var start: Double
    var end: Double
    /// The changes, at their times (the first at `start`).
    var changes: [(at: Double, actions: [HostAction])] = []
    var external: ExternalPlugin.Launch?
    /// Qdisc kinds the hosts must offer for this fault.
    var needs: [String: Set<String>] = [:]

    /// Every distinct action of the window, the last of each key (what `revert` undoes).
    var lastActions: [HostAction] {
        var byKey: [String: HostAction] = [:]
        var order: [String] = []
        for c in changes { for a in c.actions { let k = a.host + " " + a.action.key; if byKey[k] == nil { order.append(k) }; byKey[k] = a } }
        return order.map { byKey[$0]! }
    }
}

/// What a fault plugin sees of the lab when it describes itself.
struct FaultContext {
    var topology: Topology
    var plan: LabPlan
    /// The schedule's random numbers (`run: {seed: N}`), one stream for the whole schedule.
    var random: SeededRandom
}

/// A kind of fault, built in: it checks its schedule entry before anything runs and describes
/// what it does as windows of host actions. Injecting and reverting those is the hosts' work
/// (`HostExecutor.inject` and `revert`), so that a host can revert by itself.
protocol FaultPlugin {
    static var kinds: [FaultEvent.Kind] { get }
    static func describe(_ f: FaultEvent, index: Int, _ c: inout FaultContext) throws(LabError) -> [FaultWindow]
}

enum Faults {
    static let plugins: [any FaultPlugin.Type] = [LinkDownFault.self, ProfileFault.self, PartitionFault.self, ExternalFault.self]

    /// Every fault of the schedule, checked and laid out on the time line.
    static func windows(_ t: Topology, _ plan: LabPlan, runLength: Double, seedOffset: Int = 0) throws(LabError) -> (windows: [FaultWindow], notes: [String]) {
        var c = FaultContext(topology: t, plan: plan, random: SeededRandom(seed: UInt64(truncatingIfNeeded: (t.run.seed ?? 1) &+ seedOffset)))
        var out: [FaultWindow] = []
        var notes: [String] = []
        for (i, f) in t.schedule.enumerated() {
            guard let plugin = plugins.first(where: { $0.kinds.contains(f.kind) }) else {
                throw LabError("schedule[\(i)]: fault '\(f.kind.rawValue)' cannot be played by this release")
            }
            guard let d = f.duration?.seconds, d > 0 else {
                throw LabError("schedule[\(i)]: the fault has no `for:`; faults always end", fix: "add e.g. `for: 10s`")
            }
            var ws = try plugin.describe(f, index: i, &c)
            let late = ws.filter { $0.end > runLength }
            if !late.isEmpty {
                notes.append("schedule[\(i)]: \(late.count) of \(ws.count) repetitions would end after the run (\(String(format: "%.0f", runLength)) s) and are left out")
                ws.removeAll { $0.end > runLength }
            }
            out += ws
        }
        return (out.sorted { $0.start < $1.start }, notes)
    }

    /// Start times of a fault's repetitions: `at`, then every `every` (or, with `random`, gaps
    /// drawn so that repetitions never overlap and average `every`).
    static func starts(_ f: FaultEvent, _ c: inout FaultContext) -> [Double] {
        let at = f.at.seconds, d = f.duration?.seconds ?? 0, every = f.every?.seconds ?? 0
        var out = [at]
        for _ in 1..<max(f.count, 1) {
            let gap: Double
            switch f.random {
            case "exponential"?: gap = d + c.random.exponential(mean: max(every - d, 0.001))
            case "uniform"?: gap = d + c.random.uniform(0, 2 * max(every - d, 0))
            default: gap = every
            }
            out.append(out.last! + gap)
        }
        return out
    }

    static func label(_ f: FaultEvent, _ what: String, _ k: Int) -> String {
        "\(f.kind.rawValue) \(what)" + (f.count > 1 ? " #\(k + 1)" : "")
    }

    static func link(_ f: FaultEvent, _ i: Int, _ t: Topology) throws(LabError) -> Link {
        guard let li = f.link, li < t.links.count else { throw LabError("schedule[\(i)]: the fault names no link", fix: "add e.g. `link: lte`") }
        return t.links[li]
    }
}

/// `link-down` and `link-flap`: both ends of the link down for `for`, routes back with them.
enum LinkDownFault: FaultPlugin {
    static let kinds: [FaultEvent.Kind] = [.linkDown, .linkFlap]

    static func describe(_ f: FaultEvent, index i: Int, _ c: inout FaultContext) throws(LabError) -> [FaultWindow] {
        let link = try Faults.link(f, i, c.topology)
        var reannounce = false
        if case let .object(o)? = f.options {
            for k in o.keys where k != "reannounce" {
                throw LabError("schedule[\(i)]: \(f.kind.rawValue) takes no option '\(k)'", fix: "its only option is `with: {reannounce: true}`")
            }
            if case .bool(true)? = o["reannounce"] { reannounce = true }
        }
        let actions = (0..<2).map { end -> HostAction in
            let ref = Planner.endRef(c.topology, link, end, link.endpoints[end])
            let endpoints = reannounce ? c.plan.hosts.first { $0.host == link.hosts[end] }?.operations.compactMap { op -> ReannouncedEndpoint? in
                guard case let .addMPTCPEndpoint(ns, address, device, id, flags) = op, ns == ref.namespace, device == ref.name else { return nil }
                return ReannouncedEndpoint(address: address, id: id, flags: flags)
            } : nil
            return HostAction(host: link.hosts[end], action: .linkDown(link: ref, routes: RunController.routes(through: ref, in: c.plan, host: link.hosts[end]),
                                                                       reannounce: endpoints?.isEmpty == false ? endpoints : nil))
        }
        let d = f.duration?.seconds ?? 0
        return Faults.starts(f, &c).enumerated().map { k, s in
            FaultWindow(event: i, kind: f.kind.rawValue, label: Faults.label(f, link.name, k), start: s, end: s + d, changes: [(s, actions)])
        }
    }
}

/// `profile`, `loss-burst` and `trace`: a link's shaping changed in place (`tc qdisc change`,
/// or `replace` when the qdiscs differ in kind), then put back as the file says.
enum ProfileFault: FaultPlugin {
    static let kinds: [FaultEvent.Kind] = [.profile, .lossBurst, .trace]

    static func describe(_ f: FaultEvent, index i: Int, _ c: inout FaultContext) throws(LabError) -> [FaultWindow] {
        let t = c.topology
        let link = try Faults.link(f, i, t)
        let profiles = Dictionary(t.profiles.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        let refs = (0..<2).map { Planner.endRef(t, link, $0, link.endpoints[$0]) }
        let original = (0..<2).map { Planner.qdisc(profiles, link, end: $0) }
        let d = f.duration?.seconds ?? 0

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
        switch f.kind {
        case .profile:
            guard let name = f.profile, let p = profiles[name] else {
                throw LabError("schedule[\(i)]: unknown profile '\(f.profile ?? "")'", fix: "declare it under `profiles:`")
            }
            steps = [(0, specs(p) { _ in })]
        case .lossBurst:
            guard let loss = f.loss else { throw LabError("schedule[\(i)]: a loss-burst needs `loss:`", fix: "add e.g. `loss: 30%`") }
            steps = [(0, specs(nil) { $0.loss = .random(loss, correlation: nil); $0.name += "+loss \(loss)" })]
        default:
            let rows = try TraceFile.load(f, index: i, topology: t)
            guard let last = rows.last, last.time < d else {
                throw LabError("schedule[\(i)]: the trace is longer than the fault (`for: \(f.duration!)`)", fix: "lengthen `for:` or shorten the trace")
            }
            for r in rows {
                steps.append((r.time, specs(nil) { p in
                    p.rate = r.rate; p.name = "trace \(String(format: "%g", r.time)) s"
                    if let delay = r.delay { p.delay = delay }
                    if let loss = r.loss { p.loss = .random(loss, correlation: nil) }
                }))
            }
        }
        var needs: [String: Set<String>] = [:]
        for s in steps { for end in 0..<2 { for k in s.specs[end]?.kinds ?? [] { needs[link.hosts[end], default: []].insert(k) } } }
        let what = f.kind == .profile ? "\(link.name) → \(f.profile!)" : link.name
        return Faults.starts(f, &c).enumerated().map { k, s in
            var current = original
            var changes: [(Double, [HostAction])] = []
            for step in steps {
                changes.append((s + step.offset, (0..<2).map { end in
                    HostAction(host: link.hosts[end], action: .profile(link: refs[end], original: original[end], from: current[end], to: step.specs[end]))
                }))
                current = step.specs
            }
            return FaultWindow(event: i, kind: f.kind.rawValue, label: Faults.label(f, what, k), start: s, end: s + d, changes: changes, needs: needs)
        }
    }
}

/// `partition`: the named nodes and the rest of the lab stop reaching each other (blackhole
/// rules ahead of every routing table, on both sides), whatever the paths between them.
enum PartitionFault: FaultPlugin {
    static let kinds: [FaultEvent.Kind] = [.partition]

    static func describe(_ f: FaultEvent, index i: Int, _ c: inout FaultContext) throws(LabError) -> [FaultWindow] {
        let t = c.topology
        let inside = Set(f.nodes)
        var addresses: [String: [IPNetwork]] = [:]
        for l in t.links { for e in l.endpoints { if let n = e.nodeName, let a = e.address { addresses[n, default: []].append(IPNetwork(address: a.address, prefixLength: a.address.bitWidth)) } } }
        let insideAddresses = inside.flatMap { addresses[$0] ?? [] }
        let outside = t.nodes.filter { !inside.contains($0.name) }
        let outsideAddresses = outside.flatMap { addresses[$0.name] ?? [] }
        guard !outside.isEmpty, !insideAddresses.isEmpty, !outsideAddresses.isEmpty else {
            throw LabError("schedule[\(i)]: a partition needs addressed nodes on both sides", fix: "name some, not all, of the lab's nodes under `nodes:`")
        }
        var actions: [HostAction] = []
        for n in t.nodes {
            let isInside = inside.contains(n.name)
            actions.append(HostAction(host: n.host, action: .partition(namespace: t.namespace(of: n.name), destinations: isInside ? outsideAddresses : insideAddresses)))
        }
        let d = f.duration?.seconds ?? 0
        return Faults.starts(f, &c).enumerated().map { k, s in
            FaultWindow(event: i, kind: "partition", label: Faults.label(f, f.nodes.joined(separator: "+"), k), start: s, end: s + d, changes: [(s, actions)])
        }
    }
}

/// `plugin`: an external program plays the fault (docs/plugins.md).
enum ExternalFault: FaultPlugin {
    static let kinds: [FaultEvent.Kind] = [.plugin]

    static func describe(_ f: FaultEvent, index i: Int, _ c: inout FaultContext) throws(LabError) -> [FaultWindow] {
        guard let path = f.plugin else { throw LabError("schedule[\(i)]: `plugin:` is missing") }
        let node = f.nodes.first ?? (f.link.map { c.topology.links[$0].endpoints.first { $0.nodeName != nil }?.nodeName } ?? nil)
        guard let node, c.topology.node(named: node) != nil else {
            throw LabError("schedule[\(i)]: an external fault runs in a node: name it with `nodes: [NODE]` or a `link:`", fix: "add e.g. `nodes: [client]`")
        }
        let program = try ExternalPlugin.resolve(path, relativeTo: c.topology.file, what: "schedule[\(i)]")
        let d = f.duration?.seconds ?? 0
        return Faults.starts(f, &c).enumerated().map { k, s in
            let launch = ExternalPlugin.Launch(program: program, role: .fault, name: "schedule[\(i)]", node: node,
                                               context: ExternalPlugin.context(c.topology, node: node, peer: f.nodes.dropFirst().first),
                                               options: f.options, duration: d, link: f.link.map { c.topology.links[$0].name })
            return FaultWindow(event: i, kind: "plugin", label: Faults.label(f, (path as NSString).lastPathComponent, k), start: s, end: s + d, external: launch)
        }
    }
}

/// A trace for `fault: trace`: CSV rows `time,rate[,delay[,loss]]` (seconds from the fault's
/// start, then units as in profiles: `12mbit`, `40ms`, `1%`). `#` starts a comment; a first
/// row that names the columns is skipped.
enum TraceFile {
    struct Row { var time: Double; var rate: Bitrate; var delay: Duration?; var loss: Percent? }

    static func load(_ f: FaultEvent, index i: Int, topology t: Topology) throws(LabError) -> [Row] {
        guard case let .object(o)? = f.options, case let .string(file)? = o["file"] else {
            throw LabError("schedule[\(i)]: a trace needs `with: {file: PATH}`, a CSV of time,rate[,delay[,loss]]", fix: "add e.g. `with: {file: traces/lte.csv}`")
        }
        let path = file.hasPrefix("/") ? file : ((t.file as NSString).deletingLastPathComponent as NSString).appendingPathComponent(file)
        guard let data = FileManager.default.contents(atPath: path), data.count < 16 << 20, let text = String(data: data, encoding: .utf8) else {
            throw LabError("schedule[\(i)]: cannot read the trace \(path) (a UTF-8 file under 16 MB)", fix: "check the path; it is relative to the topology file")
        }
        var rows: [Row] = []
        for (n, raw) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = raw.split(separator: "#", maxSplits: 1, omittingEmptySubsequences: false).first.map { $0.trimmingCharacters(in: .whitespacesAndNewlines) } ?? ""
            if line.isEmpty { continue }
            let cells = line.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            func fail(_ why: String) -> LabError { LabError("\(path):\(n + 1): \(why)", fix: "rows are time,rate[,delay[,loss]], e.g. `2.5, 12mbit, 40ms, 1%`") }
            if rows.isEmpty, Double(cells[0]) == nil, cells[0].lowercased().hasPrefix("t") { continue }  // a header
            guard cells.count >= 2, cells.count <= 4 else { throw fail("\(cells.count) columns") }
            guard let time = Double(cells[0]), time.isFinite, time >= 0 else { throw fail("'\(cells[0])' is not a time in seconds") }
            if let prev = rows.last, time <= prev.time { throw fail("times must increase (\(time) after \(prev.time))") }
            if let prev = rows.last, time - prev.time < 0.05 { throw fail("rows \(prev.time) s and \(time) s are closer than 50 ms: at most 20 changes a second") }
            guard case let .success(rate) = Bitrate.parse(cells[1]), rate.bitsPerSecond > 0 else { throw fail("'\(cells[1])' is not a rate") }
            var row = Row(time: time, rate: rate)
            if cells.count > 2, !cells[2].isEmpty {
                guard case let .success(d) = TopologyModel.Duration.parse(cells[2]), d.seconds <= 60 else { throw fail("'\(cells[2])' is not a delay") }
                row.delay = d
            }
            if cells.count > 3, !cells[3].isEmpty {
                guard case let .success(p) = Percent.parse(cells[3]), p.value <= 100 else { throw fail("'\(cells[3])' is not a loss percentage") }
                row.loss = p
            }
            rows.append(row)
            if rows.count > 100_000 { throw fail("more than 100,000 rows") }
        }
        guard let first = rows.first else { throw LabError("schedule[\(i)]: the trace \(path) has no rows") }
        if first.time != 0 { rows.insert(Row(time: 0, rate: first.rate, delay: first.delay, loss: first.loss), at: 0) }
        return rows
    }
}

/// Reproducible random numbers (SplitMix64): the same seed gives the same schedule on every machine.
struct SeededRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// In [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * unit() }
    mutating func exponential(mean: Double) -> Double { -mean * log(1 - unit()) }
}
