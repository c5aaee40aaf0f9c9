import ArgumentParser
import Foundation
import Planning
import Report
import TopologyModel

@main
struct Pathbed: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pathbed",
        abstract: "Network testbeds for Multipath TCP from a YAML file.",
        discussion: """
            A topology file declares hosts, nodes (network namespaces), bridges, links with profiles, \
            MPTCP settings, workloads and a fault schedule. See docs/topology.md.
            """,
        version: pathbedVersion,
        subcommands: [Validate.self, Plan.self, Graph.self, Generate.self, Schema.self, Up.self, Down.self, Status.self, Exec.self, Doctor.self, RunCommand.self, StudyCommand.self, Verify.self, ReportCommand.self, VM.self, Agent.self, FaultGuardCommand.self]
    )

    static func main() {
        // A closed output pipe (`pathbed up | head -c 5`) must not kill Pathbed midway through
        // a change: writes to it fail instead, and the work goes on to its end. The programs it
        // starts get SIGPIPE back at its default.
        signal(SIGPIPE, SIG_IGN)
        main(nil)
    }
}

/// Loads a topology, printing every problem to standard error and exiting non-zero on failure.
func loadTopology(_ path: String, sayWarnings: Bool = false) throws -> Topology {
    do {
        let t = try TopologyLoader.load(path: path)
        // A lab wired so that it cannot do what it says still comes up, but never silently.
        if sayWarnings {
            let warnings = TopologyLint.warnings(t)
            if !warnings.isEmpty { printError(warnings.map(\.description).joined(separator: "\n") + "\n(`pathbed validate --strict` refuses a file with warnings)") }
        }
        return t
    } catch let errors as TopologyErrors {
        printError(errors.description)
        throw ExitCode(1)
    }
}

/// Everything Pathbed says on stderr may hold text from outside (a program's output in an error,
/// a name from a file): it is made safe for the terminal first.
func printError(_ text: String) {
    var stderr = StandardError()
    print(safeText(text), to: &stderr)
}

struct StandardError: TextOutputStream {
    mutating func write(_ string: String) {
        FileHandleOutput.writeStderr(string)
    }
}
