import Foundation
import Netlink
import TopologyModel

/// One change a fault makes to one host's kernel, and what undoes it. Every built-in fault is
/// made of these: the controller sends them to the host that holds the object, and the host
/// keeps a revert deadline for each (`FaultGuard`), so that no fault outlives its run.
public enum FaultAction: Codable, Hashable, Sendable, CustomStringConvertible {
    /// A link end down; `routes` are those the kernel flushes with it, put back when it returns.
    case linkDown(link: InterfaceRef, routes: [RouteSpec])
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
        case let .linkDown(l, _): return "link \(l)"
        case let .profile(l, _, _, _): return "profile \(l)"
        case let .partition(ns, d): return "partition \(ns) \(d.map(\.description).joined(separator: ","))"
        }
    }

    public var namespace: String {
        switch self {
        case let .linkDown(l, _), let .profile(l, _, _, _): return l.namespace
        case let .partition(ns, _): return ns
        }
    }

    public var description: String {
        switch self {
        case let .linkDown(l, _): return "\(l) down"
        case let .profile(l, _, _, to): return "\(l) shaped as \(to?.profile ?? "no profile")"
        case let .partition(ns, d): return "\(ns) cut off from \(d.map(\.description).joined(separator: ", "))"
        }
    }
}

extension LocalExecutor {
    /// Makes the change. A second action with the same key (a trace's next row) replaces the first
    /// in the host's guard, keeping the first one's deadline unless `revertAfter` is given.
    public func inject(_ a: FaultAction, revertAfter: Double?) throws {
        switch a {
        case let .linkDown(l, _):
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
    public func revert(_ a: FaultAction) throws {
        FaultGuard.shared.disarm(a)
        guard NetworkNamespace.list().contains(a.namespace) else { return }
        switch a {
        case let .linkDown(l, routes):
            try FaultGuard.bringUp(l, routes: routes, handle: try route(l.namespace))
        case let .profile(l, original, _, _):
            // Whatever is on the link now (a trace may have stopped between rows) is replaced.
            try setProfile(l, from: QdiscSpec(profile: "?"), to: original, replace: true)
        case let .partition(ns, destinations):
            let h = try route(ns)
            for d in destinations { try h.deleteBlackholeRule(to: Self.netlink(d), priority: FaultAction.partitionPriority) }
        }
    }
}
