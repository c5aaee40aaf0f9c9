import Foundation
import Planning
import TopologyModel

/// `pathbed agent`: serves one controller over stdin/stdout, applying its requests to this
/// host through an executor (`LocalExecutor`; a fake in tests).
///
/// Nothing but protocol goes to stdout: the agent moves its own stdout aside first, so that a
/// stray print lands on stderr, and the commands it runs write into pipes of their own. When
/// the controller goes away (end of stdin, `bye`, SIGHUP or SIGTERM, or its heartbeats stop)
/// the agent stops every command it started, rolls back an `apply` that was under way, reverts
/// its faults (`onControllerGone`), and exits; a lab that was up stays up, as the controller's
/// journal says.
public final class AgentServer: @unchecked Sendable {
    let executor: HostExecutor
    let out: LineWriter
    let inputFD: Int32
    /// Reverts every fault this host holds: what a controller that went away leaves.
    let onControllerGone: @Sendable () -> Void
    private let lock = NSLock()
    private let available = DispatchSemaphore(value: 0)
    private var queue: [RequestLine] = []
    private var cancelled = Set<Int>()
    /// Stdin of `run` requests that asked for one, by request id (made by whichever comes first).
    private var feeds: [Int: StdinFeed] = [:]
    /// When the controller's last heartbeat came (0: none yet).
    private var lastHeartbeat: UInt64 = 0
    private var gone = false
    private var greeted = false

    /// Serves on stdin; replies on what was stdout (moved to a private descriptor; fd 1 becomes stderr).
    public static func standard(executor: HostExecutor, onControllerGone: @escaping @Sendable () -> Void) -> AgentServer {
        let protocolFD = fcntl(1, F_DUPFD_CLOEXEC, 3)
        dup2(2, 1)
        let server = AgentServer(executor: executor, input: 0, output: protocolFD, onControllerGone: onControllerGone)
        server.isProcess = true
        return server
    }

    public init(executor: HostExecutor, input: Int32, output: Int32, onControllerGone: @escaping @Sendable () -> Void = {}) {
        self.executor = executor; self.inputFD = input; self.out = LineWriter(fd: output); self.onControllerGone = onControllerGone
    }

    /// The agent is a process of its own (`pathbed agent`), not a server inside another program:
    /// it may end the process when its controller is gone and its writes are stuck, and it
    /// gives a controller that never sent a heartbeat 60 s before it stops.
    private(set) var isProcess = false

    var isGone: Bool { lock.withLock { gone } || Interrupts.signal != 0 || out.broken }
    /// The controller is gone: what the agent still waits for (a change set for later) is given up.
    public var controllerIsGone: Bool { isGone }
    func isCancelled(_ id: Int) -> Bool { isGone || lock.withLock { cancelled.contains(id) } }

    /// Runs until the controller goes away. Returns the exit status.
    public func serve() -> Int32 {
        let reader = Thread { [self] in readLoop() }
        reader.start()
        let beat = Thread { [self] in
            while !isGone {
                out.send(ReplyLine(id: nil, .heartbeat))
                Thread.sleep(forTimeInterval: AgentProtocol.heartbeatSeconds)
            }
            available.signal()
        }
        beat.start()
        // The controller's silence is watched on a thread that never writes to it: a controller
        // whose machine vanished leaves the agent's writes blocked (ssh's window full), and a
        // check after a write would never run. Before its first heartbeat it has 60 s (the login).
        let started = monotonicNanoseconds()
        let watch = Thread { [self] in
            var tick = monotonicNanoseconds(), graceUntil: UInt64 = 0
            while !isGone {
                Thread.sleep(forTimeInterval: 0.5)
                let now = monotonicNanoseconds()
                // This thread itself was not run for seconds (a guest whose one emulated CPU its
                // network stack took): so were the reader and ssh, whose heartbeats may be queued
                // unread. They get 3 s to catch up before the silence counts.
                if now - tick > 2_000_000_000 { graceUntil = now + 3_000_000_000 }
                tick = now
                if now < graceUntil { continue }
                let last = lock.withLock { lastHeartbeat }
                guard last > 0 || isProcess else { continue }
                let silent = Double(now - (last > 0 ? last : started)) / 1e9
                if silent > (last > 0 ? AgentProtocol.controllerSilenceSeconds : 60) {
                    lock.withLock { gone = true }
                    cleanUp()
                    StandardStream.stderr.write(Data("pathbed agent: no heartbeat from the controller for \(Int(silent)) s; stopped its commands and reverted its faults\n".utf8))
                    available.signal()
                    // The main loop ends now, unless it is stuck writing to the controller that is
                    // gone: what it ran is stopped and its faults reverted, so the agent ends.
                    while isProcess && !lock.withLock({ served }) {
                        Thread.sleep(forTimeInterval: 1)
                        if out.isStuckWriting { exit(0) }
                    }
                    return
                }
            }
        }
        watch.start()
        while true {
            _ = available.wait(timeout: .now() + 0.5)
            let next: RequestLine? = lock.withLock { queue.isEmpty ? nil : queue.removeFirst() }
            if let next { handle(next); continue }
            if isGone { break }
        }
        // Faults end with the run that made them, even when its controller is gone.
        cleanUp()
        lock.withLock { served = true }
        return 0
    }

    /// Stops every command and reverts every fault, once: a second caller waits until the first
    /// has finished (else the process could end while the first still reverts).
    private func cleanUp() {
        cleanupLock.withLock {
            guard !cleanedUp else { return }
            CommandRunner.stopAll()
            onControllerGone()
            cleanedUp = true
        }
    }
    private let cleanupLock = NSLock()
    private var cleanedUp = false
    private var served = false

    func readLoop() {
        let reader = LineReader(fd: inputFD)
        let decoder = JSONDecoder()
        reading: while true {
            let line: Data
            switch reader.next() {
            case .end: break reading
            case let .tooLong(n):
                out.send(ReplyLine(id: nil, .failure(AgentError(kind: .protocolError, message: "a line of more than \(n) bytes is not a request (at most \(AgentProtocol.lineLimit))"))))
                continue
            case let .line(l): line = l
            }
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x0D }) { continue }
            let request: RequestLine
            do { request = try decoder.decode(RequestLine.self, from: line) } catch {
                out.send(ReplyLine(id: Self.id(in: line), .failure(AgentError(kind: .protocolError, message: Self.explain(line, error)))))
                continue
            }
            switch request.request {
            case .heartbeat:
                lock.withLock { lastHeartbeat = monotonicNanoseconds() }
            case let .cancel(target):
                lock.withLock { _ = cancelled.insert(target) }
            case let .input(target, data, close):
                // Handled here, not queued: the `run` it feeds is what the queue is busy with.
                let feed = self.feed(for: target)
                if let d = Data(base64Encoded: data) { feed.write(d) }
                if close { feed.close() }
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

    /// The id a line that is not a request gives, if it gives one (for the error's reply).
    static func id(in line: Data) -> Int? {
        (try? JSONSerialization.jsonObject(with: line) as? [String: Any])?["id"] as? Int
    }

    /// Why a line is not a request, in words: which message it names, or that it names none.
    static func explain(_ line: Data, _ error: any Error) -> String {
        let text = String(decoding: line.prefix(200), as: UTF8.self)
        guard let object = try? JSONSerialization.jsonObject(with: line) as? [String: Any] else {
            return "not a JSON object: \(text)"
        }
        let names = object.keys.filter { $0 != "id" }.sorted()
        if object["id"] as? Int == nil { return "a request needs an integer `id`: \(text)" }
        if names.count != 1 { return "a request names exactly one message besides `id` (it names \(names.isEmpty ? "none" : names.joined(separator: ", "))): \(text)" }
        if case let DecodingError.keyNotFound(key, _)? = error as? DecodingError { return "`\(names[0])` is missing `\(key.stringValue)`: \(text)" }
        if case let DecodingError.typeMismatch(_, context)? = error as? DecodingError, context.codingPath.isEmpty {
            return "no message is named `\(names[0])`: \(text)"
        }
        // The line is JSON (read above): what the decoder calls corrupt is a value that does not
        // fit its field, most often a number out of its type's range.
        func at(_ path: [any CodingKey]) -> String { path.map { $0.intValue.map { "[\($0)]" } ?? ".\($0.stringValue)" }.joined() }
        let why: String
        switch error as? DecodingError {
        case let .dataCorrupted(c)?: why = "a value does not fit its field (a number out of range, or of the wrong kind)" + (c.codingPath.isEmpty ? "" : " at \(at(c.codingPath))")
        case let .typeMismatch(_, c)?, let .valueNotFound(_, c)?: why = "\(c.debugDescription) at \(at(c.codingPath))"
        default: why = "\(error)"
        }
        return "`\(names[0])` is not a request of protocol \(AgentProtocol.version): \(why): \(text)"
    }

    func feed(for id: Int) -> StdinFeed {
        lock.withLock {
            if let f = feeds[id] { return f }
            let f = StdinFeed(); feeds[id] = f; return f
        }
    }

    func fail(_ id: Int, _ kind: AgentError.Kind, _ message: String, fix: String? = nil, signal: Int32? = nil) {
        out.send(ReplyLine(id: id, .failure(AgentError(kind: kind, message: message, fix: fix, signal: signal))))
    }

    func handle(_ line: RequestLine) {
        let id = line.id
        if case .hello = line.request {} else if !greeted {
            return fail(id, .protocolError, "the first request must be hello")
        }
        let reply: AgentReply
        do {
            switch line.request {
            case let .hello(version, release, _):
                guard version == AgentProtocol.version else {
                    return fail(id, .protocolError,
                                "this agent speaks protocol \(AgentProtocol.version) (Pathbed \(pathbedVersion)); the controller speaks \(version) (Pathbed \(release))",
                                fix: "install the same Pathbed release on every host")
                }
                greeted = true
                reply = .hello(protocol: AgentProtocol.version, host: try executor.info())
            case .info:
                reply = .info(host: try executor.info())
            case let .capabilities(sysctls):
                reply = .capabilities(found: executor.capabilities(sysctls: sysctls))
            case let .apply(operations):
                do {
                    try executor.apply(operations, progress: { [out] done in out.send(ReplyLine(id: id, .progress(done: done))) },
                                       interrupted: { [self] in isCancelled(id) ? (Interrupts.signal != 0 ? Interrupts.signal : SIGTERM) : 0 })
                } catch let i as Interrupted {
                    // With nobody left to ask for a rollback, do it now.
                    if isGone { _ = executor.rollBack() }
                    return fail(id, .interrupted, "\(i)", signal: i.signal)
                }
                reply = .applied(changedMTUs: executor.changedMTUs)
            case .rollBack:
                reply = .failures(failures: executor.rollBack())
            case .namespaceNames:
                reply = .namespaceNames(names: try executor.namespaceNames())
            case let .namespaces(lab):
                reply = .namespaces(namespaces: try executor.namespaces(of: lab))
            case let .interfaces(namespace):
                reply = .interfaces(interfaces: try executor.interfaces(in: namespace))
            case let .removeLab(lab, waitForKernel):
                reply = .removal(report: executor.removeLab(lab, waitForKernel: waitForKernel))
            case let .stopProcesses(lab, sparing):
                reply = .stopped(count: try executor.stopProcesses(inLab: lab, sparing: sparing ?? []))
            case let .processes(lab):
                reply = .processes(pids: try executor.processes(inLab: lab))
            case let .removeNamespaces(names):
                try executor.removeNamespaces(names)
                reply = .done
            case let .deleteLink(link):
                try executor.deleteLink(link)
                reply = .done
            case let .setProfile(link, from, to):
                try executor.setProfile(link, from: from, to: to)
                reply = .done
            case let .restoreMTUs(mtus, lab):
                reply = .failures(failures: executor.restoreMTUs(mtus, lab: lab))
            case let .heldMTUs(lab, underlays):
                guard LabName.problem(lab) == nil else { return fail(id, .protocolError, "heldMTUs needs a lab's name in `lab`") }
                guard underlays.count <= 64, underlays.allSatisfy({ $0.utf8.count <= 64 }) else { return fail(id, .protocolError, "heldMTUs takes at most 64 underlays of at most 64 bytes") }
                reply = .mtus(mtus: try executor.heldMTUs(lab: lab, underlays: underlays))
            case let .run(argv, namespace, timeout, input):
                guard !argv.isEmpty else { return fail(id, .protocolError, "run needs a command in `argv`") }
                let feed = input ? self.feed(for: id) : nil
                defer { lock.withLock { _ = feeds.removeValue(forKey: id) } }
                let code = try executor.run(argv, in: namespace, timeout: timeout, input: feed, stop: { [self] in isCancelled(id) }) { [out] stream, data in
                    out.send(ReplyLine(id: id, .output(stream: stream, data: data.base64EncodedString())))
                }
                reply = .exit(code: code)
            case let .inject(actions, at, revertAfter):
                reply = .changed(began: try executor.change(actions, inject: true, at: at, revertAfter: revertAfter).began)
            case let .revert(actions, at):
                reply = .changed(began: try executor.change(actions, inject: false, at: at, revertAfter: nil).began)
            case let .sampleCounters(namespaces, sockets, interval, duration):
                try executor.sampleCounters(namespaces, sockets: sockets ?? [], interval: interval, duration: duration, stop: { [self] in isCancelled(id) }) { [out] sample in
                    out.send(ReplyLine(id: id, .sample(clock: sample.clock, counters: sample.counters, health: sample.health, sockets: sample.sockets)))
                }
                reply = .done
            case .tunnelKeys:
                reply = .tunnelKeys(keys: try executor.tunnelKeys().sorted { ($0.key.kind.rawValue, $0.key.id) < ($1.key.kind.rawValue, $1.key.id) }
                    .map { KeyedTunnel(key: $0.key.id, use: $0.value, kind: $0.key.kind) })
            case .cancel, .bye, .input, .heartbeat:
                return
            }
        } catch let e as LabError {
            return fail(id, .failed, e.message, fix: e.fix)
        } catch let i as Interrupted {
            return fail(id, .interrupted, "\(i)", signal: i.signal)
        } catch {
            return fail(id, .failed, "\(error)")
        }
        lock.withLock { _ = cancelled.remove(id) }
        // Stamped when it ends, as every line is when it is written.
        out.send(ReplyLine(id: id, reply))
    }
}
