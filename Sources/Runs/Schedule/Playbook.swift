import Foundation

/// The schedule's steps in time order: each window's changes, then its revert. A built-in
/// step is due `lead` seconds before its time (its hosts wait for the moment themselves); an
/// external plugin's at its time.
struct Playbook {
    enum Kind: Equatable { case change(Int), revert }
    struct Step { var at: Double; var due: Double; var window: Int; var kind: Kind }
    private var steps: [Step]

    init(_ windows: [FaultWindow], lead: Double = 0) {
        var s: [Step] = []
        for (i, w) in windows.enumerated() {
            let ahead = w.external != nil ? 0 : lead
            let n = max(w.changes.count, 1)
            for k in 0..<n {
                let at = w.external != nil ? w.start : w.changes[k].at
                s.append(Step(at: at, due: max(at - ahead, 0), window: i, kind: .change(k)))
            }
            s.append(Step(at: w.end, due: max(w.end - ahead, 0), window: i, kind: .revert))
        }
        // At one time, reverts first (a link comes back before the next fault on it begins).
        steps = s.sorted { ($0.at, $0.kind == .revert ? 0 : 1, $0.window) < ($1.at, $1.kind == .revert ? 0 : 1, $1.window) }
    }

    /// The first step not played yet (an index: taking steps from the front of the array made
    /// a schedule of 100,000 flaps quadratic).
    private var position = 0

    var upcoming: Step? { position < steps.count ? steps[position] : nil }

    /// The next step when it is due; never one ahead of an earlier step (steps leave in time order).
    mutating func next(at now: Double) -> Step? {
        guard position < steps.count, now >= steps[position].due else { return nil }
        position += 1
        return steps[position - 1]
    }
}

