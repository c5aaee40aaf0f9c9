import Foundation
import Planning
import TopologyModel

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
    public init(name: String, kind: String, isUp: Bool, mtu: UInt32, group: UInt32, shaping: String) {
        self.name = name; self.kind = kind; self.isUp = isUp; self.mtu = mtu; self.group = group; self.shaping = shaping
    }
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
    public init(hostname: String, kernel: String, clockNanoseconds: UInt64, version: String) {
        self.hostname = hostname; self.kernel = kernel; self.clockNanoseconds = clockNanoseconds; self.version = version
    }
    public static func here() -> HostInfo {
        var u = utsname()
        uname(&u)
        func text<T>(_ field: T) -> String {
            withUnsafeBytes(of: field) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
        }
        return HostInfo(hostname: text(u.nodename), kernel: text(u.release), clockNanoseconds: monotonicNanoseconds(), version: pathbedVersion)
    }
}

/// CLOCK_MONOTONIC in nanoseconds.
public func monotonicNanoseconds() -> UInt64 {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return UInt64(ts.tv_sec) * 1_000_000_000 + UInt64(ts.tv_nsec)
}

/// Sleeps until CLOCK_MONOTONIC reaches `deadline` (to within a scheduler tick), a signal
/// arrives, or `giveUp` says true (asked at least every 100 ms).
public func sleepUntilMonotonic(_ deadline: UInt64, giveUp: () -> Bool = { false }) {
    while Interrupts.signal == 0, !giveUp() {
        let now = monotonicNanoseconds()
        guard now < deadline else { return }
        let left = deadline - now
        if left > 2_000_000 { usleep(UInt32(min(left - 1_000_000, 100_000_000) / 1000)) } else { sched_yield() }
    }
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
    public init() {}
}

/// A tunnel (gretap or vxlan) already on a host: its device and the namespace it is in (nil: the host's own).
public struct TunnelUse: Sendable, Hashable, Codable, CustomStringConvertible {
    public var device: String
    public var namespace: String?
    public init(device: String, namespace: String?) { self.device = device; self.namespace = namespace }
    public var description: String { "\(device) in \(namespace ?? "the host's namespace")" }
}

/// Where a lab's operations run: this machine through netlink, a remote host through the agent,
/// or a recording fake in tests. Everything `up`, `down`, `status`, reconcile and runs do to a
/// host goes through one of these, one per host, and no caller ever asks which kind it has.
public protocol HostExecutor: AnyObject {
    /// The host's name in the topology.
    var host: String { get }

    // The connection.
    /// Opens the connection (an agent's handshake); a no-op where there is nothing to open.
    /// Requests open it by themselves; this opens it early, or reports why it cannot.
    func connect() throws
    /// Ends the connection and what runs through it.
    func close()
    /// The host as it answered the connection's handshake (nil: this machine, or not connected).
    var connectedInfo: HostInfo? { get }
    /// The host's monotonic clock minus this machine's, in nanoseconds (0 for this machine).
    var clockOffsetNanoseconds: Int64 { get }
    /// How well that offset is known: half the quickest round trip to the host (0 for this machine).
    var clockUncertaintyNanoseconds: UInt64 { get }
    /// A second connection to the same host, for work that runs beside this one (samplers,
    /// workloads, plugins); `stop` ends what runs through it when it says true.
    func sideConnection(stop: @escaping @Sendable () -> Bool) -> HostExecutor

    /// What this host's kernel and tools support, tried for real; `sysctls` are keys the lab will write.
    func capabilities(sysctls: [String]) -> Capabilities
    /// Applies operations in order; before each, asks `interrupted` and stops with `Interrupted`
    /// when it returns a signal. `progress` gets the count done so far.
    func apply(_ operations: [LabOperation], progress: (Int) -> Void, interrupted: () -> Int32) throws
    /// Removes what this executor's `apply` calls created, newest first; returns what could not be removed.
    func rollBack() -> [String]
    /// Every network namespace on this host, by name.
    func namespaceNames() throws -> [String]
    /// The namespaces on this host named like `lab`'s, and whether each carries its tag.
    func namespaces(of lab: String) throws -> [NamespaceState]
    /// Interfaces of one of the lab's namespaces, with their shaping.
    func interfaces(in namespace: String) throws -> [InterfaceState]
    /// Stops processes in the lab's tagged namespaces and removes them. Untagged ones are reported, not touched.
    func removeLab(_ lab: String, waitForKernel: Bool) -> RemovalReport
    /// Stops every process in the lab's tagged namespaces (what a killed run left running) but
    /// those in `sparing`; returns how many.
    func stopProcesses(inLab lab: String, sparing: [Int32]) throws -> Int
    /// The processes in the lab's tagged namespaces now (a run keeping its lab spares these).
    func processes(inLab lab: String) throws -> [Int32]

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
    func restoreMTUs(_ changes: [MTUChange], lab: String) -> [String]
    /// The underlays the host's own MTU records say `lab` holds raised (for a `down` without
    /// the journal that listed them: the controller's /run is cleared at its boot, the host's is not).
    /// Only the underlays `underlays` names: an interface, or the address one holds.
    func heldMTUs(lab: String, underlays: [String]) throws -> [MTUChange]
    /// Runs a command in a namespace (nil: the host's own) to its end, streaming its output;
    /// returns its exit code (124 after `timeout` seconds, 127 when not found). When `stop` says
    /// true (asked every 100 ms), its process group is ended: SIGTERM, then SIGKILL.
    func run(_ argv: [String], in namespace: String?, timeout: Double?, input: StdinFeed?, stop: @escaping () -> Bool,
             output: @escaping (StandardStream, Data) -> Void) throws -> Int32
    /// Runs a command for a person at a terminal (`pathbed exec`): on this machine it gets the
    /// terminal itself; elsewhere its output is streamed to this process's stdout and stderr.
    func runAttached(_ argv: [String], in namespace: String) throws -> Int32
    /// Gretap tunnel keys in use on this host (any namespace), with the device that uses each.
    func tunnelKeys() throws -> [TunnelID: TunnelUse]

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
    /// `sockets`: the namespaces whose established TCP sockets each round also reads (the
    /// workloads' nodes; an empty list reads none).
    func sampleCounters(_ namespaces: [String], sockets: [String], interval: Double, duration: Double, stop: @escaping () -> Bool, onSample: @escaping (CounterSample) -> Void) throws
}

/// When a host began and finished a change, on the controller's CLOCK_MONOTONIC (nanoseconds).
public struct ChangeTiming: Sendable, Codable, Equatable {
    public var began: UInt64
    public var finished: UInt64
    public init(began: UInt64, finished: UInt64) { self.began = began; self.finished = finished }
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
    /// About once a second: the host's CPU, the sampler's own, and the shaped queues.
    public var health: HealthSample?
    /// Every established TCP socket of the namespaces (MPTCP subflows among them).
    public var sockets: [SocketReading]?
    public init(clock: UInt64, counters: [InterfaceCounters], health: HealthSample? = nil, sockets: [SocketReading]? = nil) {
        self.clock = clock; self.counters = counters; self.health = health; self.sockets = sockets
    }
}

/// One established TCP socket as the kernel's INET_DIAG gives it (TCP_INFO; an MPTCP
/// subflow's connection token from its ULP info), as `ss -ti` reads it; or one MPTCP
/// connection (MPTCP_INFO, `subflows` set), as `ss -Mi` reads it.
public struct SocketReading: Sendable, Codable, Hashable {
    public var namespace: String
    /// Addresses as text (an IPv4-mapped IPv6 address as IPv4), ports.
    public var local: String
    public var localPort: Int
    public var remote: String
    public var remotePort: Int
    /// The device it is bound to, if any.
    public var device: String?
    /// An MPTCP subflow's connection token on this end.
    public var token: UInt32?
    public var cwnd: UInt32
    public var srttMicroseconds: UInt32
    public var retransmits: UInt32
    public var bytesAcked: UInt64
    public var bytesReceived: UInt64
    /// Set for an MPTCP connection (MPTCP_INFO), not a TCP socket: its subflows now. Its token
    /// is its own (the one its subflows carry), its bytes the data level's.
    public var subflows: Int?
    /// For a connection: true where the kernel counts its bytes (6.2 and later), false where
    /// they are its data sequence numbers (snd_una, rcv_nxt: their differences are bytes).
    public var byteCounters: Bool?
    public init(namespace: String, local: String, localPort: Int, remote: String, remotePort: Int, device: String?, token: UInt32?,
                cwnd: UInt32, srttMicroseconds: UInt32, retransmits: UInt32, bytesAcked: UInt64, bytesReceived: UInt64) {
        self.namespace = namespace; self.local = local; self.localPort = localPort; self.remote = remote; self.remotePort = remotePort
        self.device = device; self.token = token; self.cwnd = cwnd; self.srttMicroseconds = srttMicroseconds; self.retransmits = retransmits
        self.bytesAcked = bytesAcked; self.bytesReceived = bytesReceived
    }
}

/// What a host's kernel says of its load, cumulative since boot (differences make rates).
public struct HealthSample: Sendable, Codable, Hashable {
    /// `/proc/stat`'s first line, in ticks: user, nice, system, idle, iowait, irq, softirq, steal.
    public var cpu: [UInt64]
    public var cpus: Int
    /// This process's CPU (user and system, all threads), in ticks.
    public var ownTicks: UInt64
    public var ticksPerSecond: UInt64
    /// Each shaped interface's root qdisc.
    public var qdiscs: [QdiscCounters]
    /// What the host runs under: `none`, `KVM`, `software emulation` (QEMU's TCG), `a hypervisor`.
    public var virtualization: String
    public init(cpu: [UInt64], cpus: Int, ownTicks: UInt64, ticksPerSecond: UInt64, qdiscs: [QdiscCounters], virtualization: String = "unknown") {
        self.cpu = cpu; self.cpus = cpus; self.ownTicks = ownTicks; self.ticksPerSecond = ticksPerSecond; self.qdiscs = qdiscs
        self.virtualization = virtualization
    }
}

public struct QdiscCounters: Sendable, Codable, Hashable {
    public var namespace: String
    public var interface: String
    public var kind: String
    public var drops: UInt64
    public var overlimits: UInt64
    public var backlogBytes: UInt64
    public var backlogPackets: UInt64
    public init(namespace: String, interface: String, kind: String, drops: UInt64, overlimits: UInt64, backlogBytes: UInt64, backlogPackets: UInt64) {
        self.namespace = namespace; self.interface = interface; self.kind = kind; self.drops = drops; self.overlimits = overlimits
        self.backlogBytes = backlogBytes; self.backlogPackets = backlogPackets
    }
}

public struct InterfaceCounters: Sendable, Codable, Hashable {
    public var namespace: String
    public var interface: String
    public var rxBytes: UInt64
    public var txBytes: UInt64
    public init(namespace: String, interface: String, rxBytes: UInt64, txBytes: UInt64) {
        self.namespace = namespace; self.interface = interface; self.rxBytes = rxBytes; self.txBytes = txBytes
    }
}

extension HostExecutor {
    /// Runs a command with its stdin on /dev/null.
    public func run(_ argv: [String], in namespace: String?, timeout: Double?, output: @escaping (StandardStream, Data) -> Void) throws -> Int32 {
        try run(argv, in: namespace, timeout: timeout, input: nil, stop: { false }, output: output)
    }

    /// Runs a command with a stdin that `input` fills.
    public func run(_ argv: [String], in namespace: String?, timeout: Double?, input: StdinFeed?, output: @escaping (StandardStream, Data) -> Void) throws -> Int32 {
        try run(argv, in: namespace, timeout: timeout, input: input, stop: { false }, output: output)
    }

    public func apply(_ operations: [LabOperation]) throws { try apply(operations, progress: { _ in }, interrupted: { 0 }) }
}

public enum HostConnections {
    /// Opens the connections of several hosts at once (ssh handshakes and agent starts overlap);
    /// a failure is kept and reported by that host's first request.
    public static func connectAll(_ executors: [HostExecutor]) {
        guard executors.count > 1 else { return }
        let box = ExecutorList(executors)
        DispatchQueue.concurrentPerform(iterations: executors.count) { i in try? box.items[i].connect() }
    }
}

/// Executors handed to the threads of `concurrentPerform`, each used by one thread.
final class ExecutorList: @unchecked Sendable {
    let items: [HostExecutor]
    init(_ items: [HostExecutor]) { self.items = items }
}

extension HostExecutor {
    /// Stops every process in the lab's tagged namespaces.
    public func stopProcesses(inLab lab: String) throws -> Int { try stopProcesses(inLab: lab, sparing: []) }
}
