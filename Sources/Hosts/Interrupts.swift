import CShims
import Foundation

/// Ctrl-C, SIGTERM and SIGHUP during long work: the handler records the signal, the work polls
/// `signal` between steps, rolls back and reports it. No Swift code runs in the handler.
public enum Interrupts {
    public static func catchSignals() { pb_interrupts_catch() }
    public static func restoreDefaults() { pb_interrupts_default() }
    /// The signal received since `catchSignals()`, or 0.
    public static var signal: Int32 { pb_interrupted() }
}

/// Pathbed's own scheduling priority. A run's faults and samples must happen when planned also
/// on a host whose CPUs the lab saturates (an emulated VM, a busy machine): as root, the
/// controller and each agent (with the sshd that carries its requests) run at nice -10; the
/// programs they start (workloads, plugins) keep the nice value Pathbed was started with.
public enum Priority {
    public static let nice: Int32 = -10
    /// Raises it when the process may (root); false when it could not.
    @discardableResult
    public static func raise() -> Bool { geteuid() == 0 && pb_raise_priority(nice) == 0 }
}
