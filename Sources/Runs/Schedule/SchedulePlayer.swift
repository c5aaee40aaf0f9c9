import Engine
import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// Plays a run's fault schedule on the run's clock. Built-in changes go to their hosts `lead`
/// seconds early, and each host makes them at the planned moment by its own clock: the time a
/// request takes to get there (a few hundred milliseconds into a VM under emulation) does not
/// move them. What is in force is journaled until it is undone, so that a killed run's faults
/// are undone by the next `up`.
final class SchedulePlayer: @unchecked Sendable {
    /// How long before its time a change is sent to its hosts.
    static let lead = 0.5

    let lab: LabController
    let labName: String
    let windows: [FaultWindow]
    let clock: RunClock
    let stop: StopFlag
    let progress: (String) -> Void
    let dispatcher = ChangeDispatcher()
    let book: EventBook
    private var playbook: Playbook
    private let lock = NSLock()
    /// Built-in changes in force, by window.
    private var active: [Int: [HostAction]] = [:]
    /// External fault plugins running, by window, and every one started.
    private var running: [Int: ExternalPlugin.Process] = [:]
    private var external: [ExternalPlugin.Process] = []
    /// The threads that talk to external fault plugins: one slow or broken plugin holds up no
    /// other step of the schedule.
    private var pluginThreads: [Thread] = []
    /// Faults not injected, or not confirmed reverted: each is a problem of the run.
    let problems: ProblemList

    init(lab: LabController, labName: String, windows: [FaultWindow], clock: RunClock, stop: StopFlag, problems: ProblemList = ProblemList(),
         progress: @escaping (String) -> Void) {
        self.lab = lab; self.labName = labName; self.windows = windows; self.clock = clock; self.stop = stop; self.progress = progress
        self.problems = problems
        playbook = Playbook(windows, lead: Self.lead)
        book = EventBook(windows.map {
            RunResults.Event(label: $0.label, kind: $0.kind.rawValue, planned: $0.start, actual: -1, applied: -1, revertPlanned: $0.end, revertActual: nil)
        })
    }

    /// The next step's text for the progress line.
    var upcoming: String {
        playbook.upcoming.map { String(format: ", next: %@ %@ at %.0f s", windows[$0.window].label, $0.kind == .revert ? "revert" : "inject", $0.at) } ?? ""
    }

    /// Makes every step that is due now; false when none was.
    func playDue() throws -> Bool {
        if let failure = dispatcher.failure { throw failure }
        guard let step = playbook.next(at: clock.now) else { return false }
        let w = windows[step.window]
        switch step.kind {
        case let .change(k):
            if let launch = w.external {
                startExternal(step.window, launch)
            } else {
                let actions = w.changes[k].actions
                lock.withLock {
                    active[step.window, default: []] = (active[step.window] ?? []).filter { a in !actions.contains { $0.host == a.host && $0.action.key == a.action.key } } + actions
                }
                journal()
                try dispatch(step.window, actions, inject: true, at: step.at, first: k == 0)
            }
        case .revert:
            if let p = lock.withLock({ running.removeValue(forKey: step.window) }) {
                onPluginThread { [self] in revertExternal(step.window, p) }
            } else {
                // Faults that overlap on one object compose: what another window still holds
                // there is made again instead of undone (a link stays down, the other window's
                // profile goes back on), and only what no window holds is reverted.
                let (revert, reapply) = lock.withLock { () -> ([HostAction], [HostAction]) in
                    active[step.window] = nil
                    var revert: [HostAction] = [], reapply: [HostAction] = []
                    for a in w.lastActions {
                        let holder = active.sorted { $0.key > $1.key }.lazy.compactMap { $0.value.last { $0.host == a.host && $0.action.key == a.action.key } }.first
                        if let h = holder { reapply.append(HostAction(host: h.host, action: h.action.replacing(from: a.action))) } else { revert.append(a) }
                    }
                    return (revert, reapply)
                }
                journal()
                if !revert.isEmpty { try dispatch(step.window, revert, inject: false, at: step.at, first: false) }
                if !reapply.isEmpty { try dispatch(step.window, reapply, inject: true, at: step.at, first: false, record: false) }
            }
        }
        return true
    }

    private func onPluginThread(_ body: @escaping @Sendable () -> Void) {
        let th = Thread(block: body)
        lock.withLock { pluginThreads.append(th) }
        th.start()
    }

    /// Starts a fault plugin and waits, on a thread of its own, for it to say `injected`. One
    /// that does not is stopped, and its fault is a problem of the run (never injected).
    private func startExternal(_ window: Int, _ launch: ExternalPlugin.Launch) {
        let w = windows[window]
        let actual = clock.now
        let p = ExternalPlugin.Process(launch, side: nil, clock: clock, stop: stop, onLog: progress)
        lock.withLock { running[window] = p; external.append(p) }
        onPluginThread { [self] in
            do { try p.start(lab: lab) } catch {
                problems.add("fault \(w.label) was not injected: its plugin could not be started: \(error)")
                return
            }
            guard p.wait(for: "injected") else {
                let why = p.hasEnded ? "its plugin ended (exit \(p.exitStatus.map(String.init) ?? "none")) without saying injected"
                    : "its plugin did not say injected within \(Int(ExternalPlugin.answerSeconds)) s"
                p.stopHard()
                // It may have changed something before it stopped: nobody can undo what it did not say.
                problems.add("fault \(w.label) was not injected: \(why)" + (p.failure.map { " (\($0))" } ?? "")
                             + "; what it changed before it was stopped may still be in force; docs/plugins.md: a fault plugin answers inject with {\"type\":\"injected\"}")
                progress("fault \(w.label): not injected: \(why); what it changed before it was stopped may still be in force")
                return
            }
            let applied = clock.now
            book.update(window) { $0.actual = actual; $0.applied = applied }
            progress(String(format: "%6.3f s  %@: injected", actual, w.label))
            // A plugin that answers late puts its fault at another time than the schedule's:
            // the results must not show it in force from its planned start.
            if applied > w.end {
                problems.add(String(format: "fault %@: its plugin said injected at %.2f s, after the fault's planned end (%.2f s): it was not in force when planned", w.label, applied, w.end))
            } else if applied - actual > ExternalPlugin.lateSeconds {
                problems.add(String(format: "fault %@: its plugin said injected %.2f s after it was asked (at %.2f s)", w.label, applied - actual, actual))
            }
        }
    }

    /// Tells a fault plugin to revert and waits for it to end (killed after a grace). A fault
    /// whose plugin never said `reverted` may still be in force: a problem of the run, and not
    /// recorded as reverted.
    private func revertExternal(_ window: Int, _ p: ExternalPlugin.Process, grace: Double = 10) {
        let w = windows[window]
        let actual = clock.now
        p.finish(grace: grace)
        if p.said("reverted") {
            // Never before it was in force (a plugin that injected late reverted later still).
            book.update(window) { if $0.revertActual == nil { $0.revertActual = max(actual, $0.applied) } }
            progress(String(format: "%6.3f s  %@: reverted", actual, w.label))
        } else if p.said("injected") {
            let how = p.failure ?? "exit \(p.exitStatus.map(String.init) ?? "none")"
            problems.add("fault \(w.label): its plugin ended without saying reverted (\(how)); what it changed may still be in force")
            progress("fault \(w.label): the plugin ended without saying reverted (\(how)); what it changed may still be in force")
        }
    }

    private func journal() {
        let faults = lock.withLock { active.values.flatMap { $0 } }.map { ActiveFault(host: $0.host, action: $0.action) }
        lab.recordFaults(labName, faults)
    }

    /// Sends a window's changes to each host, to be made at `at` (run seconds).
    private func dispatch(_ wi: Int, _ actions: [HostAction], inject: Bool, at: Double, first: Bool, record: Bool = true) throws {
        let w = windows[wi]
        let byHost = Dictionary(grouping: actions, by: \.host)
        let when = clock.nanoseconds(at)
        let pending = PendingChange(hosts: byHost.count)
        for (host, items) in byHost.sorted(by: { $0.key < $1.key }) {
            let e = Unchecked(try lab.executor(host))
            // The host keeps its own deadline, 2 s after the planned revert.
            let revertAfter = inject ? w.end - at + 2 : nil
            let (clock, book, progress) = (self.clock, self.book, self.progress)
            dispatcher.send(host: host, label: w.label) {
                let timing = try e.value.change(items.map(\.action), inject: inject, at: when, revertAfter: revertAfter)
                guard let (began, finished) = pending.done(timing), record else { return }
                let b = clock.seconds(hostClock: began, offset: 0), f = clock.seconds(hostClock: finished, offset: 0)
                if inject && first {
                    book.update(wi) { $0.actual = b; $0.applied = f }
                    progress(String(format: "%6.3f s  %@: injected (planned %.1f s)", b, w.label, at))
                } else if !inject {
                    book.update(wi) { $0.revertActual = b }
                    progress(String(format: "%6.3f s  %@: reverted (planned %.1f s)", b, w.label, at))
                }
            }
        }
    }

    /// Waits for the changes sent ahead; the first that failed is thrown.
    func finish() throws {
        dispatcher.waitUntilIdle()
        if let failure = dispatcher.failure { throw failure }
    }

    /// Undoes everything still in force, however the run ends: external plugins are told to
    /// revert (and killed after a grace), built-in changes are reverted by their hosts. Returns
    /// what could not be undone.
    @discardableResult
    func revertEverything() -> [String] {
        // Fault plugins still in force are told to revert, all at once; then every thread that
        // talks to a plugin is waited for (bounded: each is killed within its grace).
        let pluginWindows = lock.withLock { () -> [Int: ExternalPlugin.Process] in let r = running; running.removeAll(); return r }
        for (w, p) in pluginWindows { onPluginThread { [self] in revertExternal(w, p, grace: 5) } }
        let deadline = monotonicNanoseconds() + 40_000_000_000
        for th in lock.withLock({ pluginThreads }) { while th.isExecuting, monotonicNanoseconds() < deadline { usleep(10_000) } }
        // Changes sent ahead are made (or given up) before everything is undone.
        dispatcher.waitUntilIdle()
        let byWindow = lock.withLock { () -> [Int: [HostAction]] in let a = active; active.removeAll(); return a }
        let left = byWindow.values.flatMap { $0 }
        var failures: [String] = []
        var failedHosts: Set<String> = []
        for (host, items) in Dictionary(grouping: left, by: \.host).sorted(by: { $0.key < $1.key }) {
            do { _ = try lab.executor(host).change(items.map(\.action), inject: false, at: nil, revertAfter: nil) } catch {
                failures.append("\(host): \(error)")
                failedHosts.insert(host)
            }
        }
        // What was undone here is in the results as reverted now.
        let now = clock.now
        for (w, actions) in byWindow where !actions.contains(where: { failedHosts.contains($0.host) }) {
            book.update(w) { if $0.revertActual == nil { $0.revertActual = now } }
        }
        if !left.isEmpty, failures.isEmpty { lab.recordFaults(labName, []) }
        return failures
    }
}
