import Foundation

/// Workloads and the fault schedule: each resolved into its typed kind, every option checked
/// and range-checked here, once. What a run gets needs no second check.
extension TopologyValidator {
    func mptcpEnabled(_ nodeName: String) -> Bool {
        guard let node = node(nodeName), let host = topology.host(named: node.host) else { return false }
        return host.mptcp && (node.mptcp?.enabled ?? true)
    }

    /// True when `name` is a declared node; an error at `path` otherwise (nil names pass).
    @discardableResult
    func checkNodeRef(_ name: String?, _ path: String) -> Bool {
        guard let name else { return true }
        guard node(name) == nil else { return true }
        let s = didYouMean(name, topology.nodes.map(\.name))
        error(path, "unknown node '\(name)'" + (s.isEmpty ? "" : "; \(s)"), hint: "use a node declared under `nodes:`")
        return false
    }

    func nodeHasAddress(_ node: String) -> Bool { firstAddress(of: node) != nil }

    /// A node's first address, in file order of its links.
    func firstAddress(of node: String) -> IPAddress? {
        for l in topology.links { for e in l.endpoints where e.nodeName == node { if let a = e.address { return a.address } } }
        return nil
    }

    func addresses(of node: String) -> [IPAddress] {
        topology.links.flatMap { $0.endpoints.compactMap { $0.nodeName == node ? $0.address?.address : nil } }
    }

    // MARK: Workloads

    mutating func checkWorkloads() {
        var names: [String: Int] = [:]
        var resolved: [Workload] = []
        for w in written.workloads {
            let path = "workloads[\(w.index)]"
            if let previous = names[w.name] { error("\(path).name", "workload name '\(w.name)' is already used by workloads[\(previous)]", hint: "give each workload its own name") }
            names[w.name] = w.index
            if let r = resolve(w, path) { resolved.append(r) }
        }
        topology.workloads = resolved
    }

    /// The workload with its typed kind, or nil (with errors) when it cannot run.
    func resolve(_ w: WrittenWorkload, _ path: String) -> Workload? {
        var ok = checkNodeRef(w.client, "\(path).client")
        ok = checkNodeRef(w.server, "\(path).server") && ok
        ok = checkNodeRef(w.node, "\(path).node") && ok
        var duration = Duration.zero
        if let d = w.duration {
            if d.nanoseconds > 0 { duration = d } else {
                error("\(path).duration", "a workload of 0s does nothing", hint: "give it a positive `duration:`, e.g. 10s"); ok = false
            }
        } else if written.wrote("\(path).duration") {
            ok = false  // written but not a duration: the decoder said so, at its place
        } else {
            error(path, "workload '\(w.name)' has no `duration:`; every workload ends", hint: "add e.g. `duration: 30s`"); ok = false
        }
        if w.mptcp, let client = w.client ?? w.node, node(client) != nil, !mptcpEnabled(client) {
            error("\(path).mptcp", "workload '\(w.name)' asks for MPTCP, but its client '\(client)' has MPTCP off (its host or node says so)",
                  hint: "run the client on an MPTCP host, or set `mptcp: false`")
            ok = false
        }
        var options = Options(self, w.options, "\(path).with")

        /// The node the workload connects to: `target:`, else the server's first address.
        func target() -> IPAddress? {
            if let t = w.target { return t }
            guard let server = w.server, node(server) != nil else { return nil }
            if let a = firstAddress(of: server) { return a }
            error("\(path).server", "server '\(server)' has no address to connect to", hint: "give one of its links a `subnet:`, or set `target:`")
            return nil
        }
        func bind(_ client: String) -> IPAddress? {
            guard let a = options.address("bind") else { return nil }
            if !addresses(of: client).contains(a) {
                options.fail("bind", "\(a) is not an address of '\(client)'", hint: "use one of: \(addresses(of: client).map(\.description).joined(separator: ", "))")
            }
            return a
        }

        let kind: Workload.Kind?
        switch w.plugin {
        case "iperf3":
            guard let client = w.client, let server = w.server else {
                error(path, "iperf3 needs a `client` and a `server` node", hint: "add e.g. `client: client, server: server`"); return nil
            }
            let reverse = options.bool("reverse") ?? false
            let streams = options.integer("streams", 1...128) ?? 1
            let b = bind(client)
            kind = target().map { .iperf3(.init(client: client, server: server, target: $0, reverse: reverse, streams: streams, bind: b)) }
        case "ping":
            guard let client = w.client, w.server != nil || w.target != nil else {
                error(path, "ping needs a `client` and a `server` (or `target`)", hint: "add e.g. `client: client, server: server`"); return nil
            }
            let interval = options.seconds("interval", 0.01...10) ?? 0.2
            let b = bind(client)
            kind = target().map { .ping(.init(client: client, target: $0, interval: .seconds(interval), bind: b)) }
        case "transfer":
            guard let client = w.client, let server = w.server else {
                error(path, "transfer needs a `client` and a `server` node", hint: "add e.g. `client: client, server: server`"); return nil
            }
            let sizes = options.sizes()
            let repeats = options.integer("repeat", 1...10_000) ?? 1
            if sizes?.isEmpty ?? true, options.isValid {
                error(path, "transfer needs `with: {sizes: [...]}`, the file sizes to fetch", hint: "add e.g. `with: {sizes: [16kB, 1MB, 50MB], repeat: 3}`")
            }
            kind = target().flatMap { t in sizes.map { .transfer(.init(client: client, server: server, target: t, sizes: $0, repeats: repeats)) } }
        case "command":
            guard let node = w.node ?? w.client else {
                error(path, "command needs a `node` to run in", hint: "add e.g. `node: client`"); return nil
            }
            let argv = options.command("command")
            let serverArgv = options.command("server-command")
            let serverPorts = options.ports("server-ports") ?? []
            if !serverPorts.isEmpty, serverArgv == nil {
                error("\(path).with.server-ports", "`server-ports` are where the `server-command` listens; there is none", hint: "add `server-command:`, or drop `server-ports:`"); ok = false
            }
            if argv == nil, options.isValid {
                error(path, "command needs `with: {command: ...}`: a list of arguments or one shell line", hint: "add e.g. `with: {command: [my-proxy, --port, '8080']}`")
            }
            if serverArgv != nil, w.server == nil {
                error("\(path).with.server-command", "`server-command` runs in the `server:` node; name one", hint: "add e.g. `server: server`"); ok = false
            }
            kind = argv.map { .command(.init(node: node, argv: $0, server: w.server, serverArgv: serverArgv, serverPorts: serverPorts)) }
        default:
            guard w.plugin.contains("/") else {
                let s = didYouMean(w.plugin, Workload.builtInPlugins)
                error("\(path).plugin", "unknown built-in plugin '\(w.plugin)'" + (s.isEmpty ? "" : "; \(s)"),
                      hint: "use \(Workload.builtInPlugins.joined(separator: ", ")), or the path of an external plugin (containing '/')")
                return nil
            }
            guard let node = w.client ?? w.node else {
                error(path, "an external workload runs in a node: name it with `client:` (or `node:`)", hint: "add e.g. `client: client`"); return nil
            }
            options.passThrough()
            kind = program(w.plugin, "\(path).plugin").map { .external(.init(program: $0, node: node, server: w.server, options: w.options)) }
        }
        options.finish()
        guard ok, options.isValid, let kind else { return nil }
        let server: String? = switch kind {
        case let .iperf3(o): o.server
        case let .transfer(o): o.server
        case let .command(o): o.server
        case let .external(o): o.server
        case .ping: nil
        }
        return Workload(name: w.name, location: w.location, plugin: w.plugin, mptcp: w.mptcp, mptcpServer: w.mptcp && server.map(mptcpEnabled) == true,
                        start: w.start, duration: duration, kind: kind)
    }

    /// An external plugin's absolute path: relative paths are taken from the topology file's
    /// directory; it must be an executable regular file.
    func program(_ written: String, _ path: String) -> String? {
        let base = ((self.written.pathsRelativeTo ?? topology.file) as NSString).deletingLastPathComponent
        let full = ((written.hasPrefix("/") ? written : (base as NSString).appendingPathComponent(written)) as NSString).standardizingPath
        // Standardized after it is made absolute: `./a.sh` in the current directory is named `/dir/a.sh`.
        let absolute = full.hasPrefix("/") ? full : ((FileManager.default.currentDirectoryPath as NSString).appendingPathComponent(full) as NSString).standardizingPath
        var st = stat()
        guard stat(absolute, &st) == 0 else {
            error(path, "the plugin \(absolute) does not exist", hint: "paths are relative to the topology file (\(base.isEmpty ? "." : base))")
            return nil
        }
        guard (st.st_mode & S_IFMT) == S_IFREG else {
            error(path, "the plugin \(absolute) is not a file (it is a \((st.st_mode & S_IFMT) == S_IFDIR ? "directory" : "special file"))",
                  hint: "name the plugin's program itself")
            return nil
        }
        guard access(absolute, X_OK) == 0 else {
            error(path, "the plugin \(absolute) is not executable", hint: "make it executable (chmod +x) and give it a #! line")
            return nil
        }
        return absolute
    }

    /// The length of the run: `run.duration`, or until the last workload ends.
    static func runLength(_ t: Topology) -> Duration? {
        if let d = t.run.duration { return d }
        return t.workloads.map { $0.start + $0.duration }.max()
    }
}
