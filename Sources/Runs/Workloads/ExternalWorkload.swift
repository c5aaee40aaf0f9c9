import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// An external workload (docs/plugins.md): with a `server:` node, the plugin runs there first
/// (side `server`, until it says `ready`), then in the client (side `client`).
final class ExternalWorkload: WorkloadPlugin, @unchecked Sendable {
    let workload: Workload
    let launch: ExternalPlugin.Launch
    let serverLaunch: ExternalPlugin.Launch?
    private let lock = NSLock()
    private var client: ExternalPlugin.Process?
    private var server: ExternalPlugin.Process?
    private var startedAt: Double?
    /// The port Pathbed gives it (`port` in its start message): its server listens there, so its
    /// connections are told apart from the others'.
    let port: Int
    var ports: [Int] { [port] }
    static func port(index: Int) -> Int { 7000 + index }

    init(_ w: Workload, _ options: Workload.External, topology t: Topology, port: Int) {
        workload = w
        self.port = port
        let duration = w.duration.seconds
        launch = ExternalPlugin.Launch(program: options.program, role: .workload, name: w.name, node: options.node,
                                       context: ExternalPlugin.context(t, node: options.node, peer: options.server), options: options.options,
                                       duration: duration, mptcp: w.mptcp, port: port)
        serverLaunch = options.server.map { s in
            ExternalPlugin.Launch(program: options.program, role: .workload, name: w.name, node: s, context: ExternalPlugin.context(t, node: s, peer: options.node),
                                  options: options.options, duration: duration, mptcp: w.mptcpServer, port: port)
        }
    }

    func prepare(_ env: RunEnvironment) throws {
        guard let serverLaunch else { return }
        let p = ExternalPlugin.Process(serverLaunch, side: "server", clock: env.clock, stop: env.stop, onLog: env.progress)
        server = p
        try p.start(lab: env.lab)
        guard p.wait(for: "ready") else {
            p.stopHard()
            throw LabError("external plugin \(p.label) did not say ready within \(Int(ExternalPlugin.answerSeconds)) s: \(p.failure ?? "no answer")",
                           fix: "docs/plugins.md: a server side says {\"type\":\"ready\"} once it listens")
        }
        env.progress("\(workload.name): \(p.label) ready")
    }

    func run(_ env: RunEnvironment) {
        let p = ExternalPlugin.Process(launch, side: serverLaunch == nil ? nil : "client", clock: env.clock, stop: env.stop, onLog: env.progress)
        lock.withLock { client = p; startedAt = env.clock.now }
        do { try p.start(lab: env.lab) } catch { return }
        // It may end by itself; at its duration it is told to stop.
        p.waitForEnd(until: env.clock.now + duration, stop: env.stop)
        if !p.hasEnded { p.finish() }
    }

    func stop(_ env: RunEnvironment) { server?.finish() }

    func sample() -> (metric: String, value: Double, unit: String)? {
        guard let p = lock.withLock({ client }), let (k, s) = p.samples.sorted(by: { $0.key < $1.key }).first, let v = s.values.last else { return nil }
        return (k, v, s.unit)
    }

    func collect() -> RunResults.WorkloadResult {
        let p = lock.withLock { client }
        var error = p?.failure ?? (p == nil ? "did not run" : nil)
        if error == nil, let s = server?.failure { error = "server side: \(s)" }
        var r = RunResults.WorkloadResult(name: workload.name, plugin: workload.plugin, node: launch.node, target: serverLaunch?.node ?? "",
                                          mptcp: workload.mptcp, started: lock.withLock { startedAt } ?? start, exitCode: p?.exitCode ?? -1, error: error,
                                          series: (p?.samples ?? [:]).sorted { $0.key < $1.key }.map(\.value), metrics: p?.values)
        let dropped = (p?.droppedMessages ?? 0) + (server?.droppedMessages ?? 0)
        let errors = (p?.errors.count ?? 0) + (server?.errors.count ?? 0)
        var notes: [String] = []
        if dropped > 0 { notes.append("\(dropped) of the plugin's messages were past the limits (docs/plugins.md) and not kept") }
        if errors > 1 { notes.append("\(errors) problems with the plugin's messages (its own errors, and lines that were not the protocol); the first: \(error ?? "")") }
        r.notes = notes.isEmpty ? nil : notes
        return r
    }
}
