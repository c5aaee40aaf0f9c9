import NetlinkTypes
import TopologyModel

/// Queue lengths that follow the bandwidth-delay product, and token buckets that follow the
/// kernel's timer tick.
///
/// - netem holds every packet for its delay, so its limit must cover `rate x (delay + jitter)`
///   in packets, plus a standing queue.
/// - the standing queue is one bandwidth-delay product (`rate x RTT`, RTT taken as twice this
///   direction's delay), enough for one TCP flow to keep the link busy, and never below 44
///   packets (one 64 KB GSO burst of full frames), so that links without delay still absorb a
///   burst. (A floor of 5 ms or 8 packets dropped the bursts an MPTCP sender puts on its faster
///   path: the kernel selftest simult_flows.sh's 10/3 Mbit/s case took 15.0 s against its 11.9 s
///   bound; 20 ms or 8 packets, 12.6 s; 50 ms, 11.3 s. A floor of 20 ms as well gave fast links
///   without delay deeper queues than a burst needs: 83 packets on the origin's 50 Mbit/s LAN.
///   docs/benchmarks.md.)
/// - tbf's byte fifo holds at least its bucket plus a frame: tbf passes a packet that fits the
///   bucket (a 64 KB GSO packet at 100 Mbit/s) whole to the fifo, which otherwise drops it
///   (measured: 0.3 Mbit/s of 100).
/// - without a rate, 1 Gbit/s is assumed, about what veth carries on a small machine.
/// - a token bucket (tbf burst, htb burst and cburst) holds what the rate sends in two timer
///   ticks of a 250 Hz kernel (8 ms), never less than two full frames. A bucket smaller than one
///   tick's worth loses throughput: measured at 20 Mbit/s, htb with a 3,028-byte bucket gave
///   18.3-18.7 Mbit/s, with 20,000 bytes 19.0 (netem's own rate: 19.0).
///
/// Every figure is computed in floating point and clamped to what the kernel's fields hold,
/// so no profile that validates can overflow here.
public enum QueueSizing {
    /// One 64 KB GSO burst of full frames.
    public static let minimumPackets = 44
    /// netem's limit when `tc` is given none.
    public static let netemDefaultLimit = 1000
    public static let assumedUnlimitedRate: UInt64 = 1_000_000_000
    /// Two ticks of a 250 Hz kernel.
    public static let bucketSeconds = 0.008
    /// libnl passes queue and bucket sizes as signed 32-bit integers.
    static let fieldMax = Double(Int32.max)

    static func clamp(_ v: Double) -> UInt32 { UInt32(min(max(v.rounded(.up), 0), fieldMax)) }

    /// Full frames a rate (bits per second) sends in `seconds`, rounded up.
    public static func frames(in seconds: Double, rate: Double, frame: Double) -> Double {
        (seconds * rate / 8 / frame).rounded(.up)
    }

    /// Bucket bytes for a rate (bits per second) and an MTU.
    public static func burstBytes(rateBitsPerSecond: UInt64, mtu: Int) -> UInt32 {
        let frame = Double(mtu + 14)
        return clamp(max(2 * frame, Double(rateBitsPerSecond) / 8 * bucketSeconds))
    }

    public static func qdisc(for p: LinkProfile, mtu: Int) -> QdiscSpec? {
        guard p.rate != nil || p.needsNetem else { return nil }
        let frame = Double(mtu + 14)
        let rate = Double(p.rate?.bitsPerSecond ?? assumedUnlimitedRate)
        let oneWaySeconds = Double((p.delay?.nanoseconds ?? 0) + (p.jitter?.nanoseconds ?? 0)) / 1e9
        func packets(_ seconds: Double) -> Double { frames(in: seconds, rate: rate, frame: frame) }
        let inFlight = packets(oneWaySeconds)
        // The standing queue (what waits to be sent at the rate), and netem's limit, which also
        // holds what its delay line carries.
        let standing: Double, limit: Double
        switch p.queue ?? .bdp {
        case .bdp:
            standing = max(Double(minimumPackets), packets(2 * oneWaySeconds))
            limit = inFlight + standing
        case let .time(d):
            standing = max(2, packets(d.seconds))
            limit = inFlight + standing
        case let .packets(n):
            standing = Double(n); limit = Double(n)
        case .netem:
            standing = Double(netemDefaultLimit); limit = Double(netemDefaultLimit)
        }
        let limitPackets = clamp(limit)

        var rateBits: UInt64?, burst: UInt32?, limitBytes: UInt32?
        if let r = p.rate {
            rateBits = r.bitsPerSecond
            burst = burstBytes(rateBitsPerSecond: r.bitsPerSecond, mtu: mtu)
            // tbf hands a packet that fits its bucket (a 64 KB GSO packet at high rates) whole to
            // its byte fifo: the fifo must hold one, or every such packet is dropped.
            limitBytes = clamp(max(standing * frame, Double(burst ?? 0) + frame))
        }
        var netem: NetemParameters?
        if p.needsNetem {
            var n = NetemParameters(limitPackets: limitPackets)
            n.delayMicroseconds = UInt32(clamping: p.delay?.microseconds ?? 0)
            n.jitterMicroseconds = UInt32(clamping: p.jitter?.microseconds ?? 0)
            n.delayCorrelation = p.delayCorrelation?.value
            n.distribution = p.distribution?.rawValue
            switch p.loss {
            case let .random(pct, corr)?: n.loss = pct.value; n.lossCorrelation = corr?.value
            case let .gilbertElliott(pp, r, bad, good)?: n.gemodel = [pp.value, r.value, bad.value, good.value]
            case nil: break
            }
            n.duplicate = p.duplicate?.value
            n.corrupt = p.corrupt?.value
            n.reorder = p.reorder?.percent.value
            n.reorderCorrelation = p.reorder?.correlation?.value
            n.gap = p.reorder?.gap.map { UInt32(clamping: $0) }
            netem = n
        }
        return QdiscSpec(profile: p.name, rateBitsPerSecond: rateBits, burstBytes: burst, limitBytes: limitBytes, netem: netem)
    }
}

extension QdiscSpec {
    /// The queue of this shaped direction: its limit in packets (of `mtu`-sized frames), how many
    /// of them the delay holds (netem keeps every packet for its delay), and how long the rest, the
    /// queue proper, takes to leave at the rate: what `plan`, `status` and a run's results say.
    public func queue(mtu: Int) -> (packets: Int, forDelay: Int, milliseconds: Double?) {
        let frame = Double(mtu + 14)
        let packets: Int
        switch shaping {
        case let .htb(_, _, netem?): packets = Int(netem.limitPackets)
        case let .netem(n): packets = Int(n.limitPackets)
        case .htb: packets = 1000  // htb's default leaf, a pfifo of the device's txqueuelen (a veth's: 1000)
        case let .tbf(_, _, limit): packets = Int((Double(limit) / frame).rounded(.down))
        }
        let oneWay = Double(UInt64(netem?.delayMicroseconds ?? 0) + UInt64(netem?.jitterMicroseconds ?? 0)) / 1e6
        return Self.split(packets: packets, rateBitsPerSecond: rateBitsPerSecond, oneWaySeconds: oneWay, frame: frame)
    }

    /// A limit split into what the delay holds and the queue proper, in ms at the rate (the same
    /// arithmetic as `QueueSizing`, for a plan and for what a kernel reports).
    public static func split(packets: Int, rateBitsPerSecond: UInt64?, oneWaySeconds: Double, frame: Double) -> (packets: Int, forDelay: Int, milliseconds: Double?) {
        guard let rate = rateBitsPerSecond, rate > 0 else { return (packets, 0, nil) }
        // Also from what a kernel reports: computed in floating point, clamped before it is an Int.
        let held = min(Double(max(packets, 0)), QueueSizing.frames(in: oneWaySeconds, rate: Double(rate), frame: max(frame, 1)))
        let forDelay = held.isFinite ? Int(held) : 0
        return (packets, forDelay, Double(max(packets - forDelay, 0)) * frame * 8 / Double(rate) * 1000)
    }
}

/// The queue of one shaped direction of a link, as `plan`, `status`, results.json and a run's
/// summary state it: where it is, the rule of its profile, and its length in packets and in
/// milliseconds of its rate.
public struct ShapedQueue: Codable, Sendable, Hashable {
    public var link: String
    /// The end whose egress it shapes: `node:interface`, or the bridge.
    public var end: String
    public var host: String
    public var profile: String
    /// The profile's `queue:` (`bdp` when it has none).
    public var rule: String
    /// The limit, in full frames.
    public var packets: Int
    /// How many of them the delay holds.
    public var forDelay: Int
    /// How long the rest, the queue proper, takes to leave at the rate (nil without a rate).
    public var milliseconds: Double?
    /// The fault that installs this queue for its window (`fault 2 (profile)`); nil: the file's
    /// profile, for the whole run.
    public var during: String?

    /// `wlan router:wlan0 (wlan, bdp): 61 packets, 17 held for the delay, 44 queued: 26.6 ms at the rate`
    public var summary: String {
        "\(link) \(end) (\(profile), \(rule)): \(packets) packets" + (forDelay > 0 ? ", \(forDelay) held for the delay, \(packets - forDelay) queued" : "")
            + (milliseconds.map { String(format: ": %.1f ms at the rate", $0) } ?? "")
            + (during.map { ", during \($0)" } ?? "")
    }

    /// Every shaped direction of the lab, in link order; then the queues that a `profile` fault
    /// installs for its window (both directions of its link, as the fault shapes them).
    public static func of(_ t: Topology) -> [ShapedQueue] {
        let profiles = Dictionary(t.profiles.map { ($0.name, $0) }, uniquingKeysWith: { a, _ in a })
        var out: [ShapedQueue] = []
        func add(_ link: Link, _ i: Int, _ q: QdiscSpec, during: String? = nil) {
            let (packets, forDelay, ms) = q.queue(mtu: link.mtu)
            out.append(ShapedQueue(link: link.name, end: "\(link.endpoints[i])", host: link.hosts[i], profile: q.profile,
                                   rule: profiles[q.profile]?.queue?.description ?? "bdp", packets: packets, forDelay: forDelay, milliseconds: ms, during: during))
        }
        for link in t.links {
            for i in link.endpoints.indices {
                if let q = Planner.qdisc(profiles, link, end: i) { add(link, i, q) }
            }
        }
        for (n, f) in t.schedule.enumerated() {
            guard case let .profile(l, name) = f.kind, t.links.indices.contains(l), var p = profiles[name] else { continue }
            let link = t.links[l]
            p.direction = LinkProfile.Direction.both  // a profile fault shapes both directions of its link
            guard let q = QueueSizing.qdisc(for: p, mtu: link.mtu) else { continue }
            for i in link.endpoints.indices { add(link, i, q, during: "fault \(n + 1) (profile)") }
        }
        return out
    }
}
