import Foundation
import Netlink

/// Stops the processes inside namespaces: SIGTERM, then SIGKILL to those left after 2 s.
enum ProcessStopper {
    static func stop(in namespaces: [String], sparing: Set<Int32> = []) -> Int {
        var pids = NetworkNamespace.pids(in: namespaces).filter { $0 != getpid() && !sparing.contains($0) }
        let count = pids.count
        guard !pids.isEmpty else { return 0 }
        for p in pids { kill(p, SIGTERM) }
        let deadline = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
        while !pids.isEmpty, DispatchTime.now().uptimeNanoseconds < deadline {
            usleep(20_000)
            pids = pids.filter { kill($0, 0) == 0 && !isZombie($0) }
        }
        for p in pids { kill(p, SIGKILL) }
        return count
    }

    static func isZombie(_ pid: pid_t) -> Bool {
        guard let s = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8), let close = s.lastIndex(of: ")") else { return true }
        return s[s.index(close, offsetBy: 2)...].hasPrefix("Z")
    }
}

