import ArgumentParser
import Foundation
import TopologyModel

struct Generate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Write a standard topology as YAML (as Mininet's --topo).",
        discussion: """
            Examples:
              pathbed generate linear 100            100 bridges in a line, one node on each
              pathbed generate tree --depth 2 --fanout 3
              pathbed generate star 10 --rate 100mbit -o star.yaml
            """
    )

    enum Kind: String, ExpressibleByArgument, CaseIterable { case linear, tree, star }

    @Argument(help: "linear, tree or star.")
    var kind: Kind

    @Argument(help: "linear: number of switches; star: number of nodes.")
    var count: Int?

    @Option(help: "linear: nodes per switch.")
    var nodesPerSwitch = 1

    @Option(help: "tree: depth.")
    var depth = 2

    @Option(help: "tree: fanout.")
    var fanout = 2

    @Option(help: "Lab name (default: the kind and size, e.g. linear100).")
    var name: String?

    @Option(help: "Subnet all nodes share.")
    var subnet = "10.0.0.0/8"

    @Option(help: "A rate limit for every link, e.g. 100mbit.")
    var rate: String?

    @Option(name: .shortAndLong, help: "Write to this file instead of standard output.")
    var output: String?

    func validate() throws {
        switch kind {
        case .linear, .star:
            guard let count else { throw ValidationError("\(kind.rawValue) needs a size, e.g. `pathbed generate \(kind.rawValue) 10`") }
            guard count >= 1, count <= 100_000 else { throw ValidationError("size \(count) is out of range: use 1 to 100000") }
        case .tree:
            guard count == nil else { throw ValidationError("tree takes --depth and --fanout, not a size") }
            guard depth >= 1, fanout >= 1 else { throw ValidationError("--depth and --fanout must be at least 1 (got depth \(depth), fanout \(fanout))") }
            guard pow(Double(fanout), Double(depth)) <= 100_000 else {
                throw ValidationError("depth \(depth) and fanout \(fanout) give too many nodes: keep fanout^depth at most 100000")
            }
        }
        guard nodesPerSwitch >= 1, nodesPerSwitch <= 1000 else { throw ValidationError("--nodes-per-switch must be 1 to 1000") }
        if let rate, case let .failure(e) = Bitrate.parse(rate) { throw ValidationError("--rate: \(e.message); \(e.hint)") }
        if let name, let problem = LabName.problem(name) { throw ValidationError("--name: \(problem)") }
        guard IPNetwork(subnet) != nil else { throw ValidationError("--subnet '\(subnet)' is not a subnet; write e.g. 10.0.0.0/8") }
    }

    func run() throws {
        let defaultName: String
        switch kind {
        case .linear: defaultName = "linear\(count!)"
        case .star: defaultName = "star\(count!)"
        case .tree: defaultName = "tree\(depth)x\(fanout)"
        }
        let options = TopologyGenerator.Options(name: name ?? defaultName, subnet: subnet, rate: rate)
        let yaml: String
        switch kind {
        case .linear: yaml = TopologyGenerator.linear(switches: count!, hostsPerSwitch: nodesPerSwitch, options)
        case .star: yaml = TopologyGenerator.star(hosts: count!, options)
        case .tree: yaml = TopologyGenerator.tree(depth: depth, fanout: fanout, options)
        }
        // Never write a file that `validate` would refuse (a subnet too small for the nodes, say).
        do {
            _ = try TopologyLoader.load(data: Data(yaml.utf8), file: output ?? "<generated>")
        } catch let errors as TopologyErrors {
            printError("error: the generated lab does not validate; nothing was written:\n\(errors.description)")
            throw ExitCode(1)
        }
        if let output {
            do { try yaml.write(toFile: output, atomically: true, encoding: .utf8) } catch {
                printError("error: cannot write \(output): \(error.localizedDescription)")
                throw ExitCode(1)
            }
        } else {
            print(yaml, terminator: "")
        }
    }
}
