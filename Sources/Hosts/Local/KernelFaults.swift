import Foundation
import Netlink
import NetlinkTypes
import Planning
import TopologyModel

extension LocalExecutor {
    /// This process's guard of armed faults: each reverted by a connection of its own when its
    /// deadline passes, or all at once when the agent's controller goes away.
    public static let faultGuard = FaultGuard(revert: { action in try LocalExecutor(host: "guard").revert(one: action) },
                                              watchdog: { action, deadline in FaultWatchdog.launch(action, deadline: deadline) })

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
        // Changes are sent half a second ahead: one set for hours from now is not a run's.
        if let at {
            let now = monotonicNanoseconds()
            if at > now, at - now > 3_600_000_000_000 {
                throw LabError("a change set for \((at - now) / 1_000_000_000) s from now was refused (at most an hour ahead)", fix: "please report this: the controller sends changes 0.5 s ahead")
            }
        }
        // Faults change a lab's namespaces only (checked before the first change); undoing one in
        // a namespace that is gone is nothing to do.
        for a in actions where inject || NetworkNamespace.list().contains(a.namespace) { try requireOwned(a.namespace) }
        if let at {
            sleepUntilMonotonic(at, giveUp: stopWhen)
            // Interrupted while it waited (or its controller is gone): the change is not made.
            if Interrupts.signal != 0 { throw Interrupted(signal: Interrupts.signal) }
            if stopWhen() { throw Interrupted(signal: SIGTERM) }
        }
        let began = monotonicNanoseconds()
        for a in actions { if inject { try self.inject(one: a, revertAfter: revertAfter) } else { try revert(one: a) } }
        return ChangeTiming(began: began, finished: monotonicNanoseconds())
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
        if let revertAfter { Self.faultGuard.arm(a, after: revertAfter) }
    }

    /// Undoes the change; undoing what is already undone (or gone with its lab) does nothing.
    func revert(one a: FaultAction) throws {
        Self.faultGuard.disarm(a)
        guard NetworkNamespace.list().contains(a.namespace) else { return }
        switch a {
        case let .linkDown(l, routes, reannounce):
            try Self.bringUp(l, routes: routes, handle: try route(l.namespace))
            if reannounce?.isEmpty == false {
                // The kernel turns a link that comes up on after its link watch runs (up to 1 s
                // later); until then it drops what is sent: a subflow's SYN sent earlier waits 1 s
                // for its retransmission.
                let h = try route(l.namespace)
                let deadline = monotonicNanoseconds() + 2_000_000_000
                while monotonicNanoseconds() < deadline, !((try? h.links().first { $0.name == l.name }?.isRunning) ?? false) { usleep(5_000) }
            }
            // Newer kernels re-open subflows over a link that returns by themselves (Linux 6.18:
            // within 20 ms); deleting the endpoint then closed them, and adding it back did not
            // open them again. An endpoint is announced again only where no subflow is back on
            // its address within 300 ms.
            var back = Set<String>()
            if reannounce?.isEmpty == false, let fd = try? NetworkNamespace.open(l.namespace) {
                defer { Glibc.close(fd) }
                let addresses = Set((reannounce ?? []).map { "\($0.address)" })
                let deadline = monotonicNanoseconds() + 300_000_000
                while monotonicNanoseconds() < deadline, back.count < addresses.count {
                    back = Set((SocketDiag(nsfd: fd)?.established(namespace: l.namespace, devices: [:]) ?? []).filter { $0.token != nil }.map(\.local)).intersection(addresses)
                    if back.count < addresses.count { usleep(20_000) }
                }
            }
            for e in reannounce ?? [] where !back.contains("\(e.address)") {
                let m = try mptcp(l.namespace)
                try m.deleteEndpoint(id: e.id)
                try m.addEndpoint(address: e.address.bytes, ifindex: try route(l.namespace).ifindex(l.name), id: e.id,
                                  flags: .init(names: e.flags.map(\.rawValue)), label: "\(e.address) dev \(l.name) id \(e.id)")
            }
        case let .profile(l, original, _, _):
            // Whatever is on the link now (a trace may have stopped between rows) is replaced.
            try setProfile(l, from: nil, to: original, replace: true)
        case let .partition(ns, destinations):
            let h = try route(ns)
            for d in destinations { try h.deleteBlackholeRule(to: Self.netlink(d), priority: FaultAction.partitionPriority) }
        }
    }

    /// Sets the link up and adds its routes back (those still there are left as they are).
    static func bringUp(_ link: InterfaceRef, routes: [RouteSpec], handle h: RouteHandle) throws {
        try h.setUp(link.name)
        for r in routes {
            do { try h.addRoute(LocalExecutor.netlink(r)) } catch {
                if error.errno == EEXIST { continue }
                // A gateway that a partition's blackhole rule covers cannot be looked up: the route
                // goes back on its link without the lookup (it was on that link, the plan says).
                guard error.errno == EINVAL, r.via != nil else { throw error }
                var onlink = LocalExecutor.netlink(r)
                onlink.device = r.device ?? link.name
                onlink.onlink = true
                do { try h.addRoute(onlink) } catch { if error.errno != EEXIST { throw error } }
            }
        }
    }
}
