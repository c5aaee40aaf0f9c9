import CShims
import Foundation
import Netlink
import Planning

/// Faults that must end by themselves: each armed fault has a deadline, after which this host
/// brings the link back up (and puts back its routes) without being asked. The agent also ends
/// every armed fault at once when its controller goes away. Reverting what is already reverted
/// does nothing. The guard knows only how to call `revert`, which its owner gives it.
///
/// A guard dies with its process: so each armed fault also gets a watchdog, a process of its own
/// in a session of its own (`pathbed fault-guard`), that reverts it at the same deadline unless it
/// is disarmed first: a fault outlives neither its run nor an agent killed with SIGKILL.
public final class FaultGuard: @unchecked Sendable {
    private let revert: @Sendable (FaultAction) throws -> Void
    private let watchdog: (@Sendable (FaultAction, UInt64) -> pid_t?)?

    public init(revert: @escaping @Sendable (FaultAction) throws -> Void, watchdog: (@Sendable (FaultAction, UInt64) -> pid_t?)? = nil) {
        self.revert = revert; self.watchdog = watchdog
    }

    struct Armed { var action: FaultAction; var deadline: UInt64; var watchdog: pid_t? }
    private var armed: [String: Armed] = [:]
    private let lock = NSLock()
    private var timer: Thread?

    /// Reverts `action` after `seconds` unless disarmed first. An action with the same key as an
    /// armed one (a trace's next row) takes its place; its revert is the same.
    public func arm(_ action: FaultAction, after seconds: Double) {
        let deadline = Self.deadline(after: seconds)
        let dog = watchdog?(action, deadline)
        lock.withLock {
            if let old = armed[action.key]?.watchdog { Self.stop(old) }
            armed[action.key] = Armed(action: action, deadline: deadline, watchdog: dog)
            if timer == nil {
                let t = Thread { [self] in watch() }
                timer = t
                t.start()
            }
        }
    }

    public func disarm(_ action: FaultAction) {
        if let dog = lock.withLock({ armed.removeValue(forKey: action.key)?.watchdog }) { Self.stop(dog) }
    }

    /// Ends a watchdog (its fault was reverted, or is being reverted here).
    static func stop(_ pid: pid_t) {
        kill(pid, SIGTERM)
        stoppedLock.withLock { stopped.append(pid) }
        reapStopped()
    }

    /// Watchdogs told to stop, until they are reaped (only these: this process's other children
    /// are reaped by whoever started them).
    nonisolated(unsafe) private static var stopped: [pid_t] = []
    private static let stoppedLock = NSLock()

    static func reapStopped() {
        stoppedLock.withLock {
            stopped.removeAll { pid in var status: Int32 = 0; return waitpid(pid, &status, WNOHANG) != 0 }
        }
    }

    public var armedActions: [FaultAction] { lock.withLock { armed.values.map(\.action) } }

    /// Ends every armed fault now; returns what could not be reverted.
    @discardableResult
    public func revertAll() -> [String] {
        let all = lock.withLock { () -> [Armed] in let a = Array(armed.values); armed.removeAll(); return a }
        for a in all { if let dog = a.watchdog { Self.stop(dog) } }
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
            for a in due {
                try? revert(a.action)
                if let dog = a.watchdog { Self.stop(dog) }
            }
            Self.reapStopped()
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

/// The watchdog of one armed fault: `pathbed fault-guard`, started in a session of its own, told
/// the fault and its deadline on stdin; it reverts the fault at the deadline unless it is ended
/// (SIGTERM) first. It outlives the process that armed it.
public enum FaultWatchdog {
    struct Order: Codable { var action: FaultAction; var deadline: UInt64 }

    /// Starts one; nil when it could not be started (the guard in process still reverts).
    public static func launch(_ action: FaultAction, deadline: UInt64) -> pid_t? {
        guard let order = try? JSONEncoder().encode(Order(action: action, deadline: deadline)) else { return nil }
        var p: [Int32] = [0, 0]
        // Close-on-exec from the start: a command forked on another thread meanwhile would keep
        // the write end open, and the watchdog, reading its order to the end, would wait forever.
        guard pb_pipe_cloexec(&p) == 0 else { return nil }
        let devnull = open("/dev/null", O_WRONLY | O_CLOEXEC)
        defer { if devnull >= 0 { Glibc.close(devnull) } }
        var environment = ProcessInfo.processInfo.environment
        environment[CommandRunner.tagVariable] = nil  // not a command's: no sweep ends it
        let pid = NetworkNamespace.spawnInGroup(-1, [HostAccess.selfPath, "fault-guard"], stdin: p[0], stdout: devnull, stderr: devnull, environment: environment)
        Glibc.close(p[0])
        defer { Glibc.close(p[1]) }
        guard pid > 0 else { return nil }
        let ok = order.withUnsafeBytes { write(p[1], $0.baseAddress, $0.count) == $0.count }
        if !ok { kill(pid, SIGKILL); return nil }
        return pid
    }

    /// The watchdog itself (`pathbed fault-guard`): reads its order, leaves its session, waits,
    /// reverts. Returns its exit status.
    public static func serve() -> Int32 {
        setsid()
        signal(SIGHUP, SIG_IGN)
        signal(SIGINT, SIG_IGN)
        guard let data = try? FileHandle.standardInput.readToEnd(), data.count < 1 << 20,
              let order = try? JSONDecoder().decode(Order.self, from: data) else { return 2 }
        sleepUntilMonotonic(order.deadline)
        do { try LocalExecutor(host: "guard").revert(one: order.action); return 0 } catch { return 1 }
    }
}
