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

    /// This change made again over `current` (another change of the same object, now in force):
    /// a profile change then starts from what `current` put there.
    public func replacing(from current: FaultAction) -> FaultAction {
        guard case let .profile(l, original, _, to) = self, case let .profile(_, _, _, there) = current else { return self }
        return .profile(link: l, original: original, from: there, to: to)
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
    public init(address: IPAddress, id: UInt8, flags: [MPTCPEndpoint.Flag]) { self.address = address; self.id = id; self.flags = flags }
}

