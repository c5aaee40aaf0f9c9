import ArgumentParser
import Engine
import Foundation
import Hosts
import Planning
import TopologyModel

@main
struct Bench: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pathbed-bench",
        abstract: "Benchmarks that print figures. Build with -c release for meaningful numbers.",
        subcommands: [Model.self, Lab.self, Fidelity.self, TwoVMs.self, VMFidelity.self, Schedule.self, Selftest.self, SamplingCost.self]
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

/// Between measurements of a benchmark that catches signals: Ctrl-C ends it there (each step
/// has already removed what it made: `up` rolls back, the floor deletes its namespaces).
func stopIfInterrupted() throws {
    let signal = Interrupts.signal
    if signal != 0 { print("interrupted (signal \(signal)); everything the benchmark made is removed"); throw ExitCode(128 + signal) }
}

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

/// Building and tearing down generated linear labs: Pathbed beside the kernel's own floor for
/// the same objects (`ip -batch`), and Mininet's LinearTopo when it is installed.
struct Lab: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Time up and down of `pathbed generate linear N` labs (root), beside ip -batch and Mininet's LinearTopo(k=N, n=1).",
        discussion: """
            Part 1, per size, on a rested kernel: the objects of the lab (namespaces, veth pairs, bridges, \
            bridge ports) made by `ip -batch` processes (the floor), then `pathbed up`, `down`, and how long \
            the kernel went on freeing devices after `down` returned. Part 2: back-to-back up+down cycles \
            (Pathbed, the floor, Mininet) of one size. Waits for the kernel to rest between measurements.
            """)

    @Option(help: "Lab sizes for part 1, comma-separated.") var sizes = "100,300,1000"
    @Option(help: "Back-to-back cycles in part 2 (0: skip it).") var cycles = 10
    @Option(help: "Lab size for the cycles.") var cycleSize = 100
    @Option(help: "Mininet cycles in part 2 (each takes tens of seconds).") var mininetCycles = 2
    @Option(help: "Largest size Mininet is started at in part 1.") var mininetMax = 300
    @Flag(help: "Skip Mininet.") var noMininet = false
    @Flag(help: "Make every bridge its own kernel bridge (`merge: false` on every link), as before bridges were merged.") var separateBridges = false
    @Flag(help: "Print where Pathbed's up spends its time, by kind of operation.") var breakdown = false

    func run() throws {
        guard geteuid() == 0 else { throw ValidationError("the lab benchmark builds real labs: run it as root") }
        Interrupts.catchSignals()
        let mn = !noMininet && FileManager.default.isExecutableFile(atPath: "/usr/bin/mn")
        if !noMininet && !mn { print("(mininet not installed: apt-get install mininet; its columns are left out)") }
        print("Part 1: one up and down per size, on a rested kernel (seconds)")
        print(" size   devices   floor up   pathbed up   up / floor   pathbed down   kernel freeing after down   mininet start   mininet stop")
        for n in sizes.split(separator: ",").compactMap({ Int($0) }) {
            let t = try lab(n)
            let plan = Planner.plan(t)
            let floor = FloorBatch(plan)
            _ = KernelSettle.wait()
            let floorUp = try floor.cycle().create
            _ = KernelSettle.wait()
            try stopIfInterrupted()
            var controller = LabController.forLab(t)
            _ = try? controller.down(t.name)
            let timing = TimingExecutor(LocalExecutor())
            if breakdown { controller.executors["local"] = timing }
            var upS = 0.0, downS = 0.0, freeS = 0.0
            do {
                upS = try seconds { _ = try controller.up(t) }
                let start = DispatchTime.now().uptimeNanoseconds
                let r = try controller.down(t.name, waitForKernel: true)
                freeS = r.kernelFreeSeconds ?? 0
                downS = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 - freeS
            } catch {
                _ = try? controller.down(t.name)
                throw error
            }
            try stopIfInterrupted()
            var mnText = ""
            if mn && n <= mininetMax, let m = mininet(n, cycles: 1).first {
                mnText = String(format: "   %13.2f   %12.2f", m.0, m.1)
            } else if mn {
                mnText = "   (above --mininet-max)"
            }
            print(String(format: "%5d   %7d   %8.3f   %10.3f   %9.1fx   %12.3f   %25.2f", n, floor.devices, floorUp, upS, upS / floorUp, downS, freeS) + mnText)
            if breakdown {
                for (kind, v) in timing.timings.sorted(by: { $0.value.seconds > $1.value.seconds }) {
                    print(String(format: "         %-22@ %6d ops   %7.3f s   %6.1f us each", kind as NSString, v.count, v.seconds, v.seconds / Double(v.count) * 1e6))
                }
            }
        }
        if cycles > 0 { try cycleTable() }
        print(String(format: "peak RSS of this process %.0f MiB", peakRSSMiB()))
    }

    func lab(_ n: Int) throws -> Topology {
        let yaml = TopologyGenerator.linear(switches: n, TopologyGenerator.Options(name: "bench\(n)"))
        var t = try TopologyLoader.load(data: Data(yaml.utf8), file: "linear\(n).yaml")
        if separateBridges { t.links = t.links.map { var l = $0; l.merge = false; return l } }
        return t
    }

    /// Back-to-back up+down cycles, without waiting for the kernel in between.
    func cycleTable() throws {
        let n = cycleSize
        print("\nPart 2: \(cycles) back-to-back up+down cycles of linear \(n) (seconds per cycle)")
        let t = try lab(n)
        let floor = FloorBatch(Planner.plan(t))
        _ = KernelSettle.wait()
        var floorCycles: [Double] = []
        for _ in 0..<cycles { let c = try floor.cycle(); floorCycles.append(c.create + c.delete); try stopIfInterrupted() }
        _ = KernelSettle.wait()
        let controller = LabController.forLab(t)
        _ = try? controller.down(t.name)
        var pb: [(Double, Double)] = []
        do {
            for _ in 0..<cycles {
                let up = try seconds { _ = try controller.up(t) }
                let down = try seconds { _ = try controller.down(t.name) }
                pb.append((up, down))
                try stopIfInterrupted()
            }
        } catch {
            _ = try? controller.down(t.name)
            throw error
        }
        let pbCycles = pb.map { $0.0 + $0.1 }
        print(String(format: "  floor (ip -batch)   median %.3f   min %.3f   max %.3f", median(floorCycles), floorCycles.min()!, floorCycles.max()!))
        print(String(format: "  pathbed             median %.3f   min %.3f   max %.3f   (up median %.3f, down median %.3f)", median(pbCycles), pbCycles.min()!, pbCycles.max()!,
                     median(pb.map(\.0)), median(pb.map(\.1))))
        print(String(format: "  pathbed / floor     %.2fx", median(pbCycles) / median(floorCycles)))
        guard !noMininet, mininetCycles > 0, FileManager.default.isExecutableFile(atPath: "/usr/bin/mn") else { return }
        _ = KernelSettle.wait()
        try stopIfInterrupted()
        let m = mininet(n, cycles: mininetCycles).map { $0.0 + $0.1 }
        if m.isEmpty {
            print("  mininet             (its LinearTopo failed; see `mn --topo linear,\(n) --switch lxbr --controller none`, and `mn -c` removes what it left)")
        } else {
            print(String(format: "  mininet             median %.3f   min %.3f   max %.3f   (%d cycles)", median(m), m.min()!, m.max()!, m.count))
            print(String(format: "  mininet / pathbed   %.1fx", median(m) / median(pbCycles)))
        }
    }

    /// Mininet with Linux bridges and no controller, timed in its own process: (start, stop) per cycle.
    func mininet(_ n: Int, cycles: Int) -> [(Double, Double)] {
        let script = """
            import time, sys
            from mininet.net import Mininet
            from mininet.topo import LinearTopo
            from mininet.nodelib import LinuxBridge
            from mininet.log import setLogLevel
            setLogLevel('error')
            for _ in range(\(cycles)):
                net = Mininet(topo=LinearTopo(k=\(n), n=1), switch=LinuxBridge, controller=None, build=False)
                t0 = time.time(); net.build(); net.start(); t1 = time.time()
                net.stop(); t2 = time.time()
                print(t1 - t0, t2 - t1, flush=True)
            """
        let p = Process()
        // Debian's mininet package installs its module for the system's Python.
        p.executableURL = URL(fileURLWithPath: "/usr/bin/python3")
        p.arguments = ["-c", script]
        let out = Pipe()
        p.standardOutput = out
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return [] }
        let data = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        let rows = String(decoding: data, as: UTF8.self).split(separator: "\n").compactMap { line -> (Double, Double)? in
            let parts = line.split(separator: " ").compactMap { Double($0) }
            return parts.count == 2 ? (parts[0], parts[1]) : nil
        }
        // `mn -c` is not run here: it kills every ping on the machine and deletes any link named
        // like *-ethN. A failed start says so, and the user decides.
        return rows
    }
}

/// The kernel's floor for a lab's objects: its namespaces, veth pairs, bridges and bridge ports
/// made by `ip -batch` (processes of 400 lines for the host's namespace, one for the bridge
/// namespace, whose IPv6 is turned off first as Pathbed does).
/// The nodes' addresses and their interfaces' `up` are not in it: `ip -batch` works in one namespace.
struct FloorBatch {
    var root: [String] = []
    var bridges: [String] = []
    var namespaces: [String] = []
    var bridgeNamespace: String?
    var sysctls: [(String, String, String)] = []
    var devices = 0

    init(_ plan: LabPlan) {
        for op in plan.hosts.flatMap(\.operations) {
            switch op {
            case let .createNamespace(name, _):
                root.append("netns add \(name)"); namespaces.append(name)
            case let .createVeth(a, b, mtu, _):
                root.append("link add \(a.name) netns \(a.namespace) mtu \(mtu) type veth peer \(b.name) netns \(b.namespace) mtu \(mtu)")
                devices += 2
            case let .createBridge(r, _, _):
                bridges.append("link add \(r.name) type bridge"); bridgeNamespace = r.namespace; devices += 1
            case let .enslave(r, bridge):
                bridges.append("link set \(r.name) master \(bridge)")
            case let .setSysctl(ns, key, value):
                sysctls.append((ns, key, value))
            case let .setUp(r) where r.namespace == bridgeNamespace:
                bridges.append("link set \(r.name) up")
            default: break
            }
        }
    }

    /// Makes the objects; when that fails, removes what it made before saying so.
    func create() throws -> Double {
        do {
            return try seconds {
                // `ip -batch` keeps a descriptor open for every namespace a line names: past the
                // open-file limit (linear 10000 at 20,000) it fails, so it gets 400 lines a process.
                for start in stride(from: 0, to: root.count, by: Self.linesPerProcess) {
                    try Self.run(["ip", "-batch", "-"], input: Array(root[start..<min(start + Self.linesPerProcess, root.count)]))
                }
                if let ns = bridgeNamespace {
                    // IPv6 off in the bridge namespace, as Pathbed does (else its ports flood DAD/MLD).
                    let keys = sysctls.filter { $0.0 == ns }.map { "\($0.1)=\($0.2)" }
                    if !keys.isEmpty { try Self.run(["ip", "netns", "exec", ns, "sysctl", "-qw"] + keys) }
                    try Self.run(["ip", "-n", ns, "-batch", "-"], input: bridges)
                }
            }
        } catch {
            _ = try? delete()
            throw ValidationError("the floor's ip -batch failed (\(error)); what it made is removed. If a lab named like the benchmark's is up, `pathbed down` it first")
        }
    }

    static let linesPerProcess = 400

    /// Makes and removes the objects; whatever stops it midway (Ctrl-C kills `ip`) removes them.
    func cycle() throws -> (create: Double, delete: Double) {
        let c = try create()
        do { return (c, try delete()) } catch { _ = try? delete(); throw error }
    }

    /// Removes every namespace it makes (`-force`: past any that is not there).
    func delete() throws -> Double {
        try seconds { try Self.run(["ip", "-force", "-batch", "-"], input: namespaces.sorted { $0.count > $1.count }.map { "netns del \($0)" }) }
    }

    static func run(_ argv: [String], input lines: [String]? = nil) throws {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = argv
        let pipe = Pipe()
        if lines != nil { p.standardInput = pipe }
        try p.run()
        if let lines {
            pipe.fileHandleForWriting.write(Data((lines.joined(separator: "\n") + "\n").utf8))
            try pipe.fileHandleForWriting.close()
        }
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { throw ValidationError("`\(argv.joined(separator: " "))` exited with \(p.terminationStatus)") }
    }
}
