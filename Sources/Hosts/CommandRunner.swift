import CShims
import Foundation
import Netlink
import Planning

/// Which of a command's outputs a chunk came from.
public enum StandardStream: String, Codable, Sendable {
    case stdout, stderr

    /// Writes to this process's own stream, never failing loudly: a closed pipe (`pathbed ... |
    /// head`) or a full disk makes the write fail, not the process (FileHandle.write would trap).
    public func write(_ data: Data) {
        let fd: Int32 = self == .stdout ? 1 : 2
        data.withUnsafeBytes { (buf: UnsafeRawBufferPointer) in
            var off = 0
            while off < buf.count {
                let n = Glibc.write(fd, buf.baseAddress! + off, buf.count - off)
                if n > 0 { off += n } else if n < 0 && errno == EINTR { continue } else { return }
            }
        }
    }
}

/// What a running command reads on its stdin, written as it comes: an external plugin's
/// messages from Pathbed. `close()` ends its stdin (the plugin sees end of file).
public final class StdinFeed: @unchecked Sendable {
    private var pending = Data()
    private var closed = false
    private let lock = NSLock()
    public init(_ initial: Data = Data()) { pending = initial }
    public func write(_ d: Data) { lock.withLock { if !closed { pending.append(d) } } }
    public func writeLine(_ s: String) { write(Data((s + "\n").utf8)) }
    public func close() { lock.withLock { closed = true } }
    /// What is to be written now, and whether stdin is to be closed after it.
    public func take() -> (Data, Bool) { lock.withLock { let d = pending; pending = Data(); return (d, closed) } }
}

/// Runs programs inside a lab's namespaces (or the host's own) as child processes that enter the
/// namespace before `execve`, each in a process group of its own, with their output read through
/// pipes and handed over chunk by chunk: never mixed into this process's own output.
///
/// Every command ends with its run, whatever it does: each carries a tag in its environment
/// (`PATHBED_COMMAND`) that its descendants inherit, so that a child that left the process group
/// (`setsid`) is found and killed when the command is stopped, times out, or ends while its
/// pipes are still held; and `run` never waits on a pipe for more than a second after the
/// command itself has ended.
public enum CommandRunner {
    /// Process groups of the commands running now, so that they can all be stopped at once
    /// (the agent does so when its controller goes away).
    nonisolated(unsafe) private static var groups = Set<pid_t>()
    nonisolated(unsafe) private static var counter = 0
    private static let lock = NSLock()
    /// This process's tag prefix: every command it starts is tagged `PREFIX.N`.
    static let session = "\(getpid())-\(UInt32.random(in: 0...UInt32.max))"
    static let tagVariable = "PATHBED_COMMAND"
    /// How long the pipes of a command that has ended are still read.
    static let drainSeconds = 1.0

    /// Runs `argv` in `namespace` (nil: the host's) to its end and returns its exit code
    /// (128 + N when killed by signal N; 124 when `timeout` seconds passed; 127 when not found).
    /// `stop` is asked every 100 ms; when it says true, the command's group gets SIGTERM, then SIGKILL.
    public static func run(_ argv: [String], in namespace: String?, timeout: Double? = nil, stop: () -> Bool = { false },
                           input: StdinFeed? = nil, output: (StandardStream, Data) -> Void) throws(LabError) -> Int32 {
        guard !argv.isEmpty, !argv[0].isEmpty else { throw LabError("no command to run", fix: "give a program and its arguments") }
        var nsfd: Int32 = -1
        if let namespace {
            do { nsfd = try NetworkNamespace.open(namespace) } catch { throw LabError("\(error)", fix: "`pathbed status` shows the lab's namespaces") }
        }
        defer { if nsfd >= 0 { close(nsfd) } }
        var outPipe: [Int32] = [0, 0], errPipe: [Int32] = [0, 0]
        // Close-on-exec from their making: a fork on another thread between pipe() and fcntl() would inherit the ends.
        guard pb_pipe_cloexec(&outPipe) == 0 else { throw LabError("cannot make a pipe: \(String(cString: strerror(errno)))") }
        guard pb_pipe_cloexec(&errPipe) == 0 else {
            close(outPipe[0]); close(outPipe[1])
            throw LabError("cannot make a pipe: \(String(cString: strerror(errno)))")
        }
        // stdin: /dev/null, or a pipe that `input` fills.
        var inPipe: [Int32] = [-1, -1]
        if input != nil {
            signal(SIGPIPE, SIG_IGN)  // a command that exits early must not take this process with it
            guard pb_pipe_cloexec(&inPipe) == 0 else {
                close(outPipe[0]); close(outPipe[1]); close(errPipe[0]); close(errPipe[1])
                throw LabError("cannot make a pipe: \(String(cString: strerror(errno)))")
            }
            _ = fcntl(inPipe[1], F_SETFL, fcntl(inPipe[1], F_GETFL) | O_NONBLOCK)
        }
        let tag = lock.withLock { counter += 1; return "\(session).\(counter)" }
        var environment = ProcessInfo.processInfo.environment
        environment[tagVariable] = tag
        let stdinFD = input != nil ? inPipe[0] : open("/dev/null", O_RDONLY | O_CLOEXEC)
        let pid = NetworkNamespace.spawnInGroup(nsfd, argv, stdin: stdinFD, stdout: outPipe[1], stderr: errPipe[1], environment: environment)
        close(stdinFD); close(outPipe[1]); close(errPipe[1])
        var stdinWriter = inPipe[1]
        var unwritten = Data()
        defer { if stdinWriter >= 0 { close(stdinWriter) } }
        guard pid > 0 else {
            close(outPipe[0]); close(errPipe[0])
            throw LabError("cannot start \(argv[0]): \(String(cString: strerror(-pid)))")
        }
        lock.withLock { _ = groups.insert(pid) }
        defer { lock.withLock { _ = groups.remove(pid) } }

        let start = DispatchTime.now().uptimeNanoseconds
        var open = [outPipe[0]: StandardStream.stdout, errPipe[0]: .stderr]
        defer { for fd in open.keys { close(fd) } }
        var killedAt: UInt64?
        var timedOut = false
        var status: Int32 = 0
        var endedAt: UInt64?
        var buffer = [UInt8](repeating: 0, count: 65536)
        while true {
            if let input, stdinWriter >= 0 {
                let (more, closing) = input.take()
                unwritten.append(more)
                while !unwritten.isEmpty {
                    let n = unwritten.withUnsafeBytes { Glibc.write(stdinWriter, $0.baseAddress, $0.count) }
                    if n > 0 { unwritten = Data(unwritten.dropFirst(n)) } else { if n < 0 && errno == EPIPE { unwritten.removeAll() }; break }
                }
                if closing && unwritten.isEmpty { close(stdinWriter); stdinWriter = -1 }
            }
            if !open.isEmpty {
                var fds = open.keys.map { pollfd(fd: $0, events: Int16(POLLIN), revents: 0) }
                let n = poll(&fds, nfds_t(fds.count), input != nil ? 20 : 100)
                if n > 0 {
                    for p in fds where p.revents != 0 {
                        let got = read(p.fd, &buffer, buffer.count)
                        if got > 0 { output(open[p.fd]!, Data(buffer[0..<got])) } else if got == 0 || errno != EINTR && errno != EAGAIN {
                            close(p.fd); open[p.fd] = nil
                        }
                    }
                }
            } else {
                usleep(20_000)
            }
            let now = DispatchTime.now().uptimeNanoseconds
            if endedAt == nil {
                var s: Int32 = 0
                let r = waitpid(pid, &s, WNOHANG)
                if r == pid { status = s; endedAt = now }
            }
            // The command has ended: its pipes are read until they close, or for a second more
            // (something it left behind holds them: that is killed below).
            if let e = endedAt, open.isEmpty || Double(now - e) / 1e9 > drainSeconds { break }
            if endedAt == nil {
                if killedAt == nil {
                    let expired = timeout.map { Double(now - start) / 1e9 > $0 } ?? false
                    if expired || stop() {
                        timedOut = expired
                        kill(-pid, SIGTERM); killedAt = now
                    }
                } else if let k = killedAt, now - k > 2_000_000_000 {
                    kill(-pid, SIGKILL)
                    // A process that SIGKILL does not end within 10 s more is stuck in the kernel
                    // (uninterruptible sleep): no longer waited for; it reads as killed.
                    if now - k > 12_000_000_000 { status = SIGKILL; break }
                }
            }
        }
        let lingering = !open.isEmpty
        // What it left in its group, and whatever carries its tag (a child that left the group).
        if killedAt != nil || lingering || timedOut {
            kill(-pid, SIGKILL)
            killTagged { $0 == tag }
        }
        if timedOut { return 124 }
        return (status & 0x7f) == 0 ? (status >> 8) & 0xff : 128 + (status & 0x7f)
    }

    /// Stops every command `run` has running now: SIGTERM to their groups, SIGKILL after 2 s,
    /// and then whatever any command of this process left behind (its tag).
    public static func stopAll() {
        let all = lock.withLock { Array(groups) }
        for g in all { kill(-g, SIGTERM) }
        let deadline = DispatchTime.now().uptimeNanoseconds + 2_000_000_000
        while DispatchTime.now().uptimeNanoseconds < deadline, all.contains(where: { kill(-$0, 0) == 0 }) { usleep(50_000) }
        for g in all { kill(-g, SIGKILL) }
        endLeftovers()
    }

    /// Kills what commands of this process left running after they ended (a daemon, a child
    /// that left its group): every process tagged by this process, but those of commands running now.
    public static func endLeftovers() {
        let prefix = session + "."
        killTagged { $0.hasPrefix(prefix) }
    }

    /// SIGKILL to every process whose `PATHBED_COMMAND` matches.
    static func killTagged(_ matches: (String) -> Bool) {
        let me = getpid()
        let running = lock.withLock { groups }
        for name in Directory.names(in: "/proc") ?? [] {
            guard let pid = pid_t(name), pid != me, !running.contains(pid) else { continue }
            guard let tag = commandTag(of: pid), matches(tag) else { continue }
            // A command running now is left to its own `run` (its group leader was skipped above;
            // its other processes carry its tag, which only that `run` kills).
            if running.contains(where: { g in tag == tagOfGroup(g) }) { continue }
            kill(pid, SIGKILL)
        }
    }

    /// The tag in a process's environment, if it has one.
    static func commandTag(of pid: pid_t) -> String? {
        guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/environ") else { return nil }
        let key = Data((tagVariable + "=").utf8)
        for entry in data.split(separator: 0, omittingEmptySubsequences: true) where entry.starts(with: key) {
            return String(decoding: entry.dropFirst(key.count), as: UTF8.self)
        }
        return nil
    }

    static func tagOfGroup(_ pid: pid_t) -> String? { commandTag(of: pid) }
}
