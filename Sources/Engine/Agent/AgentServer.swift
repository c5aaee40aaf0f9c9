import Foundation
import Netlink

/// `pathbed agent`: serves one controller over stdin/stdout, applying its requests to this
/// host's kernel through a `LocalExecutor`.
///
/// Nothing but protocol goes to stdout: the agent moves its own stdout aside first, so that a
/// stray print lands on stderr, and the commands it runs write into pipes of their own. When
/// the controller goes away (end of stdin, `bye`, SIGHUP or SIGTERM) the agent stops every
/// command it started, rolls back an `apply` that was under way, and exits; a lab that was up
/// stays up, as the controller's journal says.
public final class AgentServer: @unchecked Sendable {
    let executor: HostExecutor
    let out: LineWriter
    let inputFD: Int32
    private let lock = NSLock()
    private let available = DispatchSemaphore(value: 0)
    private var queue: [AgentRequest] = []
    private var cancelled = Set<Int>()
    /// Stdin of `run` requests that asked for one, by request id (made by whichever comes first).
    private var feeds: [Int: StdinFeed] = [:]
    /// When the controller's last heartbeat came (0: none yet).
    private var lastHeartbeat: UInt64 = 0
    private var gone = false
    private var greeted = false

    /// Serves on stdin; replies on what was stdout (moved to a private descriptor; fd 1 becomes stderr).
    public static func standard(executor: HostExecutor) -> AgentServer {
        let protocolFD = dup(1)
        _ = fcntl(protocolFD, F_SETFD, FD_CLOEXEC)
        dup2(2, 1)
        return AgentServer(executor: executor, input: 0, output: protocolFD)
    }

    public init(executor: HostExecutor, input: Int32, output: Int32) {
        self.executor = executor; self.inputFD = input; self.out = LineWriter(fd: output)
    }

    var isGone: Bool { lock.withLock { gone } || Interrupts.signal != 0 || out.broken }
    func isCancelled(_ id: Int) -> Bool { isGone || lock.withLock { cancelled.contains(id) } }

    /// Runs until the controller goes away. Returns the exit status.
    public func serve() -> Int32 {
        let reader = Thread { [self] in readLoop() }
        reader.start()
        let beat = Thread { [self] in
            while !isGone {
                out.send(AgentReply(id: nil, event: .heartbeat))
                Thread.sleep(forTimeInterval: AgentProtocol.heartbeatSeconds)
                let last = lock.withLock { lastHeartbeat }
                if last > 0, Double(monotonicNanoseconds() - last) / 1e9 > AgentProtocol.controllerSilenceSeconds {
                    FileHandle.standardError.write(Data("pathbed agent: no heartbeat from the controller for \(Int(AgentProtocol.controllerSilenceSeconds)) s; reverting faults and stopping\n".utf8))
                    lock.withLock { gone = true }
                    CommandRunner.stopAll()
                    FaultGuard.shared.revertAll()
                }
            }
            available.signal()
        }
        beat.start()
        while true {
            _ = available.wait(timeout: .now() + 0.5)
            let next: AgentRequest? = lock.withLock { queue.isEmpty ? nil : queue.removeFirst() }
            if let next { handle(next); continue }
            if isGone { break }
        }
        CommandRunner.stopAll()
        // Faults end with the run that made them, even when its controller is gone.
        FaultGuard.shared.revertAll()
        return 0
    }

    func readLoop() {
        let reader = LineReader(fd: inputFD)
        let decoder = JSONDecoder()
        while let line = reader.next() {
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
            let request: AgentRequest
            do { request = try decoder.decode(AgentRequest.self, from: line) } catch {
                var r = AgentReply(id: nil)
                r.error = AgentError(kind: .protocolError, message: "not a request: \(String(decoding: line.prefix(200), as: UTF8.self)) (\(error))")
                out.send(r)
                continue
            }
            switch request.method {
            case .heartbeat:
                lock.withLock { lastHeartbeat = monotonicNanoseconds() }
            case .cancel:
                if let t = request.target { lock.withLock { _ = cancelled.insert(t) } }
            case .input:
                // Handled here, not queued: the `run` it feeds is what the queue is busy with.
                if let t = request.target {
                    let feed = lock.withLock { () -> StdinFeed in
                        if let f = feeds[t] { return f }
                        let f = StdinFeed(); feeds[t] = f; return f
                    }
                    if let d = request.data.flatMap({ Data(base64Encoded: $0) }) { feed.write(d) }
                    if request.close == true { feed.close() }
                }
            case .bye:
                lock.withLock { gone = true }
                available.signal()
                return
            default:
                lock.withLock { queue.append(request) }
                available.signal()
            }
        }
        // The controller is gone: stop what runs; `apply` sees it and rolls back.
        lock.withLock { gone = true }
        available.signal()
        CommandRunner.stopAll()
    }

    func fail(_ id: Int, _ kind: AgentError.Kind, _ message: String, fix: String? = nil, signal: Int32? = nil) {
        var r = AgentReply(id: id)
        r.error = AgentError(kind: kind, message: message, fix: fix, signal: signal)
        out.send(r)
    }

    func handle(_ q: AgentRequest) {
        if q.method != .hello && !greeted {
            return fail(q.id, .protocolError, "the first request must be hello")
        }
        var r = AgentReply(id: q.id)
        do {
            switch q.method {
            case .hello:
                guard q.protocol == AgentProtocol.version else {
                    r.protocol = AgentProtocol.version
                    r.error = AgentError(kind: .protocolError,
                                         message: "this agent speaks protocol \(AgentProtocol.version) (Pathbed \(pathbedVersion)); the controller speaks \(q.protocol.map(String.init) ?? "none") (Pathbed \(q.version ?? "?"))",
                                         fix: "install the same Pathbed release on every host")
                    out.send(r)
                    return
                }
                greeted = true
                r.protocol = AgentProtocol.version
                r.info = try executor.info()
            case .info:
                r.info = try executor.info()
            case .capabilities:
                r.capabilities = executor.capabilities(sysctls: q.sysctls ?? [])
            case .apply:
                do {
                    try executor.apply(q.operations ?? [], progress: { [out] done in
                        var e = AgentReply(id: q.id, event: .progress); e.done = done; out.send(e)
                    }, interrupted: { [self] in isCancelled(q.id) ? (Interrupts.signal != 0 ? Interrupts.signal : SIGTERM) : 0 })
                } catch let i as Interrupted {
                    // With nobody left to ask for a rollback, do it now.
                    if isGone { _ = executor.rollBack() }
                    return fail(q.id, .interrupted, "\(i)", signal: i.signal)
                }
                r.mtus = executor.changedMTUs
            case .rollBack:
                r.failures = executor.rollBack()
            case .namespaces:
                r.namespaces = try executor.namespaces(of: q.lab ?? "")
            case .interfaces:
                r.interfaces = try executor.interfaces(in: q.namespace ?? "")
            case .removeLab:
                r.report = executor.removeLab(q.lab ?? "", waitForKernel: q.waitForKernel ?? false)
            case .removeNamespaces:
                try executor.removeNamespaces(q.names ?? [])
            case .deleteLink:
                guard let l = q.link else { return fail(q.id, .protocolError, "deleteLink needs `link`") }
                try executor.deleteLink(l)
            case .setProfile:
                guard let l = q.link else { return fail(q.id, .protocolError, "setProfile needs `link`") }
                try executor.setProfile(l, from: q.from, to: q.to)
            case .changedMTUs:
                r.mtus = executor.changedMTUs
            case .restoreMTUs:
                r.failures = executor.restoreMTUs(q.mtus ?? [])
            case .run:
                guard let argv = q.argv, !argv.isEmpty else { return fail(q.id, .protocolError, "run needs `argv`") }
                let feed = q.input == true ? lock.withLock { () -> StdinFeed in
                    if let f = feeds[q.id] { return f }
                    let f = StdinFeed(); feeds[q.id] = f; return f
                } : nil
                defer { lock.withLock { _ = feeds.removeValue(forKey: q.id) } }
                r.exitCode = try CommandRunner.run(argv, in: q.namespace, timeout: q.timeout, stop: { [self] in isCancelled(q.id) }, input: feed) { [out] stream, data in
                    var e = AgentReply(id: q.id, event: .output)
                    e.stream = stream; e.data = data.base64EncodedString()
                    out.send(e)
                }
            case .inject, .revert:
                guard let a = q.actions else { return fail(q.id, .protocolError, "\(q.method.rawValue) needs `actions`") }
                r.began = try executor.change(a, inject: q.method == .inject, at: q.at, revertAfter: q.revertAfter).began
            case .sampleCounters:
                try executor.sampleCounters(q.names ?? [], interval: q.interval ?? 0.1, duration: q.duration ?? 0, stop: { [self] in isCancelled(q.id) }) { [out] sample in
                    var e = AgentReply(id: q.id, event: .sample); e.sample = sample; out.send(e)
                }
            case .tunnelKeys:
                r.keys = Dictionary(uniqueKeysWithValues: try executor.tunnelKeys().map { (String($0.key), $0.value) })
            case .cancel, .bye, .input, .heartbeat:
                return
            }
        } catch let e as LabError {
            return fail(q.id, .failed, e.message, fix: e.fix)
        } catch {
            return fail(q.id, .failed, "\(error)")
        }
        lock.withLock { _ = cancelled.remove(q.id) }
        // Stamped when it ends, as every line is when it is written (the reply was made when the work began).
        r.clock = monotonicNanoseconds()
        out.send(r)
    }
}
