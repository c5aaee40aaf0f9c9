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
        let server = AgentServer.standard(executor: LocalExecutor(host: ProcessInfo.processInfo.hostName),
                                          onControllerGone: { LocalExecutor.faultGuard.revertAll() })
        throw ExitCode(server.serve())
    }
}
