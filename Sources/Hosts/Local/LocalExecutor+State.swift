import Foundation
import Netlink
import NetlinkTypes
import Planning
import TopologyModel

/// What this machine holds of a lab: its namespaces, their interfaces and shaping; removing it.
extension LocalExecutor {
    public func namespaces(of lab: String) -> [NamespaceState] {
        NetworkNamespace.list().filter { Ownership.isNamed($0, lab: lab) }.map { ns in
            if NetworkNamespace.isPlaceholder(ns) { return NamespaceState(name: ns, tagged: false, placeholder: true) }
            return NamespaceState(name: ns, tagged: (try? route(ns).alias(of: "lo")) == Ownership.namespaceTag(lab: lab))
        }
    }

    public func interfaces(in namespace: String) throws -> [InterfaceState] {
        let h = try route(namespace)
        let links = try h.links()
        let qdiscs = try h.qdiscs()
        // Tunnel modules put fallback devices (gre0, gretap0, ...) into every namespace: not the lab's.
        return try links.filter { $0.name != "lo" && !($0.group == 0 && Self.fallbackDevices.contains($0.name)) }.map { l in
            let mine = qdiscs.filter { $0.interfaceIndex == l.index }
            var shaping: [String] = []
            // The queue as the kernel holds it: packets of full frames, and ms at the rate.
            var rateBytes: UInt64?, queuePackets: Double?
            let frame = Double(l.mtu) + 14
            if let root = mine.first(where: { $0.parent == 0xFFFF_FFFF }), root.kind != "noqueue" {
                switch root.kind {
                case "tbf":
                    rateBytes = root.rateBytesPerSecond
                    shaping.append("tbf \(Bitrate(bitsPerSecond: (root.rateBytesPerSecond ?? 0) * 8))")
                    queuePackets = root.limit.map { (Double($0) / frame).rounded(.down) }
                case "htb":
                    rateBytes = try h.htbRate(l.name)
                    shaping.append("htb \(rateBytes.map { Bitrate(bitsPerSecond: $0 * 8).description } ?? "?")")
                default: shaping.append(root.kind)
                }
            }
            let netem = mine.first(where: { $0.kind == "netem" })
            if let n = netem {
                var s = "netem"
                if let d = n.delayMicroseconds, d > 0 { s += " delay \(Duration(nanoseconds: Int64(d) * 1000))" }
                if let j = n.jitterMicroseconds, j > 0 { s += " jitter \(Duration(nanoseconds: Int64(j) * 1000))" }
                if let loss = n.lossPercent, loss > 0 { s += " loss \(Percent(loss))" }
                if shaping.first == "netem" { shaping = [s] } else { shaping.append(s) }
                queuePackets = n.limit.map(Double.init)
            }
            var text = shaping.joined(separator: " / ")
            if let p = queuePackets, p.isFinite, p >= 0, p < 1e9 {
                let oneWay = Double(UInt64(netem?.delayMicroseconds ?? 0) + UInt64(netem?.jitterMicroseconds ?? 0)) / 1e6
                let q = QdiscSpec.split(packets: Int(p), rateBitsPerSecond: rateBytes.map { $0 &* 8 }, oneWaySeconds: oneWay, frame: frame)
                text += ", queue \(q.packets) packets" + (q.forDelay > 0 ? " (\(q.forDelay) held for the delay)" : "")
                    + (q.milliseconds.map { String(format: ", %.1f ms at the rate", $0) } ?? "")
            }
            return InterfaceState(name: l.name, kind: l.kind ?? "-", isUp: l.isUp, mtu: l.mtu, group: l.group, shaping: text)
        }
    }

    /// Stops the lab's processes (those of `sparing` aside), then removes the files its runs
    /// leave in /tmp (transfers', captures'): called when no run of the lab is under way (a dead
    /// run's recovery, the end of a run that keeps its lab, after its capture was fetched).
    public func stopProcesses(inLab lab: String, sparing: [Int32]) -> Int {
        let ours = namespaces(of: lab).filter(\.tagged).map(\.name)
        let n = ProcessStopper.stop(in: ours, sparing: Set(sparing))
        RunLeftovers.remove(lab: lab)
        return n
    }

    public func processes(inLab lab: String) -> [Int32] {
        NetworkNamespace.pids(in: namespaces(of: lab).filter(\.tagged).map(\.name)).filter { $0 != getpid() }
    }

    public func removeLab(_ lab: String, waitForKernel: Bool) -> RemovalReport {
        var report = RemovalReport()
        let states = namespaces(of: lab)
        closeAll()
        report.foreign = states.filter { !$0.tagged && !$0.placeholder }.map(\.name)
        for p in states where p.placeholder { if NetworkNamespace.removePlaceholder(p.name) { report.removed.append(p.name) } }
        let ours = states.filter(\.tagged).map(\.name)
        // Programs still running in the lab (workloads, `pathbed exec`) would keep its namespaces alive.
        report.stoppedProcesses = ProcessStopper.stop(in: ours)
        // A tunnel caught between its creation and its move (a kill -9 there): in the host's namespace.
        if let h = try? root() {
            let group = Ownership.group(lab: lab)
            for l in (try? h.links()) ?? [] where l.group == group && (l.name.hasPrefix("pbgt") && l.kind == "gretap" || l.name.hasPrefix("pbvx") && l.kind == "vxlan") {
                do { try h.deleteLink(l.name); report.removed.append(l.name) } catch { report.failures.append("\(error)") }
            }
        }
        // Node namespaces first, then the bridge namespace; the kernel frees their devices in the background.
        for ns in ours.sorted(by: { $0.count > $1.count }) {
            do { try NetworkNamespace.delete(ns); report.removed.append(ns) } catch { report.failures.append("\(error)") }
        }
        RunLeftovers.remove(lab: lab)
        if waitForKernel, !report.removed.isEmpty { report.kernelFreeSeconds = KernelSettle.wait() }
        return report
    }
}
