import Foundation
import Hosts
import Planning
import Report

/// The events of a run, filled in as the hosts report their changes.
final class EventBook: @unchecked Sendable {
    private var items: [RunResults.Event]
    private let lock = NSLock()
    init(_ items: [RunResults.Event]) { self.items = items }
    func update(_ i: Int, _ f: (inout RunResults.Event) -> Void) { lock.withLock { f(&items[i]) } }
    var events: [RunResults.Event] { lock.withLock { items } }
}

/// One change on several hosts: when the first began and the last finished.
final class PendingChange: @unchecked Sendable {
    private var left: Int
    private var began = UInt64.max, finished: UInt64 = 0
    private let lock = NSLock()
    init(hosts: Int) { left = hosts }
    /// Returns the change's span once every host has reported.
    func done(_ t: ChangeTiming) -> (UInt64, UInt64)? {
        lock.withLock {
            began = min(began, t.began); finished = max(finished, t.finished); left -= 1
            return left == 0 ? (began, finished) : nil
        }
    }
}

/// Sends changes to hosts in order, one queue per host, without holding up the schedule.
final class ChangeDispatcher: @unchecked Sendable {
    private var queues: [String: DispatchQueue] = [:]
    private let group = DispatchGroup()
    private let lock = NSLock()
    private var errors: [any Error] = []

    func send(host: String, label: String, _ work: @escaping () throws -> Void) {
        let work = Unchecked(work)
        let q = lock.withLock { () -> DispatchQueue in
            if let q = queues[host] { return q }
            let q = DispatchQueue(label: "pathbed.changes.\(host)")
            queues[host] = q
            return q
        }
        q.async(group: group) { [self] in
            do { try work.value() } catch { lock.withLock { errors.append(LabError("\(label) on \(host): \(error)")) } }
        }
    }

    var failure: (any Error)? { lock.withLock { errors.first } }
    func waitUntilIdle() { group.wait() }
}

