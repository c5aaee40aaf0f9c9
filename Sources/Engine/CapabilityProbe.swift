import Foundation
import Netlink
import TopologyModel

/// What this kernel and machine can do, found by trying it in a throwaway namespace.
public struct Capabilities: Sendable {
    public struct Check: Sendable {
        public var name: String
        public var ok: Bool
        public var detail: String
        /// What to do when it is missing.
        public var fix: String
    }
    public var checks: [Check]

    public func has(_ name: String) -> Bool { checks.first { $0.name == name }?.ok ?? false }

    /// What a lab needs that is missing here, with the fix for each.
    public func missing(for topology: Topology, plan: LabPlan) -> [Check] {
        var needed: Set<String> = ["namespaces", "veth"]
        for h in plan.hosts where topology.host(named: h.host)?.isLocal ?? false {
            for op in h.operations {
                switch op {
                case .createBridge: needed.insert("bridge")
                case .createGretap: needed.insert("gretap")
                case let .setQdisc(_, q): q.kinds.forEach { needed.insert($0) }
                case .addMPTCPEndpoint, .setMPTCPLimits: needed.insert("mptcp")
                case let .setSysctl(_, key, value) where key == "net.ipv4.tcp_congestion_control": needed.insert("cc:\(value)")
                default: break
                }
            }
        }
        return checks.filter { needed.contains($0.name) && !$0.ok }
            + needed.filter { $0.hasPrefix("cc:") && !has($0) }.sorted().map { name in
                let cc = String(name.dropFirst(3))
                return Check(name: name, ok: false, detail: "congestion control \(cc) is not available",
                             fix: "load tcp_\(cc) (modprobe tcp_\(cc)) or choose one of: \(checks.first { $0.name == "congestion controls" }?.detail ?? "")")
            }
    }
}

public enum CapabilityProbe {
    static let vmRoute = "run the lab in a VM with a full kernel (Debian's linux-image-amd64 has it)"

    public static func run() -> Capabilities {
        var checks: [Capabilities.Check] = []
        func add(_ name: String, _ ok: Bool, _ detail: String, fix: String = "") {
            checks.append(.init(name: name, ok: ok, detail: detail, fix: fix))
        }
        let probe = "pb-probe-\(getpid())"
        guard geteuid() == 0 else {
            add("root", false, "not running as root", fix: "run as root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN")
            return Capabilities(checks: checks)
        }
        add("root", true, "running as root")
        do {
            try NetworkNamespace.create(probe)
        } catch {
            add("namespaces", false, "\(error)", fix: "a kernel with CONFIG_NET_NS and a writable /run/netns")
            return Capabilities(checks: checks)
        }
        defer { try? NetworkNamespace.delete(probe) }
        add("namespaces", true, "network namespaces under /run/netns")
        guard let fd = try? NetworkNamespace.open(probe), let h = try? RouteHandle(nsfd: fd, namespace: probe) else {
            add("netlink", false, "cannot open a netlink socket in a namespace", fix: "check the kernel's netlink support")
            return Capabilities(checks: checks)
        }
        defer { close(fd) }
        func attempt(_ name: String, fix: String, _ body: () throws -> Void) {
            do { try body(); add(name, true, "works") } catch let e as NetlinkError { add(name, false, "\(e.reason) (\(e.errnoName))", fix: fix) } catch { add(name, false, "\(error)", fix: fix) }
        }
        attempt("veth", fix: "a kernel with CONFIG_VETH") { try h.createVeth("pa", nsfd: fd, peer: "pb", peerNsfd: fd, mtu: 1500, object: "probe") }
        attempt("bridge", fix: "a kernel with CONFIG_BRIDGE (module bridge)") { try h.createBridge("pbr", stp: false) }
        attempt("gretap", fix: "load ip_gre (CONFIG_NET_IPGRE), or \(vmRoute)") { try h.probeGretap("pgre") }
        attempt("tbf", fix: "load sch_tbf (CONFIG_NET_SCH_TBF)") { try h.setTBF("pa", rateBytes: 125_000, burst: 3000, limitBytes: 30000) }
        attempt("htb", fix: "load sch_htb (CONFIG_NET_SCH_HTB)") { try h.setHTB("pb", rateBytes: 125_000, burst: 3000) }
        attempt("netem", fix: "load sch_netem (CONFIG_NET_SCH_NETEM), or \(vmRoute); profiles with only a rate work without it") {
            var p = RouteHandle.NetemParameters(); p.delayMicroseconds = 1000
            try h.setNetem("pbr", p, belowHTB: false)
        }
        if let enabled = NetworkNamespace.readSysctl(fd, "net.mptcp.enabled"), (try? MPTCPHandle(nsfd: fd, namespace: probe)) != nil {
            let sched = NetworkNamespace.readSysctl(fd, "net.mptcp.available_schedulers") ?? NetworkNamespace.readSysctl(fd, "net.mptcp.scheduler") ?? "?"
            add("mptcp", true, "net.mptcp.enabled=\(enabled), path manager mptcp_pm, schedulers: \(sched)")
        } else {
            add("mptcp", false, "no net.mptcp sysctls or mptcp_pm family", fix: "a kernel with CONFIG_MPTCP (Linux 5.6+), or declare the host `mptcp: false`")
        }
        let ccs = NetworkNamespace.readSysctl(fd, "net.ipv4.tcp_available_congestion_control") ?? ""
        add("congestion controls", !ccs.isEmpty, ccs.isEmpty ? "unknown" : ccs)
        for cc in ccs.split(separator: " ") { checks.append(.init(name: "cc:\(cc)", ok: true, detail: "", fix: "")) }
        for tool in ["iperf3", "mptcpize", "ping"] {
            let path = which(tool)
            add(tool, path != nil, path ?? "not found", fix: tool == "mptcpize" ? "apt-get install mptcpd" : "apt-get install \(tool == "ping" ? "iputils-ping" : tool)")
        }
        return Capabilities(checks: checks)
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }
}
