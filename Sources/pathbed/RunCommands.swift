import ArgumentParser
import Engine
import Foundation
import Netlink
import TopologyModel

struct RunCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "run",
        abstract: "Run a lab's workloads and fault schedule, measure, and write a report.",
        discussion: """
            Builds the lab (or finds it up), starts the workloads together, plays the schedule (faults revert \
            themselves; on a remote host the agent keeps the deadline, and reverts when this command goes away), \
            samples every interface's byte counters every 100 ms, then writes a run directory: results.json \
            (docs/results.md), series.csv, SVG plots with the fault windows shaded, and summary.txt with each \
            fault's impact and recovery time. Ctrl-C reverts every fault and removes the lab.
            """
    )
    @Argument(help: "Topology file with `workloads:` and `schedule:`.", completion: .file(extensions: ["yaml", "yml"])) var file: String
    @Option(help: "Where run directories go.") var out = "runs"
    @Flag(help: "Leave the lab up afterwards.") var keep = false
    @OptionGroup var hosts: HostOptions

    func run() throws {
        let t = try loadTopology(file)
        do {
            try LabController.requireRoot("running a lab", "run \(file)")
            let lab = try hosts.controller(for: t, quiet: false)
            Interrupts.catchSignals()
            defer { Interrupts.restoreDefaults() }
            var o = RunController.Options(outDirectory: out)
            o.keep = keep
            let outcome = try RunController(lab: lab, topology: t, options: o).run { printError("  \($0)") }
            print(RunReport.summary(outcome.results))
            print("report: \(outcome.directory)/ (results.json, series.csv, workloads.svg, interfaces.svg, rtt.svg, summary.txt)")
        } catch { throw fail(error) }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Render a run directory's report again (CSV, SVG, summary) from its results.json.")
    @Argument(help: "A run directory written by `pathbed run`.") var directory: String

    func run() throws {
        do {
            let r = try RunReport.read(directory)
            try RunReport.render(r, to: directory)
            print(RunReport.summary(r))
        } catch { throw fail(error) }
    }
}
