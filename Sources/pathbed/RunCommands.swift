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
    @Option(help: ArgumentHelp("Capture packets on these links (comma-separated), or on every link: headers only, into capture.pcapng, summed up by tshark.", valueName: "LINK,...|all")) var capture: String?
    @Option(help: ArgumentHelp("Bytes kept of each captured packet (64-65535; default: the file's `run: { capture-snaplen }`, else 128).", valueName: "BYTES")) var snaplen: Int?
    @Option(help: ArgumentHelp("The most megabytes captured per link (0.1-2000; default: the file's `run: { capture-limit }`, else 20).", valueName: "MB")) var captureLimit: Double?
    @Option(help: ArgumentHelp("Capture only the packets this pcap filter keeps (tcpdump's syntax; default: the file's `run: { capture-filter }`, else every packet).", valueName: "FILTER")) var captureFilter: String?
    @Flag(help: "Capture nothing, not even the links the file marks `capture: true`.") var noCapture = false
    @OptionGroup var hosts: HostOptions

    func validate() throws {
        guard (1...1000).contains(`repeat`) else { throw ValidationError("--repeat takes 1 to 1000 runs") }
        if let snaplen, !CaptureOptions.snaplenRange.contains(snaplen) { throw ValidationError("--snaplen takes 64 to 65535 bytes") }
        if let captureLimit, !(captureLimit.isFinite && (0.1...2000).contains(captureLimit)) { throw ValidationError("--capture-limit takes 0.1 to 2000 MB") }
        if let captureFilter, !CaptureFilter.isAcceptable(captureFilter) { throw ValidationError("--capture-filter takes 1 to 1,000 printable ASCII characters on one line (tcpdump's filter syntax)") }
        if noCapture && capture != nil { throw ValidationError("--no-capture and --capture ask for opposite things: give one") }
        if let capture {
            let names = capture.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
            guard !names.contains(where: \.isEmpty) else { throw ValidationError("--capture takes link names separated by commas, or `all`") }
        }
    }

    /// A run that went wrong exits 1 after its report, saying what went wrong.
    static func problems(_ list: [String]) -> ExitCode {
        printError("error: the run went wrong (\(list.count) problem\(list.count == 1 ? "" : "s"), also in summary.txt and results.json):\n"
                   + list.prefix(20).map { "    - \($0)" }.joined(separator: "\n") + (list.count > 20 ? "\n    ..." : ""))
        return ExitCode(1)
    }

    func run() throws {
        let t = try loadTopology(file, sayWarnings: true)
        var o = RunController.Options(outDirectory: out)
        o.verify = !noVerify
        if let capture {
            var names: [String] = []
            for n in capture.split(separator: ",").map({ $0.trimmingCharacters(in: .whitespaces) }) where !names.contains(n) { names.append(n) }
            if names.contains("all") && names.count > 1 { throw ValidationError("--capture all captures every link: give it alone") }
            o.capture = CaptureOptions(links: names == ["all"] ? nil : names)
        }
        o.noCapture = noCapture
        o.captureSnaplen = snaplen
        o.captureLimitBytes = captureLimit.map { Int($0 * 1_000_000) }
        o.captureFilter = captureFilter
        if (snaplen != nil || captureLimit != nil || captureFilter != nil) && CaptureOptions.effective(t, o) == nil {
            throw ValidationError("--snaplen, --capture-limit and --capture-filter go with a capture: --capture LINK,...|all, or a link with `capture: true` in \(file)")
        }
        do {
            try LabController.requireRoot("running a lab", "run \(file)")
            let lab = try hosts.controller(for: t, quiet: false)
            Interrupts.catchSignals()
            Priority.raiseForController()
            defer { Interrupts.restoreDefaults() }
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
                o.callerRemovesLabOnFailure = !keep && k < `repeat`
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
                    // What the repetitions that ended measured is put together all the same.
                    if !runs.isEmpty, (try? RunStatistics.writeRepetitions(runs, to: parent)) != nil {
                        printError("the \(runs.count) repetitions that ended are put together in \(parent)/ (summary.txt, aggregates); repetition \(k) ended early")
                    }
                    throw error
                }
            }
            print(try RunStatistics.writeRepetitions(runs, to: parent))
            print("report: \(parent)/ (summary.txt, aggregates.json and .csv, tidy.csv, throughput.svg across the runs; rep-1 ... rep-\(`repeat`) each with results.json and plots)")
            if !problems.isEmpty { throw Self.problems(problems) }
        } catch let e as ExitCode { throw e } catch { throw fail(error) }
    }
}

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Render a run directory's report again from its results.json, or compare runs.",
        discussion: """
            With one directory: writes its CSVs, SVG plots and summary.txt again (of every repetition, and the \
            aggregates across them, for a directory of `run --repeat N`). With two or more: compares each with the \
            first, metric by metric (per-run means with 95 % intervals, the difference with its interval, Welch's \
            t-test), says what else differs (file, kernels, settings, queues), and writes comparison.txt, .json, \
            .csv, tidy.csv and throughput.svg into --out. docs/results.md says what each file holds.
            """)
    @Argument(help: "Run directories written by `pathbed run` (a directory of `--repeat N` counts as its N runs); the first is the baseline.")
    var directories: [String]
    @Option(help: "Where a comparison's files go (created; default: compare-TIME beside the first directory).") var out: String?
    @Option(help: "Which way interfaces.svg counts bytes: received, sent or both.") var interfaces: RunReport.Direction = .received

    func validate() throws {
        guard !directories.isEmpty else { throw ValidationError("give at least one run directory") }
        guard directories.count <= 26 else { throw ValidationError("compare at most 26 sets of runs at once (A to Z)") }
        if out != nil && directories.count == 1 { throw ValidationError("--out is for comparisons (two or more directories); one directory's report is written into it") }
    }

    func run() throws {
        do {
            let loaded = try directories.map { try RunStatistics.loadRepetitions($0) }
            for note in loaded.flatMap(\.leftOut) { printError("note: \(note)") }
            let sets = zip(directories, loaded).map { (name: $0.0, runs: $0.1.runs) }
            if sets.count > 1 {
                let stamp = ISO8601DateFormatter().string(from: Date()).replacingOccurrences(of: ":", with: "")
                let parent = ((directories[0] as NSString).standardizingPath as NSString).deletingLastPathComponent
                let dir = try RunDirectory.make(out ?? "\(parent.isEmpty ? "." : parent)/compare-\(stamp)")
                print(try RunStatistics.writeComparison(sets, to: dir))
                print("report: \(dir)/ (comparison.txt, comparison.json, comparison.csv, tidy.csv, throughput.svg)")
                return
            }
            let directory = directories[0], a = sets[0].runs
            if a.count == 1, FileManager.default.fileExists(atPath: "\(directory)/results.json") {
                try RunReport.render(a[0], to: directory, interfaces: interfaces)
                print(RunReport.summary(a[0]))
            } else {
                let names = loaded[0].names
                for (r, d) in zip(a, names) { try RunReport.render(r, to: "\(directory)/\(d)", interfaces: interfaces) }
                print(try RunStatistics.writeRepetitions(a, to: directory, names: names))
            }
        } catch { throw fail(error) }
    }
}

extension RunReport.Direction: ExpressibleByArgument {}
