import Foundation
import Netlink
import NetlinkTypes
import Planning
import TopologyModel

public enum CapabilityProbe {
    static let vmRoute = "run the lab in a VM with a full kernel (Debian's linux-image-amd64 has it)"

    /// Tries every feature; `sysctls` are per-namespace keys to check for existence and writability.
    public static func run(sysctls: [String] = []) -> Capabilities {
        var caps = Capabilities(checks: [])
        func add(_ name: String, _ ok: Bool, _ detail: String, fix: String = "") {
            caps.checks.append(.init(name: name, ok: ok, detail: detail, fix: fix))
        }
        let probe = "pb-probe-\(getpid())"
        guard geteuid() == 0 else {
            add("root", false, "not running as root: nothing below could be checked", fix: "run as root: network namespaces need CAP_SYS_ADMIN and CAP_NET_ADMIN")
            return caps
        }
        add("root", true, "running as root")
        do {
            try NetworkNamespace.create(probe)
        } catch {
            add("namespaces", false, "\(error)", fix: "a kernel with CONFIG_NET_NS and a writable /run/netns")
            return caps
        }
        defer { try? NetworkNamespace.delete(probe) }
        add("namespaces", true, "network namespaces under /run/netns")
        guard let fd = try? NetworkNamespace.open(probe), let h = try? RouteHandle(nsfd: fd, namespace: probe) else {
            add("netlink", false, "cannot open a netlink socket in a namespace", fix: "check the kernel's netlink support")
            return caps
        }
        defer { close(fd) }
        func attempt(_ name: String, fix: String, _ body: () throws -> Void) {
            do { try body(); add(name, true, "works") } catch let e as NetlinkError { add(name, false, "\(e.reason) (\(e.errnoName))", fix: fix) } catch { add(name, false, "\(error)", fix: fix) }
        }
        attempt("veth", fix: "a kernel with CONFIG_VETH") {
            try h.createLink(.veth(LinkAttributes(name: "pa"), nsfd: fd, peer: LinkAttributes(name: "pb"), peerNsfd: fd))
        }
        attempt("bridge", fix: "a kernel with CONFIG_BRIDGE (module bridge)") { try h.createLink(.bridge(LinkAttributes(name: "pbr"), stp: false)) }
        attempt("stp", fix: "a kernel with CONFIG_BRIDGE; or remove `stp: true`") { try h.setBridgeSTP("pbr", on: true) }
        attempt("gretap", fix: "load ip_gre (CONFIG_NET_IPGRE), or carry the lab's links between hosts with `tunnel: vxlan`, or \(vmRoute)") { try h.probeGretap("pgre") }
        attempt("vxlan", fix: "load vxlan (CONFIG_VXLAN), or use `tunnel: gretap`") {
            try h.createLink(.vxlan(LinkAttributes(name: "pvx"), local: NetlinkAddress(bytes: [192, 0, 2, 1], prefixLength: 32),
                                    remote: NetlinkAddress(bytes: [192, 0, 2, 2], prefixLength: 32), vni: 1, port: Topology.vxlanPort))
        }
        attempt(Shaping.Kind.tbf.rawValue, fix: "load sch_tbf (CONFIG_NET_SCH_TBF)") { try h.setShaping("pa", .tbf(rateBytes: 125_000, burstBytes: 3000, limitBytes: 30000)) }
        attempt(Shaping.Kind.htb.rawValue, fix: "load sch_htb (CONFIG_NET_SCH_HTB)") { try h.setShaping("pb", .htb(rateBytes: 125_000, burstBytes: 3000, netem: nil)) }
        attempt(Shaping.Kind.netem.rawValue, fix: "load sch_netem (CONFIG_NET_SCH_NETEM), or \(vmRoute); profiles with only a rate work without it") {
            var p = NetemParameters(); p.delayMicroseconds = 1000
            try h.setShaping("pbr", .netem(p))
        }
        if let enabled = NetworkNamespace.readSysctl(fd, "net.mptcp.enabled"), (try? MPTCPHandle(nsfd: fd, namespace: probe)) != nil {
            let sched = NetworkNamespace.readSysctl(fd, "net.mptcp.available_schedulers") ?? NetworkNamespace.readSysctl(fd, "net.mptcp.scheduler") ?? ""
            caps.schedulers = sched.split(separator: " ").map(String.init)
            add("mptcp", true, "net.mptcp.enabled=\(enabled), path manager mptcp_pm, schedulers: \(sched.isEmpty ? "?" : sched)")
        } else {
            add("mptcp", false, "no net.mptcp sysctls or mptcp_pm family", fix: "a kernel with CONFIG_MPTCP (Linux 5.6+), or declare the host `mptcp: false`")
        }
        let ccs = NetworkNamespace.readSysctl(fd, "net.ipv4.tcp_available_congestion_control") ?? ""
        caps.congestionControls = ccs.split(separator: " ").map(String.init)
        // Global, readable from any namespace: which of them a namespace may make its default.
        let allowed = NetworkNamespace.readSysctl(fd, "net.ipv4.tcp_allowed_congestion_control")
        caps.allowedCongestionControls = allowed.map { $0.split(separator: " ").map(String.init) }
        add("congestion controls", !ccs.isEmpty, ccs.isEmpty ? "unknown" : ccs + (allowed.map { "; allowed in a namespace: \($0)" } ?? ""))
        for key in Set(sysctls).sorted() {
            if let e = NetworkNamespace.sysctlWriteProblem(fd, key) {
                caps.sysctlProblems[key] = e == ENOENT ? "this kernel has no such key" : e == EACCES ? "it is read-only" : String(cString: strerror(e))
            }
        }
        for (tool, package) in [("iperf3", "iperf3"), ("mptcpize", "mptcpize"), ("ping", "iputils-ping"), ("dumpcap", "tshark")] {
            let path = which(tool)
            add(tool, path != nil, path ?? "not found", fix: "apt-get install \(package)")
        }
        return caps
    }

    static func which(_ tool: String) -> String? {
        for dir in (ProcessInfo.processInfo.environment["PATH"] ?? "/usr/bin:/bin").split(separator: ":") {
            let p = "\(dir)/\(tool)"
            if access(p, X_OK) == 0 { return p }
        }
        return nil
    }
}
