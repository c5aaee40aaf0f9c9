import Foundation

/// Workloads and the fault schedule.
extension TopologyValidator {
    // MARK: Workloads and schedule

    func mptcpEnabled(_ nodeName: String) -> Bool {
        guard let node = node(nodeName), let host = topology.host(named: node.host) else { return false }
        return host.mptcp && (node.mptcp?.enabled ?? true)
    }

    func checkNodeRef(_ name: String?, _ path: String) {
        guard let name, node(name) == nil else { return }
        let s = didYouMean(name, topology.nodes.map(\.name))
        error(path, "unknown node '\(name)'" + (s.isEmpty ? "" : "; \(s)"), hint: "use a node declared under `nodes:`")
    }

    func checkWorkloads() {
        var names: [String: Int] = [:]
        for (i, w) in topology.workloads.enumerated() {
            let path = "workloads[\(written.workloads[i].index)]"
            if let previous = names[w.name] { error("\(path).name", "workload name '\(w.name)' is already used by workloads[\(previous)]", hint: "give each workload its own name") }
            names[w.name] = written.workloads[i].index
            checkNodeRef(w.client, "\(path).client")
            checkNodeRef(w.server, "\(path).server")
            checkNodeRef(w.node, "\(path).node")
            switch w.plugin {
            case "iperf3":
                if w.client == nil || w.server == nil { error(path, "iperf3 needs a `client` and a `server` node", hint: "add e.g. `client: client, server: server`") }
            case "ping":
                if w.client == nil || (w.server == nil && w.target == nil) { error(path, "ping needs a `client` and a `server` (or `target`)", hint: "add e.g. `client: client, server: server`") }
            case "transfer":
                if w.client == nil || w.server == nil { error(path, "transfer needs a `client` and a `server` node", hint: "add e.g. `client: client, server: server`") }
                if case let .object(o)? = w.options, o["sizes"] != nil || o["size"] != nil {} else {
                    error(path, "transfer needs `with: {sizes: [...]}`, the file sizes to fetch", hint: "add e.g. `with: {sizes: [16kB, 1MB, 50MB], repeat: 3}`")
                }
            case "command":
                if w.node == nil && w.client == nil { error(path, "command needs a `node` to run in", hint: "add e.g. `node: client`") }
                if case let .object(o)? = w.options, o["command"] != nil {} else {
                    error(path, "command needs `with: {command: ...}`: a list of arguments or one shell line", hint: "add e.g. `with: {command: [my-proxy, --port, '8080']}`")
                }
            default:
                if !w.plugin.contains("/") {
                    error("\(path).plugin", "unknown built-in plugin '\(w.plugin)'" + { let s = didYouMean(w.plugin, Workload.builtInPlugins); return s.isEmpty ? "" : "; \(s)" }(),
                          hint: "use \(Workload.builtInPlugins.joined(separator: ", ")), or the path of an external plugin (containing '/')")
                }
            }
            if w.mptcp, let client = w.client, node(client) != nil, !mptcpEnabled(client) {
                error("\(path).mptcp", "workload '\(w.name)' asks for MPTCP, but its client '\(client)' has MPTCP off (its host or node says so)",
                      hint: "run the client on an MPTCP host, or set `mptcp: false`")
            }
            if let server = w.server, w.target == nil, node(server) != nil, !nodeHasAddress(server) {
                error("\(path).server", "server '\(server)' has no address to connect to", hint: "give one of its links a `subnet:`, or set `target:`")
            }
        }
    }

    func nodeHasAddress(_ node: String) -> Bool {
        topology.links.contains { $0.endpoints.contains { $0.nodeName == node && $0.address != nil } }
    }

    /// The length of the run: `run.duration`, or until the last workload ends.
    static func runLength(_ t: Topology) -> Duration? {
        if let d = t.run.duration { return d }
        let ends = t.workloads.compactMap { w in w.duration.map { w.start + $0 } }
        return ends.max()
    }

    mutating func checkSchedule() {
        let runLength = Self.runLength(topology)
        for (i, w) in topology.workloads.enumerated() {
            if let d = w.duration, let r = topology.run.duration, w.start + d > r {
                error("workloads[\(written.workloads[i].index)]", "workload '\(w.name)' runs until \(w.start + d), after the run ends at \(r)",
                      hint: "shorten it or lengthen `run.duration`")
            }
        }
        // A link by its name or one of its ends, the first in the file (one pass, not one per fault).
        var linkByText: [String: Int] = [:]
        for (li, link) in topology.links.enumerated() {
            for text in [link.name] + link.endpoints.map(\.description) where linkByText[text] == nil { linkByText[text] = li }
        }
        for fi in topology.schedule.indices {
            var f = topology.schedule[fi]
            let path = "schedule[\(written.schedule[fi].index)]"
            let needsLink: Set<FaultEvent.Kind> = [.linkDown, .linkFlap, .profile, .lossBurst, .trace]
            if let text = written.schedule[fi].link {
                if let idx = linkByText[text] {
                    f.link = idx
                } else {
                    let candidates = topology.links.map(\.name) + topology.links.flatMap { $0.endpoints.map(\.description) }
                    let s = didYouMean(text, candidates)
                    error("\(path).link", "no link is named or ends at '\(text)'" + (s.isEmpty ? "" : "; \(s)"),
                          hint: "name a link (its `name:`) or one of its ends as node:interface")
                }
            } else if needsLink.contains(f.kind) {
                error(path, "fault `\(f.kind.rawValue)` needs a `link`", hint: "add e.g. `link: client:lte0`")
            }
            if f.duration == nil {
                error(path, "fault `\(f.kind.rawValue)` has no `for:` duration; every fault must be reverted", hint: "add e.g. `for: 10s`")
            }
            switch f.kind {
            case .profile:
                if let p = f.profile {
                    if profile(p) == nil {
                        let s = didYouMean(p, topology.profiles.map(\.name))
                        error("\(path).profile", "unknown profile '\(p)'" + (s.isEmpty ? "" : "; \(s)"), hint: "declare it under `profiles:`")
                    }
                } else { error(path, "fault `profile` needs `profile:`, the profile to switch to", hint: "add e.g. `profile: lte-bad`") }
            case .lossBurst:
                if f.loss == nil { error(path, "fault `loss-burst` needs `loss:`", hint: "add e.g. `loss: 30%`") }
            case .partition:
                if f.nodes.isEmpty { error(path, "fault `partition` needs `nodes:`, the nodes to cut off", hint: "add e.g. `nodes: [server]`") }
                for (ni, n) in f.nodes.enumerated() { checkNodeRef(n, "\(path).nodes[\(ni)]") }
            case .plugin:
                if f.plugin == nil { error(path, "fault `plugin` needs `plugin:`, the external program", hint: "add e.g. `plugin: ./faults/my-fault`") }
                else if f.nodes.isEmpty && f.link == nil { error(path, "an external fault runs in a node: name it with `nodes: [NODE]` (or a `link:`)", hint: "add e.g. `nodes: [client]`") }
            case .trace:
                if case let .object(o)? = f.options, case .string? = o["file"] {} else {
                    error(path, "fault `trace` needs `with: {file: PATH}`, a CSV of time,rate[,delay[,loss]]", hint: "add e.g. `with: {file: traces/lte.csv}`")
                }
            case .linkDown, .linkFlap:
                break
            }
            if f.count > 1 {
                if let every = f.every {
                    if let d = f.duration, d >= every {
                        error("\(path).every", "repetitions every \(every) overlap: each lasts \(d)", hint: "make `every` longer than `for`")
                    }
                } else {
                    error(path, "`count: \(f.count)` needs `every:`, the period", hint: "add e.g. `every: 20s`")
                }
            } else if f.random != nil {
                error("\(path).random", "`random:` spaces repetitions: it needs `count:` above 1 and `every:`", hint: "add e.g. `every: 30s, count: 5`")
            } else if f.every != nil, !written.wrote("\(path).count") {
                error("\(path).every", "`every:` without `count:` repeats nothing", hint: "add e.g. `count: 3`")
            }
            if let runLength {
                if f.end > runLength {
                    error(path, "the fault ends at \(f.end), after the run ends at \(runLength)",
                          hint: "start it earlier, shorten it, or lengthen the run (`run: {duration: ...}` or the workloads)")
                }
            } else {
                error(path, "the run has no length, so the fault cannot be placed in it",
                      hint: "add a workload with a `duration:`, or `run: {duration: 60s}`")
            }
            topology.schedule[fi] = f
        }
    }
}
