import Foundation
import Netlink
import TopologyModel

/// One change a fault makes to one host's kernel, and what undoes it. Every built-in fault is
/// made of these: the controller sends them to the host that holds the object, and the host
/// keeps a revert deadline for each (`FaultGuard`), so that no fault outlives its run.
public enum FaultAction: Codable, Hashable, Sendable, CustomStringConvertible {
    /// A link end down; `routes` are those the kernel flushes with it, put back when it returns.
    /// `reannounce`: MPTCP endpoints of that interface, deleted and added again when it returns,
    /// so that the in-kernel path manager opens subflows over it anew (it does not by itself).
    case linkDown(link: InterfaceRef, routes: [RouteSpec], reannounce: [ReannouncedEndpoint]?)
    /// A link end's shaping switched in place (`tc qdisc change`) from `from` to `to`; reverting
    /// switches it back to `original`, the profile of the file.
    case profile(link: InterfaceRef, original: QdiscSpec?, from: QdiscSpec?, to: QdiscSpec?)
    /// Everything a namespace sends to `destinations` dropped before routing (one side of a
    /// partition): blackhole rules at priority `FaultAction.partitionPriority`.
    case partition(namespace: String, destinations: [IPNetwork])

    /// Ahead of the lab's own source-routing rules (1000 and up) and of the main table (32766).
    public static let partitionPriority: UInt32 = 50

    /// What a later action on the same object replaces (a trace's next row replaces the last).
    public var key: String {
        switch self {
        case let .linkDown(l, _, _): return "link \(l)"
        case let .profile(l, _, _, _): return "profile \(l)"
        case let .partition(ns, d): return "partition \(ns) \(d.map(\.description).joined(separator: ","))"
        }
    }

    public var namespace: String {
        switch self {
        case let .linkDown(l, _, _), let .profile(l, _, _, _): return l.namespace
        case let .partition(ns, _): return ns
        }
    }

    public var description: String {
        switch self {
        case let .linkDown(l, _, _): return "\(l) down"
        case let .profile(l, _, _, to): return "\(l) shaped as \(to?.profile ?? "no profile")"
        case let .partition(ns, d): return "\(ns) cut off from \(d.map(\.description).joined(separator: ", "))"
        }
    }
}

/// An MPTCP endpoint as the plan adds it, to add again.
public struct ReannouncedEndpoint: Codable, Hashable, Sendable {
    public var address: IPAddress
    public var id: UInt8
    public var flags: [MPTCPEndpoint.Flag]
}

extension LocalExecutor {
    public func change(_ actions: [FaultAction], inject: Bool, at: UInt64?, revertAfter: Double?) throws -> ChangeTiming {
        // A change on time matters more than anything else this host runs: the waiting thread
        // runs real-time (SCHED_FIFO) while it waits and changes, when it may.
        var policy: Int32 = 0
        var saved = sched_param()
        let thread = pthread_self()
        pthread_getschedparam(thread, &policy, &saved)
        var fifo = sched_param(sched_priority: 10)
        let raised = at != nil && pthread_setschedparam(thread, SCHED_FIFO, &fifo) == 0
        defer { if raised { pthread_setschedparam(thread, policy, &saved) } }
        if let at {
            Self.sleep(until: at)
            // Interrupted while it waited: the change is not made (the run is being undone).
            if Interrupts.signal != 0 { throw Interrupted(signal: Interrupts.signal) }
        }
        let began = monotonicNanoseconds()
        for a in actions { if inject { try self.inject(one: a, revertAfter: revertAfter) } else { try revert(one: a) } }
        return ChangeTiming(began: began, finished: monotonicNanoseconds())
    }

    /// Sleeps until CLOCK_MONOTONIC reaches `deadline` (to within a scheduler tick).
    static func sleep(until deadline: UInt64) {
        while Interrupts.signal == 0 {
            let now = monotonicNanoseconds()
            guard now < deadline else { return }
            let left = deadline - now
            if left > 2_000_000 { usleep(UInt32(min(left - 1_000_000, 1_000_000_000) / 1000)) } else { sched_yield() }
        }
    }

    /// Makes the change. A second action with the same key (a trace's next row) replaces the first
    /// in the host's guard.
    func inject(one a: FaultAction, revertAfter: Double?) throws {
        switch a {
        case let .linkDown(l, _, _):
            try route(l.namespace).setDown(l.name)
        case let .profile(l, _, from, to):
            try setProfile(l, from: from, to: to)
        case let .partition(ns, destinations):
            let h = try route(ns)
            for d in destinations {
                do { try h.addBlackholeRule(to: Self.netlink(d), priority: FaultAction.partitionPriority) } catch {
                    if error.errno != EEXIST { throw error }
                }
            }
        }
        if let revertAfter { FaultGuard.shared.arm(a, after: revertAfter) }
    }

    /// Undoes the change; undoing what is already undone (or gone with its lab) does nothing.
    func revert(one a: FaultAction) throws {
        FaultGuard.shared.disarm(a)
        guard NetworkNamespace.list().contains(a.namespace) else { return }
        switch a {
        case let .linkDown(l, routes, reannounce):
            try FaultGuard.bringUp(l, routes: routes, handle: try route(l.namespace))
            if reannounce?.isEmpty == false {
                // The kernel turns a link that comes up on after its link watch runs (up to 1 s
                // later); until then it drops what is sent: a subflow's SYN sent earlier waits 1 s
                // for its retransmission.
                let h = try route(l.namespace)
                let deadline = monotonicNanoseconds() + 2_000_000_000
                while monotonicNanoseconds() < deadline, !((try? h.links().first { $0.name == l.name }?.isRunning) ?? false) ?? false { usleep(5_000) }
            }
            for e in reannounce ?? [] {
                let m = try mptcp(l.namespace)
                try m.deleteEndpoint(id: e.id)
                try m.addEndpoint(address: e.address.bytes, ifindex: try route(l.namespace).ifindex(l.name), id: e.id,
                                  flags: .init(names: e.flags.map(\.rawValue)), label: "\(e.address) dev \(l.name) id \(e.id)")
            }
        case let .profile(l, original, _, _):
            // Whatever is on the link now (a trace may have stopped between rows) is replaced.
            try setProfile(l, from: QdiscSpec(profile: "?"), to: original, replace: true)
        case let .partition(ns, destinations):
            let h = try route(ns)
            for d in destinations { try h.deleteBlackholeRule(to: Self.netlink(d), priority: FaultAction.partitionPriority) }
        }
    }
}
