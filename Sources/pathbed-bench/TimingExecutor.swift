import Foundation
import Hosts
import Planning
import TopologyModel

/// A host executor that times another one: each operation `apply` makes is applied alone and
/// its time added to its kind (`pathbed-bench lab --breakdown`). Everything else passes through.
final class TimingExecutor: HostExecutor {
    let inner: HostExecutor
    /// Seconds and counts spent per kind of operation.
    private(set) var timings: [String: (count: Int, seconds: Double)] = [:]

    init(_ inner: HostExecutor) { self.inner = inner }

    func apply(_ operations: [LabOperation], progress: (Int) -> Void, interrupted: () -> Int32) throws {
        for (i, op) in operations.enumerated() {
            let start = DispatchTime.now().uptimeNanoseconds
            try inner.apply([op], progress: { _ in }, interrupted: interrupted)
            let t = timings[op.kind, default: (0, 0)]
            timings[op.kind] = (t.count + 1, t.seconds + Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9)
            if i % 200 == 199 { progress(i + 1) }
        }
        progress(operations.count)
    }

    var host: String { inner.host }
    func connect() throws { try inner.connect() }
    func close() { inner.close() }
    var connectedInfo: HostInfo? { inner.connectedInfo }
    var clockOffsetNanoseconds: Int64 { inner.clockOffsetNanoseconds }
    var clockUncertaintyNanoseconds: UInt64 { inner.clockUncertaintyNanoseconds }
    func sideConnection(stop: @escaping @Sendable () -> Bool) -> HostExecutor { inner.sideConnection(stop: stop) }
    func capabilities(sysctls: [String]) -> Capabilities { inner.capabilities(sysctls: sysctls) }
    func rollBack() -> [String] { inner.rollBack() }
    func namespaceNames() throws -> [String] { try inner.namespaceNames() }
    func namespaces(of lab: String) throws -> [NamespaceState] { try inner.namespaces(of: lab) }
    func interfaces(in namespace: String) throws -> [InterfaceState] { try inner.interfaces(in: namespace) }
    func removeLab(_ lab: String, waitForKernel: Bool) -> RemovalReport { inner.removeLab(lab, waitForKernel: waitForKernel) }
    func removeNamespaces(_ names: [String]) throws { try inner.removeNamespaces(names) }
    func stopProcesses(inLab lab: String, sparing: [Int32]) throws -> Int { try inner.stopProcesses(inLab: lab, sparing: sparing) }
    func processes(inLab lab: String) throws -> [Int32] { try inner.processes(inLab: lab) }
    func deleteLink(_ link: InterfaceRef) throws { try inner.deleteLink(link) }
    func setProfile(_ link: InterfaceRef, from old: QdiscSpec?, to new: QdiscSpec?) throws { try inner.setProfile(link, from: old, to: new) }
    func info() throws -> HostInfo { try inner.info() }
    var changedMTUs: [MTUChange] { inner.changedMTUs }
    func restoreMTUs(_ changes: [MTUChange], lab: String) -> [String] { inner.restoreMTUs(changes, lab: lab) }
    func heldMTUs(lab: String, underlays: [String]) throws -> [MTUChange] { try inner.heldMTUs(lab: lab, underlays: underlays) }
    func run(_ argv: [String], in namespace: String?, timeout: Double?, input: StdinFeed?, stop: @escaping () -> Bool,
             output: @escaping (StandardStream, Data) -> Void) throws -> Int32 {
        try inner.run(argv, in: namespace, timeout: timeout, input: input, stop: stop, output: output)
    }
    func runAttached(_ argv: [String], in namespace: String) throws -> Int32 { try inner.runAttached(argv, in: namespace) }
    func tunnelKeys() throws -> [TunnelID: TunnelUse] { try inner.tunnelKeys() }
    func change(_ actions: [FaultAction], inject: Bool, at: UInt64?, revertAfter: Double?) throws -> ChangeTiming {
        try inner.change(actions, inject: inject, at: at, revertAfter: revertAfter)
    }
    func sampleCounters(_ namespaces: [String], sockets: [String], interval: Double, duration: Double, stop: @escaping () -> Bool, onSample: @escaping (CounterSample) -> Void) throws {
        try inner.sampleCounters(namespaces, sockets: sockets, interval: interval, duration: duration, stop: stop, onSample: onSample)
    }
}
