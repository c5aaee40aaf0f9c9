import CShims
import Foundation
import Netlink
import Planning
import TopologyModel

/// A host reached through `pathbed agent` (over ssh, or any command that gives its stdio).
///
/// The connection starts at the first request, with a handshake that compares protocol
/// versions and estimates the host's clock offset. Requests go one at a time; while one runs,
/// the agent's heartbeats prove it alive, and an interrupt here (Ctrl-C) is sent on as `cancel`.
public final class RemoteExecutor: HostExecutor, @unchecked Sendable {
    public let host: String
    public let access: HostAccess
    let controlDirectory: String
    /// Polled while waiting on the host: a signal number cancels the request under way.
    let interrupted: () -> Int32

    private var pid: pid_t = 0
    private var input: LineWriter?
    private let lock = NSLock()
    private let arrived = NSCondition()
    private var replies: [ReplyLine] = []
    private var closed = false
    private var lastHeard: UInt64 = 0
    private var stderrTail = Data()
    private var nextID = 1
    private var connectError: LabError?

    /// The host as it answered the handshake.
    public private(set) var connectedInfo: HostInfo?
    /// The host's monotonic clock minus this machine's, in nanoseconds (half the handshake's round trip of error).
    public private(set) var clockOffsetNanoseconds: Int64 = 0
    public private(set) var handshakeRoundTripNanoseconds: UInt64 = 0
    public var clockUncertaintyNanoseconds: UInt64 { handshakeRoundTripNanoseconds / 2 }
    public private(set) var changedMTUs: [MTUChange] = []

    public init(access: HostAccess, controlDirectory: String, interrupted: @escaping () -> Int32 = { Interrupts.signal }) {
        self.host = access.host; self.access = access; self.controlDirectory = controlDirectory; self.interrupted = interrupted
        silenceLimit = LocalVMs.runsEmulated(access) ? AgentProtocol.emulatedSilenceLimitSeconds : AgentProtocol.silenceLimitSeconds
    }

    /// How long the host may say nothing (see AgentProtocol); set once, read by any thread.
    private let silenceLimit: Double

    public func sideConnection(stop: @escaping @Sendable () -> Bool) -> HostExecutor {
        RemoteExecutor(access: access, controlDirectory: controlDirectory, interrupted: { stop() ? SIGTERM : 0 })
    }

    deinit { close() }

    // MARK: Connection

    public func connect() throws(LabError) {
        if input != nil { return }
        if let connectError { throw connectError }
        do { try start() } catch {
            connectError = error
            throw error
        }
    }

    private func start() throws(LabError) {
        // Its parents too: /run is empty after a boot, and ssh cannot make a ControlPath's directory.
        // (A host reached by its own `command:` uses no ssh socket: no limit on the path's length.)
        if access.command == nil { try PrivateDirectory.prepareSSHControl(controlDirectory) } else { try PrivateDirectory.prepare(controlDirectory) }
        var access = self.access
        if let dir = access.vagrant {
            // `vagrant ssh-config HOST`, once per connection: the port and key can change at every `vagrant up`.
            var config = Data(), errors = Data()
            let code = try CommandRunner.run(["sh", "-c", "cd \"$1\" && exec vagrant ssh-config \"$2\"", "sh", dir, host], in: nil, timeout: 120) { s, d in
                if s == .stdout { config.append(d) } else { errors.append(d) }
            }
            guard code == 0 else {
                throw LabError("`vagrant ssh-config \(host)` in \(dir) failed (exit \(code)): \(String(decoding: errors.suffix(300), as: UTF8.self))",
                               fix: "run `vagrant up` in \(dir); `vagrant status` shows the VMs")
            }
            let file = "\(controlDirectory)/vagrant-\(host).conf"
            guard FileManager.default.createFile(atPath: file, contents: config, attributes: [.posixPermissions: 0o600]) else {
                throw LabError("cannot write \(file)")
            }
            access.sshConfig = file
        }
        let argv = access.agentCommand(controlDirectory: controlDirectory)
        var toAgent: [Int32] = [0, 0], fromAgent: [Int32] = [0, 0], errors: [Int32] = [0, 0]
        for i in 0..<3 {
            var p: [Int32] = [0, 0]
            guard pb_pipe_cloexec(&p) == 0 else { throw LabError("cannot make a pipe: \(String(cString: strerror(errno)))") }
            if i == 0 { toAgent = p } else if i == 1 { fromAgent = p } else { errors = p }
        }
        // Its own process group: Ctrl-C in the terminal reaches this process, which cancels cleanly.
        pid = NetworkNamespace.spawnInGroup(-1, argv, stdin: toAgent[0], stdout: fromAgent[1], stderr: errors[1])
        Glibc.close(toAgent[0]); Glibc.close(fromAgent[1]); Glibc.close(errors[1])
        guard pid > 0 else {
            Glibc.close(toAgent[1]); Glibc.close(fromAgent[0]); Glibc.close(errors[0])
            throw LabError("cannot start \(argv[0]) to reach host '\(host)': \(String(cString: strerror(-pid)))",
                           fix: argv[0] == "ssh" ? "install the OpenSSH client (scripts/setup does)" : nil)
        }
        signal(SIGPIPE, SIG_IGN)
        input = LineWriter(fd: toAgent[1])
        lastHeard = monotonicNanoseconds()
        let outFD = fromAgent[0], errFD = errors[0]
        Thread { [self] in readReplies(outFD) }.start()
        Thread { [self] in readErrors(errFD) }.start()

        let t0 = monotonicNanoseconds()
        let reply: ReplyLine
        do { reply = try call(.hello(protocol: AgentProtocol.version, version: pathbedVersion, host: host), timeout: 90) } catch let e as LabError { close(); throw e } catch { close(); throw LabError("\(error)") }
        let t1 = monotonicNanoseconds()
        let info: HostInfo
        switch reply.reply {
        case let .hello(version, host) where version == AgentProtocol.version:
            info = host
        case let .error(_, message, fix, _):
            close()
            throw LabError("host '\(self.host)' (\(access.label)): \(message)", fix: fix ?? "install the same Pathbed release on every host")
        default:
            close()
            throw LabError("host '\(host)' (\(access.label)) did not answer the handshake of protocol \(AgentProtocol.version)",
                           fix: "install the same Pathbed release on every host")
        }
        connectedInfo = info
        handshakeRoundTripNanoseconds = t1 - t0
        if let writer = input {
            Thread {
                while !writer.isClosed && !writer.broken {
                    writer.send(RequestLine(id: -1, .heartbeat))
                    Thread.sleep(forTimeInterval: AgentProtocol.heartbeatSeconds)
                }
            }.start()
        }
        clockOffsetNanoseconds = Int64(bitPattern: info.clockNanoseconds) - Int64(bitPattern: t0 / 2 + t1 / 2)
        // The handshake's round trip includes ssh's own connection (seconds under emulation):
        // a few short requests give the offset to within half of the quickest round trip.
        for _ in 0..<3 {
            let a = monotonicNanoseconds()
            guard let r = try? call(.info, timeout: 30), case let .info(i) = r.reply else { break }
            let b = monotonicNanoseconds()
            if b - a < handshakeRoundTripNanoseconds {
                handshakeRoundTripNanoseconds = b - a
                clockOffsetNanoseconds = Int64(bitPattern: i.clockNanoseconds) - Int64(bitPattern: a / 2 + b / 2)
            }
        }
    }

    /// Ends the session: `bye`, then the ssh process is given 2 s before it is killed.
    public func close() {
        guard pid > 0 else { return }
        input?.send(RequestLine(id: -1, .bye))
        input?.close()
        input = nil
        let deadline = monotonicNanoseconds() + 2_000_000_000
        var status: Int32 = 0
        while waitpid(pid, &status, WNOHANG) == 0 {
            if monotonicNanoseconds() > deadline { kill(-pid, SIGKILL); waitpid(pid, &status, 0); break }
            usleep(20_000)
        }
        pid = 0
    }

    private func readReplies(_ fd: Int32) {
        let reader = LineReader(fd: fd)
        let decoder = JSONDecoder()
        reading: while true {
            let line: Data
            switch reader.next() {
            case .end: break reading
            case .tooLong: continue
            case let .line(l): line = l
            }
            guard let reply = try? decoder.decode(ReplyLine.self, from: line) else {
                // A login script's chatter before the agent starts: keep it for error messages.
                arrived.withLock {
                    stderrTail.append(line.prefix(1024)); stderrTail.append(0x0A)
                    if stderrTail.count > 8192 { stderrTail = Data(stderrTail.suffix(8192)) }
                }
                continue
            }
            arrived.withLock {
                lastHeard = monotonicNanoseconds()
                if case .heartbeat = reply.reply {} else { replies.append(reply) }
                arrived.broadcast()
            }
        }
        Glibc.close(fd)
        arrived.withLock { closed = true; arrived.broadcast() }
    }

    private func readErrors(_ fd: Int32) {
        var chunk = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = read(fd, &chunk, chunk.count)
            if n < 0 && errno == EINTR { continue }
            if n <= 0 { break }
            arrived.withLock {
                stderrTail.append(contentsOf: chunk[0..<n])
                if stderrTail.count > 8192 { stderrTail = Data(stderrTail.suffix(8192)) }
            }
            if ProcessInfo.processInfo.environment["PATHBED_AGENT_LOG"] != nil {
                StandardStream.stderr.write(Data("[\(host)] ".utf8) + Data(chunk[0..<n]))
            }
        }
        Glibc.close(fd)
    }

    /// What the host printed on stderr lately (ssh's own errors among it), for error messages.
    var recentErrors: String {
        let text = arrived.withLock { String(decoding: stderrTail, as: UTF8.self) }
        let lines = text.split(separator: "\n").map(String.init).filter { !$0.contains("Warning: Permanently added") && !$0.isEmpty }
        return lines.suffix(4).joined(separator: " | ")
    }

    /// Sends a request and waits for its end, handing its events to `onEvent`.
    func call(_ request: AgentRequest, timeout: Double? = nil, cancelWhen: () -> Bool = { false }, feed: StdinFeed? = nil,
              onEvent: (ReplyLine) -> Void = { _ in }) throws -> ReplyLine {
        var id = 0
        if case .hello = request {} else {
            try connect()
            id = lock.withLock { nextID += 1; return nextID }
        }
        guard let input else { throw LabError("host '\(host)': not connected") }
        input.send(RequestLine(id: id, request))
        let start = monotonicNanoseconds()
        var cancelSent = false
        var fedClosed = false
        while true {
            // What the command is to read on its stdin goes as `input` requests about this one.
            if let feed, !fedClosed {
                let (data, closing) = feed.take()
                if !data.isEmpty || closing {
                    input.send(RequestLine(id: 0, .input(target: id, data: data.base64EncodedString(), close: closing)))
                    fedClosed = closing
                }
            }
            let (mine, isClosed, silent): ([ReplyLine], Bool, Double) = arrived.withLock {
                if replies.isEmpty && !closed { _ = arrived.wait(until: Date().addingTimeInterval(0.1)) }
                let mine = replies.filter { $0.id == id || $0.id == nil }
                replies.removeAll { $0.id == id || $0.id == nil }
                return (mine, closed, Double(monotonicNanoseconds() - lastHeard) / 1e9)
            }
            for r in mine {
                if r.reply.isEvent { onEvent(r); continue }
                if r.id == nil, let e = r.reply.failure {
                    throw LabError("host '\(host)' refused a request: \(e.message)", fix: "please report this: the two Pathbeds disagree on the protocol")
                }
                return r
            }
            if isClosed {
                var status: Int32 = 0
                if pid > 0 {
                    // Its output ended; a transport that lingers after that (a wrapper command,
                    // not ssh) is given 2 s, then killed.
                    let deadline = monotonicNanoseconds() + 2_000_000_000
                    while waitpid(pid, &status, WNOHANG) == 0 {
                        if monotonicNanoseconds() > deadline { kill(-pid, SIGKILL); waitpid(pid, &status, 0); break }
                        usleep(20_000)
                    }
                    pid = 0
                }
                self.input = nil
                let why = recentErrors
                let isHello: Bool
                if case .hello = request { isHello = true } else { isHello = false }
                throw LabError("lost the connection to host '\(host)' (\(access.label))\(why.isEmpty ? "" : ": \(why)")",
                               fix: isHello
                                   ? "check that `\(access.agentCommand(controlDirectory: controlDirectory).prefix(while: { $0 != "--" }).joined(separator: " ")) true` works and that \(access.agentBinary) exists there"
                                   : "check the host; `pathbed status` shows what is left, `pathbed down` removes it")
            }
            // The handshake is bounded by its own timeout: before it, ssh's login says nothing for
            // as long as it takes (seconds to tens of seconds into an emulated guest).
            if id != 0, silent > silenceLimit {
                if pid > 0 { kill(-pid, SIGKILL) }
                throw LabError("host '\(host)' (\(access.label)) said nothing for \(Int(silent)) s", fix: "check the host and its network; then `pathbed down` the lab")
            }
            if let timeout, Double(monotonicNanoseconds() - start) / 1e9 > timeout {
                if pid > 0 { kill(-pid, SIGKILL) }
                let why = recentErrors
                if id == 0 {
                    throw LabError("host '\(host)' (\(access.label)) did not answer within \(Int(timeout)) s\(why.isEmpty ? "" : ": \(why)")",
                                   fix: "check that ssh to it works without a password prompt (BatchMode)")
                }
                throw LabError("host '\(host)' (\(access.label)) did not finish \(request.name) within \(Int(timeout)) s, though it ends such a request sooner; its connection was closed",
                               fix: "check the host (`pathbed status` shows what is left there); `pathbed down` removes the lab")
            }
            if !cancelSent, id != 0, interrupted() != 0 || cancelWhen() {
                input.send(RequestLine(id: 0, .cancel(target: id)))
                cancelSent = true
            }
        }
    }

    /// Sends a request and returns its result; an agent's error is thrown.
    func result(_ request: AgentRequest, timeout: Double? = nil, cancelWhen: () -> Bool = { false }, feed: StdinFeed? = nil,
                onEvent: (ReplyLine) -> Void = { _ in }) throws -> ReplyLine {
        let r = try call(request, timeout: timeout, cancelWhen: cancelWhen, feed: feed, onEvent: onEvent)
        if let e = r.reply.failure {
            if e.kind == .interrupted { throw Interrupted(signal: e.signal ?? SIGTERM) }
            throw LabError("\(host): \(e.message)", fix: e.fix)
        }
        return r
    }

    /// A reply that is not the one a request ends with.
    func unexpected(_ r: ReplyLine, to request: String) -> LabError {
        LabError("host '\(host)' answered \(request) with something else (\(r.reply))", fix: "install the same Pathbed release on every host")
    }

    // MARK: HostExecutor

    public func info() throws -> HostInfo {
        let r = try result(.info)
        guard case let .info(h) = r.reply else { throw unexpected(r, to: "info") }
        return h
    }

    public func capabilities(sysctls: [String]) -> Capabilities {
        do {
            let r = try result(.capabilities(sysctls: sysctls))
            guard case let .capabilities(c) = r.reply else { throw unexpected(r, to: "capabilities") }
            return c
        } catch {
            return Capabilities(checks: [.init(name: "agent", ok: false, detail: "\(error)", fix: "check that `pathbed agent` runs on \(access.label)")])
        }
    }

    public func apply(_ operations: [LabOperation], progress: (Int) -> Void, interrupted: () -> Int32) throws {
        let r = try result(.apply(operations: operations), onEvent: { e in if case let .progress(d) = e.reply { progress(d) } })
        guard case let .applied(mtus) = r.reply else { throw unexpected(r, to: "apply") }
        changedMTUs = mtus
    }

    public func rollBack() -> [String] {
        do {
            let r = try result(.rollBack)
            guard case let .failures(f) = r.reply else { throw unexpected(r, to: "rollBack") }
            return f
        } catch { return ["\(host): \(error)"] }
    }

    public func namespaceNames() throws -> [String] {
        let r = try result(.namespaceNames)
        guard case let .namespaceNames(n) = r.reply else { throw unexpected(r, to: "namespaceNames") }
        return n
    }

    public func namespaces(of lab: String) throws -> [NamespaceState] {
        let r = try result(.namespaces(lab: lab))
        guard case let .namespaces(n) = r.reply else { throw unexpected(r, to: "namespaces") }
        return n
    }

    public func interfaces(in namespace: String) throws -> [InterfaceState] {
        let r = try result(.interfaces(namespace: namespace))
        guard case let .interfaces(i) = r.reply else { throw unexpected(r, to: "interfaces") }
        return i
    }

    public func removeLab(_ lab: String, waitForKernel: Bool) -> RemovalReport {
        do {
            let r = try result(.removeLab(lab: lab, waitForKernel: waitForKernel))
            guard case let .removal(report) = r.reply else { throw unexpected(r, to: "removeLab") }
            return report
        } catch {
            var r = RemovalReport(); r.failures = ["\(error)"]; return r
        }
    }

    public func processes(inLab lab: String) throws -> [Int32] {
        let r = try result(.processes(lab: lab))
        guard case let .processes(pids) = r.reply else { throw unexpected(r, to: "processes") }
        return pids
    }

    public func stopProcesses(inLab lab: String, sparing: [Int32]) throws -> Int {
        let r = try result(.stopProcesses(lab: lab, sparing: sparing.isEmpty ? nil : sparing))
        guard case let .stopped(n) = r.reply else { throw unexpected(r, to: "stopProcesses") }
        return n
    }

    public func removeNamespaces(_ names: [String]) throws { _ = try result(.removeNamespaces(names: names)) }
    public func deleteLink(_ link: InterfaceRef) throws { _ = try result(.deleteLink(link: link)) }
    public func setProfile(_ link: InterfaceRef, from old: QdiscSpec?, to new: QdiscSpec?) throws {
        _ = try result(.setProfile(link: link, from: old, to: new))
    }

    public func restoreMTUs(_ changes: [MTUChange], lab: String) -> [String] {
        do {
            let r = try result(.restoreMTUs(mtus: changes, lab: lab))
            guard case let .failures(f) = r.reply else { throw unexpected(r, to: "restoreMTUs") }
            return f
        } catch { return ["\(host): \(error)"] }
    }

    public func heldMTUs(lab: String, underlays: [String]) throws -> [MTUChange] {
        let r = try result(.heldMTUs(lab: lab, underlays: underlays))
        guard case let .mtus(m) = r.reply else { throw unexpected(r, to: "heldMTUs") }
        return m
    }

    public func run(_ argv: [String], in namespace: String?, timeout: Double?, input: StdinFeed?, stop: @escaping () -> Bool,
                    output: @escaping (StandardStream, Data) -> Void) throws -> Int32 {
        // The agent ends the command at `timeout`; the controller waits at most 90 s more for it
        // to say so (its heartbeats alone would keep a lost reply waited for forever; an emulated
        // guest may be silent 60 s and still answer).
        let r = try result(.run(argv: argv, namespace: namespace, timeout: timeout, input: input != nil), timeout: timeout.map { $0 + 90 }, cancelWhen: stop, feed: input, onEvent: { e in
            if case let .output(stream, data) = e.reply, let d = Data(base64Encoded: data) { output(stream, d) }
        })
        guard case let .exit(code) = r.reply else { throw unexpected(r, to: "run") }
        return code
    }

    public func runAttached(_ argv: [String], in namespace: String) throws -> Int32 {
        try run(argv, in: namespace, timeout: nil) { stream, data in
            data.withUnsafeBytes { _ = write(stream == .stdout ? 1 : 2, $0.baseAddress, $0.count) }
        }
    }

    public func change(_ actions: [FaultAction], inject: Bool, at: UInt64?, revertAfter: Double?) throws -> ChangeTiming {
        let offset = clockOffsetNanoseconds
        let there = at.map { UInt64(bitPattern: Int64(bitPattern: $0) &+ offset) }
        let r = try result(inject ? .inject(actions: actions, at: there, revertAfter: revertAfter) : .revert(actions: actions, at: there))
        guard case let .changed(began) = r.reply else { throw unexpected(r, to: inject ? "inject" : "revert") }
        func here(_ t: UInt64) -> UInt64 { UInt64(bitPattern: Int64(bitPattern: t) &- offset) }
        return ChangeTiming(began: here(began), finished: here(r.clock))
    }

    public func sampleCounters(_ namespaces: [String], sockets: [String], interval: Double, duration: Double, stop: @escaping () -> Bool,
                               onSample: @escaping (CounterSample) -> Void) throws {
        _ = try result(.sampleCounters(namespaces: namespaces, sockets: sockets, interval: interval, duration: duration), cancelWhen: stop, onEvent: { e in
            if case let .sample(clock, counters, health, sockets) = e.reply { onSample(CounterSample(clock: clock, counters: counters, health: health, sockets: sockets)) }
        })
    }

    public func tunnelKeys() throws -> [TunnelID: TunnelUse] {
        let r = try result(.tunnelKeys)
        guard case let .tunnelKeys(keys) = r.reply else { throw unexpected(r, to: "tunnelKeys") }
        return Dictionary(keys.map { (TunnelID(kind: $0.kind, id: $0.key), $0.use) }, uniquingKeysWith: { a, _ in a })
    }
}
