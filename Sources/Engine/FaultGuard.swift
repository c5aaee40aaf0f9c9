import Foundation
import Netlink

/// Faults that must end by themselves: each armed fault has a deadline, after which this host
/// brings the link back up (and puts back its routes) without being asked. The agent also ends
/// every armed fault at once when its controller goes away. Reverting what is already reverted
/// does nothing.
public final class FaultGuard: @unchecked Sendable {
    public static let shared = FaultGuard()

    struct Armed { var routes: [RouteSpec]; var deadline: UInt64 }
    private var armed: [InterfaceRef: Armed] = [:]
    private let lock = NSLock()
    private var timer: Thread?

    public func arm(_ link: InterfaceRef, routes: [RouteSpec], after seconds: Double) {
        lock.withLock {
            armed[link] = Armed(routes: routes, deadline: monotonicNanoseconds() + UInt64(max(seconds, 0) * 1e9))
            if timer == nil {
                let t = Thread { [self] in watch() }
                timer = t
                t.start()
            }
        }
    }

    public func disarm(_ link: InterfaceRef) { lock.withLock { _ = armed.removeValue(forKey: link) } }

    public var armedLinks: [InterfaceRef] { lock.withLock { Array(armed.keys) } }

    /// Ends every armed fault now; returns what could not be reverted.
    @discardableResult
    public func revertAll() -> [String] {
        let all = lock.withLock { () -> [InterfaceRef: Armed] in let a = armed; armed.removeAll(); return a }
        return all.compactMap { link, a in
            do { try Self.bringUp(link, routes: a.routes, handle: nil); return nil } catch { return "\(link): \(error)" }
        }
    }

    private func watch() {
        while true {
            let due: [(InterfaceRef, Armed)] = lock.withLock {
                let now = monotonicNanoseconds()
                let d = armed.filter { $0.value.deadline <= now }
                for k in d.keys { armed[k] = nil }
                return d.map { ($0.key, $0.value) }
            }
            for (link, a) in due { try? Self.bringUp(link, routes: a.routes, handle: nil) }
            usleep(20_000)
        }
    }

    /// Sets the link up and adds its routes back (those still there are left as they are).
    static func bringUp(_ link: InterfaceRef, routes: [RouteSpec], handle: RouteHandle?) throws {
        if let handle { return try bringUp(link, routes: routes, with: handle) }
        let fd = try NetworkNamespace.open(link.namespace)
        defer { close(fd) }
        try bringUp(link, routes: routes, with: try RouteHandle(nsfd: fd, namespace: link.namespace))
    }

    private static func bringUp(_ link: InterfaceRef, routes: [RouteSpec], with h: RouteHandle) throws {
        try h.setUp(link.name)
        for r in routes {
            do { try h.addRoute(LocalExecutor.netlink(r)) } catch {
                if error.errno != EEXIST { throw error }
            }
        }
    }
}
