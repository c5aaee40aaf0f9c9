import ArgumentParser
import Engine
import Foundation
import TopologyModel

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pathbed-bench",
        abstract: "Benchmarks that print figures. Build with -c release for meaningful numbers.",
        subcommands: [Model.self]
    )
}

func seconds(_ body: () throws -> Void) rethrows -> Double {
    let start = DispatchTime.now().uptimeNanoseconds
    try body()
    return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
}

func peakRSSMiB() -> Double {
    var usage = rusage()
    getrusage(RUSAGE_SELF.rawValue, &usage)
    return Double(usage.ru_maxrss) / 1024
}

func median(_ xs: [Double]) -> Double { xs.sorted()[xs.count / 2] }

/// Validating and planning generated labs: the cost of `pathbed validate` and `pathbed plan`.
struct Model: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time validate + plan of generated linear labs.")

    @Option(help: "Lab sizes (nodes), comma-separated.")
    var sizes = "100,1000"

    @Option(help: "Repetitions per size; the median is printed.")
    var repetitions = 5

    func run() throws {
        print("size   yaml KiB   validate ms   plan ms   total ms   operations")
        for n in sizes.split(separator: ",").compactMap({ Int($0) }) {
            let yaml = Data(TopologyGenerator.linear(switches: n, TopologyGenerator.Options(name: "linear\(n)", rate: "100mbit")).utf8)
            var v: [Double] = [], p: [Double] = [], ops = 0
            for _ in 0..<max(1, repetitions) {
                var t: Topology!
                v.append(try seconds { t = try TopologyLoader.load(data: yaml, file: "linear\(n).yaml") })
                p.append(seconds { ops = Planner.plan(t).operationCount })
            }
            let (mv, mp) = (median(v) * 1000, median(p) * 1000)
            print(String(format: "%5d   %8.0f   %11.1f   %7.1f   %8.1f   %10d", n, Double(yaml.count) / 1024, mv, mp, mv + mp, ops))
        }
        print(String(format: "peak RSS %.0f MiB", peakRSSMiB()))
    }
}
