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
/// on a machine its lab keeps busy: as root, the controller runs at nice -10, the programs it
/// starts (workloads, plugins) at the nice value it was started with. Not where this machine
/// emulates VMs (their CPUs are the lab's), and not in agents: in an emulated VM an agent above
/// the lab's programs cut TCP over WLAN from 15.8-18.8 to 14.3 Mbit/s in the VM test, twice, and
/// kept no fault more punctual.
public enum Priority {
    public static let nice: Int32 = -10
    /// Raises it when the process may (root); false when it could not.
    @discardableResult
    public static func raise() -> Bool { geteuid() == 0 && pb_raise_priority(nice) == 0 }

    /// For a controller: raised unless this machine emulates local VMs, whose emulated CPUs are
    /// the lab's (a controller above them would take their time; their agents are raised inside).
    @discardableResult
    public static func raiseForController() -> Bool { LocalVMs().load() == nil && raise() }
}
