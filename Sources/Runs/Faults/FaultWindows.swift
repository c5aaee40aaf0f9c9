import Foundation
import NetlinkTypes
import Planning
import TopologyModel

/// A fault's change on one host.
struct HostAction: Hashable, Sendable {
    var host: String
    var action: FaultAction
}

/// One repetition of a fault on the run's time line: injected at `start`, reverted at `end`.
/// A built-in fault is a list of host actions (a trace has one list per row, each replacing the
/// last); an external fault is a program that injects and reverts on request.
struct FaultWindow: Sendable {
    var event: Int
    var kind: FaultEvent.Name
    var label: String
    var start: Double
    var end: Double
    /// The changes, at their times (the first at `start`).
    var changes: [(at: Double, actions: [HostAction])] = []
    var external: ExternalPlugin.Launch?
    /// Qdisc kinds the hosts must offer for this fault.
    var needs: [String: Set<Shaping.Kind>] = [:]

    /// Every distinct action of the window, the last of each key (what `revert` undoes).
    var lastActions: [HostAction] {
        var byKey: [String: HostAction] = [:]
        var order: [String] = []
        for c in changes { for a in c.actions { let k = a.host + " " + a.action.key; if byKey[k] == nil { order.append(k) }; byKey[k] = a } }
        return order.map { byKey[$0]! }
    }
}

/// What a fault plugin sees of the lab when it describes itself.
struct FaultContext {
    var topology: Topology
    var plan: LabPlan
    /// The schedule's random numbers (`run: {seed: N}`), one stream for the whole schedule.
    var random: SeededRandom
}

/// A kind of fault, built in: it describes what it does as windows of host actions. Injecting
/// and reverting those is the hosts' work (`HostExecutor.change`), so that a host can revert by
/// itself. Its options were checked by the validator.
protocol FaultPlugin {
    associatedtype Options
    static func describe(_ f: FaultEvent, _ options: Options, index: Int, _ c: inout FaultContext) -> [FaultWindow]
}

enum Faults {
    /// Every fault of the schedule laid out on the time line; repetitions that would end after
    /// the run are left out, with a note.
    static func windows(_ t: Topology, _ plan: LabPlan, runLength: Double, seedOffset: Int = 0) -> (windows: [FaultWindow], notes: [String]) {
        // Repetition K of `--repeat` uses seed + K - 1, wrapping at 2^64 rather than trapping.
        let seed = UInt64(truncatingIfNeeded: t.run.seed ?? 1) &+ UInt64(truncatingIfNeeded: seedOffset)
        var c = FaultContext(topology: t, plan: plan, random: SeededRandom(seed: seed))
        var out: [FaultWindow] = []
        var notes: [String] = []
        for (i, f) in t.schedule.enumerated() {
            var ws: [FaultWindow]
            switch f.kind {
            case let .linkDown(link, reannounce), let .linkFlap(link, reannounce):
                ws = LinkDownFault.describe(f, (link, reannounce), index: i, &c)
            case let .profile(link, profile):
                ws = ProfileFault.describe(f, (link, .profile(profile)), index: i, &c)
            case let .lossBurst(link, loss):
                ws = ProfileFault.describe(f, (link, .lossBurst(loss)), index: i, &c)
            case let .trace(link, _, rows):
                ws = ProfileFault.describe(f, (link, .trace(rows)), index: i, &c)
            case let .partition(nodes):
                ws = PartitionFault.describe(f, nodes, index: i, &c)
            case let .plugin(external):
                ws = ExternalFault.describe(f, external, index: i, &c)
            }
            let late = ws.filter { $0.end > runLength }
            if !late.isEmpty {
                notes.append("schedule[\(i)]: \(late.count) of \(ws.count) repetitions would end after the run (\(String(format: "%.0f", runLength)) s) and are left out")
                ws.removeAll { $0.end > runLength }
            }
            out += ws
        }
        return (out.sorted { $0.start < $1.start }, notes)
    }

    /// Start times of a fault's repetitions: `at`, then every `every` (or, with `random`, gaps
    /// drawn so that repetitions never overlap and average `every`).
    static func starts(_ f: FaultEvent, _ c: inout FaultContext) -> [Double] {
        let at = f.at.seconds, d = f.duration.seconds, every = f.every?.seconds ?? 0
        var out = [at]
        for _ in 1..<max(f.count, 1) {
            let gap: Double
            switch f.random {
            case .exponential?: gap = d + c.random.exponential(mean: max(every - d, 0.001))
            case .uniform?: gap = d + c.random.uniform(0, 2 * max(every - d, 0))
            case nil: gap = every
            }
            out.append(out.last! + gap)
        }
        return out
    }

    static func label(_ f: FaultEvent, _ what: String, _ k: Int) -> String {
        "\(f.name.rawValue) \(what)" + (f.count > 1 ? " #\(k + 1)" : "")
    }
}

/// Reproducible random numbers (SplitMix64): the same seed gives the same schedule on every machine.
struct SeededRandom {
    private var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// In [0, 1).
    mutating func unit() -> Double { Double(next() >> 11) / Double(1 << 53) }
    mutating func uniform(_ a: Double, _ b: Double) -> Double { a + (b - a) * unit() }
    mutating func exponential(mean: Double) -> Double { -mean * log(1 - unit()) }
}
