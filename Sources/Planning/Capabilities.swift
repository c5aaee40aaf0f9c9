import TopologyModel

/// What a kernel and machine can do, found by trying it in a throwaway namespace.
public struct Capabilities: Sendable, Codable {
    public struct Check: Sendable, Codable {
        public var name: String
        public var ok: Bool
        public var detail: String
        /// What to do when it is missing.
        public var fix: String
        public init(name: String, ok: Bool, detail: String, fix: String) { self.name = name; self.ok = ok; self.detail = detail; self.fix = fix }
    }
    public var checks: [Check]
    /// Per-namespace sysctl keys found missing or read-only here, with the kernel's reason.
    public var sysctlProblems: [String: String] = [:]
    /// MPTCP schedulers this kernel offers (empty when unknown).
    public var schedulers: [String] = []
    public var congestionControls: [String] = []
    /// Those a namespace other than the host's own may choose (`net.ipv4.tcp_allowed_congestion_control`;
    /// the kernel refuses the rest there with EPERM). Nil when unknown.
    public var allowedCongestionControls: [String]?

    public init(checks: [Check]) { self.checks = checks }

    public func has(_ name: String) -> Bool { checks.first { $0.name == name }?.ok ?? false }

    /// True when the probe could not run at all (not root), so nothing is known.
    public var isBlind: Bool { checks.contains { $0.name == "root" && !$0.ok } }

    /// Where what a host's operations carry out is written: profiles by name, nodes by namespace.
    public struct Origins: Sendable {
        public var profiles: [String: SourceLocation] = [:]
        public var namespaces: [String: (node: String, location: SourceLocation)] = [:]
        public init() {}
        public init(_ t: Topology) {
            profiles = Dictionary(t.profiles.map { ($0.name, $0.location) }, uniquingKeysWith: { a, _ in a })
            namespaces = Dictionary(t.nodes.map { (t.namespace(of: $0.name), ($0.name, $0.location)) }, uniquingKeysWith: { a, _ in a })
        }
    }

    /// What one host's part of a lab needs that is missing here, with the fix for each, naming
    /// the profiles and nodes of the file that need it.
    public func missing(for plan: HostPlan, origins: Origins = Origins()) -> [Check] {
        if isBlind { return checks.filter { !$0.ok } }
        var needed: Set<String> = ["namespaces", "veth"]
        var extra: [Check] = []
        var neededBy: [String: [String]] = [:]
        func node(_ ns: String) -> String { origins.namespaces[ns].map { " by node \($0.node) (\($0.location))" } ?? "" }
        for op in plan.operations {
            switch op {
            case .createBridge: needed.insert("bridge")
            case .createGretap: needed.insert("gretap")
            case .createVxlan: needed.insert("vxlan")
            case let .setQdisc(_, q):
                for k in q.kinds {
                    needed.insert(k.rawValue)
                    let who = "profile \(q.profile)" + (origins.profiles[q.profile].map { " (\($0))" } ?? "")
                    if !neededBy[k.rawValue, default: []].contains(who) { neededBy[k.rawValue, default: []].append(who) }
                }
            case .addMPTCPEndpoint, .setMPTCPLimits: needed.insert("mptcp")
            case let .setSysctl(ns, key, value):
                if key == "net.ipv4.tcp_congestion_control", !congestionControls.isEmpty, !congestionControls.contains(value) {
                    extra.append(Check(name: "cc:\(value)", ok: false, detail: "congestion control \(value), chosen\(node(ns)), is not available",
                                       fix: "load tcp_\(value) (modprobe tcp_\(value)) or choose one of: \(congestionControls.joined(separator: ", "))"))
                } else if key == "net.ipv4.tcp_congestion_control", let allowed = allowedCongestionControls, !allowed.isEmpty, !allowed.contains(value) {
                    extra.append(Check(name: "cc:\(value)", ok: false,
                                       detail: "congestion control \(value), chosen\(node(ns)), is available but not allowed in a namespace (net.ipv4.tcp_allowed_congestion_control: \(allowed.joined(separator: " "))); the kernel would refuse it with EPERM",
                                       fix: "allow it on this host: sysctl -w net.ipv4.tcp_allowed_congestion_control='\((allowed + [value]).joined(separator: " "))', or choose one of: \(allowed.joined(separator: ", "))"))
                } else if key == "net.mptcp.scheduler", !schedulers.isEmpty, !schedulers.contains(value) {
                    extra.append(Check(name: "scheduler:\(value)", ok: false, detail: "MPTCP scheduler \(value), chosen\(node(ns)), is not available",
                                       fix: "use one of: \(schedulers.joined(separator: ", ")) (net.mptcp.available_schedulers)"))
                } else if let why = sysctlProblems[key] {
                    extra.append(Check(name: "sysctl:\(key)", ok: false, detail: "sysctl \(key) (in \(ns)): \(why)",
                                       fix: "remove it from the node's `sysctls:`, or run the lab on a kernel that has it"))
                }
            default: break
            }
        }
        var seen = Set<String>()
        let lacking = checks.filter { needed.contains($0.name) && !$0.ok }.map { c -> Check in
            guard let who = neededBy[c.name] else { return c }
            var c = c
            c.detail += "; needed by " + (who.count > 4 ? who.prefix(3).joined(separator: ", ") + " and \(who.count - 3) more" : who.joined(separator: ", "))
            return c
        }
        return lacking + extra.filter { seen.insert($0.name).inserted }
    }

    /// What one host's part of a lab needs that is missing here, including its role: in a lab
    /// of several hosts, a host declared `mptcp: true` must have MPTCP, whether or not this lab's
    /// nodes there use it. `pathbed doctor` and `up` ask the same question.
    public func problems(for plan: HostPlan, declaredMPTCP: Bool, labSpansHosts: Bool, origins: Origins = Origins()) -> [Check] {
        var missing = missing(for: plan, origins: origins)
        if labSpansHosts, declaredMPTCP, !isBlind, !has("mptcp"), !missing.contains(where: { $0.name == "mptcp" }) {
            missing.append(Check(name: "mptcp", ok: false, detail: "declared `mptcp: true`, but the kernel has no MPTCP",
                                 fix: "boot a kernel with CONFIG_MPTCP (Linux 5.6+), or declare the host `mptcp: false`"))
        }
        return missing
    }
}

