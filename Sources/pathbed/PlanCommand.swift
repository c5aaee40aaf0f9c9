import ArgumentParser
import Engine
import Planning
import Foundation
import TopologyModel

struct Plan: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show, per host, the ordered kernel operations `up` would perform.",
        discussion: "Each operation is printed as the equivalent ip / tc / sysctl command. Nothing is changed."
    )

    @Argument(help: "Topology file.", completion: .file(extensions: ["yaml", "yml"]))
    var file: String

    @Flag(help: "Print the plan as JSON, for programs.")
    var json = false

    @Option(help: "Show only this host's operations.")
    var host: String?

    func run() throws {
        let topology = try loadTopology(file, sayWarnings: true)
        var plan = Planner.plan(topology)
        if let host {
            guard plan.hosts.contains(where: { $0.host == host }) else {
                printError("error: lab '\(topology.name)' has no host '\(host)'; its hosts: \(plan.hosts.map(\.host).joined(separator: ", "))")
                throw ExitCode(1)
            }
            plan.hosts.removeAll { $0.host != host }
        }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let queues = ShapedQueue.of(topology).filter { q in host.map { q.host == $0 } ?? true }
            print(String(decoding: try encoder.encode(PlanDocument(plan: plan, queues: queues)), as: UTF8.self))
        } else {
            print(PlanText.render(plan, topology: topology), terminator: "")
        }
    }
}

/// `plan --json`: the plan's fields, and `queues`, each shaped direction's queue as the text's
/// "queues" section states it (in a run's results.json too).
struct PlanDocument: Encodable {
    var plan: LabPlan
    var queues: [ShapedQueue]
    enum Key: String, CodingKey { case queues }
    func encode(to encoder: any Encoder) throws {
        try plan.encode(to: encoder)
        var c = encoder.container(keyedBy: Key.self)
        try c.encode(queues, forKey: .queues)
    }
}
