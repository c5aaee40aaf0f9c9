import ArgumentParser
import Engine
import Foundation
import Hosts
import Planning
import Report
import Runs
import TopologyModel

struct Verify: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Measure each shaped link against its profile: RTT, loss, and the rate each way under TCP.",
        discussion: """
            For each link between two nodes that a profile shapes: ping probes every 10 ms (the median RTT \
            against the profiles' delays, within 2 ms or 10 % plus their jitter; the lost probes' 95 % interval \
            must hold the configured loss), and one TCP flow each way with iperf3, the receiving interface's \
            bytes after its first second against the rate (90-103 %; not judged where there is loss). Builds the lab when it is not up \
            and removes it again (unless --keep); a lab that is up is measured as it is. Exits 1 when a figure \
            is outside tolerance. `pathbed run` does a shorter pass first (--no-verify skips it).
            """
    )
    @Argument(help: "Topology file.", completion: .file(extensions: ["yaml", "yml"])) var file: String
    @Option(help: "Ping probes per link (one every 10 ms).") var probes = 200
    @Option(help: "Seconds of TCP each way that are measured, after one left out.") var seconds = 3
    @Flag(help: "Leave a lab this command built up afterwards.") var keep = false
    @Flag(help: "Print the figures as JSON (results.json's `calibration`).") var json = false
    @OptionGroup var hosts: HostOptions

    func validate() throws {
        guard (10...10_000).contains(probes) else { throw ValidationError("--probes takes 10 to 10000 (100 s of probes)") }
        guard (1...600).contains(seconds) else { throw ValidationError("--seconds takes 1 to 600") }
    }

    func run() throws {
        let t = try loadTopology(file, sayWarnings: true)
        try LabController.requireRoot("verifying a lab", "verify \(file)")
        let lab: LabController
        do { lab = try hosts.controller(for: t, quiet: false) } catch { throw fail(error) }
        Interrupts.catchSignals()
        defer { Interrupts.restoreDefaults() }
        var built = false
        do {
            // A lab that is up is measured as it is: never changed to match an edited file.
            if case let .fromAnotherPlan(file) = lab.standing(t) {
                throw LabError("lab '\(t.name)' is up from a plan other than \(file)'s as it reads now (the file changed, or another file has the name)",
                               fix: "`pathbed up \(file)` to change the lab to the file first, or `pathbed down \(t.name)`; verify measures a lab as it is and changes nothing")
            }
            let up = try lab.up(t, asRun: true, progress: { printError("  \($0)") })
            built = up.outcome == .built
            printError("  lab \(t.name) " + (built ? "built for this verification" + (keep ? " (kept: --keep)" : "; it is removed afterwards") : "was up: measured as it is, and left up"))
            defer {
                lab.releaseRun(t.name)
                if built && !keep { _ = try? lab.down(t.name) }
            }
            var o = LinkVerifier.Options()
            o.probes = probes; o.seconds = seconds
            let (found, skipped) = try LinkVerifier(lab: lab, topology: t, options: o).verify(progress: { printError("  \($0)") })
            for s in skipped { printError("  \(s)") }
            if json {
                let encoder = JSONEncoder()
                encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
                print(String(decoding: try encoder.encode(found), as: UTF8.self))
            } else if found.isEmpty {
                print("no link between two nodes has a profile: nothing to verify")
            } else {
                print(RunReport.calibrationTable(found), terminator: "")
            }
            if let loud = RunReport.outsideTolerance(found) {
                printError(loud.trimmingCharacters(in: .newlines))
                throw ExitCode(1)
            }
        } catch let e as ExitCode {
            throw e
        } catch {
            throw fail(error)
        }
    }
}
