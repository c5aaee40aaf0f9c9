import Engine
import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// What a lab's namespaces were set to before and after a run (results.json's metadata).
enum HostMetadata {
    static let sysctls = ["net.mptcp.enabled", "net.mptcp.scheduler", "net.mptcp.pm_type", "net.ipv4.tcp_congestion_control",
                          "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem", "net.ipv4.ip_forward", "net.ipv4.tcp_ecn", "net.core.default_qdisc"]

    /// Each node's effective congestion control, MPTCP scheduler and path manager, as its namespace
    /// had them before the run, and whether the file set each or the host's default stayed.
    static func settings(_ t: Topology, _ before: [String: NamespaceMetadata]) -> [RunResults.NodeSettings] {
        t.nodes.map { n in
            let s = before[t.namespace(of: n.name)]?.sysctls ?? [:]
            let mptcpOn = s["net.mptcp.enabled"] == "1"
            let pm = s["net.mptcp.pm_type"].map { $0 == "0" ? "kernel" : $0 == "1" ? "userspace" : $0 }
            // Kernels before 6.6 have no scheduler sysctl: theirs is the default one.
            let scheduler = mptcpOn ? (s["net.mptcp.scheduler"] ?? (s.isEmpty ? nil : "default")) : nil
            return RunResults.NodeSettings(node: n.name, host: n.host, congestionControl: s["net.ipv4.tcp_congestion_control"],
                                           scheduler: scheduler, pathManager: mptcpOn ? pm : nil,
                                           congestionControlFrom: n.congestionControl != nil ? "file" : "host",
                                           schedulerFrom: n.mptcp?.scheduler != nil ? "file" : "host",
                                           pathManagerFrom: n.mptcp?.pathManager != nil ? "file" : "host")
        }
    }

    /// One command per host, all of its lab namespaces at once.
    static func collect(lab: LabController, plan: LabPlan) -> [String: NamespaceMetadata] {
        var out: [String: NamespaceMetadata] = [:]
        for h in plan.hosts where !h.namespaces.isEmpty {
            guard let e = lab.executors[h.host] else { continue }
            let script = "for ns in \(h.namespaces.joined(separator: " ")); do echo \"@ns $ns\"; ip netns exec \"$ns\" sysctl -e \(sysctls.joined(separator: " ")) 2>/dev/null; "
                + "ip netns exec \"$ns\" tc qdisc show 2>/dev/null | sed 's/^/@q /'; done"
            var text = BoundedText(limit: 16 << 20)
            guard (try? e.run(["sh", "-c", script], in: nil, timeout: 60, output: { s, d in if s == .stdout { text.append(d) } })) == 0 else { continue }
            var current: String?
            for line in text.text.split(separator: "\n") {
                if line.hasPrefix("@ns ") {
                    current = String(line.dropFirst(4))
                    if let c = current { out[c] = NamespaceMetadata(host: h.host, sysctls: [:], qdiscs: []) }
                } else if let c = current, line.hasPrefix("@q ") {
                    out[c]?.qdiscs.append(String(line.dropFirst(3)))
                } else if let c = current, let eq = line.range(of: " = ") {
                    out[c]?.sysctls[String(line[..<eq.lowerBound])] = String(line[eq.upperBound...])
                }
            }
        }
        return out
    }
}
