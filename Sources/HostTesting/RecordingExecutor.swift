import Foundation
import Hosts
import Planning
import TopologyModel

/// A host executor that keeps a model of the kernel in memory: it records every operation,
/// tracks the namespaces it "created", and can be told to fail at a given operation. Unit tests
/// drive `up`, `down`, rollback and reconcile through it without root.
public final class RecordingExecutor: HostExecutor {
    public let host: String
    /// Every operation applied, in order (rolled-back ones included).
    public private(set) var applied: [LabOperation] = []
    /// Namespaces as the fake kernel holds them, with their tag (nil: untagged).
    public var kernelNamespaces: [String: String?] = [:]
    /// The qdisc of each interface as the fake kernel holds it.
    public private(set) var qdiscs: [InterfaceRef: QdiscSpec] = [:]
    /// Qdisc changes made in place (reconcile), in order.
    public private(set) var qdiscChanges: [(InterfaceRef, QdiscSpec?)] = []
    public private(set) var removed: [String] = []
    /// Fail the operation with this index (counted over all `apply` calls) with this error.
    public var failAt: Int?
    public var capabilitiesToReport = Capabilities(checks: [])
    private var createdHere: [String] = []

    public init(host: String = "local") { self.host = host }

    // MARK: The connection: nothing to open

    /// When set, the fake host cannot be reached: `connect` throws it.
    public var unreachable: LabError?
    public func connect() throws { if let unreachable { throw unreachable } }
    public func close() {}
    public var connectedInfo: HostInfo? { nil }
    public var clockOffsetNanoseconds: Int64 = 0
    public var clockUncertaintyNanoseconds: UInt64 { 0 }
    /// The same fake: a side connection sees the same fake kernel.
    public func sideConnection(stop: @escaping @Sendable () -> Bool) -> HostExecutor { self }
    public func namespaceNames() -> [String] { kernelNamespaces.keys.sorted() }
    public func runAttached(_ argv: [String], in namespace: String) throws -> Int32 {
        try run(argv, in: namespace, timeout: nil, input: nil) { _, _ in }
    }

    public struct InjectedFailure: Error, CustomStringConvertible {
        public var operation: LabOperation
        public var description: String { "injected failure at: \(operation.command)" }
    }

    public func capabilities(sysctls: [String]) -> Capabilities { capabilitiesToReport }

    public func apply(_ operations: [LabOperation], progress: (Int) -> Void, interrupted: () -> Int32) throws {
        for (i, op) in operations.enumerated() {
            let signal = interrupted()
            if signal != 0 { throw Interrupted(signal: signal) }
            if failAt == applied.count { applied.append(op); throw InjectedFailure(operation: op) }
            applied.append(op)
            switch op {
            case let .createNamespace(name, lab):
                guard kernelNamespaces[name] == nil else { throw LabError("namespace \(name) exists") }
                kernelNamespaces[name] = Ownership.namespaceTag(lab: lab)
                createdHere.append(name)
            case let .setQdisc(r, q):
                qdiscs[r] = q
            case let .setUnderlayMTU(interface, _, mtu):
                let name = interface ?? "underlay0"
                let before = interfaceMTUs[name] ?? 1500
                if before != mtu { changedMTUs.append(MTUChange(interface: name, mtu: before)); interfaceMTUs[name] = mtu }
            default:
                if let ns = op.namespace, kernelNamespaces[ns] == nil { throw LabError("namespace \(ns) does not exist for \(op.command)") }
            }
            progress(i + 1)
        }
    }

    public private(set) var deletedLinks: [InterfaceRef] = []

    public func setProfile(_ link: InterfaceRef, from old: QdiscSpec?, to new: QdiscSpec?) throws {
        qdiscs[link] = new
        qdiscChanges.append((link, new))
    }

    public func removeNamespaces(_ names: [String]) throws {
        for ns in names { deleteNamespace(ns) }
        removed += names
    }

    public func deleteLink(_ link: InterfaceRef) throws { deletedLinks.append(link) }

    public func rollBack() -> [String] {
        _ = restoreMTUs(changedMTUs.reversed(), lab: "")
        changedMTUs.removeAll()
        for ns in createdHere.reversed() { deleteNamespace(ns) }
        createdHere.removeAll()
        return []
    }

    func deleteNamespace(_ ns: String) {
        kernelNamespaces[ns] = nil
        qdiscs = qdiscs.filter { $0.key.namespace != ns }
    }

    public func namespaces(of lab: String) -> [NamespaceState] {
        kernelNamespaces.keys.filter { Ownership.isNamed($0, lab: lab) }.sorted().map {
            NamespaceState(name: $0, tagged: kernelNamespaces[$0] == .some(Ownership.namespaceTag(lab: lab)))
        }
    }

    public func interfaces(in namespace: String) throws -> [InterfaceState] {
        qdiscs.filter { $0.key.namespace == namespace }.map {
            InterfaceState(name: $0.key.name, kind: "veth", isUp: true, mtu: 1500, group: 0, shaping: $0.value.shaping.rootKind.rawValue)
        }
    }

    /// Processes "stopped" per lab, as a kernel would count them.
    public var processesInLab: [String: Int] = [:]
    public func stopProcesses(inLab lab: String, sparing: [Int32]) -> Int { processesInLab.removeValue(forKey: lab) ?? 0 }
    public func processes(inLab lab: String) -> [Int32] { [] }

    public func removeLab(_ lab: String, waitForKernel: Bool) -> RemovalReport {
        var report = RemovalReport()
        for s in namespaces(of: lab) {
            if s.tagged { deleteNamespace(s.name); report.removed.append(s.name) } else { report.foreign.append(s.name) }
        }
        removed += report.removed
        createdHere.removeAll()
        return report
    }

    // MARK: The host

    /// MTUs of the fake host's interfaces.
    public var interfaceMTUs: [String: UInt32] = [:]
    public private(set) var changedMTUs: [MTUChange] = []
    /// Commands run, with the namespace they ran in; `exitCodes` answers them (0 by default).
    public private(set) var commands: [(namespace: String?, argv: [String])] = []
    public var exitCodes: [String: Int32] = [:]
    /// Gretap keys already in use on the fake host.
    public var keysInUse: [TunnelID: TunnelUse] = [:]

    public func info() -> HostInfo { HostInfo(hostname: host, kernel: "fake", clockNanoseconds: monotonicNanoseconds(), version: pathbedVersion) }

    public func restoreMTUs(_ changes: [MTUChange], lab: String) -> [String] {
        for c in changes { interfaceMTUs[c.interface] = c.mtu }
        return []
    }

    public func heldMTUs(lab: String, underlays: [String]) -> [MTUChange] { [] }

    public func run(_ argv: [String], in namespace: String?, timeout: Double?, input: StdinFeed?, stop: @escaping () -> Bool,
                    output: @escaping (StandardStream, Data) -> Void) throws -> Int32 {
        commands.append((namespace, argv))
        return exitCodes[argv.joined(separator: " ")] ?? 0
    }

    public func tunnelKeys() -> [TunnelID: TunnelUse] { keysInUse }

    /// Fault actions injected and not yet reverted, by key, with their revert deadline.
    public private(set) var activeFaults: [String: (FaultAction, Double?)] = [:]
    /// Every injection (true) and revert (false), in order.
    public private(set) var faultLog: [(FaultAction, Bool)] = []

    public func change(_ actions: [FaultAction], inject: Bool, at: UInt64?, revertAfter: Double?) throws -> ChangeTiming {
        if let at { sleepUntilMonotonic(at) }
        let began = monotonicNanoseconds()
        for a in actions {
            faultLog.append((a, inject))
            activeFaults[a.key] = inject ? (a, revertAfter) : nil
        }
        return ChangeTiming(began: began, finished: monotonicNanoseconds())
    }

    public func sampleCounters(_ namespaces: [String], sockets: [String], interval: Double, duration: Double, stop: @escaping () -> Bool,
                               onSample: @escaping (CounterSample) -> Void) throws {
        onSample(CounterSample(clock: monotonicNanoseconds(), counters: []))
    }
}
