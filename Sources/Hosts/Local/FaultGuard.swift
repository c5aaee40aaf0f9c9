import Foundation
import Planning

/// Faults that must end by themselves: each armed fault has a deadline, after which this host
/// brings the link back up (and puts back its routes) without being asked. The agent also ends
/// every armed fault at once when its controller goes away. Reverting what is already reverted
/// does nothing. The guard knows only how to call `revert`, which its owner gives it.
public final class FaultGuard: @unchecked Sendable {
    private let revert: @Sendable (FaultAction) throws -> Void

    public init(revert: @escaping @Sendable (FaultAction) throws -> Void) { self.revert = revert }

    struct Armed { var action: FaultAction; var deadline: UInt64 }
    private var armed: [String: Armed] = [:]
    private let lock = NSLock()
    private var timer: Thread?

    /// Reverts `action` after `seconds` unless disarmed first. An action with the same key as an
    /// armed one (a trace's next row) takes its place; its revert is the same.
    public func arm(_ action: FaultAction, after seconds: Double) {
        lock.withLock {
            armed[action.key] = Armed(action: action, deadline: Self.deadline(after: seconds))
            if timer == nil {
                let t = Thread { [self] in watch() }
                timer = t
                t.start()
            }
        }
    }

    public func disarm(_ action: FaultAction) { lock.withLock { _ = armed.removeValue(forKey: action.key) } }

    public var armedActions: [FaultAction] { lock.withLock { armed.values.map(\.action) } }

    /// Ends every armed fault now; returns what could not be reverted.
    @discardableResult
    public func revertAll() -> [String] {
        let all = lock.withLock { () -> [Armed] in let a = Array(armed.values); armed.removeAll(); return a }
        return all.compactMap { a in
            do { try revert(a.action); return nil } catch { return "\(a.action): \(error)" }
        }
    }

    private func watch() {
        while true {
            let due: [Armed] = lock.withLock {
                let now = monotonicNanoseconds()
                let d = armed.filter { $0.value.deadline <= now }
                for k in d.keys { armed[k] = nil }
                return Array(d.values)
            }
            for a in due { try? revert(a.action) }
            usleep(20_000)
        }
    }

    /// CLOCK_MONOTONIC `seconds` from now, for any number of seconds (a deadline past the clock's
    /// range is never reached; a negative or non-finite one is now).
    static func deadline(after seconds: Double) -> UInt64 {
        let now = monotonicNanoseconds()
        guard seconds.isFinite, seconds > 0 else { return now }
        let nanoseconds = seconds * 1e9
        return nanoseconds >= Double(UInt64.max - now) ? UInt64.max : now + UInt64(nanoseconds)
    }
}
