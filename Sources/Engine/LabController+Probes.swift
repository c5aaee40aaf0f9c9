import Foundation
import Hosts
import Planning
import TopologyModel

extension LabController {
    /// Sends every probe; returns one message per tunnel direction that failed.
    func probeTunnels(_ t: Topology, progress: (String) -> Void) -> [String] {
        var failures: [String] = []
        for p in TunnelProbe.plan(t) {
            guard interrupted() == 0 else { return failures }
            guard let e = executors[p.fromHost] else { continue }
            func passes(_ payload: Int, count: Int = 2) -> Bool {
                (try? e.run(p.argv(payload: payload, count: count), in: p.fromNamespace, timeout: 15, output: { _, _ in })) == 0
            }
            if passes(p.payload) {
                progress("probe: \(p.mtu)-byte packets, don't fragment, through the \(p.label): ok")
                continue
            }
            // Find the largest size that does get through, to say what to change.
            var low = 0, high = p.payload, best: Int?
            if passes(0, count: 1) {
                best = 0
                low = 1
                while low <= high {
                    let mid = (low + high) / 2
                    if passes(mid, count: 1) { best = mid; low = mid + 1 } else { high = mid - 1 }
                }
            }
            // A probe stopped by Ctrl-C proves nothing: the interrupt is reported, not the MTU.
            guard interrupted() == 0 else { return failures }
            let header = p.mtu - p.payload
            failures.append("\(p.label): a \(p.mtu)-byte packet with don't-fragment did not get through; "
                            + (best.map { "the largest that did was \($0 + header) bytes" } ?? "no packet got through at all"))
        }
        return failures
    }
}
