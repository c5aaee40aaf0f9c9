import ArgumentParser
import Engine
import Foundation
import Hosts
import Runs
import TopologyModel

struct StudyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "study",
        abstract: "Run every variant of a lab (settings crossed with each other), each several times, and compare them.",
        discussion: """
            A study file names a base topology, the settings that vary (each by its path in the file, with a list \
            of values; the lists are crossed) and the runs per variant (docs/studies.md). Every variant is written \
            (DIR/variants/K.yaml) and validated before anything runs; then each runs `repeat` times (its lab built \
            once), into DIR/variant-K/rep-J. The same command again resumes: runs that ended are kept. At the end: \
            study.txt and study.csv (per metric and variant: n, mean, 95 % CI, against the first variant with \
            Welch's t-test), comparison files, tidy.csv and throughput.svg across the variants.
            """)
    @Argument(help: "A study file (YAML).", completion: .file(extensions: ["yaml", "yml"])) var file: String
    @Option(help: "The study's directory (default: runs/STUDY; the same directory resumes it).") var out: String?
    @Flag(help: "Only write and validate the variants, and say how many runs the study takes.") var dryRun = false
    @Flag(help: "Skip each variant's pre-flight link measurement.") var noVerify = false
    @OptionGroup var hosts: HostOptions

    func run() throws {
        do {
            let study = try StudyFile.load(path: file)
            let dir = out ?? "runs/\(study.name)"
            let runner = StudyRunner(study: study, directory: dir)
            let variants = try runner.prepare()
            print("study \(study.name): \(variants.count) variants x \(study.repeats) runs, in \(dir)/")
            for (v, _) in variants { print("  \(v.number). \(v.label)  (\(dir)/variants/\(v.number).yaml)") }
            fflush(nil)  // before the progress on stderr, also into one file
            if dryRun { return }
            try LabController.requireRoot("running a study", "study \(file)")
            Interrupts.catchSignals()
            Priority.raiseForController()
            defer { Interrupts.restoreDefaults() }
            let outcome: StudyRunner.Outcome
            do {
                outcome = try runner.run(variants, verify: !noVerify, controller: { try hosts.controller(for: $0, quiet: false) }) { printError("  \($0)") }
            } catch {
                printError("  the study stopped; `pathbed study \(file)\(out.map { " --out \($0)" } ?? "")` again resumes it (runs that ended are kept)")
                throw error
            }
            print(outcome.report)
            let written = ["study.txt", "study.csv", "comparison.txt", "comparison.json", "comparison.csv", "tidy.csv", "throughput.svg"]
                .filter { FileManager.default.fileExists(atPath: "\(dir)/\($0)") }
            print("report: \(dir)/ (\(written.joined(separator: ", ")); variant-K/rep-J each with results.json and plots)"
                  + (outcome.kept > 0 ? "; \(outcome.kept) runs kept from before, \(outcome.ran) run now" : ""))
            if !outcome.problems.isEmpty { throw RunCommand.problems(outcome.problems) }
        } catch let e as ExitCode { throw e } catch { throw fail(error) }
    }
}
