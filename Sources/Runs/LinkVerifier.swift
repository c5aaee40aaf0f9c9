import Engine
import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// Proves each shaped link before figures are taken on it (`pathbed verify`, and the pre-flight
/// of `pathbed run`): per link between two nodes, the RTT (the median of ping probes, idle), the
/// loss of those probes (a 95 % interval that must hold what the profiles configure), and the
/// rate each way under one TCP flow (iperf3), from the receiving interface's byte counters
/// after the first second (slow start), each against its profile with a tolerance. (Measured at
/// 5 Mbit/s on a token bucket, 2 s after the first: iperf3's own figure with its first second
/// left out was 5-11 % above the rate, it counts what the queue held; the receiving socket's
/// bytes 5 % above, data held out of order before the window counts in it; the interface's
/// counters 99.9 % of the rate. At 20 Mbit/s and above the receiving interface counts a GSO or
/// GRO packet's headers once: 95.6-96 % of the rate, inside the tolerance.)
public struct LinkVerifier {
    public var lab: LabController
    public var topology: Topology
    public var options: Options

    public struct Options: Sendable {
        /// Ping probes per link, one every 10 ms.
        public var probes = 200
        /// Seconds of TCP each way measured, after one that is left out (slow start).
        public var seconds = 3
        /// The port of iperf3's one-off server (in the far end's namespace).
        public var port = 5799
        public init() {}
        /// At most this many links (in the file's order); nil: all.
        public var maximumLinks: Int?
        /// What `run` does first: fewer probes, shorter transfers, at most 8 links (about a minute).
        public static var preflight: Options { var o = Options(); o.probes = 100; o.seconds = 2; o.maximumLinks = 8; return o }
    }

    public init(lab: LabController, topology: Topology, options: Options = Options()) {
        self.lab = lab; self.topology = topology; self.options = options
    }

    /// A link this verifier measures: two node ends with addresses of one family, and a profile.
    struct Target {
        var link: Link
        var a: (node: String, address: IPAddress, interface: String)
        var b: (node: String, address: IPAddress, interface: String)
        var forward: LinkProfile?
        var reverse: LinkProfile?
    }

    /// The links it measures, and why each other shaped link is not.
    func targets() -> (targets: [Target], skipped: [String]) {
        let profiles = Dictionary(topology.profiles.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [Target] = [], skipped: [String] = []
        for link in topology.links {
            let f = Planner.profile(profiles, link, end: 0), r = Planner.profile(profiles, link, end: 1)
            guard f != nil || r != nil else { continue }
            guard case let .interface(na, ia, aa?) = link.endpoints[0], case let .interface(nb, ib, ab?) = link.endpoints[1], aa.family == ab.family else {
                skipped.append("\(link.name): not measured (an end is a bridge, or has no address): a path through it crosses other links")
                continue
            }
            out.append(Target(link: link, a: (na, aa.address, ia), b: (nb, ab.address, ib), forward: f, reverse: r))
        }
        return (out, skipped)
    }

    /// Every link measured, one after the other (they share the machine's CPU).
    public func verify(progress: (String) -> Void) throws -> (calibration: [RunResults.Calibration], skipped: [String]) {
        var (targets, skipped) = targets()
        if let most = options.maximumLinks, targets.count > most {
            skipped.append("\(targets.count - most) more links not measured here (at most \(most) before a run): `pathbed verify FILE` measures them all")
            targets = Array(targets.prefix(most))
        }
        var out: [RunResults.Calibration] = []
        for (i, t) in targets.enumerated() {
            guard Interrupts.signal == 0 else { throw LabError("verification interrupted (signal \(Interrupts.signal))") }
            progress("verify \(i + 1)/\(targets.count): \(t.link.name) (\(t.a.node) <-> \(t.b.node))")
            out += try measure(t)
        }
        return (out, skipped)
    }

    func executor(_ node: String) throws -> HostExecutor {
        guard let host = topology.node(named: node)?.host, let e = lab.executors[host] else { throw LabError("no way to reach the host of node '\(node)'") }
        return e
    }

    func measure(_ t: Target) throws -> [RunResults.Calibration] {
        let ea = try executor(t.a.node), eb = try executor(t.b.node)
        let nsA = topology.namespace(of: t.a.node), nsB = topology.namespace(of: t.b.node)
        var out: [RunResults.Calibration] = []

        // RTT and loss: ping probes from a to b, idle, every 10 ms.
        var text = BoundedText(limit: 4 << 20)
        let family = t.a.address.family == .ipv6 ? "-6" : "-4"
        _ = try ea.run(["ping", family, "-n", "-c", String(options.probes), "-i", "0.01", "-W", "2", "-I", "\(t.a.address)", "\(t.b.address)"],
                       in: nsA, timeout: Double(options.probes) * 0.05 + 15) { s, d in if s == .stdout { text.append(d) } }
        let replies = Dictionary(text.text.split(separator: "\n").compactMap(PingOutput.reply), uniquingKeysWith: { a, _ in a })
        out.append(rtt(t, replies: Array(replies.values)))
        out.append(loss(t, sent: options.probes, received: min(replies.count, options.probes)))

        // The rate under one TCP flow each way: a's sending is the forward direction.
        for (direction, profile, sender, receiver) in [("forward", t.forward, (ea, nsA, t.a), (eb, nsB, t.b)), ("reverse", t.reverse, (eb, nsB, t.b), (ea, nsA, t.a))] {
            guard Interrupts.signal == 0 else { throw LabError("verification interrupted (signal \(Interrupts.signal))") }
            var mbps: Double?, note: String?
            do {
                let (wire, goodput) = try rateUnderTCP(sender: (sender.0, sender.1, sender.2.address), receiver: (receiver.0, receiver.1, receiver.2.address, receiver.2.interface))
                mbps = wire
                note = goodput.map { String(format: "iperf3: %.2f Mbit/s of TCP payload over the whole transfer", $0) }
            } catch {
                note = "not measured: \(error)"
            }
            out.append(self.rate(t, direction: direction, profile, mbps, note: note))
        }
        return out
    }

    /// One TCP flow from sender to receiver for a second more than `seconds`: the receiving
    /// interface's bytes over the last `seconds` (frames with their headers, as the shaper counts
    /// them), in Mbit/s, and iperf3's goodput over the whole transfer.
    func rateUnderTCP(sender: (HostExecutor, String, IPAddress), receiver: (HostExecutor, String, IPAddress, String)) throws -> (Double?, Double?) {
        let seconds = options.seconds
        // A port nothing listens on in the receiver's namespace (a program of the user's may hold
        // 5799: iperf3 -s -D then fails silently, and its client would meet that program).
        var found = BoundedText(limit: 64)
        let probe = "for p in $(seq \(options.port) \(options.port + 100)); do ss -Hltn \"sport = :$p\" | grep -q . || { echo $p; exit 0; }; done; exit 1"
        guard try receiver.0.run(["sh", "-c", probe], in: receiver.1, timeout: 20, output: { s, d in if s == .stdout { found.append(d) } }) == 0,
              let free = Int(found.text.trimmingCharacters(in: .whitespacesAndNewlines)) else {
            throw LabError("no free TCP port from \(options.port) to \(options.port + 100) in \(receiver.1) for iperf3",
                           fix: "stop what listens there (`pathbed exec NODE -- ss -ltnp`), or verify with the lab down")
        }
        let port = String(free)
        try Iperf3Measurement.startServer(on: receiver.0, namespace: receiver.1, port: free, idleSeconds: seconds + 30)
        // The receiver's counters every 200 ms, beside the transfer, through a connection of
        // its own, from before the transfer starts until after it ends: the window is found in
        // the readings (a fixed sleep missed it where starting a shell in a VM under software
        // emulation took a second: 10.9 Mbit/s read on a 20 Mbit/s link).
        let stop = StopFlag()
        let side = Unchecked(receiver.0.sideConnection(stop: { stop.isSet }))
        let counters = Unchecked(CounterBox())
        let interface = receiver.3
        let read = "awk -v i='\(interface)' -F'[: ]+' '{ for (k = 1; k < NF; k++) if ($k == i) { print $(k+1); exit } }' /proc/net/dev"
        let script = "while :; do echo \"$(date +%s%N) $(\(read))\"; sleep 0.2; done"
        let done = DispatchSemaphore(value: 0)
        let ns = receiver.1
        Thread {
            _ = try? side.value.run(["sh", "-c", script], in: ns, timeout: Double(seconds) + 40) { s, d in if s == .stdout { counters.value.append(d) } }
            side.value.close()
            done.signal()
        }.start()
        // Whatever ends this, the reader ends too (waited for once: a second wait on the
        // semaphore would sit out its whole timeout).
        var waited = false
        defer { if !waited { stop.set(); _ = done.wait(timeout: .now() + .seconds(15)) } }
        // The first reading before the transfer starts.
        let ready = Date().addingTimeInterval(15)
        while counters.value.readings().isEmpty, Date() < ready, Interrupts.signal == 0 { usleep(50_000) }
        var out = Data()
        _ = try sender.0.run(["iperf3", "-c", "\(receiver.2)", "-B", "\(sender.2)", "-p", port, "-t", String(seconds + 1), "-J"], in: sender.1,
                             timeout: Double(seconds + 40)) { s, d in if s == .stdout, out.count < 8 << 20 { out.append(d) } }
        usleep(500_000)
        stop.set()
        _ = done.wait(timeout: .now() + .seconds(15))
        waited = true
        let goodput = try? Iperf3Output.receivedMbps(json: out)
        guard let rate = Self.steadyRate(counters.value.readings(), after: 1.0) else {
            throw LabError("no steady transfer seen in the byte counters of \(interface) in \(receiver.1)"
                           + (goodput == nil ? " (and iperf3 reported nothing: \(String(decoding: out.prefix(200), as: UTF8.self)))" : ""),
                           fix: "check the link carries traffic (`pathbed exec NODE -- ping ...`), or measure longer (`pathbed verify --seconds 5`)")
        }
        return (rate, goodput)
    }

    /// The rate (Mbit/s) of a transfer in counter readings (time in ns, bytes): from `after`
    /// seconds past the first reading that grew to the one before the last that grew (the last
    /// interval may hold the transfer's end), at least half a second.
    static func steadyRate(_ r: [(t: UInt64, bytes: UInt64)], after: Double) -> Double? {
        let grew = r.indices.dropFirst().filter { r[$0].bytes > r[$0 - 1].bytes + 10_000 && r[$0].t > r[$0 - 1].t }
        guard let first = grew.first, let lastGrowth = grew.last else { return nil }
        let last = lastGrowth - 1
        let began = r[first - 1].t
        guard let from = r.indices.first(where: { r[$0].t >= began + UInt64(after * 1e9) }), from < last else { return nil }
        let seconds = Double(r[last].t - r[from].t) / 1e9
        guard seconds >= 0.5, r[last].bytes >= r[from].bytes else { return nil }
        return Double(r[last].bytes - r[from].bytes) * 8 / seconds / 1e6
    }

    /// Counter lines (`NANOSECONDS BYTES`) as they arrive, from another thread.
    final class CounterBox: @unchecked Sendable {
        private let lock = NSLock()
        private var text = BoundedText(limit: 1 << 20)
        func append(_ d: Data) { lock.withLock { text.append(d) } }
        func readings() -> [(t: UInt64, bytes: UInt64)] {
            let all = lock.withLock { text.text }
            // Whole lines only (the last may be cut), in time order.
            return all.split(separator: "\n", omittingEmptySubsequences: true).dropLast(all.hasSuffix("\n") ? 0 : 1).compactMap { line in
                let f = line.split(separator: " ")
                guard f.count == 2, let t = UInt64(f[0]), let b = UInt64(f[1]) else { return nil }
                return (t, b)
            }
        }
    }


    // MARK: - Judgement (static: unit-tested with figures of our own)

    /// The RTT the profiles configure (their delays; an idle probe passes a token bucket at once)
    /// against the median of the replies; within 2 ms or 10 %, plus the jitter of both directions.
    func rtt(_ t: Target, replies: [Double]) -> RunResults.Calibration {
        Self.judgeRTT(link: t.link.name, forward: t.forward, reverse: t.reverse, replies: replies)
    }

    public static func judgeRTT(link: String, forward: LinkProfile?, reverse: LinkProfile?, replies: [Double]) -> RunResults.Calibration {
        func oneWay(_ p: LinkProfile?) -> Double { Double(p?.delay?.nanoseconds ?? 0) / 1e6 }
        let jitter = [forward, reverse].map { Double($0?.jitter?.nanoseconds ?? 0) / 1e6 }.reduce(0, +)
        let configured = oneWay(forward) + oneWay(reverse)
        let tolerance = max(2, configured * 0.1) + jitter
        let sorted = replies.filter(\.isFinite).sorted()
        guard !sorted.isEmpty else {
            return .init(link: link, direction: "round trip", metric: "rtt", unit: "ms", configured: configured, delivered: nil,
                         low: max(0, configured - tolerance), high: configured + tolerance, verdict: "outside", note: "no probe came back")
        }
        let median = sorted.count % 2 == 1 ? sorted[sorted.count / 2] : (sorted[sorted.count / 2 - 1] + sorted[sorted.count / 2]) / 2
        let ok = abs(median - configured) <= tolerance
        return .init(link: link, direction: "round trip", metric: "rtt", unit: "ms", configured: configured, delivered: median,
                     low: max(0, configured - tolerance), high: configured + tolerance, verdict: ok ? "ok" : "outside")
    }

    func loss(_ t: Target, sent: Int, received: Int) -> RunResults.Calibration {
        Self.judgeLoss(link: t.link.name, forward: t.forward, reverse: t.reverse, sent: sent, received: received)
    }

    /// The probes lost, both ways, with a 95 % (Wilson) interval that must hold the loss the
    /// profiles configure (random loss and corruption of both directions).
    public static func judgeLoss(link: String, forward: LinkProfile?, reverse: LinkProfile?, sent: Int, received: Int) -> RunResults.Calibration {
        func pass(_ p: LinkProfile?) -> Double? {
            guard let p else { return 1 }
            var through = 1.0
            switch p.loss {
            case let .random(pct, _)?: through *= 1 - pct.value / 100
            case .gilbertElliott?: return nil
            case nil: break
            }
            if let c = p.corrupt { through *= 1 - c.value / 100 }
            return through
        }
        let n = max(sent, 1), lost = max(0, min(sent, sent - received))
        let measured = Double(lost) / Double(n) * 100
        let (lo, hi) = wilson(lost: lost, of: n)
        guard let f = pass(forward), let r = pass(reverse) else {
            return .init(link: link, direction: "round trip", metric: "loss", unit: "%", configured: nil, delivered: measured, low: lo, high: hi,
                         verdict: "not judged", note: "a Gilbert-Elliott loss model: its rate depends on its state")
        }
        let configured = (1 - f * r) * 100
        // A configured loss that rounds to the interval's edge is inside it.
        let ok = configured >= lo - 1e-9 && configured <= hi + 1e-9
        return .init(link: link, direction: "round trip", metric: "loss", unit: "%", configured: configured, delivered: measured, low: lo, high: hi,
                     verdict: ok ? "ok" : "outside", note: "\(lost) of \(n) probes lost; the range is their 95 % interval")
    }

    /// Wilson's 95 % interval for a proportion, in percent.
    public static func wilson(lost: Int, of n: Int) -> (Double, Double) {
        let z = 1.959964, nn = Double(max(n, 1)), p = Double(lost) / nn
        let centre = (p + z * z / (2 * nn)) / (1 + z * z / nn)
        let half = z * ((p * (1 - p) / nn + z * z / (4 * nn * nn)).squareRoot()) / (1 + z * z / nn)
        return (max(0, centre - half) * 100, min(1, centre + half) * 100)
    }

    func rate(_ t: Target, direction: String, _ p: LinkProfile?, _ mbps: Double?, note: String?) -> RunResults.Calibration {
        Self.judgeRate(link: t.link.name, direction: direction, profile: p, mbps: mbps, note: note)
    }

    /// The rate delivered under one TCP flow (frames with their headers, as the shaper counts
    /// them) against the profile's: 90 % to 103 %. Not judged without a rate, or with loss (TCP
    /// then stays below the rate by design); above it is outside all the same (not shaped).
    public static func judgeRate(link: String, direction: String, profile p: LinkProfile?, mbps: Double?, note: String?) -> RunResults.Calibration {
        guard let rate = p?.rate else {
            return .init(link: link, direction: direction, metric: "rate", unit: "Mbit/s", configured: nil, delivered: mbps, low: nil, high: nil,
                         verdict: "not judged", note: note ?? "no rate in this direction")
        }
        let configured = Double(rate.bitsPerSecond) / 1e6
        let (lo, hi) = (configured * 0.90, configured * 1.03)
        if p?.loss != nil || p?.corrupt != nil {
            return .init(link: link, direction: direction, metric: "rate", unit: "Mbit/s", configured: configured, delivered: mbps, low: nil, high: hi,
                         verdict: mbps.map { $0 <= hi ? "not judged" : "outside" } ?? "not judged",
                         note: "loss in this direction keeps one TCP flow below the rate" + (note.map { "; \($0)" } ?? ""))
        }
        guard let mbps else {
            return .init(link: link, direction: direction, metric: "rate", unit: "Mbit/s", configured: configured, delivered: nil, low: lo, high: hi,
                         verdict: "outside", note: note)
        }
        return .init(link: link, direction: direction, metric: "rate", unit: "Mbit/s", configured: configured, delivered: mbps, low: lo, high: hi,
                     verdict: (lo...hi).contains(mbps) ? "ok" : "outside", note: note)
    }
}
