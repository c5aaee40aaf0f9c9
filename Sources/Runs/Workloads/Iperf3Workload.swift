import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// iperf3 (TCP, or MPTCP through mptcpize; `with: {reverse: true}` for a download, `streams: N`):
/// the receiver's 100 ms intervals, each stamped when its line arrived.
final class Iperf3Workload: WorkloadPlugin, @unchecked Sendable {
    let workload: Workload
    let options: Workload.Iperf3
    let port: Int
    var ports: [Int] { [port] }
    private var serverLines: StampedLines?
    private var clientLines: StampedLines?
    private var serverProcess: WorkloadServer?
    private var clientExecutor: Unchecked<HostExecutor>?
    private let lock = NSLock()
    private var result: RunResults.WorkloadResult?

    init(_ w: Workload, _ options: Workload.Iperf3, index: Int) {
        workload = w; self.options = options
        port = 5201 + index
    }

    func prepare(_ env: RunEnvironment) throws {
        let argv = mptcpizedServer(["iperf3", "-s", "-p", String(port), "-i", "0.1", "-f", "m", "--forceflush"])
        let lines = StampedLines(clock: env.clock)
        serverLines = lines
        serverProcess = try WorkloadServer(argv, in: options.server, env) { s, d in if s == .stdout { lines.add(d) } }
        guard try env.waitForListener(options.server, port: port) else {
            throw LabError("iperf3 -s did not start in \(options.server) (workload \(workload.name))",
                           fix: "`pathbed doctor` shows whether iperf3\(workload.mptcp ? " and mptcpize are" : " is") installed on \(env.host(of: options.server))")
        }
        env.progress("\(workload.name): iperf3 server listening in \(options.server) on port \(port)")
        clientExecutor = try env.connection(to: options.client)
    }

    func run(_ env: RunEnvironment) {
        guard let e = clientExecutor?.value ?? (try? env.connection(to: options.client).value) else { return }
        defer { e.close() }
        // Text intervals every 100 ms, flushed as they end: each is stamped when its line arrives,
        // on the run's clock. The receiver's lines are the wire's (a sender's 100 ms intervals are
        // its socket writes, bursts and gaps): the server's for an upload, the client's for a download.
        var argv = mptcpized(["iperf3", "-c", options.target.description, "-p", String(port), "-t", String(Int(duration.rounded(.up))),
                              "-i", "0.1", "-f", "m", "--forceflush"])
        if options.reverse { argv.append("-R") }
        if options.streams > 1 { argv += ["-P", String(options.streams)] }
        if let bind = options.bind { argv += ["-B", bind.description] }
        let startedAt = env.clock.now
        let mine = StampedLines(clock: env.clock)
        lock.withLock { clientLines = mine }
        var text = BoundedText(limit: 1 << 20)
        let code = (try? e.run(argv, in: env.namespace(of: options.client), timeout: duration + 30) { s, d in
            if s == .stdout { mine.add(d) }
            text.append(d)
        }) ?? -1
        let series = receiverSeries(from: startedAt)
        let output = text.text
        let error = Iperf3Output.error(in: output) ?? (series.isEmpty ? "no intervals (exit \(code)): \(output.suffix(200))" : nil)
        let values = series.values
        lock.withLock {
            result = RunResults.WorkloadResult(name: workload.name, plugin: workload.plugin, node: options.client, target: options.target.description,
                                               mptcp: workload.mptcp, started: startedAt, exitCode: code, error: error, series: [series],
                                               metrics: values.isEmpty ? nil : ["mean Mbit/s": values.reduce(0, +) / Double(values.count)])
        }
    }

    private func receiverSeries(from startedAt: Double) -> Series {
        let receiver = options.reverse ? lock.withLock { clientLines } : serverLines
        var series = Series(name: "\(workload.name) (iperf3\(workload.mptcp ? ", MPTCP" : ""))", unit: "Mbit/s", quantity: .throughput)
        for (t, line) in receiver?.all ?? [] where t >= startedAt {
            if let v = Iperf3Output.intervalMbps(line, summed: options.streams > 1) { series.times.append(t); series.values.append(v) }
        }
        return series
    }

    func sample() -> (metric: String, value: Double, unit: String)? {
        guard let last = receiverSeries(from: -1e9).values.suffix(10).nilIfEmpty else { return nil }
        return ("throughput", last.reduce(0, +) / Double(last.count), "Mbit/s")
    }

    func stop(_ env: RunEnvironment) { serverProcess?.stop() }

    func collect() -> RunResults.WorkloadResult { lock.withLock { result } ?? notRun(node: options.client, target: options.target.description) }
}
