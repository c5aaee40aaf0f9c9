import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// A timed file transfer through a real HTTP server: Python's http.server in the `server:`
/// node serves (sparse) files of the given sizes, curl in the client fetches each (`repeat` times),
/// MPTCP on both ends through mptcpize. `with: {sizes: [16kB, 1MB, 50MB], repeat: 3}`.
/// Each transfer's time and goodput are kept; the run's series is time per transfer. No transfer
/// starts after `duration`; one under way finishes (at most 120 s), so that none is cut short.
final class TransferWorkload: WorkloadPlugin, @unchecked Sendable {
    let workload: Workload
    let options: Workload.Transfer
    let port: Int
    var ports: [Int] { [port] }
    /// The files' directory is made by `mktemp -d` under this prefix: a fresh 0700 directory of
    /// root's, so nothing another user placed in /tmp beforehand (a symlink, say) is written through.
    let directoryPrefix: String
    private var directory = ""
    private let lock = NSLock()
    private var result: RunResults.WorkloadResult?
    private var serverProcess: WorkloadServer?
    private var clientExecutor: Unchecked<HostExecutor>?

    init(_ w: Workload, _ options: Workload.Transfer, index: Int, lab: String) {
        workload = w; self.options = options
        port = 8000 + index
        directoryPrefix = Ownership.transferDirectoryStem(lab: lab) + String(index)
    }

    func file(_ size: UInt64) -> String { "f\(size)" }

    func prepare(_ env: RunEnvironment) throws {
        let server = options.server
        // Sparse files: no memory or disk taken, however large (nothing on the way compresses).
        let make = "d=$(mktemp -d \(directoryPrefix).XXXXXX) && " + options.sizes.map { "truncate -s \($0) \"$d\"/\(file($0))" }.joined(separator: " && ") + " && echo \"$d\""
        let (code, out) = try env.check(server, ["sh", "-c", make], timeout: 120)
        let made = out.trimmingCharacters(in: .whitespacesAndNewlines)
        guard code == 0, made.hasPrefix(directoryPrefix + "."), !made.contains("\n") else {
            throw LabError("workload \(workload.name): cannot write the files to serve in \(directoryPrefix).* on \(env.host(of: server))",
                           fix: "check that /tmp on \(env.host(of: server)) is writable and has room, and that mktemp and truncate (coreutils) are installed")
        }
        directory = made
        let argv = mptcpizedServer(["python3", "-m", "http.server", String(port), "--bind", options.target.description, "--directory", directory])
        serverProcess = try WorkloadServer(argv, in: server, env)
        guard try env.waitForListener(server, port: port) else {
            throw LabError("the HTTP server (python3 -m http.server) did not start in \(server) (workload \(workload.name))", fix: "check that python3 is installed on \(env.host(of: server))")
        }
        env.progress("\(workload.name): HTTP server in \(server) on port \(port), \(options.sizes.count) files")
        clientExecutor = try env.connection(to: options.client)
    }

    func run(_ env: RunEnvironment) {
        guard let e = clientExecutor?.value ?? (try? env.connection(to: options.client).value) else { return }
        defer { e.close() }
        let startedAt = env.clock.now
        var times = Series(name: "\(workload.name) (transfer time)", unit: "s", quantity: .transferTime)
        var goodput = Series(name: "\(workload.name) (transfer goodput)", unit: "Mbit/s per transfer", quantity: .transferGoodput)
        var metrics: [String: Double] = [:]
        var failures: [String] = []
        let ns = env.namespace(of: options.client)
        let target = options.target
        let host = target.family == .ipv6 ? "[\(target)]" : target.description
        var over = false
        for size in options.sizes where !over {
            var seconds: [Double] = []
            for _ in 0..<options.repeats {
                if env.stop.isSet || env.clock.now > startedAt + duration { over = true; break }
                let argv = mptcpized(["curl", "-sS", "-o", "/dev/null", "--max-time", "120",
                                      "-w", "%{time_total} %{size_download} %{http_code}", "http://\(host):\(port)/\(file(size))"])
                var out = BoundedText(limit: 4096)
                let t0 = env.clock.now
                let code = (try? e.run(argv, in: ns, timeout: 125) { s, d in if s == .stdout { out.append(d) } }) ?? -1
                let f = out.text.split(separator: " ")
                guard code == 0, f.count == 3, let total = Double(f[0]), total.isFinite, total > 0, UInt64(f[1]) == size, f[2] == "200" else {
                    if failures.count < 100 { failures.append("\(size) B: curl exit \(code) (\(out.text.prefix(200)))") }
                    continue
                }
                seconds.append(total)
                times.times.append(t0); times.values.append(total)
                goodput.times.append(t0); goodput.values.append(Double(size) * 8 / total / 1e6)
            }
            if let s = Summary(seconds) { metrics["\(size) B median s"] = s.median; metrics["\(size) B mean s"] = s.mean }
        }
        lock.withLock {
            result = RunResults.WorkloadResult(name: workload.name, plugin: workload.plugin, node: options.client, target: target.description,
                                               mptcp: workload.mptcp, started: startedAt, exitCode: failures.isEmpty ? 0 : 1,
                                               error: failures.first.map { "\(failures.count) failed: \($0)" },
                                               series: [times, goodput], metrics: metrics)
        }
    }

    func stop(_ env: RunEnvironment) {
        serverProcess?.stop()
        if !directory.isEmpty { _ = try? env.check(options.server, ["rm", "-rf", directory]) }
    }

    func collect() -> RunResults.WorkloadResult { lock.withLock { result } ?? notRun(node: options.client, target: options.target.description) }
}
