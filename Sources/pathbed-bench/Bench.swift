import ArgumentParser
import Engine
import Foundation
import TopologyModel

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pathbed-bench",
        abstract: "Benchmarks that print figures. Build with -c release for meaningful numbers.",
        subcommands: [Model.self, Lab.self, Fidelity.self, TwoVMs.self, VMFidelity.self, Schedule.self]
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

/// Building and tearing down generated linear labs, beside Mininet's LinearTopo when installed.
struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time up and down of `pathbed generate linear N` labs (root), and Mininet's LinearTopo(k=N, n=1).")

    @Option(help: "Lab sizes, comma-separated.")
    var sizes = "100,1000"

    @Flag(help: "Skip the Mininet comparison.")
    var noMininet = false

    func run() throws {
        guard geteuid() == 0 else { throw ValidationError("the lab benchmark builds real labs: run it as root") }
        print("size   pathbed up s   pathbed down s   mininet start s   mininet stop s   up x   down x")
        for n in sizes.split(separator: ",").compactMap({ Int($0) }) {
            let yaml = TopologyGenerator.linear(switches: n, TopologyGenerator.Options(name: "bench\(n)"))
            let t = try TopologyLoader.load(data: Data(yaml.utf8), file: "linear\(n).yaml")
            let controller = LabController.forLab(t)
            _ = try? controller.down(t.name)
            var upS = 0.0, downS = 0.0
            do {
                upS = try seconds { _ = try controller.up(t) }
                downS = try seconds { _ = try controller.down(t.name) }
                // The kernel frees devices of deleted namespaces in the background; let it finish before the next run.
                sleep(2)
            } catch {
                _ = try? controller.down(t.name)
                throw error
            }
            var mn: (Double, Double)?
            if !noMininet { mn = mininet(n) }
            let mnText = mn.map { String(format: "%15.2f   %14.2f   %4.0f   %6.0f", $0.0, $0.1, $0.0 / upS, $0.1 / downS) } ?? (noMininet ? "" : FileManager.default.isExecutableFile(atPath: "/usr/bin/mn")
                ? "   (mininet is installed but its LinearTopo failed to start; try `mn --topo linear,\(n) --switch lxbr --controller none`)"
                : "   (mininet not installed: apt-get install mininet)")
            print(String(format: "%5d   %12.3f   %14.3f   ", n, upS, downS) + mnText)
        }
    }

    /// Mininet with Linux bridges and no controller, timed in its own process.
    func mininet(_ n: Int) -> (Double, Double)? {
        let script = """
            import time, sys
            from mininet.net import Mininet
            from mininet.topo import LinearTopo
            from mininet.node import LinuxBridge
            from mininet.log import setLogLevel
            setLogLevel('error')
            net = Mininet(topo=LinearTopo(k=\(n), n=1), switch=LinuxBridge, controller=None, build=False)
            t0 = time.time(); net.build(); net.start(); t1 = time.time()
            net.stop(); t2 = time.time()
            print(t1 - t0, t2 - t1)
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return nil }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let parts = String(decoding: data, as: UTF8.self).split(separator: " ").compactMap { Double($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
        guard p.terminationStatus == 0, parts.count == 2 else { _ = try? Process.run(URL(fileURLWithPath: "/usr/bin/env"), arguments: ["mn", "-c"]); return nil }
        return (parts[0], parts[1])
    }
}
