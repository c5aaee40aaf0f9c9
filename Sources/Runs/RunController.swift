import Engine
import Foundation
import Hosts
import NetlinkTypes
import Planning
import Report
import TopologyModel

/// `pathbed run`: the lab up, its workloads started together, the fault schedule played on one
/// monotonic clock, every interface's byte counters sampled every 100 ms, faults reverted, the
/// results written, the lab down. Ctrl-C reverts every fault and tears everything down.
public struct RunController {
    public var lab: LabController
    public var topology: Topology
    public var options: Options

    public struct Options: Sendable {
        /// Where the run directory goes.
        public var outDirectory: String
        /// Leave the lab up afterwards.
        public var keep = false
        public var sampleInterval = 0.1
        /// The run directory itself (default: OUT/LAB-TIME).
        public var directory: String?
        /// Added to `run.seed` (repetition k of a random schedule uses seed + k - 1).
        public var seedOffset = 0
        public init(outDirectory: String) { self.outDirectory = outDirectory }
    }

    public init(lab: LabController, topology: Topology, options: Options) {
        self.lab = lab; self.topology = topology; self.options = options
    }

    public struct Outcome: Sendable {
        public var directory: String
        public var results: RunResults
    }

    /// The run, phase by phase; whatever ends it, every fault is reverted and the lab removed
    /// (unless `keep`).
    public func run(progress: @escaping (String) -> Void) throws -> Outcome {
        let run = try RunSession(self, progress: progress)
        try run.checkKernels()
        let dir = try run.makeDirectory()
        try run.bringUp()
        defer { run.cleanUp() }
        let hosts = try run.describeHosts()
        try run.startMeasuring()
        try run.playSchedule()
        let results = try run.collect(hosts: hosts)
        try RunReport.write(results, to: dir)
        run.tearDown()
        return Outcome(directory: dir, results: results)
    }
}

/// One run's state, from its plan to its results.
final class RunSession: @unchecked Sendable {
    let controller: RunController
    let t: Topology
    let plan: LabPlan
    let workloads: WorkloadRunner
    let duration: Double
    let windows: [FaultWindow]
    let progress: (String) -> Void
    let started = Date()
    let clock = RunClock()
    let stop = StopFlag()
    let samples: SampleStore
    let env: RunEnvironment
    let player: SchedulePlayer
    let mptcp: MPTCPWatch
    var lab: LabController { controller.lab }
    private var isUp = false
    private var tornDown = false
    private var metadataBefore: [String: NamespaceMetadata] = [:]
    private var countersBefore: [String: [String: Int]] = [:]
    private var samplers: [Thread] = []
    private var monitors: [Thread] = []
    private var workloadThreads: [Thread] = []

    /// Plans the run: what each workload and fault does and when. Nothing is changed yet.
    init(_ c: RunController, progress: @escaping (String) -> Void) throws {
        controller = c; t = c.topology; self.progress = progress
        plan = Planner.plan(t)
        workloads = WorkloadRunner(t)
        duration = t.run.duration?.seconds ?? max(workloads.end, (t.schedule.map { $0.end.seconds }.max() ?? 0) + 5)
        guard duration > 0 else { throw LabError("nothing to run: no workloads, no schedule and no `run: { duration: }`", fix: "add a workload (docs/results.md)") }
        let (windows, notes) = Faults.windows(t, plan, runLength: duration, seedOffset: c.options.seedOffset)
        self.windows = windows
        for n in notes { progress(n) }
        samples = SampleStore(clock: clock)
        env = RunEnvironment(lab: c.lab, topology: t, clock: clock, stop: stop, progress: progress)
        player = SchedulePlayer(lab: c.lab, labName: t.name, windows: windows, clock: clock, stop: stop, progress: progress)
        mptcp = MPTCPWatch(lab: c.lab, topology: t, clock: clock, stop: stop)
    }

    /// Every host must offer the qdiscs the schedule's profile changes use, checked before `up`.
    func checkKernels() throws {
        var needs: [String: Set<Shaping.Kind>] = [:]
        for w in windows { for (h, k) in w.needs { needs[h, default: []].formUnion(k) } }
        var problems: [String] = []
        for (host, kinds) in needs.sorted(by: { $0.key < $1.key }) {
            guard let e = lab.executors[host] else { continue }
            let caps = e.capabilities(sysctls: [])
            if caps.isBlind { continue }
            for k in kinds.sorted(by: { $0.rawValue < $1.rawValue }) where !caps.has(k.rawValue) {
                let c = caps.checks.first { $0.name == k.rawValue }
                problems.append("    - \(host): \(k.rawValue): \(c?.detail ?? "missing"); \(c?.fix ?? "")")
            }
        }
        if !problems.isEmpty {
            throw LabError("the schedule changes profiles with qdiscs this kernel lacks:\n" + problems.joined(separator: "\n"),
                           fix: "`pathbed doctor` shows every check; nothing was changed")
        }
    }

    var directory = ""

    func makeDirectory() throws -> String {
        let stamp = ISO8601DateFormatter().string(from: started).replacingOccurrences(of: ":", with: "")
        let dir = controller.options.directory ?? "\(controller.options.outDirectory)/\(t.name)-\(stamp)"
        do { try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true) } catch {
            throw LabError("cannot create the run directory \(dir): \(error.localizedDescription)", fix: "choose another with --out")
        }
        directory = dir
        return dir
    }

    func bringUp() throws {
        let up = try lab.up(t, progress: progress)
        isUp = true
        progress("lab \(t.name) is up (\(String(format: "%.2f", up.seconds)) s)")
    }

    /// What the hosts are, their clocks against ours, and their settings before the run.
    func describeHosts() throws -> [String: RunResults.HostInfo] {
        var hosts: [String: RunResults.HostInfo] = [:]
        for (name, e) in lab.executors {
            let info = try e.info()
            hosts[name] = RunResults.HostInfo(kernel: info.kernel, hostname: info.hostname, version: info.version,
                                              clockOffsetSeconds: Double(e.clockOffsetNanoseconds) / 1e9, reach: lab.access[name]?.label ?? "this machine")
        }
        metadataBefore = HostMetadata.collect(lab: lab, plan: plan)
        return hosts
    }

    /// Workloads prepared (servers listening), samplers and MPTCP monitors started, then the
    /// barrier: the run's clock starts and every workload with it.
    func startMeasuring() throws {
        try workloads.prepare(env)
        // Samplers, one connection each, once the workloads are prepared (that can take long);
        // they sample until the run stops them.
        for h in plan.hosts where !h.namespaces.isEmpty {
            let main = try lab.executor(h.host)
            let e = Unchecked(main.sideConnection(stop: { [stop] in stop.isSet }))
            // Timestamps come in the host's clock; the main connection's handshake measured its offset.
            let offset = main.clockOffsetNanoseconds
            let (host, namespaces, interval, samples, stop) = (h.host, h.namespaces, controller.options.sampleInterval, samples, stop)
            let end = duration + 600
            let th = Thread {
                try? e.value.sampleCounters(namespaces, interval: interval, duration: end, stop: { stop.isSet }) { s in
                    samples.add(host: host, hostClock: s.clock, offset: offset, s.counters)
                }
                e.value.close()
            }
            samplers.append(th)
        }
        for th in samplers { th.start() }
        countersBefore = mptcp.counters()
        monitors = mptcp.startMonitors(until: duration + 1)
        // The monitors must be listening before the first connection is made.
        if !monitors.isEmpty { Thread.sleep(forTimeInterval: 1) }
        clock.start()
        progress("run started: \(String(format: "%.0f", duration)) s, \(workloads.plugins.count) workloads, \(windows.count) faults")
        workloadThreads = workloads.start(env)
    }

    /// The schedule, played until the run's end; a progress line every 5 s.
    func playSchedule() throws {
        var lastNote = -10.0
        while clock.now < duration {
            if Interrupts.signal != 0 { stop.set(); throw LabError("run interrupted (signal \(Interrupts.signal)): every fault was reverted and the lab removed") }
            if try player.playDue() { continue }
            if clock.now - lastNote >= 5 {
                lastNote = clock.now
                progress(String(format: "%6.1f s of %.0f%@%@", clock.now, duration, workloads.liveSummary() + samples.liveSummary(), player.upcoming))
            }
            usleep(2_000)
        }
        try player.finish()
    }

    /// Waits for the workloads, stops the measurements, and puts the results together.
    func collect(hosts: [String: RunResults.HostInfo]) throws -> RunResults {
        for th in workloadThreads { while th.isExecuting { usleep(50_000) } }
        let countersAfter = mptcp.counters()
        stop.set()
        for th in samplers + monitors { while th.isExecuting { usleep(20_000) } }
        workloads.stop(env)

        let o = controller.options
        var results = RunResults(pathbed: pathbedVersion, lab: t.name, file: t.file, started: started, durationSeconds: duration, hosts: hosts,
                                 sampleIntervalSeconds: o.sampleInterval, events: player.book.events.filter { $0.actual >= 0 })
        results.interfaces = samples.series(o.sampleInterval)
        results.rawCounters = samples.raw()
        results.workloads = workloads.results
        results.mptcpEvents = mptcp.events
        results.mptcpCounters = MPTCPWatch.growth(before: countersBefore, after: countersAfter)
        results.metadataBefore = metadataBefore
        results.metadataAfter = HostMetadata.collect(lab: lab, plan: plan)
        results.seed = t.run.seed.map { $0 &+ o.seedOffset }
        results.computeImpacts()
        results.computePathUse()
        return results
    }

    /// The lab down, unless the run keeps it.
    func tearDown() {
        if !controller.options.keep && isUp { _ = try? lab.down(t.name) }
        tornDown = true
    }

    /// Whatever ended the run: everything stopped, every fault reverted, the lab removed.
    func cleanUp() {
        stop.set()
        for f in player.revertEverything() { progress("could not revert: \(f)") }
        workloads.stop(env)
        if !tornDown { tearDown() }
    }
}
