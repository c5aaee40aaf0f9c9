import Foundation
import Netlink
import TopologyModel

/// Why `up`, `down` or `exec` refused or failed, and what to do.
public struct LabError: Error, CustomStringConvertible, Sendable {
    public var message: String
    public var fix: String?
    public init(_ message: String, fix: String? = nil) { self.message = message; self.fix = fix }
    public var description: String { "error: \(message)" + (fix.map { "\n    fix: \($0)" } ?? "") }
}

/// `up` stopped because of a signal (Ctrl-C, SIGTERM, SIGHUP).
public struct Interrupted: Error, CustomStringConvertible, Sendable {
    public var signal: Int32
    public var description: String { "interrupted by \(signal == SIGINT ? "SIGINT (Ctrl-C)" : signal == SIGTERM ? "SIGTERM" : signal == SIGHUP ? "SIGHUP" : "signal \(signal)")" }
}

/// One of a lab's namespaces as a host sees it.
public struct NamespaceState: Sendable, Hashable, Codable {
    public var name: String
    /// True when its loopback carries the lab's tag; false for a namespace named like the lab's that the lab did not make.
    public var tagged: Bool
    /// A name with no namespace bound to it (a creation killed midway): no kernel object, removed by `down`.
    public var placeholder = false
    public init(name: String, tagged: Bool, placeholder: Bool = false) { self.name = name; self.tagged = tagged; self.placeholder = placeholder }
}

/// One interface of a lab as the kernel reports it.
public struct InterfaceState: Sendable, Hashable, Codable {
    public var name: String
    public var kind: String
    public var isUp: Bool
    public var mtu: UInt32
    public var group: UInt32
    /// Root qdisc kind and its parameters, e.g. `tbf 20mbit`, `htb 20mbit / netem 10ms`.
    public var shaping: String
}

/// A host interface whose MTU a lab changed, and the MTU it had before (restored by `down`).
public struct MTUChange: Sendable, Hashable, Codable {
    public var interface: String
    public var mtu: UInt32
    public init(interface: String, mtu: UInt32) { self.interface = interface; self.mtu = mtu }
}

/// What a host is: its kernel, and its monotonic clock when asked (the agent's handshake).
public struct HostInfo: Sendable, Codable {
    public var hostname: String
    public var kernel: String
    /// CLOCK_MONOTONIC of the host, in nanoseconds, when it answered.
    public var clockNanoseconds: UInt64
    /// The Pathbed version running there.
    public var version: String
    public static func here() -> HostInfo {
        var u = utsname()
        uname(&u)
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return HostInfo(hostname: text(u.nodename), kernel: text(u.release), clockNanoseconds: monotonicNanoseconds(), version: pathbedVersion)
    }
}

/// This build's version, the same on every host of a lab (the agent's handshake compares it).
public let pathbedVersion = "0.3.0"

/// CLOCK_MONOTONIC in nanoseconds.
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// What removing a lab did on one host.
public struct RemovalReport: Sendable, Codable {
    public var removed: [String] = []
    /// Named like the lab's, but not tagged as its own: left alone.
    public var foreign: [String] = []
    public var failures: [String] = []
    public var stoppedProcesses = 0
    /// Seconds until the kernel had freed the removed namespaces' devices (measured when asked to wait).
    public var kernelFreeSeconds: Double?
}

/// Where a lab's operations run: this machine through netlink, a remote host through the agent,
/// or a recording fake in tests. Everything `up`, `down`, `status` and reconcile do to a kernel
/// goes through one of these, one per host.
public protocol HostExecutor: AnyObject {
    /// The host's name in the topology.
    var host: String { get }
    /// What this host's kernel and tools support, tried for real; `sysctls` are keys the lab will write.
    func capabilities(sysctls: [String]) -> Capabilities
    /// Applies operations in order; before each, asks `interrupted` and stops with `Interrupted`
    /// when it returns a signal. `progress` gets the count done so far.
    func apply(_ operations: [Operation], progress: (Int) -> Void, interrupted: () -> Int32) throws
    /// Removes what this executor's `apply` calls created, newest first; returns what could not be removed.
    func rollBack() -> [String]
    /// The namespaces on this host named like `lab`'s, and whether each carries its tag.
    func namespaces(of lab: String) throws -> [NamespaceState]
    /// Interfaces of one of the lab's namespaces, with their shaping.
    func interfaces(in namespace: String) throws -> [InterfaceState]
    /// Stops processes in the lab's tagged namespaces and removes them. Untagged ones are reported, not touched.
    func removeLab(_ lab: String, waitForKernel: Bool) -> RemovalReport

    // Changes to a running lab (reconcile; faults later).
    /// Removes namespaces of the lab (their devices go with them).
    func removeNamespaces(_ names: [String]) throws
    /// Deletes one link the lab made (a veth's peer goes with it).
    func deleteLink(_ link: InterfaceRef) throws
    /// Changes an interface's shaping in place: `change` for the same qdisc kinds, an atomic
    /// `replace` for new kinds, a delete for none. Traffic is never left unshaped in between.
    func setProfile(_ link: InterfaceRef, from old: QdiscSpec?, to new: QdiscSpec?) throws

    // The host itself.
    /// Its kernel, name and clock.
    func info() throws -> HostInfo
    /// Host interfaces whose MTU `apply` changed, with the MTU each had (kept in the journal).
    var changedMTUs: [MTUChange] { get }
    /// Puts host interfaces back to the MTUs they had; returns what could not be restored.
    func restoreMTUs(_ changes: [MTUChange]) -> [String]
    /// Runs a command in a namespace (nil: the host's own) to its end, streaming its output;
    /// returns its exit code (124 after `timeout` seconds, 127 when not found).
    func run(_ argv: [String], in namespace: String?, timeout: Double?, input: StdinFeed?, output: @escaping (OutputStream, Data) -> Void) throws -> Int32
    /// Gretap tunnel keys in use on this host (any namespace), by the device that uses each.
    func tunnelKeys() throws -> [UInt32: String]

    // Faults and measurements (runs).
    /// Makes (`inject`) or undoes fault changes, all at `at` (the controller's CLOCK_MONOTONIC in
    /// nanoseconds; nil: now): the host waits for that moment itself, so that the time a request
    /// takes to reach it does not move the change. With `revertAfter`, the host reverts each change
    /// that many seconds after making it, and also when its controller goes away: a fault never
    /// outlives its run. Undoing what is already undone is no error. Returns when the host began
    /// and finished, on the controller's clock.
    func change(_ actions: [FaultAction], inject: Bool, at: UInt64?, revertAfter: Double?) throws -> ChangeTiming
    /// Samples the byte counters of every interface of `namespaces` every `interval` seconds for
    /// `duration` seconds (or until the run stops it), handing each round to `onSample`.
    func sampleCounters(_ namespaces: [String], interval: Double, duration: Double, stop: @escaping () -> Bool, onSample: @escaping (CounterSample) -> Void) throws
}

/// When a host began and finished a change, on the controller's CLOCK_MONOTONIC (nanoseconds).
public struct ChangeTiming: Sendable, Codable, Equatable {
    public var began: UInt64
    public var finished: UInt64
}

extension HostExecutor {
    /// Makes one fault change now.
    public func inject(_ action: FaultAction, revertAfter: Double?) throws { _ = try change([action], inject: true, at: nil, revertAfter: revertAfter) }
    /// Undoes one fault change now.
    public func revert(_ action: FaultAction) throws { _ = try change([action], inject: false, at: nil, revertAfter: nil) }
}

/// One round of interface byte counters on one host.
public struct CounterSample: Sendable, Codable {
    /// The host's CLOCK_MONOTONIC, nanoseconds.
    public var clock: UInt64
    public var counters: [InterfaceCounters]
}

public struct InterfaceCounters: Sendable, Codable, Hashable {
    public var namespace: String
    public var interface: String
    public var rxBytes: UInt64
    public var txBytes: UInt64
}

extension HostExecutor {
    /// Runs a command with its stdin on /dev/null.
    public func run(_ argv: [String], in namespace: String?, timeout: Double?, output: @escaping (OutputStream, Data) -> Void) throws -> Int32 {
        try run(argv, in: namespace, timeout: timeout, input: nil, output: output)
    }

    public func apply(_ operations: [Operation]) throws { try apply(operations, progress: { _ in }, interrupted: { 0 }) }
}
