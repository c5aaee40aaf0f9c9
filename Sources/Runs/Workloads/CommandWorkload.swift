import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// A long-lived command in a node (a proxy, a tool of your own), from its start until its
/// duration ends (then SIGTERM): `with: {command: [argv...]}` or a shell line, and optionally
/// `server-command:` started first in the `server:` node. The end of its output is kept.
final class CommandWorkload: WorkloadPlugin, @unchecked Sendable {
    let workload: Workload
    let options: Workload.Command
    private let lock = NSLock()
    private var result: RunResults.WorkloadResult?
    private var serverProcess: WorkloadServer?

    init(_ w: Workload, _ options: Workload.Command) { workload = w; self.options = options }
    var ports: [Int] { options.serverPorts }

    func prepare(_ env: RunEnvironment) throws {
        guard let serverArgv = options.serverArgv, let server = options.server else { return }
        let p = try WorkloadServer(mptcpizedServer(serverArgv), in: server, env)
        serverProcess = p
        usleep(300_000)
        if !p.isRunning { throw LabError("workload \(workload.name): its server-command ended at once in \(server)") }
        // The run starts only once it listens where it was said to.
        for port in options.serverPorts {
            guard try env.waitForListener(server, port: port) else {
                throw LabError("workload \(workload.name): its server-command does not listen on port \(port) in \(server) after 30 s",
                               fix: "check the command, or its `server-ports:`")
            }
        }
        if !options.serverPorts.isEmpty { env.progress("\(workload.name): server-command listening in \(server) on \(options.serverPorts.map(String.init).joined(separator: ", "))") }
    }

    func run(_ env: RunEnvironment) {
        let stop = StopFlag(parent: env.stop)
        guard let e = try? env.connection(to: options.node, stop: stop).value else { return }
        defer { e.close() }
        let startedAt = env.clock.now
        var tail = BoundedText(limit: 64 << 10)
        let end = startedAt + duration
        let timer = Thread { while env.clock.now < end && !stop.isSet { usleep(10_000) }; stop.set() }
        timer.start()
        let code = (try? e.run(mptcpized(options.argv), in: env.namespace(of: options.node), timeout: duration + 30) { _, d in tail.append(d) }) ?? 127
        let ranFor = env.clock.now - startedAt
        stop.set()
        // Killed at its end (SIGTERM, 143) is how a long-lived command ends; any other failure is said.
        let endedEarly = code != 0 && code != 143 && code != 124
        lock.withLock {
            result = RunResults.WorkloadResult(name: workload.name, plugin: workload.plugin, node: options.node, target: options.argv.joined(separator: " "),
                                               mptcp: workload.mptcp, started: startedAt, exitCode: code,
                                               error: endedEarly ? "exit \(code): \(tail.text.suffix(300))" : nil,
                                               series: [], metrics: ["seconds": ranFor], output: tail.text, notes: tail.note.map { [$0] })
        }
    }

    func stop(_ env: RunEnvironment) { serverProcess?.stop() }

    func collect() -> RunResults.WorkloadResult { lock.withLock { result } ?? notRun(node: options.node, target: options.argv.joined(separator: " ")) }
}
