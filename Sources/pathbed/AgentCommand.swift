import ArgumentParser
import Engine
import Foundation
import Hosts

struct Agent: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Serve a controller on stdin/stdout (started by `pathbed` over ssh; not for people).",
        discussion: """
            Speaks JSON lines (docs/agent.md): a versioned handshake, requests with ids, progress and output \
            events, heartbeats. Nothing but protocol is written to stdout. When the controller goes away, the \
            agent stops every command it started and exits; a lab that is up stays up.
            """
    )

    func run() throws {
        Interrupts.catchSignals()
        signal(SIGPIPE, SIG_IGN)
        // What the executor waits for (a change set for later) ends when the controller is gone.
        let box = ServerBox()
        let executor = LocalExecutor(host: ProcessInfo.processInfo.hostName, stopWhen: { box.server?.controllerIsGone ?? false })
        let server = AgentServer.standard(executor: executor, onControllerGone: { LocalExecutor.faultGuard.revertAll() })
        box.server = server
        throw ExitCode(server.serve())
    }
}

/// The agent's server, for the executor's closure made before it.
final class ServerBox: @unchecked Sendable {
    private let lock = NSLock()
    private var value: AgentServer?
    var server: AgentServer? {
        get { lock.withLock { value } }
        set { lock.withLock { value = newValue } }
    }
}

struct FaultGuardCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fault-guard",
        abstract: "Revert one fault at its deadline (started by Pathbed for each fault it makes; not for people).",
        shouldDisplay: false)

    func run() throws { throw ExitCode(FaultWatchdog.serve()) }
}
