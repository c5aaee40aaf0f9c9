import ArgumentParser
import Engine
import Foundation
import Hosts
import Planning
import TopologyModel

/// What watching a lab costs: this process's CPU while it samples every interface's counters
/// (and, about once a second, the host's health: CPU, shaped queues) of a generated lab, as
/// `pathbed run` and the agent do.
struct SamplingCost: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sampling",
        abstract: "Pathbed's CPU while sampling a lab's counters and health, per 100 interfaces (root).",
        discussion: "Builds linear labs of the given sizes (every link shaped, so every interface has a qdisc), samples them as a run does, and prints this process's CPU time as a share of one CPU, per 100 interfaces. Goal: under 2 % of one CPU per 100 interfaces at 100 ms."
    )
    @Option(help: "Lab sizes (switches of a linear lab; about 4 interfaces each), comma-separated.") var sizes = "25,100"
    @Option(help: "Seconds of sampling per lab.") var seconds = 10.0
    @Option(help: "Seconds between rounds.") var interval = 0.1
    @Flag(help: "Also read every namespace's TCP sockets each round (INET_DIAG), as a run does in its workloads' nodes.") var sockets = false

    func validate() throws {
        guard (1...3600).contains(seconds), (0.01...10).contains(interval) else { throw ValidationError("--seconds 1-3600, --interval 0.01-10") }
        guard sizes.split(separator: ",").allSatisfy({ Int($0).map { (1...1000).contains($0) } ?? false }) else { throw ValidationError("--sizes takes numbers from 1 to 1000") }
    }

    func run() throws {
        try LabController.requireRoot("building labs", "pathbed-bench sampling")
        Interrupts.catchSignals()
        defer { Interrupts.restoreDefaults() }
        print("interfaces   rounds   health readings   CPU, % of one CPU   per 100 interfaces   ms per round")
        for n in sizes.split(separator: ",").compactMap({ Int($0) }) {
            let yaml = TopologyGenerator.linear(switches: n, TopologyGenerator.Options(name: "sample\(n)", rate: "100mbit"))
            let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "linear\(n).yaml")
            let controller = LabController.forLab(t)
            _ = try? controller.down(t.name)
            _ = try controller.up(t)
            defer { _ = try? controller.down(t.name) }
            let namespaces = Planner.plan(t).hosts.flatMap(\.namespaces)
            let e = LocalExecutor(host: "local")
            var rounds = 0, health = 0, interfaces = 0
            let before = cpuSeconds(), t0 = monotonicNanoseconds()
            try e.sampleCounters(namespaces, sockets: sockets ? namespaces : [], interval: interval, duration: seconds, stop: { false }) { s in
                rounds += 1
                if s.health != nil { health += 1 }
                interfaces = s.counters.count
            }
            let cpu = cpuSeconds() - before, wall = Double(monotonicNanoseconds() - t0) / 1e9
            let share = cpu / wall * 100
            print(String(format: "%10d   %6d   %15d   %17.2f   %18.2f   %12.2f", interfaces, rounds, health, share, share / Double(max(interfaces, 1)) * 100, cpu / Double(max(rounds, 1)) * 1000))
            try stopIfInterrupted()
        }
    }

    /// This process's CPU time (user and system), seconds.
    func cpuSeconds() -> Double {
        var u = rusage()
        getrusage(RUSAGE_SELF.rawValue, &u)
        return Double(u.ru_utime.tv_sec + u.ru_stime.tv_sec) + Double(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6
    }
}
