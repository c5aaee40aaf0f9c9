import Engine
import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// Packet captures of a run (`run --capture`): dumpcap on the first node end of each link, on
/// whichever host holds it, headers only, each file bounded; fetched at the end and merged into
/// one pcapng whose interfaces are named `NODE:INTERFACE (link LINK)`.
public struct CaptureOptions: Sendable, Equatable {
    /// Links to capture on; nil: every link with a node end.
    public var links: [String]?
    /// Bytes kept of each packet (headers: Ethernet, IP, TCP with its options fit in 128).
    public var snaplen = 128
    /// The most bytes of each interface's file (dumpcap stops capturing there).
    public var limitBytes = 20_000_000
    /// A pcap filter (`dumpcap -f`): only what it keeps is captured.
    public var filter: String?
    public init(links: [String]?, snaplen: Int = 128, limitBytes: Int = 20_000_000, filter: String? = nil) {
        self.links = links; self.snaplen = snaplen; self.limitBytes = limitBytes; self.filter = filter
    }

    public static let snaplenRange = 64...65535
    public static let limitRange = 100_000...2_000_000_000

    /// What a run captures: the file's links with `capture: true` and those of `--capture` (in
    /// that order; `--capture all`: every link), with the command line's snap length and limit,
    /// else the file's `run: { capture-snaplen, capture-limit }`, else 128 bytes and 20 MB. Nil:
    /// nothing to capture, or `--no-capture`.
    public static func effective(_ t: Topology, _ o: RunController.Options) -> CaptureOptions? {
        if o.noCapture { return nil }
        let fileLinks = t.links.filter(\.capture).map(\.name)
        let links: [String]?
        if let cli = o.capture {
            links = cli.links.map { asked in fileLinks + asked.filter { !fileLinks.contains($0) } }
        } else if !fileLinks.isEmpty {
            links = fileLinks
        } else {
            return nil
        }
        let snaplen = o.captureSnaplen ?? t.run.captureSnaplen ?? 128
        let limit = o.captureLimitBytes ?? t.run.captureLimitMB.map { $0 * 1_000_000 } ?? 20_000_000
        let filter = o.captureFilter ?? t.run.captureFilter
        guard snaplenRange.contains(snaplen), limitRange.contains(limit), filter.map(CaptureFilter.isAcceptable) ?? true else { return nil }
        return CaptureOptions(links: links, snaplen: snaplen, limitBytes: limit, filter: filter)
    }
}

final class PacketCapture: @unchecked Sendable {
    struct Point: Sendable {
        var link: String, node: String, interface: String, host: String, namespace: String
        var name: String { "\(node):\(interface) (link \(link))" }
    }

    /// Where to capture: each named link's first end in a node. Refused before any change: a link
    /// that does not exist, or has no end in a node.
    static func points(_ t: Topology, _ o: CaptureOptions) throws -> [Point] {
        let wanted = o.links ?? t.links.map(\.name)
        var out: [Point] = []
        for name in wanted {
            guard let link = t.links.first(where: { $0.name == name }) else {
                throw LabError("--capture: lab \(t.name) has no link \(name)", fix: "links: \(t.links.map(\.name).joined(separator: ", ")) (or --capture all)")
            }
            guard let end = link.endpoints.first(where: { $0.nodeName != nil }), let node = end.nodeName, let iface = end.interfaceName else {
                if o.links == nil { continue }
                throw LabError("--capture: link \(name) has no end in a node (a link between bridges)", fix: "capture on a link with a node end")
            }
            out.append(Point(link: name, node: node, interface: iface, host: t.node(named: node)?.host ?? "local", namespace: t.namespace(of: node)))
        }
        return out
    }

    let lab: LabController
    let labName: String
    let points: [Point]
    let options: CaptureOptions
    let stop: StopFlag
    private let lock = NSLock()
    /// Per point: the directory dumpcap writes into on its host, its stderr, whether it said it was capturing.
    private var directories: [Int: String] = [:]
    private var stderr: [Int: String] = [:]
    /// Points whose dumpcap has ended (a thread that has not begun is not `isExecuting` yet).
    private var ended = Set<Int>()

    init(lab: LabController, labName: String, points: [Point], options: CaptureOptions, stop: StopFlag) {
        self.lab = lab; self.labName = labName; self.points = points; self.options = options; self.stop = stop
    }

    /// Starts dumpcap at every point and waits (at most 10 s) until each says it is capturing.
    func start(until seconds: Double, progress: (String) -> Void) throws {
        let kilobytes = max(1, options.limitBytes / 1000)
        // Named for the lab, so that `down` on each host removes what a killed run left.
        let stem = Ownership.captureDirectoryStem(lab: labName)
        let flag = stop
        let connections = try points.map { p in Unchecked(try lab.executor(p.host).sideConnection(stop: { flag.isSet })) }
        connectInTurn(connections)
        for (i, p) in points.enumerated() {
            let e = connections[i]
            // A private directory on the host, said first; then dumpcap in its place (its stderr
            // unbuffered: into a pipe it says "Capturing on" only when it exits).
            let script = "d=$(mktemp -d \"$4\".XXXXXX) || exit 1; echo \"$d\"; if [ -n \"$5\" ]; then "
                + "exec stdbuf -e0 dumpcap -q -i \"$1\" -s \"$2\" -P -w \"$d/c.pcap\" -a filesize:\"$3\" -f \"$5\"; else "
                + "exec stdbuf -e0 dumpcap -q -i \"$1\" -s \"$2\" -P -w \"$d/c.pcap\" -a filesize:\"$3\"; fi"
            let th = Thread { [self] in
                var out = Data()
                do {
                    let code = try e.value.run(["sh", "-c", script, "capture", p.interface, String(options.snaplen), String(kilobytes), stem + String(i), options.filter ?? ""], in: p.namespace, timeout: seconds) { [self] s, d in
                        lock.withLock {
                            if s == .stdout {
                                out.append(d)
                                if directories[i] == nil, let nl = out.firstIndex(of: 0x0A) { directories[i] = String(decoding: out[..<nl], as: UTF8.self) }
                            } else if (stderr[i]?.count ?? 0) < 4096 {
                                stderr[i, default: ""] += String(decoding: d, as: UTF8.self)
                            }
                        }
                    }
                    lock.withLock { if code != 0 { stderr[i, default: ""] += " (exit \(code))" } }
                } catch { lock.withLock { stderr[i, default: ""] += "\(error)" } }
                e.value.close()
                lock.withLock { _ = ended.insert(i) }
            }
            th.start()
        }
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            let ready = lock.withLock { points.indices.filter { (stderr[$0] ?? "").contains("Capturing on") }.count }
            if ready == points.count { break }
            if lock.withLock({ ended.count == points.count }) { break }
            usleep(20_000)
        }
        let notReady = lock.withLock { points.indices.filter { !(stderr[$0] ?? "").contains("Capturing on") } }
        if !notReady.isEmpty {
            let why = lock.withLock { notReady.map { "\(points[$0].name): \((stderr[$0] ?? "no answer").trimmingCharacters(in: .whitespacesAndNewlines).prefix(300))" } }
            throw LabError("dumpcap did not start capturing within 10 s: \(why.joined(separator: "; "))",
                           fix: (options.filter == nil ? "" : "check the capture filter (tcpdump's syntax: `tcpdump -d 'FILTER'` checks it); ")
                               + "`pathbed doctor` says whether dumpcap (the tshark package) is installed on each host")
        }
        progress("capturing on \(points.map(\.name).joined(separator: ", ")) (\(options.snaplen) bytes of each packet, at most \(Double(options.limitBytes) / 1e6 >= 10 ? String(options.limitBytes / 1_000_000) : String(format: "%.1f", Double(options.limitBytes) / 1e6)) MB each\(options.filter.map { "; only what the filter `\($0)` keeps" } ?? ""))")
    }

    /// After the run's stop: fetches each host's file (then removes its directory), merges them
    /// into `dir/capture.pcapng`, and says what each held. Problems are said, never thrown.
    func finish(into dir: String) -> (captures: [RunResults.Capture], problems: [String]) {
        let deadline = Date().addingTimeInterval(15)
        let stem = Ownership.captureDirectoryStem(lab: labName)
        while lock.withLock({ ended.count < points.count }), Date() < deadline { usleep(20_000) }
        var inputs: [(name: String, file: PcapFile)] = []
        var captures: [RunResults.Capture] = []
        var problems: [String] = []
        for (i, p) in points.enumerated() {
            guard let d = lock.withLock({ directories[i] }), d.hasPrefix(stem + String(i) + "."), !d.contains("..") else {
                problems.append("capture on \(p.name): dumpcap never started"); continue
            }
            var data = Data()
            let limit = options.limitBytes + (1 << 20)
            var code: Int32?
            if let main = try? lab.executor(p.host), main is LocalExecutor {
                // This machine's file is read here (an interrupted run's commands are refused).
                data = FileManager.default.contents(atPath: "\(d)/c.pcap").map { Data($0.prefix(limit)) } ?? Data()
                try? FileManager.default.removeItem(atPath: d)
                code = data.isEmpty ? 1 : 0
            } else {
                code = try? lab.executor(p.host).run(["sh", "-c", "cat \"$1/c.pcap\"; s=$?; rm -rf \"$1\"; exit $s", "fetch", d], in: nil, timeout: 300) { s, chunk in
                    if s == .stdout, data.count < limit { data.append(chunk.prefix(limit - data.count)) }
                }
            }
            let err = lock.withLock { stderr[i] ?? "" }
            // dumpcap's last words: "Packets received/dropped on interface 'eth1': 123/0 (...)".
            let dropped = err.range(of: #"received/dropped on interface '[^']*': \d+/(\d+)"#, options: .regularExpression)
                .flatMap { Int(err[$0].split(separator: "/").last?.prefix { $0.isNumber } ?? "") }
            guard code == 0, let file = PcapFile(data) else {
                problems.append("capture on \(p.name): its file could not be read back from \(p.host)"); continue
            }
            inputs.append((p.name, file))
            captures.append(RunResults.Capture(link: p.link, end: "\(p.node):\(p.interface)", host: p.host, packets: file.packets.count,
                                               bytes: data.count, atLimit: data.count >= options.limitBytes - 65_536, droppedByKernel: dropped))
            captures[captures.count - 1].snaplen = options.snaplen
            captures[captures.count - 1].filter = options.filter
        }
        if !inputs.isEmpty {
            do { try PcapFile.mergedPcapng(inputs).write(to: URL(fileURLWithPath: "\(dir)/capture.pcapng"), options: .atomic) } catch {
                problems.append("capture: cannot write \(dir)/capture.pcapng: \(error.localizedDescription)")
            }
        }
        return (captures, problems)
    }
}
