import Foundation
@testable import Hosts
import HostTesting
import Planning

/// An agent serving a recording fake over two pipes, as `pathbed agent` serves its controller
/// over ssh: the test writes request lines and reads reply lines.
final class AgentHarness: @unchecked Sendable {
    let fake: RecordingExecutor
    let server: AgentServer
    private let toAgent: FileHandle
    private let fromAgent: Int32
    private var buffer = Data()
    private let done = DispatchSemaphore(value: 0)
    private let lock = NSLock()
    private var goneCalls = 0

    /// An agent of `executor` (default: the recording fake).
    init(host: String = "h", executor: HostExecutor? = nil) {
        var a: [Int32] = [0, 0], b: [Int32] = [0, 0]
        pipe(&a); pipe(&b)
        fake = RecordingExecutor(host: host)
        let box = Counter()
        server = AgentServer(executor: executor ?? fake, input: a[0], output: b[1], onControllerGone: { box.add() })
        toAgent = FileHandle(fileDescriptor: a[1], closeOnDealloc: true)
        fromAgent = b[0]
        counter = box
        let s = server, d = done
        Thread { _ = s.serve(); d.signal() }.start()
    }

    private let counter: Counter
    /// How often the agent reverted its faults because its controller went away.
    var controllerGoneCalls: Int { counter.value }

    func send(_ line: String) { toAgent.write(Data((line + "\n").utf8)) }
    func send(_ id: Int, _ request: AgentRequest) throws {
        toAgent.write(try JSONEncoder().encode(RequestLine(id: id, request)) + Data("\n".utf8))
    }

    /// The next line that is not a heartbeat, decoded (nil after `seconds`).
    func reply(within seconds: Double = 10) throws -> ReplyLine? {
        let deadline = Date().addingTimeInterval(seconds)
        while Date() < deadline {
            if let nl = buffer.firstIndex(of: 0x0A) {
                let line = buffer[buffer.startIndex..<nl]
                buffer.removeSubrange(buffer.startIndex...nl)
                let r = try JSONDecoder().decode(ReplyLine.self, from: line)
                if case .heartbeat = r.reply { continue }
                return r
            }
            var p = pollfd(fd: fromAgent, events: Int16(POLLIN), revents: 0)
            guard poll(&p, 1, 100) > 0 else { continue }
            var chunk = [UInt8](repeating: 0, count: 65536)
            let n = read(fromAgent, &chunk, chunk.count)
            if n <= 0 { return nil }
            buffer.append(contentsOf: chunk[0..<n])
        }
        return nil
    }

    /// Ends the agent's input (its controller is gone) and waits for it to stop.
    func closeInput() -> Bool {
        try? toAgent.close()
        return done.wait(timeout: .now() + 10) == .success
    }

    func waitForEnd() -> Bool { done.wait(timeout: .now() + 10) == .success }
}

final class Counter: @unchecked Sendable {
    private let lock = NSLock()
    private var n = 0
    func add() { lock.withLock { n += 1 } }
    var value: Int { lock.withLock { n } }
}
