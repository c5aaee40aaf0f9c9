import Foundation
import Netlink
import NetlinkTypes

/// Reads what a host's kernel says of its load: `/proc/stat`, this process's own CPU, the root
/// qdisc of each shaped interface, and what the host runs under.
public enum HostHealthProbe {
    /// One reading; `qdiscs` from handles already open in each namespace, their interfaces named
    /// from `names`, the sampler's own dump of the same round (a second dump cost 9 ms a second at
    /// 498 interfaces).
    static func sample(_ handles: [(String, RouteHandle)], names: [String: [Int32: String]]) -> HealthSample {
        var cpu: [UInt64] = [], cpus = 0
        if let stat = try? String(contentsOfFile: "/proc/stat", encoding: .utf8) {
            for line in stat.split(separator: "\n") {
                if line.hasPrefix("cpu ") { cpu = line.split(separator: " ").dropFirst().prefix(8).compactMap { UInt64($0) } }
                else if line.hasPrefix("cpu") { cpus += 1 }
            }
        }
        var own: UInt64 = 0
        if let s = try? String(contentsOfFile: "/proc/self/stat", encoding: .utf8), let close = s.lastIndex(of: ")") {
            // After the command's name: state is field 3, utime 14 and stime 15.
            let f = s[s.index(after: close)...].split(separator: " ")
            if f.count > 12, let u = UInt64(f[11]), let k = UInt64(f[12]) { own = u &+ k }
        }
        var qdiscs: [QdiscCounters] = []
        for (ns, h) in handles {
            guard let all = try? h.qdiscs(), all.contains(where: { $0.parent == 0xFFFF_FFFF && $0.kind != "noqueue" }) else { continue }
            let names = names[ns] ?? [:]
            // The root qdisc's figures hold its children's (htb counts what its netem drops).
            for q in all where q.parent == 0xFFFF_FFFF && ["tbf", "htb", "netem"].contains(q.kind) {
                qdiscs.append(QdiscCounters(namespace: ns, interface: names[q.interfaceIndex] ?? "#\(q.interfaceIndex)", kind: q.kind,
                                            drops: q.drops, overlimits: q.overlimits, backlogBytes: q.backlogBytes, backlogPackets: q.backlogPackets))
            }
        }
        return HealthSample(cpu: cpu.count == 8 ? cpu : cpu + Array(repeating: 0, count: max(0, 8 - cpu.count)), cpus: max(cpus, 1),
                            ownTicks: own, ticksPerSecond: UInt64(max(sysconf(Int32(_SC_CLK_TCK)), 1)), qdiscs: qdiscs, virtualization: runsUnder)
    }

    /// Found once per process.
    static let runsUnder = virtualization()

    /// `none` without the CPU's hypervisor flag; `KVM` with a KVM clock (hardware virtualization);
    /// `software emulation` under QEMU without one (its TCG); else `a hypervisor`.
    public static func virtualization() -> String {
        let cpuinfo = (try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)) ?? ""
        guard cpuinfo.split(separator: "\n").contains(where: { $0.hasPrefix("flags") && $0.split(separator: " ").contains("hypervisor") }) else {
            return cpuinfo.isEmpty ? "unknown" : "none"
        }
        let clocks = (try? String(contentsOfFile: "/sys/devices/system/clocksource/clocksource0/available_clocksource", encoding: .utf8)) ?? ""
        if clocks.contains("kvm-clock") { return "KVM" }
        let vendor = ((try? String(contentsOfFile: "/sys/class/dmi/id/sys_vendor", encoding: .utf8)) ?? "") + cpuinfo
        return vendor.contains("QEMU") ? "software emulation" : "a hypervisor"
    }
}
