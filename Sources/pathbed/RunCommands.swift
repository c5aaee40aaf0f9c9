import ArgumentParser
import Engine
import Planning
import Report
import Runs
import Foundation
import Hosts
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
    @Option(help: ArgumentHelp("Run it N times on the same lab, for statistics (mean, median, sd per metric).", valueName: "N")) var `repeat` = 1
    @Flag(help: "Skip the pre-flight that measures each shaped link (RTT, loss, rate each way under TCP) against its profile first.") var noVerify = false
    @OptionGroup var hosts: HostOptions

    func validate() throws {
        guard (1...1000).contains(`repeat`) else { throw ValidationError("--repeat takes 1 to 1000 runs") }
    }

    /// A run that went wrong exits 1 after its report, saying what went wrong.
    static func problems(_ list: [String]) -> ExitCode {
        printError("error: the run went wrong (\(list.count) problem\(list.count == 1 ? "" : "s"), also in summary.txt and results.json):\n"
                   + list.prefix(20).map { "    - \($0)" }.joined(separator: "\n") + (list.count > 20 ? "\n    ..." : ""))
        return ExitCode(1)
    }

    func run() throws {
        let t = try loadTopology(file, sayWarnings: true)
        do {
            try LabController.requireRoot("running a lab", "run \(file)")
            let lab = try hosts.controller(for: t, quiet: false)
            Interrupts.catchSignals()
            defer { Interrupts.restoreDefaults() }
            var o = RunController.Options(outDirectory: out)
            o.verify = !noVerify
            if `repeat` == 1 {
                o.keep = keep
                let outcome = try RunController(lab: lab, topology: t, options: o).run { printError("  \($0)") }
                print(RunReport.summary(outcome.results))
                let files = ((try? FileManager.default.contentsOfDirectory(atPath: outcome.directory)) ?? []).sorted()
                print("report: \(outcome.directory)/ (\(files.joined(separator: ", ")))")
                if !outcome.succeeded { throw Self.problems(outcome.results.problems ?? []) }
                return
            }
            // Repetitions on one lab (built once), each in rep-K; the table across them at the top.
            let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
            let parent = try RunDirectory.make("\(out)/\(t.name)-\(stamp)")
            var runs: [RunResults] = []
            var problems: [String] = []
            for k in 1...`repeat` {
                printError("repetition \(k) of \(`repeat`)")
                o.directory = "\(parent)/rep-\(k)"
                o.keep = keep || k < `repeat`
                o.seedOffset = k - 1
                // The lab is built once, so its links are verified once, before the first.
                if !noVerify {
                    o.verify = k == 1
                    o.verifyNote = k == 1 ? "measured before repetition 1 of \(`repeat`): the lab is built once" : "verified before repetition 1 only (the lab is built once): rep-1's results have them"
                }
                do {
                    let outcome = try RunController(lab: lab, topology: t, options: o).run { printError("  \($0)") }
                    runs.append(outcome.results)
                    problems += (outcome.results.problems ?? []).map { "repetition \(k): \($0)" }
                } catch {
                    if k < `repeat` && !keep { _ = try? lab.down(t.name) }
                    throw error
                }
            }
            let table = RunStatistics.table(runs)
            try table.write(toFile: "\(parent)/summary.txt", atomically: true, encoding: .utf8)
            print(table)
            print("report: \(parent)/ (summary.txt across the runs; rep-1 ... rep-\(`repeat`) each with results.json and plots)")
            if !problems.isEmpty { throw Self.problems(problems) }
        } catch let e as ExitCode { throw e } catch { throw fail(error) }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Render a run directory's report again from its results.json, or compare two.",
        discussion: """
            With one directory: writes its CSV, SVG plots and summary.txt again (of every repetition, and the \
            table across them, for a directory of `run --repeat N`). With two: prints each metric of A and B \
            side by side (mean ± sd across their runs) and B against A.
            """)
    @Argument(help: "A run directory written by `pathbed run`.") var directory: String
    @Argument(help: "A second run directory to compare with the first.") var other: String?

    func run() throws {
        do {
            let a = try RunStatistics.load(directory)
            if let other {
                print(RunStatistics.comparison(a, try RunStatistics.load(other), names: (directory, other)))
                return
            }
            if a.count == 1, FileManager.default.fileExists(atPath: "\(directory)/results.json") {
                try RunReport.render(a[0], to: directory)
                print(RunReport.summary(a[0]))
            } else {
                let reps = try FileManager.default.contentsOfDirectory(atPath: directory).filter { $0.hasPrefix("rep-") }
                for (r, d) in zip(a, reps.sorted { (Int($0.dropFirst(4)) ?? 0) < (Int($1.dropFirst(4)) ?? 0) }) { try RunReport.render(r, to: "\(directory)/\(d)") }
                let table = RunStatistics.table(a)
                try table.write(toFile: "\(directory)/summary.txt", atomically: true, encoding: .utf8)
                print(table)
            }
        } catch { throw fail(error) }
    }
}
