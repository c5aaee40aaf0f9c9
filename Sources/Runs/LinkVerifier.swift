import Engine
import Foundation
import Hosts
import Planning
import Report
import TopologyModel

/// Proves each shaped link before figures are taken on it (`pathbed verify`, and the pre-flight
/// of `pathbed run`): per link between two nodes, the RTT (the median of ping probes, idle), the
/// loss of those probes (a 95 % interval that must hold what the profiles configure), and the
/// goodput of one TCP flow each way (iperf3), each against its profile with a tolerance.
public struct LinkVerifier {
    public var lab: LabController
    public var topology: Topology
    public var options: Options

    public struct Options: Sendable {
        /// Ping probes per link, one every 10 ms.
        public var probes = 200
        /// Seconds of TCP each way, after one that is left out (slow start).
        public var seconds = 3
        /// The port of iperf3's one-off server (in the far end's namespace).
        public var port = 5799
        public init() {}
        /// What `run` does first: fewer probes, shorter transfers.
        public static var preflight: Options { var o = Options(); o.probes = 100; o.seconds = 2; return o }
    }

    public init(lab: LabController, topology: Topology, options: Options = Options()) {
        self.lab = lab; self.topology = topology; self.options = options
    }

    /// A link this verifier measures: two node ends with addresses of one family, and a profile.
    struct Target {
        var link: Link
        var a: (node: String, address: IPAddress)
        var b: (node: String, address: IPAddress)
        var forward: LinkProfile?
        var reverse: LinkProfile?
    }

    /// The links it measures, and why each other shaped link is not.
    func targets() -> (targets: [Target], skipped: [String]) {
        let profiles = Dictionary(topology.profiles.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [Target] = [], skipped: [String] = []
        for link in topology.links {
            let f = Self.profile(profiles, link, end: 0), r = Self.profile(profiles, link, end: 1)
            guard f != nil || r != nil else { continue }
            guard case let .interface(na, _, aa?) = link.endpoints[0], case let .interface(nb, _, ab?) = link.endpoints[1], aa.family == ab.family else {
                skipped.append("\(link.name): not measured (an end is a bridge, or has no address): a path through it crosses other links")
                continue
            }
            out.append(Target(link: link, a: (na, aa.address), b: (nb, ab.address), forward: f, reverse: r))
        }
        return (out, skipped)
    }

    /// The profile shaping what leaves end `end` (as `Planner.qdisc` chooses it).
    static func profile(_ profiles: [String: LinkProfile], _ link: Link, end: Int) -> LinkProfile? {
        guard let name = end == 0 ? link.forwardProfile : link.reverseProfile, let p = profiles[name] else { return nil }
        if link.forwardProfile == link.reverseProfile {
            if p.direction == .forward && end != 0 { return nil }
            if p.direction == .reverse && end != 1 { return nil }
        }
        return p
    }

    /// Every link measured, one after the other (they share the machine's CPU).
    public func verify(progress: (String) -> Void) throws -> (calibration: [RunResults.Calibration], skipped: [String]) {
        let (targets, skipped) = targets()
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

        // Goodput, one TCP flow each way: a's sending is the forward direction.
        for (direction, profile, sender, receiver) in [("forward", t.forward, (ea, nsA, t.a), (eb, nsB, t.b)), ("reverse", t.reverse, (eb, nsB, t.b), (ea, nsA, t.a))] {
            guard Interrupts.signal == 0 else { throw LabError("verification interrupted (signal \(Interrupts.signal))") }
            let mbps: Double?
            var note: String?
            do {
                mbps = try Iperf3Measurement.goodput(serverOn: receiver.0, server: receiver.1, clientOn: sender.0, client: sender.1,
                                                     target: "\(receiver.2.address)", bind: "\(sender.2.address)", port: options.port,
                                                     seconds: options.seconds, omit: 1)
            } catch {
                mbps = nil; note = "not measured: \(error)"
            }
            out.append(goodput(t, direction: direction, profile, mbps, note: note))
        }
        return out
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

    func goodput(_ t: Target, direction: String, _ p: LinkProfile?, _ mbps: Double?, note: String?) -> RunResults.Calibration {
        Self.judgeGoodput(link: t.link.name, direction: direction, profile: p, mtu: t.link.mtu, mbps: mbps, note: note)
    }

    /// One TCP flow's goodput against the rate less the headers of full frames (95.6 % of it at a
    /// 1500-byte MTU): from 90 % to 103 % of that. Not judged without a rate, or with loss (TCP
    /// then stays below the rate by design).
    public static func judgeGoodput(link: String, direction: String, profile p: LinkProfile?, mtu: Int, mbps: Double?, note: String?) -> RunResults.Calibration {
        guard let rate = p?.rate else {
            return .init(link: link, direction: direction, metric: "goodput", unit: "Mbit/s", configured: nil, delivered: mbps, low: nil, high: nil,
                         verdict: "not judged", note: note ?? "no rate in this direction")
        }
        let ceiling = Double(rate.bitsPerSecond) / 1e6 * Double(mtu - 52) / Double(mtu + 14)
        let (lo, hi) = (ceiling * 0.90, ceiling * 1.03)
        if p?.loss != nil || p?.corrupt != nil {
            return .init(link: link, direction: direction, metric: "goodput", unit: "Mbit/s", configured: ceiling, delivered: mbps, low: nil, high: hi,
                         verdict: mbps.map { $0 <= hi ? "not judged" : "outside" } ?? "not judged", note: note ?? "loss in this direction keeps one TCP flow below the rate")
        }
        guard let mbps else {
            return .init(link: link, direction: direction, metric: "goodput", unit: "Mbit/s", configured: ceiling, delivered: nil, low: lo, high: hi,
                         verdict: "outside", note: note)
        }
        return .init(link: link, direction: direction, metric: "goodput", unit: "Mbit/s", configured: ceiling, delivered: mbps, low: lo, high: hi,
                     verdict: (lo...hi).contains(mbps) ? "ok" : "outside", note: note)
    }
}
