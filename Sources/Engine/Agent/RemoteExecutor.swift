import Foundation
import Netlink

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
    private var replies: [AgentReply] = []
    private var closed = false
    private var lastHeard: UInt64 = 0
    private var stderrTail = Data()
    private var nextID = 1
    private var connectError: LabError?

    /// The host as it answered the handshake.
    public private(set) var remoteInfo: HostInfo?
    /// The host's monotonic clock minus this machine's, in nanoseconds (half the handshake's round trip of error).
    public private(set) var clockOffsetNanoseconds: Int64 = 0
    public private(set) var handshakeRoundTripNanoseconds: UInt64 = 0
    public private(set) var changedMTUs: [MTUChange] = []

    public init(access: HostAccess, controlDirectory: String, interrupted: @escaping () -> Int32 = { Interrupts.signal }) {
        self.host = access.host; self.access = access; self.controlDirectory = controlDirectory; self.interrupted = interrupted
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
        mkdir(controlDirectory, 0o700)
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
            guard pipe(&p) == 0 else { throw LabError("cannot make a pipe: \(String(cString: strerror(errno)))") }
            _ = fcntl(p[0], F_SETFD, FD_CLOEXEC); _ = fcntl(p[1], F_SETFD, FD_CLOEXEC)
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

        var hello = AgentRequest(id: 0, method: .hello)
        hello.protocol = AgentProtocol.version; hello.version = pathbedVersion; hello.host = host
        let t0 = monotonicNanoseconds()
        let reply: AgentReply
        do { reply = try call(hello, timeout: 90) } catch let e as LabError { close(); throw e } catch { close(); throw LabError("\(error)") }
        let t1 = monotonicNanoseconds()
        if let e = reply.error {
            close()
            throw LabError("host '\(host)' (\(access.label)): \(e.message)", fix: e.fix ?? "install the same Pathbed release on every host")
        }
        guard reply.protocol == AgentProtocol.version, let info = reply.info else {
            close()
            throw LabError("host '\(host)' (\(access.label)) answered the handshake with protocol \(reply.protocol.map(String.init) ?? "none"), not \(AgentProtocol.version)",
                           fix: "install the same Pathbed release on every host")
        }
        remoteInfo = info
        handshakeRoundTripNanoseconds = t1 - t0
        if let writer = input {
            Thread {
                while !writer.isClosed && !writer.broken {
                    writer.send(AgentRequest(id: -1, method: .heartbeat))
                    Thread.sleep(forTimeInterval: AgentProtocol.heartbeatSeconds)
                }
            }.start()
        }
        clockOffsetNanoseconds = Int64(bitPattern: info.clockNanoseconds) - Int64(bitPattern: t0 / 2 + t1 / 2)
        // The handshake's round trip includes ssh's own connection (seconds under emulation):
        // a few short requests give the offset to within half of the quickest round trip.
        for _ in 0..<3 {
            let a = monotonicNanoseconds()
            guard let r = try? call(AgentRequest(id: 0, method: .info), timeout: 30), let i = r.info else { break }
            let b = monotonicNanoseconds()
            if b - a < handshakeRoundTripNanoseconds {
                handshakeRoundTripNanoseconds = b - a
                clockOffsetNanoseconds = Int64(bitPattern: i.clockNanoseconds) - Int64(bitPattern: a / 2 + b / 2)
            }
        }
    }

    /// Connects to every remote host at once (ssh handshakes and agent starts overlap); a
    /// failure is kept and reported by the host's first request.
    public static func connectAll(_ executors: [HostExecutor]) {
        let remote = executors.compactMap { $0 as? RemoteExecutor }
        guard remote.count > 1 else { return }
        DispatchQueue.concurrentPerform(iterations: remote.count) { i in try? remote[i].connect() }
    }

    /// Ends the session: `bye`, then the ssh process is given 2 s before it is killed.
    public func close() {
        guard pid > 0 else { return }
        var bye = AgentRequest(id: -1, method: .bye)
        bye.host = host
        input?.send(bye)
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
        while let line = reader.next() {
            guard let reply = try? decoder.decode(AgentReply.self, from: line) else {
                // A login script's chatter before the agent starts: keep it for error messages.
                arrived.withLock { stderrTail.append(line); stderrTail.append(0x0A) }
                continue
            }
            arrived.withLock {
                lastHeard = monotonicNanoseconds()
                if reply.event != .heartbeat { replies.append(reply) }
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
                if stderrTail.count > 8192 { stderrTail.removeFirst(stderrTail.count - 8192) }
            }
            if ProcessInfo.processInfo.environment["PATHBED_AGENT_LOG"] != nil {
                FileHandle.standardError.write(Data("[\(host)] ".utf8) + Data(chunk[0..<n]))
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
              onEvent: (AgentReply) -> Void = { _ in }) throws -> AgentReply {
        var request = request
        if request.method != .hello {
            try connect()
            request.id = lock.withLock { nextID += 1; return nextID }
        }
        guard let input else { throw LabError("host '\(host)': not connected") }
        input.send(request)
        let start = monotonicNanoseconds()
        var cancelSent = false
        var fedClosed = false
        while true {
            // What the command is to read on its stdin goes as `input` requests about this one.
            if let feed, !fedClosed {
                let (data, closing) = feed.take()
                if !data.isEmpty || closing {
                    var q = AgentRequest(id: 0, method: .input)
                    q.target = request.id; q.data = data.base64EncodedString(); q.close = closing
                    input.send(q)
                    fedClosed = closing
                }
            }
            let (mine, isClosed, silent): ([AgentReply], Bool, Double) = arrived.withLock {
                if replies.isEmpty && !closed { _ = arrived.wait(until: Date().addingTimeInterval(0.1)) }
                let mine = replies.filter { $0.id == request.id || $0.id == nil }
                replies.removeAll { $0.id == request.id || $0.id == nil }
                return (mine, closed, Double(monotonicNanoseconds() - lastHeard) / 1e9)
            }
            for r in mine {
                if r.event != nil { onEvent(r); continue }
                if r.id == nil, let e = r.error { throw LabError("host '\(host)' refused a request: \(e.message)", fix: "please report this: the two Pathbeds disagree on the protocol") }
                return r
            }
            if isClosed {
                var status: Int32 = 0
                if pid > 0 { waitpid(pid, &status, 0); pid = 0 }
                self.input = nil
                let why = recentErrors
                throw LabError("lost the connection to host '\(host)' (\(access.label))\(why.isEmpty ? "" : ": \(why)")",
                               fix: request.method == .hello
                                   ? "check that `\(access.agentCommand(controlDirectory: controlDirectory).prefix(while: { $0 != "--" }).joined(separator: " ")) true` works and that \(access.agentBinary) exists there"
                                   : "check the host; `pathbed status` shows what is left, `pathbed down` removes it")
            }
            if silent > AgentProtocol.silenceLimitSeconds {
                if pid > 0 { kill(-pid, SIGKILL) }
                throw LabError("host '\(host)' (\(access.label)) said nothing for \(Int(silent)) s", fix: "check the host and its network; then `pathbed down` the lab")
            }
            if let timeout, Double(monotonicNanoseconds() - start) / 1e9 > timeout {
                if pid > 0 { kill(-pid, SIGKILL) }
                let why = recentErrors
                throw LabError("host '\(host)' (\(access.label)) did not answer within \(Int(timeout)) s\(why.isEmpty ? "" : ": \(why)")",
                               fix: "check that ssh to it works without a password prompt (BatchMode)")
            }
            if !cancelSent, request.method != .hello, interrupted() != 0 || cancelWhen() {
                var cancel = AgentRequest(id: 0, method: .cancel)
                cancel.target = request.id
                input.send(cancel)
                cancelSent = true
            }
        }
    }

    func result(_ request: AgentRequest, onEvent: (AgentReply) -> Void = { _ in }) throws -> AgentReply {
        try result(request, cancelWhen: { false }, onEvent: onEvent)
    }

    func result(_ request: AgentRequest, cancelWhen: () -> Bool = { false }, feed: StdinFeed? = nil, onEvent: (AgentReply) -> Void) throws -> AgentReply {
        let r = try call(request, cancelWhen: cancelWhen, feed: feed, onEvent: onEvent)
        if let e = r.error {
            if e.kind == .interrupted { throw Interrupted(signal: e.signal ?? SIGTERM) }
            throw LabError("\(host): \(e.message)", fix: e.fix)
        }
        return r
    }

    func request(_ method: AgentRequest.Method, _ fill: (inout AgentRequest) -> Void = { _ in }) -> AgentRequest {
        var q = AgentRequest(id: 0, method: method)
        fill(&q)
        return q
    }

    // MARK: HostExecutor

    public func info() throws -> HostInfo {
        try connect()
        return try result(request(.info)).info ?? HostInfo(hostname: host, kernel: "?", clockNanoseconds: 0, version: "?")
    }

    public func capabilities(sysctls: [String]) -> Capabilities {
        do {
            if let c = try result(request(.capabilities) { $0.sysctls = sysctls }).capabilities { return c }
            throw LabError("no capabilities in the answer")
        } catch {
            return Capabilities(checks: [.init(name: "agent", ok: false, detail: "\(error)", fix: "check that `pathbed agent` runs on \(access.label)")])
        }
    }

    public func apply(_ operations: [Operation], progress: (Int) -> Void, interrupted: () -> Int32) throws {
        let r = try result(request(.apply) { $0.operations = operations }) { e in if let d = e.done { progress(d) } }
        changedMTUs = r.mtus ?? []
    }

    public func rollBack() -> [String] {
        do { return try result(request(.rollBack)).failures ?? [] } catch { return ["\(host): \(error)"] }
    }

    public func namespaces(of lab: String) throws -> [NamespaceState] {
        try result(request(.namespaces) { $0.lab = lab }).namespaces ?? []
    }

    public func interfaces(in namespace: String) throws -> [InterfaceState] {
        try result(request(.interfaces) { $0.namespace = namespace }).interfaces ?? []
    }

    public func removeLab(_ lab: String, waitForKernel: Bool) -> RemovalReport {
        do { return try result(request(.removeLab) { $0.lab = lab; $0.waitForKernel = waitForKernel }).report ?? RemovalReport() } catch {
            var r = RemovalReport(); r.failures = ["\(error)"]; return r
        }
    }

    public func removeNamespaces(_ names: [String]) throws { _ = try result(request(.removeNamespaces) { $0.names = names }) }
    public func deleteLink(_ link: InterfaceRef) throws { _ = try result(request(.deleteLink) { $0.link = link }) }
    public func setProfile(_ link: InterfaceRef, from old: QdiscSpec?, to new: QdiscSpec?) throws {
        _ = try result(request(.setProfile) { $0.link = link; $0.from = old; $0.to = new })
    }

    public func restoreMTUs(_ changes: [MTUChange]) -> [String] {
        do { return try result(request(.restoreMTUs) { $0.mtus = changes }).failures ?? [] } catch { return ["\(host): \(error)"] }
    }

    public func run(_ argv: [String], in namespace: String?, timeout: Double?, input: StdinFeed?, output: @escaping (OutputStream, Data) -> Void) throws -> Int32 {
        let r = try result(request(.run) { $0.argv = argv; $0.namespace = namespace; $0.timeout = timeout; $0.input = input != nil }, feed: input) { e in
            if let s = e.stream, let d = e.data.flatMap({ Data(base64Encoded: $0) }) { output(s, d) }
        }
        return r.exitCode ?? 1
    }

    public func change(_ actions: [FaultAction], inject: Bool, at: UInt64?, revertAfter: Double?) throws -> ChangeTiming {
        let offset = clockOffsetNanoseconds
        let r = try result(request(inject ? .inject : .revert) { q in
            q.actions = actions; q.revertAfter = revertAfter
            q.at = at.map { UInt64(bitPattern: Int64(bitPattern: $0) &+ offset) }
        })
        func here(_ t: UInt64) -> UInt64 { UInt64(bitPattern: Int64(bitPattern: t) &- offset) }
        return ChangeTiming(began: here(r.began ?? r.clock), finished: here(r.clock))
    }

    public func sampleCounters(_ namespaces: [String], interval: Double, duration: Double, stop: @escaping () -> Bool,
                               onSample: @escaping (CounterSample) -> Void) throws {
        _ = try result(request(.sampleCounters) { $0.names = namespaces; $0.interval = interval; $0.duration = duration }, cancelWhen: stop, onEvent: { e in
            if let s = e.sample { onSample(s) }
        })
    }

    public func tunnelKeys() throws -> [UInt32: String] {
        let keys = try result(request(.tunnelKeys)).keys ?? [:]
        return Dictionary(uniqueKeysWithValues: keys.compactMap { k, v in UInt32(k).map { ($0, v) } })
    }
}
