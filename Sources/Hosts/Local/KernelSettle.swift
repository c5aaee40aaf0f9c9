import Foundation
import Netlink
import NetlinkTypes

/// Measures how long the kernel keeps freeing removed namespaces in the background.
///
/// Deleting a namespace returns at once; the kernel tears its devices down afterwards, holding
/// the lock every link change needs. A tiny probe (create and delete a veth pair in a throwaway
/// namespace) is slow while that work runs: the wait ends once the probe is back at its rested speed.
public enum KernelSettle {
    public static func wait(timeout: Double = 30) -> Double {
        let start = DispatchTime.now().uptimeNanoseconds
        let probe = "pb-settle-\(getpid())"
        guard (try? NetworkNamespace.create(probe)) != nil else { return 0 }
        defer { try? NetworkNamespace.delete(probe) }
        guard let fd = try? NetworkNamespace.open(probe), let h = try? RouteHandle(nsfd: fd, namespace: probe) else { return 0 }
        defer { close(fd) }
        // Done when three probes in a row are as quick as the quickest seen (within 50 % + 1 ms).
        var quickest = Double.infinity, quick = 0, samples: [Double] = []
        // Ctrl-C ends the wait (when the command catches signals): the probe namespace goes with it.
        while quick < 3, Interrupts.signal == 0 {
            let t0 = DispatchTime.now().uptimeNanoseconds
            if (try? h.createLink(.veth(LinkAttributes(name: "s0"), nsfd: fd, peer: LinkAttributes(name: "s1"), peerNsfd: fd))) != nil {
                try? h.deleteLink("s0")
            }
            let took = Double(DispatchTime.now().uptimeNanoseconds - t0) / 1e9
            samples.append(took)
            quickest = min(quickest, took)
            quick = samples.suffix(3).count == 3 && samples.suffix(3).allSatisfy({ $0 <= quickest * 1.5 + 0.001 }) ? 3 : 0
            if Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 > timeout { break }
        }
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
