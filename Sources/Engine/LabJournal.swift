import Foundation
import TopologyModel

/// What a lab created, kept in /run/pathbed (cleared at boot, like the namespaces themselves).
///
/// The journal is written before the first kernel change and lists every namespace `up` will
/// create. All of a lab's objects live inside its namespaces, whose names carry the tag
/// `pb.LAB`, so `down` removes exactly what the lab created, also after `up` was killed.
public struct LabJournal: Codable, Sendable {
    public enum State: String, Codable, Sendable { case building, up }
    public var lab: String
    public var file: String
    public var state: State
    public var planDigest: String
    public var namespaces: [String]
    public var pid: Int32
    public var started: Date

    public static var directory: String { ProcessInfo.processInfo.environment["PATHBED_STATE_DIR"] ?? "/run/pathbed/labs" }
    static func path(_ lab: String) -> String { "\(directory)/\(lab).json" }

    public static func load(_ lab: String) -> LabJournal? {
        guard let data = FileManager.default.contents(atPath: path(lab)) else { return nil }
        let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601
        return try? d.decode(LabJournal.self, from: data)
    }

    public func save() throws {
        try FileManager.default.createDirectory(atPath: Self.directory, withIntermediateDirectories: true)
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys]; e.dateEncodingStrategy = .iso8601
        let tmp = Self.path(lab) + ".tmp"
        try e.encode(self).write(to: URL(fileURLWithPath: tmp))
        guard rename(tmp, Self.path(lab)) == 0 else { throw CocoaError(.fileWriteUnknown) }
    }

    public static func remove(_ lab: String) { unlink(path(lab)) }

    public static func labs() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? []).filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }.sorted()
    }
}

/// An exclusive lock per lab, so that two `up`s of one lab cannot race. Released when the
/// process ends, however it ends.
public final class LabLock {
    let fd: Int32
    public init?(lab: String) {
        try? FileManager.default.createDirectory(atPath: LabJournal.directory, withIntermediateDirectories: true)
        fd = open("\(LabJournal.directory)/\(lab).lock", O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0, flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            if fd >= 0 { close(fd) }
            return nil
        }
    }
    deinit { close(fd) }
}
