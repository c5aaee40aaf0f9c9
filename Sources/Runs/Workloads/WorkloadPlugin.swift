import Engine
import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// What a workload sees of the run.
final class RunEnvironment: @unchecked Sendable {
    let lab: LabController
    let topology: Topology
    let clock: RunClock
    let stop: StopFlag
    let progress: (String) -> Void
    init(lab: LabController, topology: Topology, clock: RunClock, stop: StopFlag, progress: @escaping (String) -> Void) {
        self.lab = lab; self.topology = topology; self.clock = clock; self.stop = stop; self.progress = progress
    }

    func host(of node: String) -> String { topology.node(named: node)?.host ?? "local" }
    func namespace(of node: String) -> String { topology.namespace(of: node) }

    /// The main connection to `node`'s host.
    func executor(for node: String) throws -> HostExecutor { try lab.executor(host(of: node)) }

    /// Runs a short command in a node and returns its exit code and stdout (the first MiB).
    func check(_ node: String, _ argv: [String], timeout: Double = 60) throws -> (Int32, String) {
        var out = BoundedText(limit: 1 << 20)
        let code = try executor(for: node).run(argv, in: namespace(of: node), timeout: timeout) { s, d in if s == .stdout { out.append(d) } }
        return (code, out.text)
    }

    /// A connection to `node`'s host of its own, opened now: one opened when a workload starts
    /// would delay it by an ssh login. The run's stop ends what runs through it.
    func connection(to node: String, stop: StopFlag? = nil) throws -> Unchecked<HostExecutor> {
        let flag = stop ?? self.stop
        let c = try executor(for: node).sideConnection(stop: { flag.isSet })
        try? c.connect()
        return Unchecked(c)
    }

    /// Waits until something listens on TCP `port` in `node` (at most 30 s).
    func waitForListener(_ node: String, port: Int) throws -> Bool {
        try Listening.wait(on: executor(for: node), namespace: namespace(of: node), port: port)
    }
}

/// Waiting for a server to listen: the one place that asks a host's kernel whether a TCP port
/// has a listener (the workloads and the benchmarks use it).
public enum Listening {
    public static func wait(on executor: HostExecutor, namespace: String, port: Int, seconds: Double = 30) throws -> Bool {
        let rounds = max(1, Int(seconds * 10))
        let wait = "for i in $(seq \(rounds)); do ss -Hltn 'sport = :\(port)' | grep -q . && exit 0; sleep 0.1; done; exit 1"
        return try executor.run(["sh", "-c", wait], in: namespace, timeout: seconds + 30, output: { _, _ in }) == 0
    }
}

/// A workload's long-lived server program in a node, over a connection of its own; `stop` (or
/// the run's stop) kills its process group.
final class WorkloadServer: @unchecked Sendable {
    private let stopFlag: StopFlag
    private let thread: Thread

    init(_ argv: [String], in node: String, _ env: RunEnvironment, output: @escaping (StandardStream, Data) -> Void = { _, _ in }) throws {
        let flag = StopFlag(parent: env.stop)
        stopFlag = flag
        let e = try env.connection(to: node, stop: flag)
        let ns = env.namespace(of: node)
        let output = Unchecked(output)
        thread = Thread { _ = try? e.value.run(argv, in: ns, timeout: nil, output: output.value); e.value.close() }
        thread.start()
    }

    var isRunning: Bool { thread.isExecuting }

    /// Stops it and waits for its end (bounded: the command runner ends a program within
    /// seconds of its stop, and a lost host is given up after 20 s of silence).
    func stop() {
        stopFlag.set()
        let deadline = monotonicNanoseconds() + 30_000_000_000
        while thread.isExecuting, monotonicNanoseconds() < deadline { usleep(20_000) }
    }
}

/// A workload, built in or external. Made from its typed kind (the validator checked every
/// option), then: `prepare` (servers, files) before the barrier; `run` on a thread of its own
/// from its start offset to its end; `sample` for the live progress line; `stop` ends its
/// servers; `collect` its result.
protocol WorkloadPlugin: AnyObject, Sendable {
    var workload: Workload { get }
    func prepare(_ env: RunEnvironment) throws
    func run(_ env: RunEnvironment)
    /// The latest value of its main metric, for the progress line.
    func sample() -> (metric: String, value: Double, unit: String)?
    func stop(_ env: RunEnvironment)
    func collect() -> RunResults.WorkloadResult
    /// The TCP ports its server listens on (see the default below).
    var ports: [Int] { get }
}

extension WorkloadPlugin {
    var start: Double { workload.start.seconds }
    var duration: Double { workload.duration.seconds }
    func sample() -> (metric: String, value: Double, unit: String)? { nil }
    func stop(_ env: RunEnvironment) {}
    /// The TCP ports its server listens on: its connections (and their subflows) are told apart
    /// by them. None for a workload without TCP (ping).
    var ports: [Int] { [] }

    /// `mptcpize run` in front of the client's program when the workload asks for MPTCP.
    func mptcpized(_ argv: [String]) -> [String] { (workload.mptcp ? ["mptcpize", "run"] : []) + argv }
    /// The same for its server side: only where the server's node has MPTCP.
    func mptcpizedServer(_ argv: [String]) -> [String] { (workload.mptcpServer ? ["mptcpize", "run"] : []) + argv }

    /// A result for a workload that never ran (its run failed before it, or was interrupted).
    func notRun(node: String, target: String) -> RunResults.WorkloadResult {
        RunResults.WorkloadResult(name: workload.name, plugin: workload.plugin, node: node, target: target, mptcp: workload.mptcp,
                                  started: start, exitCode: -1, error: "did not run", series: [])
    }
}

/// Runs every workload of a run: makes them from their kinds, prepares them, starts them together.
final class WorkloadRunner: @unchecked Sendable {
    let plugins: [any WorkloadPlugin]

    init(_ t: Topology) {
        plugins = t.workloads.enumerated().map { i, w -> any WorkloadPlugin in
            switch w.kind {
            case let .iperf3(o): return Iperf3Workload(w, o, index: i)
            case let .ping(o): return PingWorkload(w, o)
            case let .transfer(o): return TransferWorkload(w, o, index: i, lab: t.name)
            case let .command(o): return CommandWorkload(w, o)
            case let .external(o): return ExternalWorkload(w, o, topology: t, port: ExternalWorkload.port(index: i))
            }
        }
    }

    var end: Double { plugins.map { $0.start + $0.duration }.max() ?? 0 }

    /// Which workload each TCP connection belongs to: its client and server nodes and ports.
    var claims: [SubflowTable.Claim] {
        plugins.compactMap { p in
            let nodes = p.workload.nodes
            guard !p.ports.isEmpty, let client = nodes.first else { return nil }
            return SubflowTable.Claim(workload: p.workload.name, client: client, server: nodes.count > 1 ? nodes[1] : client, ports: p.ports)
        }
    }

    func prepare(_ env: RunEnvironment) throws { for p in plugins { try p.prepare(env) } }

    private let lock = NSLock()
    private var ended: [String: Double] = [:]

    /// Every workload, each at its start offset; returns their threads.
    func start(_ env: RunEnvironment) -> [Thread] {
        plugins.map { p in
            let th = Thread { [self] in
                while env.clock.now < p.start && !env.stop.isSet { usleep(2_000) }
                if env.stop.isSet { return }
                p.run(env)
                lock.withLock { ended[p.workload.name] = env.clock.now }
            }
            th.start()
            return th
        }
    }

    func stop(_ env: RunEnvironment) { for p in plugins { p.stop(env) } }

    var results: [RunResults.WorkloadResult] {
        plugins.map { p in var r = p.collect(); r.ended = lock.withLock { ended[p.workload.name] }; return r }
    }

    /// The live figures for the progress line.
    func liveSummary() -> String {
        let parts = plugins.compactMap { p in p.sample().map { String(format: "%@ %.1f %@", p.workload.name, $0.value, $0.unit) } }
        return parts.isEmpty ? "" : "; " + parts.joined(separator: ", ")
    }
}

/// The end of a program's output, at most `limit` bytes (what a program prints is never kept
/// whole: a runaway program must not grow Pathbed's memory).
struct BoundedText {
    let limit: Int
    private(set) var data = Data()
    /// Bytes dropped from the front to stay within the limit.
    private(set) var dropped = 0
    init(limit: Int) { self.limit = limit }
    mutating func append(_ d: Data) {
        data.append(d)
        if data.count > limit {
            dropped += data.count - limit
            // A fresh copy of the end: Data.removeFirst keeps the storage it cut from, which
            // grew to the program's whole output (1.4 GB for 1.5 GB printed).
            data = Data(data.suffix(limit))
        }
    }
    var text: String { String(decoding: data, as: UTF8.self) }
    /// What was left out, in words, when anything was.
    var note: String? { dropped > 0 ? "its output was \(dropped + data.count) bytes; the last \(data.count) are kept" : nil }
}

extension Collection {
    var nilIfEmpty: Self? { isEmpty ? nil : self }
}
