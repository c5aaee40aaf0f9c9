import Foundation

/// The fault schedule: each fault resolved into its typed kind, its link or nodes found, its
/// trace read, its repetitions placed in the run.
extension TopologyValidator {
    /// The shortest fault, and the shortest gap between repetitions, a run can play: as trace
    /// rows, 50 ms (a change takes milliseconds on its host; samples are 100 ms apart).
    static let shortestFault = Duration.ms(50)

    // MARK: The schedule

    mutating func checkSchedule() {
        let runLength = Self.runLength(topology)
        for w in topology.workloads {
            if let r = topology.run.duration, w.start + w.duration > r {
                error("workloads[\(written.workloads.first { $0.name == w.name }?.index ?? 0)]", "workload '\(w.name)' runs until \(w.start + w.duration), after the run ends at \(r)",
                      hint: "shorten it or lengthen `run.duration`")
            }
        }
        if let d = topology.run.duration, d.nanoseconds <= 0 {
            error("run.duration", "a run of 0s measures nothing", hint: "give a positive duration, or leave it out (the run then lasts until the last workload ends)")
        }
        // A link by its name or one of its ends, the first in the file (one pass, not one per fault).
        var linkByText: [String: Int] = [:]
        for (li, link) in topology.links.enumerated() {
            for text in [link.name] + link.endpoints.map(\.description) where linkByText[text] == nil { linkByText[text] = li }
        }
        var resolved: [FaultEvent] = []
        for f in written.schedule {
            if let e = resolve(f, linkByText: linkByText, runLength: runLength) { resolved.append(e) }
        }
        topology.schedule = resolved
    }

    func resolve(_ f: WrittenFault, linkByText: [String: Int], runLength: Duration?) -> FaultEvent? {
        let path = "schedule[\(f.index)]"
        var ok = true
        var link: Int?
        let needsLink: Set<FaultEvent.Name> = [.linkDown, .linkFlap, .profile, .lossBurst, .trace]
        if let text = f.link {
            if let idx = linkByText[text] {
                link = idx
            } else {
                let candidates = topology.links.map(\.name) + topology.links.flatMap { $0.endpoints.map(\.description) }
                let s = didYouMean(text, candidates)
                error("\(path).link", "no link is named or ends at '\(text)'" + (s.isEmpty ? "" : "; \(s)"),
                      hint: "name a link (its `name:`) or one of its ends as node:interface")
                ok = false
            }
        } else if needsLink.contains(f.kind) {
            error(path, "fault `\(f.kind.rawValue)` needs a `link`", hint: "add e.g. `link: client:lte0`")
            ok = false
        }
        var duration = Duration.zero
        if let d = f.duration {
            if d.nanoseconds >= Self.shortestFault.nanoseconds { duration = d } else if d.nanoseconds > 0 {
                error("\(path).for", "a fault of \(d) is shorter than a run can play (at least \(Self.shortestFault): a change takes milliseconds on its host, and samples are 100 ms apart)",
                      hint: "give it `for: 50ms` or more"); ok = false
            } else {
                error("\(path).for", "a fault of 0s changes nothing", hint: "give it a positive `for:`, e.g. 10s"); ok = false
            }
        } else if written.wrote("\(path).for") {
            ok = false  // written but not a duration: the decoder said so, at its place
        } else {
            error(path, "fault `\(f.kind.rawValue)` has no `for:` duration; every fault must be reverted", hint: "add e.g. `for: 10s`")
            ok = false
        }
        var options = Options(self, f.options, "\(path).with")
        var kind: FaultEvent.Kind?
        switch f.kind {
        case .linkDown, .linkFlap:
            let reannounce = options.bool("reannounce") ?? false
            if let link { kind = f.kind == .linkDown ? .linkDown(link: link, reannounce: reannounce) : .linkFlap(link: link, reannounce: reannounce) }
        case .profile:
            if let p = f.profile {
                if profile(p) == nil {
                    let s = didYouMean(p, topology.profiles.map(\.name))
                    error("\(path).profile", "unknown profile '\(p)'" + (s.isEmpty ? "" : "; \(s)"), hint: "declare it under `profiles:`")
                } else if let link { kind = .profile(link: link, profile: p) }
            } else { error(path, "fault `profile` needs `profile:`, the profile to switch to", hint: "add e.g. `profile: lte-bad`") }
        case .lossBurst:
            if let loss = f.loss {
                if let link { kind = .lossBurst(link: link, loss: loss) }
            } else { error(path, "fault `loss-burst` needs `loss:`", hint: "add e.g. `loss: 30%`") }
        case .partition:
            if f.nodes.isEmpty { error(path, "fault `partition` needs `nodes:`, the nodes to cut off", hint: "add e.g. `nodes: [server]`") }
            var known = true
            for (ni, n) in f.nodes.enumerated() { known = checkNodeRef(n, "\(path).nodes[\(ni)]") && known }
            if known, !f.nodes.isEmpty { kind = partition(f.nodes, path) }
        case .plugin:
            options.passThrough()
            if let p = f.plugin {
                let node = f.nodes.first ?? link.flatMap { topology.links[$0].endpoints.compactMap(\.nodeName).first }
                if let node {
                    var known = true
                    for (ni, n) in f.nodes.enumerated() { known = checkNodeRef(n, "\(path).nodes[\(ni)]") && known }
                    if known, let program = program(p, "\(path).plugin") {
                        kind = .plugin(.init(program: program, written: p, node: node, peer: f.nodes.dropFirst().first, link: link, options: f.options))
                    }
                } else if f.link == nil {
                    error(path, "an external fault runs in a node: name it with `nodes: [NODE]` (or a `link:`)", hint: "add e.g. `nodes: [client]`")
                }
            } else { error(path, "fault `plugin` needs `plugin:`, the external program", hint: "add e.g. `plugin: ./faults/my-fault`") }
        case .trace:
            if let file = options.string("file") {
                if let rows = TraceFile.load(file, relativeTo: written.pathsRelativeTo ?? topology.file, at: written.location("\(path).with.file"), reader: reader), let link {
                    if let last = rows.last, last.time >= duration.seconds, duration.nanoseconds > 0 {
                        error("\(path).for", "the trace runs for \(trim(last.time)) s, longer than the fault (`for: \(duration)`)", hint: "lengthen `for:` or shorten the trace")
                    } else {
                        kind = .trace(link: link, file: file, rows: rows)
                    }
                }
            } else if options.isValid {
                error(path, "fault `trace` needs `with: {file: PATH}`, a CSV of time,rate[,delay[,loss]]", hint: "add e.g. `with: {file: traces/lte.csv}`")
            }
        }
        options.finish()
        if f.count > 1 {
            if let every = f.every {
                if duration >= every {
                    error("\(path).every", "repetitions every \(every) overlap: each lasts \(duration)", hint: "make `every` longer than `for`"); ok = false
                } else if every.nanoseconds - duration.nanoseconds < Self.shortestFault.nanoseconds, duration.nanoseconds > 0 {
                    error("\(path).every", "repetitions every \(every) leave less than \(Self.shortestFault) between the end of one (after \(duration)) and the next",
                          hint: "make `every` at least `for` + 50ms"); ok = false
                }
            } else {
                error(path, "`count: \(f.count)` needs `every:`, the period", hint: "add e.g. `every: 20s`"); ok = false
            }
        } else if f.random != nil {
            error("\(path).random", "`random:` spaces repetitions: it needs `count:` above 1 and `every:`", hint: "add e.g. `every: 30s, count: 5`"); ok = false
        } else if f.every != nil, !written.wrote("\(path).count") {
            error("\(path).every", "`every:` without `count:` repeats nothing", hint: "add e.g. `count: 3`"); ok = false
        }
        guard ok, options.isValid, let kind else { return nil }
        let event = FaultEvent(location: f.location, at: f.at, duration: duration, every: f.every, count: f.count, random: f.random, kind: kind)
        if let runLength {
            if event.end > runLength {
                error(path, "the fault ends at \(event.end.nanoseconds == .max ? "a time past any run" : event.end.description), after the run ends at \(runLength)",
                      hint: "start it earlier, shorten it, repeat it less often, or lengthen the run (`run: {duration: ...}` or the workloads)")
                return nil
            }
        } else {
            error(path, "the run has no length, so the fault cannot be placed in it",
                  hint: "add a workload with a `duration:`, or `run: {duration: 60s}`")
            return nil
        }
        return event
    }

    /// A partition needs addresses on both sides of it.
    func partition(_ nodes: [String], _ path: String) -> FaultEvent.Kind? {
        let inside = Set(nodes)
        let outside = topology.nodes.filter { !inside.contains($0.name) }
        guard !outside.isEmpty, inside.contains(where: nodeHasAddress), outside.contains(where: { nodeHasAddress($0.name) }) else {
            error("\(path).nodes", "a partition needs addressed nodes on both sides", hint: "name some, not all, of the lab's nodes under `nodes:`, each side with an address")
            return nil
        }
        return .partition(nodes: nodes)
    }
}
