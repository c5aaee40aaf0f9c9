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
        /// Measure each shaped link first (a short `pathbed verify`), into results' `calibration`.
        public var verify = true
        /// What results say of the verification (`before repetition 1 of 3`, or why there was none).
        public var verifyNote: String?
        /// The caller removes the lab when this run fails, though `keep` (the repetitions of one
        /// lab): what an interrupted run says of the lab.
        public var callerRemovesLabOnFailure = false
        /// Packet captures asked on the command line (`--capture`): links (nil: all) added to
        /// the file's `capture: true` links; the snap length and limit (when given) win over the file's.
        public var capture: CaptureOptions?
        public var captureSnaplen: Int?
        public var captureLimitBytes: Int?
        public var captureFilter: String?
        /// `--no-capture`: not even the links the file captures.
        public var noCapture = false
        public init(outDirectory: String) { self.outDirectory = outDirectory }
    }

    public init(lab: LabController, topology: Topology, options: Options) {
        self.lab = lab; self.topology = topology; self.options = options
    }

    public struct Outcome: Sendable {
        public var directory: String
        public var results: RunResults
        /// False when something went wrong: a workload failed, a host was lost, the run ended
        /// early (`results.problems` and `endedEarly` say what).
        public var succeeded: Bool { results.endedEarly == nil && (results.problems ?? []).isEmpty }
    }

    /// A run that ended early (a signal, a lost host, an error): what it measured until then is
    /// written all the same, in `directory`.
    public struct Failed: Error, CustomStringConvertible {
        public var error: any Error
        public var directory: String?
        public var description: String {
            "\(error)" + (directory.map { "\n    what was measured until then: \($0)/ (results.json, plots, summary.txt)" } ?? "")
        }
    }

    /// The run, phase by phase; whatever ends it, every fault is reverted, every program it
    /// started ends, the lab is removed (unless `keep`), and what was measured is written.
    public func run(progress: @escaping (String) -> Void) throws -> Outcome {
        let run = try RunSession(self, progress: progress)
        try run.checkKernels()
        let dir = try run.makeDirectory()
        do {
            try run.bringUp()
        } catch {
            try? FileManager.default.removeItem(atPath: dir)
            throw error
        }
        defer { run.cleanUp() }
        var hosts: [String: RunResults.HostInfo] = [:]
        do {
            hosts = try run.describeHosts()
            if options.verify { try run.verifyLinks() }
            try run.startMeasuring()
            try run.playSchedule()
            // Fault plugins still reverting (one given its grace, then killed) are waited for:
            // what they did or failed to do is in the results.
            run.revertFaults()
            let results = run.collect(hosts: hosts, endedEarly: nil)
            try RunReport.write(results, to: dir)
            unlink("\(dir)/\(RunDirectory.inProgress)")
            run.tearDown()
            return Outcome(directory: dir, results: results)
        } catch {
            // Everything is stopped and every fault reverted first (nothing more is measured,
            // and the reverts are in the results), then what was measured is written.
            let endedAt = run.clock.now
            run.stopEverything()
            run.revertFaults()
            // A signal is why, whatever it broke on its way (a server that did not start).
            let why = Interrupts.signal != 0 ? "run interrupted (signal \(Interrupts.signal))" : (error as? LabError)?.message ?? "\(error)"
            let results = run.collect(hosts: hosts, endedEarly: why, at: endedAt)
            let written = (try? RunReport.write(results, to: dir)) != nil
            if written { unlink("\(dir)/\(RunDirectory.inProgress)") }
            let shown: any Error = Interrupts.signal != 0 && !"\(error)".contains("interrupted")
                ? LabError("run interrupted (signal \(Interrupts.signal)): every fault was reverted and " + (options.keep && !options.callerRemovesLabOnFailure ? "the lab kept (--keep)" : "the lab removed")) : error
            throw Failed(error: shown, directory: written ? dir : nil)
        }
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
    /// Packet captures, when the run takes them.
    let capture: PacketCapture?
    var lab: LabController { controller.lab }
    private var isUp = false
    /// Processes in the lab's namespaces per host when it came up.
    private var before: [String: [Int32]] = [:]
    private var tornDown = false
    /// What went wrong during the run, in the order it was seen.
    let problems = ProblemList()
    private var metadataBefore: [String: NamespaceMetadata] = [:]
    private var calibration: [RunResults.Calibration]?
    private var verifySkipped: [String] = []
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
        player = SchedulePlayer(lab: c.lab, labName: t.name, windows: windows, clock: clock, stop: stop, problems: problems, progress: progress)
        mptcp = MPTCPWatch(lab: c.lab, topology: t, clock: clock, stop: stop)
        // Capture points are checked with the rest, before any change.
        if let o = CaptureOptions.effective(c.topology, c.options) {
            capture = PacketCapture(lab: c.lab, labName: c.topology.name, points: try PacketCapture.points(c.topology, o), options: o, stop: stop)
        } else {
            capture = nil
        }
    }

    /// Every host must offer the qdiscs the schedule's profile changes use, checked before `up`.
    func checkKernels() throws {
        var needs: [String: Set<Shaping.Kind>] = [:]
        // Which faults of the file need each kind, with their lines: the error names them.
        var neededBy: [String: [String]] = [:]
        for w in windows {
            for (h, k) in w.needs {
                needs[h, default: []].formUnion(k)
                let who = "schedule[\(w.event)] (\(w.kind.rawValue)" + (t.schedule.indices.contains(w.event) ? ", \(t.schedule[w.event].location))" : ")")
                for kind in k where !neededBy["\(h) \(kind.rawValue)", default: []].contains(who) { neededBy["\(h) \(kind.rawValue)", default: []].append(who) }
            }
        }
        var problems: [String] = []
        for (host, kinds) in needs.sorted(by: { $0.key < $1.key }) {
            guard let e = lab.executors[host] else { continue }
            let caps = e.capabilities(sysctls: [])
            if caps.isBlind { continue }
            for k in kinds.sorted(by: { $0.rawValue < $1.rawValue }) where !caps.has(k.rawValue) {
                let c = caps.checks.first { $0.name == k.rawValue }
                let who = neededBy["\(host) \(k.rawValue)"] ?? []
                problems.append("    - \(host): \(k.rawValue): \(c?.detail ?? "missing")" + (who.isEmpty ? "" : "; needed by " + who.prefix(4).joined(separator: ", ") + (who.count > 4 ? " and \(who.count - 4) more" : "")) + "; \(c?.fix ?? "")")
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
        directory = try RunDirectory.make(controller.options.directory ?? "\(controller.options.outDirectory)/\(t.name)-\(stamp)")
        // Says what the directory is until the results replace it: a run killed with SIGKILL
        // can write nothing more, and leaves this.
        let note = "run of lab \(t.name) (\(t.file)) started \(ISO8601DateFormatter().string(from: started)) by pid \(getpid()).\n"
            + "Its results (results.json, plots, summary.txt) are written here when it ends, whatever ends it,\n"
            + "and this file is removed then. If it is still here and the run is gone, the run was killed\n"
            + "(kill -9) before it could write anything: `pathbed up` or `down` of the lab cleans up after it.\n"
        try? note.write(toFile: "\(directory)/\(RunDirectory.inProgress)", atomically: true, encoding: .utf8)
        return directory
    }

    func bringUp() throws {
        let up = try lab.up(t, asRun: true, progress: progress)
        isUp = true
        // What runs in the lab before the run starts anything (a user's own programs, under
        // --keep): spared at its end, when everything else it left in the lab is stopped.
        for h in plan.hosts { before[h.host] = (try? lab.executor(h.host).processes(inLab: t.name)) ?? [] }
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

    /// The pre-flight: each shaped link between two nodes measured, before anything else runs.
    func verifyLinks() throws {
        let t0 = Date()
        let (found, skipped) = try LinkVerifier(lab: lab, topology: t, options: .preflight).verify(progress: progress)
        calibration = found
        verifySkipped = skipped
        for s in skipped { progress(s) }
        let outside = found.filter(\.isOutside).count
        progress("links verified in \(String(format: "%.1f", Date().timeIntervalSince(t0))) s: \(found.count) figures, "
                 + (outside == 0 ? "all within tolerance" : "\(outside) OUTSIDE TOLERANCE (the summary lists them)"))
    }

    /// Workloads prepared (servers listening), samplers and MPTCP monitors started, then the
    /// barrier: the run's clock starts and every workload with it.
    func startMeasuring() throws {
        try workloads.prepare(env)
        // Samplers, one connection each, once the workloads are prepared (that can take long);
        // they sample until the run stops them.
        // Sockets are read only where a workload's connections end.
        let socketNamespaces = Set(workloads.claims.flatMap { [t.namespace(of: $0.client), t.namespace(of: $0.server)] })
        for h in plan.hosts where !h.namespaces.isEmpty {
            let main = try lab.executor(h.host)
            let e = Unchecked(main.sideConnection(stop: { [stop] in stop.isSet }))
            // Timestamps come in the host's clock; the main connection's handshake measured its offset.
            let offset = main.clockOffsetNanoseconds
            let (host, namespaces, interval, samples, stop, problems, clock) = (h.host, h.namespaces, controller.options.sampleInterval, samples, stop, problems, clock)
            let end = duration + 600
            let th = Thread {
                do {
                    try e.value.sampleCounters(namespaces, sockets: namespaces.filter(socketNamespaces.contains), interval: interval, duration: end, stop: { stop.isSet }) { s in
                        samples.add(host: host, hostClock: s.clock, offset: offset, s.counters, health: s.health, sockets: s.sockets)
                    }
                } catch {
                    // A host that stops answering mid-run: the run goes on, and says so.
                    if !stop.isSet { problems.add(String(format: "host %@ stopped answering at %.1f s: %@", host, clock.now, "\(error)")) }
                }
                e.value.close()
            }
            samplers.append(th)
        }
        for th in samplers { th.start() }
        countersBefore = mptcp.counters()
        try capture?.start(until: duration + grace + 30, progress: progress)
        monitors = mptcp.startMonitors(until: duration + 1)
        // The monitors must be listening before the first connection is made.
        if !monitors.isEmpty { Thread.sleep(forTimeInterval: 1) }
        clock.start()
        func count(_ n: Int, _ what: String) -> String { "\(n) \(what)\(n == 1 ? "" : "s")" }
        progress("run started: \(String(format: "%.0f", duration)) s, \(count(workloads.plugins.count, "workload")), \(count(windows.count, "fault"))")
        workloadThreads = workloads.start(env)
    }

    /// The schedule, played until the run's end; a progress line every 5 s.
    func playSchedule() throws {
        var lastNote = -10.0
        while clock.now < duration {
            if Interrupts.signal != 0 { stop.set(); throw LabError("run interrupted (signal \(Interrupts.signal)): every fault was reverted and " + (controller.options.keep && !controller.options.callerRemovesLabOnFailure ? "the lab kept (--keep)" : "the lab removed")) }
            if try player.playDue() { continue }
            if clock.now - lastNote >= 5 {
                lastNote = clock.now
                progress(String(format: "%6.1f s of %.0f%@%@", clock.now, duration, workloads.liveSummary() + samples.liveSummary(), player.upcoming))
            }
            usleep(2_000)
        }
        try player.finish()
    }

    /// How long after the run's end its workloads may take to finish (a transfer under way
    /// finishes, at most 120 s): then everything still running is stopped.
    var grace: Double { workloads.plugins.contains { $0 is TransferWorkload } ? 130 : 15 }

    /// Waits (at most until the run's end and its grace) for the workloads, stops the
    /// measurements, and puts the results together. Never waits on a program: what does not
    /// end in time is stopped. With `endedEarly`, everything was stopped already.
    func collect(hosts: [String: RunResults.HostInfo], endedEarly: String?, at endedAt: Double? = nil) -> RunResults {
        let deadline = duration + grace
        // How long each step after the run's end takes, said when they add up to seconds.
        var steps: [(String, Double)] = []
        var mark = clock.now
        func step(_ name: String) { let now = clock.now; steps.append((name, now - mark)); mark = now }
        while workloadThreads.contains(where: \.isExecuting), clock.now < deadline, Interrupts.signal == 0, !stop.isSet { usleep(50_000) }
        step("workloads finishing")
        if workloadThreads.contains(where: \.isExecuting), endedEarly == nil {
            problems.add(Interrupts.signal != 0 ? "stopped by signal \(Interrupts.signal) while the workloads finished"
                         : String(format: "workloads still running %.0f s after the run's end were stopped", grace))
        }
        let countersAfter = endedEarly == nil ? mptcp.counters() : [:]
        step("MPTCP counters")
        stopEverything()
        step("stopping the workloads and samplers")
        let o = controller.options
        // A run that ended early lasted until it was stopped, not its planned length.
        let lasted = endedEarly == nil ? duration : min(duration, max(0, endedAt ?? clock.now))
        var results = RunResults(pathbed: pathbedVersion, lab: t.name, file: t.file, started: started, durationSeconds: lasted, hosts: hosts,
                                 sampleIntervalSeconds: o.sampleInterval, events: player.book.events.filter { $0.actual >= 0 })
        results.interfaces = samples.series(o.sampleInterval)
        results.rawCounters = samples.raw()
        results.workloads = workloads.results
        if endedEarly != nil {
            // A workload the early end stopped says so, rather than show a bare exit status.
            // (Its own error then, "the server has terminated", is what the stop did to it.)
            for i in results.workloads.indices {
                let w = results.workloads[i]
                guard w.error != nil || w.exitCode != 0, (w.ended ?? lasted) >= lasted - 0.5 else { continue }
                results.workloads[i].error = String(format: "stopped at %.1f s, when the run ended early (exit %d", lasted, w.exitCode)
                    + (w.error.map { ": \($0))" } ?? ")")
            }
        }
        results.mptcpEvents = mptcp.events
        let sockets = SubflowWatch.subflows(samples.sockets(), topology: t, claims: workloads.claims)
        results.subflows = sockets.subflows
        results.connections = sockets.connections.isEmpty ? nil : sockets.connections
        results.profiles = t.profiles.isEmpty ? nil : Dictionary(t.profiles.map { ($0.name, $0.settingsText) }, uniquingKeysWith: { a, _ in a })
        results.subflowNote = sockets.note
        results.mptcpCounters = MPTCPWatch.growth(before: countersBefore, after: countersAfter)
        results.metadataBefore = metadataBefore
        step("subflows")
        results.metadataAfter = endedEarly == nil ? HostMetadata.collect(lab: lab, plan: plan) : nil
        step("settings and qdiscs")
        results.seed = t.run.seed.map { $0 &+ o.seedOffset }
        results.endedEarly = endedEarly
        results.settings = HostMetadata.settings(t, metadataBefore)
        results.calibration = calibration
        let note = [controller.options.verifyNote ?? (controller.options.verify ? nil : "not verified: run --no-verify")].compactMap { $0 } + verifySkipped
        results.calibrationNote = note.isEmpty ? nil : note.joined(separator: "; ")
        results.health = RunHealth.compute(samples.health(), duration: min(lasted, duration))
        results.queues = ShapedQueue.of(t).map {
            RunResults.Queue(link: $0.link, end: $0.end, host: $0.host, profile: $0.profile, rule: $0.rule, packets: $0.packets, forDelay: $0.forDelay, milliseconds: $0.milliseconds, during: $0.during)
        }
        results.computeImpacts()
        results.computePathUse()
        if let capture {
            let (captures, trouble) = capture.finish(into: directory)
            step("fetching the captures")
            results.captures = captures
            for p in trouble { problems.add(p) }
            if !captures.isEmpty {
                let (summary, problem) = CaptureAnalysis.summarize("\(directory)/capture.pcapng")
                results.captureSummary = summary
                if let problem { problems.add(problem) }
                step("tshark's summary")
            }
        }
        var found = problems.all
        for w in results.workloads {
            if let e = w.error, endedEarly == nil || !e.contains("when the run ended early") { found.append("workload \(w.name) failed: \(e)") }
        }
        results.problems = found.isEmpty ? nil : found
        if steps.map(\.1).reduce(0, +) > 5 {
            progress("after the run: " + steps.filter { $0.1 >= 0.05 }.map { String(format: "%@ %.1f s", $0.0, $0.1) }.joined(separator: ", "))
        }
        let warnings = TopologyLint.warnings(t).map { "\($0.location): \($0.message)" + ($0.hint.map { " (fix: \($0))" } ?? "") }
        results.warnings = warnings.isEmpty ? nil : warnings
        return results
    }

    /// Stops the workloads, the samplers and the monitors, and waits (bounded) for their threads.
    func stopEverything() {
        stop.set()
        workloads.stop(env)
        let deadline = monotonicNanoseconds() + 10_000_000_000
        for th in workloadThreads + samplers + monitors { while th.isExecuting, monotonicNanoseconds() < deadline { usleep(20_000) } }
    }

    /// Every fault in force undone now (the schedule's own reverts are recorded as they happen;
    /// these, when the run ends early, are recorded here).
    func revertFaults() {
        for f in player.revertEverything() { progress("could not revert: \(f)") }
    }

    /// The lab down, unless the run keeps it; a kept lab is left with no process of the run's
    /// (one that cleared its environment and left its group is found in the lab's namespaces).
    func tearDown() {
        if controller.options.keep && isUp {
            for h in plan.hosts {
                let n = (try? lab.executor(h.host).stopProcesses(inLab: t.name, sparing: before[h.host] ?? [])) ?? 0
                if n > 0 { progress("\(h.host): stopped \(n) processes the run left in the lab") }
            }
        }
        if !controller.options.keep && isUp {
            lab.releaseRun(t.name)
            _ = try? lab.down(t.name)
        }
        tornDown = true
    }

    /// Whatever ended the run: everything stopped, every fault reverted, every program it
    /// started ended (also those that left their process group), the lab removed or released.
    func cleanUp() {
        stop.set()
        revertFaults()
        workloads.stop(env)
        CommandRunner.endLeftovers()
        if !tornDown { tearDown() }
        lab.releaseRun(t.name)
    }
}

/// Problems seen during a run, from any thread.
final class ProblemList: @unchecked Sendable {
    private let lock = NSLock()
    private var items: [String] = []
    func add(_ p: String) { lock.withLock { if items.count < 200 { items.append(p) } } }
    var all: [String] { lock.withLock { items } }
}

/// A run's own directory.
public enum RunDirectory {
    /// The file a run directory holds while its run is under way.
    public static let inProgress = "RUNNING.txt"

    /// Makes `base` (and what is missing above it), or `base-2`, `base-3`... when it exists: a
    /// run never writes into another run's directory (two started in the same second).
    public static func make(_ given: String) throws -> String {
        // `out/` is `out`; a file (or /dev/null) is no place for a run.
        let base = given.count > 1 && given.hasSuffix("/") ? (given as NSString).standardizingPath : given
        let parent = (base as NSString).deletingLastPathComponent
        var st = stat()
        if lstat(base, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR {
            throw LabError("cannot write into \(base): it exists and is not a directory", fix: "give a directory (it is made if missing)")
        }
        if !parent.isEmpty, stat(parent, &st) == 0, (st.st_mode & S_IFMT) != S_IFDIR {
            throw LabError("cannot write runs into \(parent): it is a file, not a directory", fix: "give --out a directory (it is made if missing)")
        }
        if !parent.isEmpty {
            do { try FileManager.default.createDirectory(atPath: parent, withIntermediateDirectories: true) } catch {
                throw LabError("cannot create \(parent): \(error.localizedDescription)", fix: "choose another with --out")
            }
        }
        for k in 1...1000 {
            let dir = k == 1 ? base : "\(base)-\(k)"
            if mkdir(dir, 0o755) == 0 { return dir }
            if errno != EEXIST { throw LabError("cannot create the run directory \(dir): \(String(cString: strerror(errno)))", fix: "choose another with --out") }
        }
        throw LabError("cannot find a free name for the run directory \(base)", fix: "choose another with --out")
    }
}
