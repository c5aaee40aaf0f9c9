import CShims

/// Ctrl-C, SIGTERM and SIGHUP during long work: the handler records the signal, the work polls
/// `signal` between steps, rolls back and reports it. No Swift code runs in the handler.
public enum Interrupts {
    public static func catchSignals() { pb_interrupts_catch() }
    public static func restoreDefaults() { pb_interrupts_default() }
    /// The signal received since `catchSignals()`, or 0.
    public static var signal: Int32 { pb_interrupted() }
}
