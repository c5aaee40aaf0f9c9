import ArgumentParser
import TopologyModel

struct Validate: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check topology files without touching the kernel.",
        discussion: "Reports every problem at once, each with file:line:column, the key and what to do. Warnings say where a valid lab is wired so that it cannot do what it says (an MPTCP endpoint that reaches no peer, endpoints the limits leave unused, an MPTCP workload whose end has no MPTCP); `up` and `run` print them too. Exits 1 if any file is invalid, or has warnings with --strict."
    )

    @Argument(help: "Topology files (YAML).", completion: .file(extensions: ["yaml", "yml"]))
    var files: [String]

    @Flag(name: .shortAndLong, help: "Print nothing for valid files (warnings are still printed).")
    var quiet = false

    @Flag(help: "Count warnings (a lab wired so that it cannot do what it says) as errors.")
    var strict = false

    func run() throws {
        var failed = 0
        for file in files {
            do {
                let t = try TopologyLoader.load(path: file)
                let warnings = TopologyLint.warnings(t)
                if !warnings.isEmpty {
                    printError(warnings.map(\.description).joined(separator: "\n")
                               + "\n\(warnings.count) warning\(warnings.count == 1 ? "" : "s")\(strict ? ", counted as errors (--strict)" : "")")
                    if strict { failed += 1; continue }
                }
                if !quiet {
                    let crossing = t.links.filter(\.crossesHosts).count
                    print("\(file): ok: lab '\(t.name)': \(t.hosts.count) host\(t.hosts.count == 1 ? "" : "s"), \(t.nodes.count) nodes, \(t.bridges.count) bridge\(t.bridges.count == 1 ? "" : "s"), \(t.links.count) links (\(crossing) across hosts), \(t.profiles.count) profiles, \(t.workloads.count) workloads, \(t.schedule.count) faults")
                }
            } catch let errors as TopologyErrors {
                printError(errors.description)
                failed += 1
            }
        }
        if failed > 0 { throw ExitCode(1) }
    }
}
