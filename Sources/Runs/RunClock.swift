import Foundation
import Hosts

/// The run's clock: seconds since the barrier, on this machine's CLOCK_MONOTONIC; a host's
/// timestamps are moved onto it with that host's offset.
final class RunClock: @unchecked Sendable {
    private var zero: UInt64 = monotonicNanoseconds()
    private let lock = NSLock()
    func start() { lock.withLock { zero = monotonicNanoseconds() } }
    var now: Double { Double(Int64(bitPattern: monotonicNanoseconds() &- lock.withLock { zero })) / 1e9 }
    /// Run seconds as this machine's CLOCK_MONOTONIC, nanoseconds.
    func nanoseconds(_ seconds: Double) -> UInt64 {
        // Run seconds are bounded by validation; the clamp keeps any other value from trapping.
        let ns = seconds.isFinite ? Int64(max(min(seconds * 1e9, 9e18), -9e18)) : 0
        return UInt64(bitPattern: Int64(bitPattern: lock.withLock { zero }) &+ ns)
    }
    /// A host's clock reading on the run's clock (wrapping arithmetic: a host's reading is data).
    func seconds(hostClock: UInt64, offset: Int64) -> Double {
        Double(Int64(bitPattern: hostClock) &- offset &- Int64(bitPattern: lock.withLock { zero })) / 1e9
    }
}

/// A value handed to one other thread, which alone uses it from then on.
struct Unchecked<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}

final class StopFlag: @unchecked Sendable {
    private var value = false
    private let lock = NSLock()
    private let parent: StopFlag?
    /// Set when this one is set, or its parent is.
    init(parent: StopFlag? = nil) { self.parent = parent }
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } || Interrupts.signal != 0 || (parent?.isSet ?? false) }
}


/// Opens side connections one after another: each starts an agent on its host, and in an
/// emulated VM two starting at once each said nothing for over 20 s (the controller's silence
/// limit), where one at a time each answers in seconds.
func connectInTurn(_ connections: [Unchecked<HostExecutor>]) {
    for c in connections { try? c.value.connect() }
}
