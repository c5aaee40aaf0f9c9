import Yams

/// Turns the YAML tree into model objects, field by field through `Shapes`.
///
/// Only the form of each value is checked here (types, units, ranges). Cross references,
/// addresses and everything that needs the whole file happen in `TopologyValidator`.
struct TopologyDecoder {
    let reader: YAMLReader
    /// Where each path was written, so later checks can point at it.
    private(set) var locations: [String: SourceLocation] = [:]

    init(reader: YAMLReader) { self.reader = reader }

    mutating func at(_ path: String, _ node: Yams.Node) { locations[path] = reader.location(node) }

    /// The file as written; `TopologyValidator` resolves it.
    mutating func decode(_ root: Yams.Node) -> WrittenTopology {
        var written = decodeObjects(root)
        written.locations = locations
        return written
    }

    private mutating func decodeObjects(_ root: Yams.Node) -> WrittenTopology {
        at("", root)
        var topology = WrittenTopology(name: "", file: reader.file)
        guard let obj = ObjectReader(reader, root, path: "", shape: Shapes.topology) else { return topology }
        if let (n, p) = obj["name"] {
            at(p, n)
            topology.name = reader.string(n, p, pattern: Shapes.topology.field("name")!.type.pattern,
                                          what: "a lab name: lower-case letters, digits and '-', at most 24 characters, starting with a letter or digit") ?? ""
        }
        if let (n, p) = obj["description"] { topology.description = reader.scalar(n, p, expected: "text") }
        if let (n, p) = obj["tunnel"] { at(p, n); topology.tunnel = tunnelKind(n, p) }
        if let (n, p) = obj["hosts"] {
            for (key, keyNode, value) in reader.mapping(n, p, expected: "a mapping of host names") ?? [] {
                if let h = decodeHost(key, keyNode, value, "hosts.\(key)") { topology.hosts.append(h) }
            }
        }
        if let (n, p) = obj["profiles"] {
            for (key, keyNode, value) in reader.mapping(n, p, expected: "a mapping of profile names") ?? [] {
                if let pr = decodeProfile(key, keyNode, value, "profiles.\(key)") { topology.profiles.append(pr) }
            }
        }
        if let (n, p) = obj["nodes"] {
            for (key, keyNode, value) in reader.mapping(n, p, expected: "a mapping of node names") ?? [] {
                if let node = decodeNode(key, keyNode, value, "nodes.\(key)") { topology.nodes.append(node) }
            }
        }
        if let (n, p) = obj["bridges"] {
            for (key, keyNode, value) in reader.mapping(n, p, expected: "a mapping of bridge names") ?? [] {
                if let b = decodeBridge(key, keyNode, value, "bridges.\(key)") { topology.bridges.append(b) }
            }
        }
        if let (n, p) = obj["links"] {
            for (i, item) in (reader.sequence(n, p, expected: "a list of links") ?? []).enumerated() {
                if let l = decodeLink(i, item, "links[\(i)]") { topology.links.append(l) }
            }
        }
        if let (n, p) = obj["workloads"] {
            for (i, item) in (reader.sequence(n, p, expected: "a list of workloads") ?? []).enumerated() {
                if let w = decodeWorkload(i, item, "workloads[\(i)]") { topology.workloads.append(w) }
            }
        }
        if let (n, p) = obj["schedule"] {
            for (i, item) in (reader.sequence(n, p, expected: "a list of faults") ?? []).enumerated() {
                if let f = decodeFault(i, item, "schedule[\(i)]") { topology.schedule.append(f) }
            }
        }
        if let (n, p) = obj["run"], let r = ObjectReader(reader, n, path: p, shape: Shapes.run) {
            if let (n, p) = r["duration"] { at(p, n); topology.run.duration = reader.duration(n, p) }
            if let (n, p) = r["seed"] { topology.run.seed = reader.integer(n, p, min: 0, max: Int.max) }
            if let (n, p) = r["capture-snaplen"] { at(p, n); topology.run.captureSnaplen = reader.integer(n, p, min: 64, max: 65535) }
            if let (n, p) = r["capture-limit"] { at(p, n); topology.run.captureLimitMB = reader.integer(n, p, min: 1, max: 2000) }
            if let (n, p) = r["capture-filter"] {
                at(p, n)
                topology.run.captureFilter = reader.string(n, p, pattern: CaptureFilter.pattern, what: "a capture filter of 1 to 1,000 printable ASCII characters (pcap-filter syntax)")
            }
        }
        return topology
    }

    private mutating func checkName(_ key: String, _ keyNode: Yams.Node, _ path: String, what: String) -> Bool {
        at(path, keyNode)
        guard isName(key) else {
            reader.error(keyNode, path, "'\(key)' is not a valid \(what) name",
                         hint: "use letters, digits, '-' and '_', starting with a letter or digit")
            return false
        }
        return true
    }

    private func tunnelKind(_ n: Yams.Node, _ p: String) -> TunnelKind? {
        guard let s = reader.scalar(n, p, expected: "gretap or vxlan") else { return nil }
        guard let k = TunnelKind(rawValue: s) else {
            reader.error(n, p, "'\(s)' is not a tunnel kind", hint: "use gretap (GRE with a key, the default) or vxlan (UDP 4789, for kernels without GRE)")
            return nil
        }
        return k
    }

    private mutating func decodeHost(_ name: String, _ keyNode: Yams.Node, _ node: Yams.Node, _ path: String) -> Host? {
        guard checkName(name, keyNode, path, what: "host"), let o = ObjectReader(reader, node, path: path, shape: Shapes.host) else { return nil }
        var host = Host(name: name, location: reader.location(keyNode), ssh: nil, underlay: nil, underlayInterface: nil, mtu: nil, mptcp: true)
        var local: Bool?
        if let (n, p) = o["local"] { local = reader.bool(n, p) }
        if let (n, p) = o["ssh"] { at(p, n); host.ssh = reader.string(n, p, pattern: Shapes.host.field("ssh")!.type.pattern, what: "an ssh target ([user@]address)") }
        if let (n, p) = o["underlay"] { at(p, n); host.underlay = reader.address(n, p) }
        if let (n, p) = o["interface"] { host.underlayInterface = reader.string(n, p, pattern: "^[^\\s/:%]{1,15}$", what: "an interface name (at most 15 bytes)") }
        if let (n, p) = o["mtu"] { at(p, n); host.mtu = reader.integer(n, p, min: 576, max: 65535) }
        if let (n, p) = o["mptcp"] { host.mptcp = reader.bool(n, p) ?? true }
        if let (n, p) = o["tunnel"] { at(p, n); host.tunnel = tunnelKind(n, p) }
        if let (n, p) = o["vm"], let v = ObjectReader(reader, n, path: p, shape: Shapes.vm) {
            at(p, n)
            var vm = VMSettings()
            if let (kn, kp) = v["kernel"], let k = reader.string(kn, kp, pattern: "^[^\\x00\\n]{1,4096}$", what: "`distribution` or a path") {
                at(kp, kn)
                vm.kernelLocation = reader.location(kn)
                vm.kernel = k == "distribution" ? .distribution : .path(k)
            }
            if let (mn, mp) = v["memory"], let m = reader.integer(mn, mp, min: 256, max: 1_048_576) { vm.memoryMiB = m }
            if let (cn, cp) = v["cpus"], let c = reader.integer(cn, cp, min: 1, max: 64) { vm.cpus = c }
            host.vm = vm
        }
        if local == true, host.vm != nil {
            reader.error(node, path, "host '\(name)' is both `local: true` and a VM (`vm:`)", hint: "keep one of `local` and `vm`")
        }
        if local == true, host.ssh != nil {
            reader.error(node, path, "host '\(name)' is both `local: true` and reached over ssh", hint: "keep one of `local` and `ssh`")
        }
        return host
    }

    /// netem keeps delays in 32-bit clock ticks (about 274 s); a lab needs far less.
    static let maxDelay = Duration.seconds(60)

    private func boundedDelay(_ n: Yams.Node, _ p: String) -> Duration? {
        guard let d = reader.duration(n, p) else { return nil }
        if d > Self.maxDelay {
            reader.error(n, p, "\(d) is longer than netem can hold for a lab (at most \(Self.maxDelay))", hint: "use at most 60s")
            return nil
        }
        return d
    }

    /// `queue:` bdp, netem, a number of packets, or a time at the rate.
    private func decodeQueue(_ n: Yams.Node, _ p: String) -> LinkProfile.Queue? {
        let what = "bdp, netem, a number of packets (1 to 1,000,000) or a time at the rate (1ms to 10s)"
        guard let raw = reader.scalar(n, p, expected: what) else { return nil }
        // `1000 packets` as plans and results write it, and any case, as units are read.
        var text = raw.trimmingCharacters(in: .whitespaces).lowercased()
        for suffix in ["packets", "packet"] where text.hasSuffix(suffix) && text.dropLast(suffix.count).trimmingCharacters(in: .whitespaces).allSatisfy({ $0.isASCII && $0.isNumber }) {
            text = String(text.dropLast(suffix.count)).trimmingCharacters(in: .whitespaces)
        }
        guard !text.isEmpty else {
            reader.error(n, p, "`queue` is empty", hint: "e.g. `queue: bdp`, `queue: 100ms` or `queue: 1000`"); return nil
        }
        switch text {
        case "bdp": return .bdp
        case "netem": return .netem
        default: break
        }
        if text.allSatisfy({ $0.isASCII && $0.isNumber }) {
            guard let v = Int(text), (1...1_000_000).contains(v) else {
                reader.error(n, p, "\(text) packets is not from 1 to 1,000,000", hint: "give a queue of 1 to 1,000,000 packets"); return nil
            }
            return .packets(v)
        }
        switch Duration.parse(text) {
        case let .success(d) where d >= .ms(1) && d <= .seconds(10): return .time(d)
        case .success:
            reader.error(n, p, "a queue of \(text) at the rate is not from 1ms to 10s", hint: "e.g. `queue: 100ms`"); return nil
        case .failure:
            reader.error(n, p, "'\(raw)' is not a queue: `queue` is \(what)", hint: "e.g. `queue: bdp`, `queue: 100ms` or `queue: 1000`"); return nil
        }
    }

    private mutating func decodeProfile(_ name: String, _ keyNode: Yams.Node, _ node: Yams.Node, _ path: String) -> LinkProfile? {
        guard checkName(name, keyNode, path, what: "profile"), let o = ObjectReader(reader, node, path: path, shape: Shapes.profile) else { return nil }
        var pr = LinkProfile(name: name, location: reader.location(keyNode))
        if let (n, p) = o["rate"] {
            pr.rate = reader.bitrate(n, p)
            // The kernel's shapers count whole bytes per second.
            if let r = pr.rate, r.bitsPerSecond < 8 {
                reader.error(n, p, "a rate of \(r) is less than one byte per second, the least the kernel's shapers take", hint: "use at least 8bit"); pr.rate = nil
            }
        }
        if let (n, p) = o["delay"] { pr.delay = boundedDelay(n, p) }
        if let (n, p) = o["jitter"] { pr.jitter = boundedDelay(n, p) }
        if let (n, p) = o["delay-correlation"] { pr.delayCorrelation = reader.percent(n, p) }
        if let (n, p) = o["distribution"] { pr.distribution = reader.choice(n, p, ["uniform", "normal", "pareto", "paretonormal"]).flatMap(LinkProfile.Distribution.init) }
        if let (n, p) = o["loss"] { pr.loss = decodeLoss(n, p) }
        if let (n, p) = o["duplicate"] { pr.duplicate = reader.percent(n, p) }
        if let (n, p) = o["corrupt"] { pr.corrupt = reader.percent(n, p) }
        if let (n, p) = o["reorder"] {
            at(p, n)
            if case .scalar = n {
                pr.reorder = reader.percent(n, p).map { Reorder(percent: $0) }
            } else if let r = ObjectReader(reader, n, path: p, shape: Shapes.reorder) {
                let percent = r["percent"].flatMap { reader.percent($0.node, $0.path) }
                var reorder = Reorder(percent: percent ?? Percent(0))
                if let (n, p) = r["correlation"] { reorder.correlation = reader.percent(n, p) }
                if let (n, p) = r["gap"] { reorder.gap = reader.integer(n, p, min: 1, max: 1_000_000) }
                if percent != nil { pr.reorder = reorder }
            }
        }
        if let (n, p) = o["queue-limit"] { pr.queue = reader.integer(n, p, min: 1, max: 1_000_000).map { .packets($0) } }
        if let (n, p) = o["queue"] {
            if o["queue-limit"] != nil {
                reader.error(n, p, "`queue` and `queue-limit` both give the queue", hint: "keep `queue` (e.g. `queue: 1000` for 1000 packets)")
            } else {
                pr.queue = decodeQueue(n, p)
            }
        }
        if let (n, p) = o["direction"] { pr.direction = reader.choice(n, p, ["both", "forward", "reverse"]).flatMap(LinkProfile.Direction.init) ?? .both }
        if pr.jitter != nil, pr.delay == nil {
            reader.error(node, path, "profile '\(name)' sets `jitter` without `delay`", hint: "jitter varies a delay: add e.g. `delay: 20ms`")
        }
        if let (n, p) = o["queue"] ?? o["queue-limit"], pr.queue != nil {
            // A queue belongs to a qdisc: without a rate or netem there is none, and htb alone
            // (past tbf's 32-bit field) keeps the device's own queue.
            if pr.rate == nil && !pr.needsNetem {
                reader.error(n, p, "profile '\(name)' gives a queue but shapes nothing, so there is no queue to size", hint: "give the profile a `rate` (or a `delay`), or remove `queue`")
            } else if let r = pr.rate, r.bitsPerSecond > LinkProfile.tbfMaxBitsPerSecond, !pr.needsNetem {
                reader.error(n, p, "a rate of \(r) is shaped by htb alone, which keeps the device's own queue (1000 packets): `queue` would have no effect",
                             hint: "remove `queue`, use a rate up to 17.18gbit, or add a `delay` (netem then holds the queue)")
            }
        }
        if let j = pr.jitter, let d = pr.delay, j > d {
            reader.error(node, "\(path).jitter", "jitter \(j) is larger than the delay \(d), so packets would need negative delay",
                         hint: "use a jitter of at most the delay")
        }
        if pr.reorder != nil, pr.delay == nil {
            reader.error(node, "\(path).reorder", "reordering needs a delay (netem sends the other packets late)", hint: "add e.g. `delay: 10ms`")
        }
        if pr.distribution != nil, pr.jitter == nil {
            reader.error(node, "\(path).distribution", "a delay distribution needs `jitter`", hint: "add e.g. `jitter: 5ms`")
        }
        return pr
    }

    private mutating func decodeLoss(_ node: Yams.Node, _ path: String) -> Loss? {
        at(path, node)
        if case .scalar = node { return reader.percent(node, path).map { .random($0, correlation: nil) } }
        guard let o = ObjectReader(reader, node, path: path, shape: Shapes.loss) else { return nil }
        let percent = o["percent"].flatMap { reader.percent($0.node, $0.path) }
        let correlation = o["correlation"].flatMap { reader.percent($0.node, $0.path) }
        if let (n, p) = o["gilbert-elliott"] {
            if percent != nil || correlation != nil {
                reader.error(node, path, "loss has both `percent` and `gilbert-elliott`", hint: "choose random loss or the Gilbert-Elliott model")
            }
            guard let ge = ObjectReader(reader, n, path: p, shape: Shapes.gilbertElliott) else { return nil }
            guard let pp = ge["p"].flatMap({ reader.percent($0.node, $0.path) }) else { return nil }
            let r = ge["r"].flatMap { reader.percent($0.node, $0.path) } ?? Percent(100 - pp.value)
            let bad = ge["bad-loss"].flatMap { reader.percent($0.node, $0.path) } ?? Percent(100)
            let good = ge["good-loss"].flatMap { reader.percent($0.node, $0.path) } ?? Percent(0)
            return .gilbertElliott(p: pp, r: r, badLoss: bad, goodLoss: good)
        }
        guard let percent else {
            reader.error(node, path, "loss needs `percent` or `gilbert-elliott`", hint: "write e.g. `loss: 1%`")
            return nil
        }
        return .random(percent, correlation: correlation)
    }

    private mutating func decodeNode(_ name: String, _ keyNode: Yams.Node, _ node: Yams.Node, _ path: String) -> WrittenNode? {
        guard checkName(name, keyNode, path, what: "node") else { return nil }
        var result = WrittenNode(name: name, location: reader.location(keyNode))
        // `client: {}` and a bare `client:` both declare a node with defaults.
        if case let .scalar(s) = node, s.string.isEmpty { return result }
        guard let o = ObjectReader(reader, node, path: path, shape: Shapes.node) else { return nil }
        if let (n, p) = o["host"] { at(p, n); result.host = reader.name(n, p) ?? "" }
        if let (n, p) = o["forwarding"] { result.forwarding = reader.bool(n, p) }
        if let (n, p) = o["routes"] {
            for (i, item) in (reader.sequence(n, p, expected: "a list of routes") ?? []).enumerated() {
                if let r = decodeRoute(item, "\(p)[\(i)]") { result.routes.append(r) }
            }
        }
        if let (n, p) = o["mptcp"] { at(p, n); result.mptcp = decodeMPTCP(n, p) }
        if let (n, p) = o["congestion-control"] { at(p, n); result.congestionControl = reader.string(n, p, pattern: "^[a-z0-9_]+$", what: "a congestion control name (e.g. cubic)") }
        if let (n, p) = o["source-routing"] { at(p, n); result.sourceRouting = reader.bool(n, p) ?? false }
        if let (n, p) = o["sysctls"] {
            for (key, keyNode, value) in reader.mapping(n, p, expected: "a mapping of sysctl names to values") ?? [] {
                let sp = "\(p).\(key)"
                at(sp, keyNode)
                guard key.range(of: "^net\\.[A-Za-z0-9_.-]+$", options: .regularExpression) != nil else {
                    reader.error(keyNode, sp, "'\(key)' is not a network namespace sysctl", hint: "only net.* sysctls are per namespace, e.g. net.ipv4.tcp_ecn")
                    continue
                }
                if let v = reader.scalar(value, sp, expected: "a value") { result.sysctls.append(Sysctl(key: key, value: v)) }
            }
        }
        return result
    }


    private mutating func decodeRoute(_ node: Yams.Node, _ path: String) -> Route? {
        at(path, node)
        guard let o = ObjectReader(reader, node, path: path, shape: Shapes.route) else { return nil }
        var route = Route(location: reader.location(node))
        if let (n, p) = o["to"] {
            at(p, n)
            if n.string == "default" { route.destination = nil } else if let net = reader.network(n, p) { route.destination = net } else { return nil }
        } else { return nil }
        if let (n, p) = o["via"] { at(p, n); route.via = reader.address(n, p) }
        if let (n, p) = o["dev"] { at(p, n); route.device = reader.string(n, p, pattern: "^[^\\s/:%]{1,15}$", what: "an interface name") }
        if let (n, p) = o["source"] { at(p, n); route.source = reader.address(n, p) }
        if let (n, p) = o["metric"] { route.metric = reader.integer(n, p, min: 0, max: 4_294_967_295) }
        if let (n, p) = o["table"] { route.table = reader.integer(n, p, min: 1, max: 4_294_967_295) }
        return route
    }

    private mutating func decodeMPTCP(_ node: Yams.Node, _ path: String) -> MPTCPSettings? {
        var settings = MPTCPSettings(enabled: true, endpoints: [], location: reader.location(node))
        if case .scalar = node {
            guard let b = reader.bool(node, path) else { return nil }
            settings.enabled = b
            return settings
        }
        guard let o = ObjectReader(reader, node, path: path, shape: Shapes.mptcp) else { return nil }
        if let (n, p) = o["enabled"] { settings.enabled = reader.bool(n, p) ?? true }
        if let (n, p) = o["endpoints"] {
            for (iface, keyNode, value) in reader.mapping(n, p, expected: "a mapping of interface names to endpoint flags") ?? [] {
                let ep = "\(p).\(iface)"
                at(ep, keyNode)
                var endpoint = MPTCPEndpoint(interface: iface, flags: [], location: reader.location(keyNode))
                switch value {
                case .scalar:
                    // `subflow` or `subflow,backup`
                    if (value.string ?? "").trimmingSpaces.isEmpty {
                        reader.error(value, ep, "endpoint \(iface) has no flags", hint: "use subflow, signal, backup or fullmesh")
                    }
                    for part in (value.string ?? "").split(separator: ",").map({ String($0).trimmingSpaces }) {
                        if let f = flag(part, value, ep) { endpoint.flags.append(f) }
                    }
                case .sequence:
                    for (i, item) in (reader.sequence(value, ep, expected: "a list of flags") ?? []).enumerated() {
                        if let s = reader.choice(item, "\(ep)[\(i)]", Shapes.endpointFlags) { endpoint.flags.append(MPTCPEndpoint.Flag(rawValue: s)!) }
                    }
                default:
                    guard let eo = ObjectReader(reader, value, path: ep, shape: Shapes.mptcpEndpoint) else { continue }
                    if let (fn, fp) = eo["flags"] {
                        for (i, item) in (reader.sequence(fn, fp, expected: "a list of flags") ?? []).enumerated() {
                            if let s = reader.choice(item, "\(fp)[\(i)]", Shapes.endpointFlags) { endpoint.flags.append(MPTCPEndpoint.Flag(rawValue: s)!) }
                        }
                    }
                    if let (an, apath) = eo["address"] { at(apath, an); endpoint.address = reader.address(an, apath) }
                    if let (idn, idp) = eo["id"] { endpoint.id = reader.integer(idn, idp, min: 1, max: 255) }
                }
                if endpoint.flags.contains(.fullmesh) && endpoint.flags.contains(.signal) {
                    reader.error(value, ep, "an endpoint cannot be both `signal` and `fullmesh` (the kernel refuses it)", hint: "use `subflow, fullmesh` or `signal`")
                }
                settings.endpoints.append(endpoint)
            }
        }
        if let (n, p) = o["limits"], let lo = ObjectReader(reader, n, path: p, shape: Shapes.mptcpLimits) {
            at(p, n)
            for key in ["subflows", "add-addr-accepted"] {
                guard let (ln, lp) = lo[key], let s = reader.scalar(ln, lp, expected: "a whole number") else { continue }
                guard let v = Int(s) else { reader.error(ln, lp, "expected a whole number, found '\(s)'"); continue }
                guard v >= 0, v <= 8 else {
                    reader.error(ln, lp, "MPTCP limit \(v) is above the kernel's maximum of 8", hint: "use a value from 0 to 8 (MPTCP_PM_ADDR_MAX)")
                    continue
                }
                if key == "subflows" { settings.subflows = v } else { settings.addAddrAccepted = v }
            }
        }
        if let (n, p) = o["scheduler"] { at(p, n); settings.scheduler = reader.string(n, p, pattern: "^[a-z0-9_]+$", what: "a scheduler name") }
        if let (n, p) = o["path-manager"] { settings.pathManager = reader.choice(n, p, ["kernel", "userspace"]).flatMap(MPTCPSettings.PathManager.init) }
        return settings
    }

    private func flag(_ s: String, _ node: Yams.Node, _ path: String) -> MPTCPEndpoint.Flag? {
        if let f = MPTCPEndpoint.Flag(rawValue: s) { return f }
        let suggestion = didYouMean(s, Shapes.endpointFlags)
        reader.error(node, path, "'\(s)' is not an MPTCP endpoint flag" + (suggestion.isEmpty ? "" : "; \(suggestion)"),
                     hint: "use subflow, signal, backup or fullmesh")
        return nil
    }

    private mutating func decodeBridge(_ name: String, _ keyNode: Yams.Node, _ node: Yams.Node, _ path: String) -> WrittenBridge? {
        guard checkName(name, keyNode, path, what: "bridge") else { return nil }
        var bridge = WrittenBridge(name: name, location: reader.location(keyNode))
        if case let .scalar(s) = node, s.string.isEmpty { return bridge }
        guard let o = ObjectReader(reader, node, path: path, shape: Shapes.bridge) else { return nil }
        if let (n, p) = o["host"] { at(p, n); bridge.host = reader.name(n, p) ?? "" }
        if let (n, p) = o["subnet"] { at(p, n); bridge.subnet = reader.network(n, p) }
        if let (n, p) = o["stp"] { bridge.stp = reader.bool(n, p) ?? false }
        return bridge
    }

    private mutating func decodeLink(_ index: Int, _ node: Yams.Node, _ path: String) -> WrittenLink? {
        at(path, node)
        guard let o = ObjectReader(reader, node, path: path, shape: Shapes.link) else { return nil }
        var link = WrittenLink(index: index, location: reader.location(node))
        var ok = true
        if let (n, p) = o["endpoints"], let items = reader.sequence(n, p, expected: "a list of two endpoints") {
            at(p, n)
            if items.count != 2 {
                reader.error(n, p, "a link has exactly two endpoints, found \(items.count)",
                             hint: "join more than two interfaces with a bridge: link each of them to the bridge")
                ok = false
            }
            for (i, item) in items.prefix(2).enumerated() {
                let ep = "\(p)[\(i)]"
                at(ep, item)
                if let e = decodeEndpoint(item, ep) { link.endpoints.append(e) } else { ok = false }
            }
        } else { ok = false }
        if let (n, p) = o["name"] { at(p, n); link.name = reader.name(n, p) ?? "" }
        if let (n, p) = o["profile"] {
            at(p, n)
            if case .scalar = n {
                let name = reader.name(n, p, what: "a profile name")
                link.forwardProfile = name; link.reverseProfile = name
            } else if let d = ObjectReader(reader, n, path: p, shape: Shapes.directionalProfile) {
                if let (fn, fp) = d["forward"] { at(fp, fn); link.forwardProfile = reader.name(fn, fp, what: "a profile name") }
                if let (rn, rp) = d["reverse"] { at(rp, rn); link.reverseProfile = reader.name(rn, rp, what: "a profile name") }
                link.directional = true
            }
        }
        if let (n, p) = o["subnet"] { at(p, n); link.subnet = reader.network(n, p) }
        if let (n, p) = o["mtu"] { at(p, n); link.mtu = reader.integer(n, p, min: 576, max: 65535) }
        if let (n, p) = o["merge"] { at(p, n); link.merge = reader.bool(n, p) }
        if let (n, p) = o["tunnel"] { at(p, n); link.tunnel = tunnelKind(n, p) }
        if let (n, p) = o["capture"] { at(p, n); link.capture = reader.bool(n, p) ?? false }
        return ok ? link : nil
    }


    private mutating func decodeEndpoint(_ node: Yams.Node, _ path: String) -> Endpoint? {
        if case let .scalar(s) = node {
            let text = s.string
            let parts = text.split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            if parts.count == 1 {
                guard isName(text) else {
                    reader.error(node, path, "'\(text)' is neither `node:interface` nor a bridge name", hint: "write e.g. client:eth0, or the name of a bridge")
                    return nil
                }
                return .bridge(text)
            }
            guard parts.count == 2, isName(parts[0]), !parts[1].isEmpty else {
                reader.error(node, path, "'\(text)' is not `node:interface`", hint: "write e.g. client:eth0")
                return nil
            }
            return .interface(node: parts[0], name: parts[1], address: nil)
        }
        guard let o = ObjectReader(reader, node, path: path, shape: Shapes.endpoint) else { return nil }
        let nodeName = o["node"].flatMap { reader.name($0.node, $0.path) }
        let iface = o["interface"].flatMap { reader.scalar($0.node, $0.path, expected: "an interface name") }
        let bridge = o["bridge"].flatMap { reader.name($0.node, $0.path) }
        var address: IPNetwork?
        if let (n, p) = o["address"] {
            at("\(path).address", n)
            guard let s = reader.scalar(n, p, expected: "an address with prefix length") else { return nil }
            guard let a = IPNetwork(s, requirePrefix: true) else {
                reader.error(n, p, "'\(s)' is not an address with a prefix length", hint: "write e.g. 10.0.1.10/24")
                return nil
            }
            address = a
        }
        if let bridge {
            if nodeName != nil || iface != nil || address != nil {
                reader.error(node, path, "an endpoint is either a bridge or a node interface, not both", hint: "drop `bridge` or `node`/`interface`")
                return nil
            }
            return .bridge(bridge)
        }
        guard let nodeName, let iface else {
            reader.error(node, path, "an endpoint needs `node` and `interface` (or `bridge`)", hint: "write e.g. {node: client, interface: eth0}")
            return nil
        }
        return .interface(node: nodeName, name: iface, address: address)
    }
}

extension ValueType {
    var pattern: String? { if case let .string(p) = self { return p }; return nil }
}
