import Foundation
import Hosts
import Report

/// Whether a run's machines kept up, from the health readings its samplers took about once a
/// second: per host the CPU (busy, softirq, steal; how much of the run it was saturated) and
/// Pathbed's own; per shaped interface its qdisc's drops, overlimits and deepest backlog. A run
/// is `suspect` where a host's CPUs were at least 90 % busy for more than 10 % of the run, or
/// the hypervisor stole more than 10 % of their time: its figures may be the machine's limit.
enum RunHealth {
    static let saturatedBusy = 90.0
    static let suspectShare = 10.0

    static func compute(_ readings: [String: [(t: Double, h: HealthSample)]], duration: Double) -> RunResults.Health {
        var hosts: [RunResults.HostHealth] = [], queues: [RunResults.QueueHealth] = [], reasons: [String] = []
        for host in readings.keys.sorted() {
            // The run's own window, and the reading just before it (differences start there).
            let all = readings[host] ?? []
            let firstIn = all.firstIndex { $0.t >= 0 } ?? all.count
            let window = Array(all[max(0, firstIn - 1)...].filter { $0.t <= duration + 1.5 })
            guard window.count >= 2, let first = window.first, let last = window.last else { continue }
            var busy = 0.0, soft = 0.0, steal = 0.0, total = 0.0, saturated = 0, intervals = 0
            for (a, b) in zip(window, window.dropFirst()) {
                let d = zip(b.h.cpu, a.h.cpu).map { $0 >= $1 ? Double($0 - $1) : 0 }
                guard d.count == 8 else { continue }
                let sum = d.reduce(0, +)
                guard sum > 0 else { continue }
                let idle = d[3] + d[4]
                busy += sum - idle; soft += d[6]; steal += d[7]; total += sum
                intervals += 1
                if (sum - idle) / sum * 100 >= saturatedBusy { saturated += 1 }
            }
            let seconds = max(last.t - first.t, 0)
            let ticks = Double(max(last.h.ticksPerSecond, 1))
            let own = last.h.ownTicks >= first.h.ownTicks ? Double(last.h.ownTicks - first.h.ownTicks) / ticks : 0
            let h = RunResults.HostHealth(host: host, virtualization: last.h.virtualization, seconds: seconds, cpus: last.h.cpus,
                                          cpuBusy: total > 0 ? busy / total * 100 : 0, softirq: total > 0 ? soft / total * 100 : 0,
                                          steal: total > 0 ? steal / total * 100 : 0,
                                          saturated: intervals > 0 ? Double(saturated) / Double(intervals) * 100 : 0,
                                          pathbedCPU: seconds > 0 ? own / seconds * 100 : 0)
            hosts.append(h)
            let under = h.virtualization.map { $0 == "none" ? "" : " (under \($0))" } ?? ""
            if h.saturated > suspectShare {
                reasons.append(String(format: "%@'s CPUs were at least 90 %% busy %.0f %% of the run%@; figures may be the machine's limit, not the lab's", host, h.saturated, under))
            }
            if h.steal > suspectShare {
                reasons.append(String(format: "the hypervisor stole %.0f %% of %@'s CPU time; figures may be the machine's limit, not the lab's", h.steal, host))
            }
            // Each shaped queue: counters from the first reading to the last, the deepest backlog seen.
            let before = Dictionary(first.h.qdiscs.map { ("\($0.namespace) \($0.interface)", $0) }, uniquingKeysWith: { a, _ in a })
            var deepest: [String: (UInt64, UInt64)] = [:]
            for r in window { for q in r.h.qdiscs { let k = "\(q.namespace) \(q.interface)"; let d = deepest[k] ?? (0, 0); deepest[k] = (max(d.0, q.backlogBytes), max(d.1, q.backlogPackets)) } }
            for q in last.h.qdiscs {
                let k = "\(q.namespace) \(q.interface)", b = before[k]
                func delta(_ x: UInt64, _ y: UInt64?) -> UInt64 { x >= (y ?? 0) ? x - (y ?? 0) : x }
                let node = q.namespace.split(separator: ".").count >= 3 ? String(q.namespace.split(separator: ".").last!) : "bridges"
                queues.append(RunResults.QueueHealth(host: host, end: "\(node):\(q.interface)", kind: q.kind, drops: delta(q.drops, b?.drops),
                                                     overlimits: delta(q.overlimits, b?.overlimits), backlogMaxBytes: deepest[k]?.0 ?? 0, backlogMaxPackets: deepest[k]?.1 ?? 0))
            }
        }
        if hosts.isEmpty { reasons.append("no health readings: nothing is known of the machines' load") }
        return RunResults.Health(verdict: reasons.isEmpty ? "valid" : "suspect", reasons: reasons, hosts: hosts, queues: queues)
    }
}
