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

    public init(checks: [Check]) { self.checks = checks }

    public func has(_ name: String) -> Bool { checks.first { $0.name == name }?.ok ?? false }

    /// True when the probe could not run at all (not root), so nothing is known.
    public var isBlind: Bool { checks.contains { $0.name == "root" && !$0.ok } }

    /// What one host's part of a lab needs that is missing here, with the fix for each.
    public func missing(for plan: HostPlan) -> [Check] {
        if isBlind { return checks.filter { !$0.ok } }
        var needed: Set<String> = ["namespaces", "veth"]
        var extra: [Check] = []
        for op in plan.operations {
            switch op {
            case .createBridge: needed.insert("bridge")
            case .createGretap: needed.insert("gretap")
            case let .setQdisc(_, q): q.kinds.forEach { needed.insert($0.rawValue) }
            case .addMPTCPEndpoint, .setMPTCPLimits: needed.insert("mptcp")
            case let .setSysctl(ns, key, value):
                if key == "net.ipv4.tcp_congestion_control", !congestionControls.isEmpty, !congestionControls.contains(value) {
                    extra.append(Check(name: "cc:\(value)", ok: false, detail: "congestion control \(value) is not available",
                                       fix: "load tcp_\(value) (modprobe tcp_\(value)) or choose one of: \(congestionControls.joined(separator: ", "))"))
                } else if key == "net.mptcp.scheduler", !schedulers.isEmpty, !schedulers.contains(value) {
                    extra.append(Check(name: "scheduler:\(value)", ok: false, detail: "MPTCP scheduler \(value) is not available",
                                       fix: "use one of: \(schedulers.joined(separator: ", ")) (net.mptcp.available_schedulers)"))
                } else if let why = sysctlProblems[key] {
                    extra.append(Check(name: "sysctl:\(key)", ok: false, detail: "sysctl \(key) (in \(ns)): \(why)",
                                       fix: "remove it from the node's `sysctls:`, or run the lab on a kernel that has it"))
                }
            default: break
            }
        }
        var seen = Set<String>()
        return checks.filter { needed.contains($0.name) && !$0.ok } + extra.filter { seen.insert($0.name).inserted }
    }

    /// What one host's part of a lab needs that is missing here, including its role: in a lab
    /// of several hosts, a host declared `mptcp: true` must have MPTCP, whether or not this lab's
    /// nodes there use it. `pathbed doctor` and `up` ask the same question.
    public func problems(for plan: HostPlan, declaredMPTCP: Bool, labSpansHosts: Bool) -> [Check] {
        var missing = missing(for: plan)
        if labSpansHosts, declaredMPTCP, !isBlind, !has("mptcp"), !missing.contains(where: { $0.name == "mptcp" }) {
            missing.append(Check(name: "mptcp", ok: false, detail: "declared `mptcp: true`, but the kernel has no MPTCP",
                                 fix: "boot a kernel with CONFIG_MPTCP (Linux 5.6+), or declare the host `mptcp: false`"))
        }
        return missing
    }
}

