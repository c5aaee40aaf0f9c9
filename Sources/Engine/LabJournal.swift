import Foundation
import Hosts
import Planning
import TopologyModel

/// What a lab created, kept in /run/pathbed/labs (cleared at boot, like the namespaces themselves).
///
/// The journal is written before the first kernel change and lists every namespace `up` will
/// create, per host, and the plan it applied (so that a later `up` of a changed file can change
/// the running lab in place). It is never trusted alone: `down` removes a namespace only when
/// its name is the lab's and its loopback carries the lab's tag.
public struct LabJournal: Codable, Sendable {
    public enum State: String, Codable, Sendable { case building, up }
    public static let version = 2
    public var version = LabJournal.version
    public var lab: String
    public var file: String
    public var state: State
    public var planDigest: String
    /// Namespaces per host name.
    public var namespaces: [String: [String]]
    public var plan: LabPlan?
    public var pid: Int32
    public var started: Date
    /// How each host is reached (absent: all on this machine).
    public var access: [String: HostAccess]?
    /// Host interfaces whose MTU the lab changed, per host, with their MTU before (`down` restores them).
    public var changedMTUs: [String: [MTUChange]]?
    /// Links a run has taken down and not yet brought back (a run killed mid-fault): the next
    /// `up` brings them back with their routes.
    public var activeFaults: [ActiveFault]?
    /// The run (`pathbed run`) that holds the lab now: `down`, another run and `up` of a changed
    /// file are refused while it lives; when it died without ending cleanly, the next `up`
    /// stops what it left running.
    public var runPID: Int32?

    public var allNamespaces: [String] { namespaces.values.flatMap { $0 } }
}

/// A fault's change a run had made and not undone when the journal was last written.
public struct ActiveFault: Codable, Sendable, Hashable {
    public var host: String
    public var action: FaultAction
    public init(host: String, action: FaultAction) { self.host = host; self.action = action }
}

/// Why a journal could not be read.
public enum JournalRead {
    case missing
    case unreadable(String)
    case ok(LabJournal)

    public var journal: LabJournal? { if case let .ok(j) = self { return j } else { return nil } }
}

/// The directory of journals and locks: root-owned, mode 0700, never followed through symlinks.
public struct StateStore: Sendable {
    public let directory: String

    public static var defaultDirectory: String { PrivateDirectory.labs }

    public init(directory: String = StateStore.defaultDirectory) { self.directory = directory }

    /// Creates the directory if needed (0700) and checks that nobody else can write into it.
    public func prepare() throws(LabError) { try PrivateDirectory.prepare(directory) }

    /// Where the shared ssh connections to a lab's hosts keep their sockets.
    public var sshControlDirectory: String { directory + "/ssh" }

    func path(_ lab: String, _ suffix: String) -> String { "\(directory)/\(lab)\(suffix)" }

    public func load(_ lab: String) -> JournalRead {
        guard LabName.problem(lab) == nil else { return .missing }
        // O_NONBLOCK: a FIFO planted as a journal must not block the open (nor the read).
        let fd = open(path(lab, ".json"), O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
        if fd < 0 {
            return errno == ENOENT ? .missing : .unreadable("cannot open \(path(lab, ".json")): \(String(cString: strerror(errno)))")
        }
        var st = stat()
        guard fstat(fd, &st) == 0, (st.st_mode & S_IFMT) == S_IFREG else {
            close(fd)
            return .unreadable("\(path(lab, ".json")) is not a regular file")
        }
        guard st.st_size <= 1 << 30 else {
            close(fd)
            return .unreadable("\(path(lab, ".json")) is larger than 1 GiB: not a journal Pathbed wrote")
        }
        let handle = FileHandle(fileDescriptor: fd, closeOnDealloc: true)
        guard let data = try? handle.readToEnd() else { return .unreadable("cannot read \(path(lab, ".json"))") }
        let d = JSONDecoder(); d.dateDecodingStrategy = .iso8601
        do {
            let j = try d.decode(LabJournal.self, from: data)
            guard j.lab == lab else { return .unreadable("\(path(lab, ".json")) is the journal of lab '\(j.lab)'") }
            return .ok(j)
        } catch {
            return .unreadable("\(path(lab, ".json")) is not a journal Pathbed \(LabJournal.version) can read (\(error))")
        }
    }

    /// Writes the journal atomically: a fresh temporary file (O_EXCL | O_NOFOLLOW, 0600), then rename.
    public func save(_ journal: LabJournal) throws(LabError) {
        try prepare()
        let e = JSONEncoder(); e.outputFormatting = [.sortedKeys]; e.dateEncodingStrategy = .iso8601
        let data: Data
        do { data = try e.encode(journal) } catch { throw LabError("cannot encode the journal of lab '\(journal.lab)': \(error)") }
        let tmp = path(journal.lab, ".json.tmp")
        unlink(tmp)  // a planted file or symlink is removed, never followed
        let fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0o600)
        guard fd >= 0 else {
            throw LabError("cannot write \(tmp): \(String(cString: strerror(errno)))", fix: "check that the file system of \(directory) is writable and has space; nothing was changed")
        }
        let ok = data.withUnsafeBytes { buf -> Bool in
            var off = 0
            while off < buf.count {
                let n = write(fd, buf.baseAddress! + off, buf.count - off)
                if n < 0 { if errno == EINTR { continue }; return false }
                off += n
            }
            return true
        }
        close(fd)
        guard ok, rename(tmp, path(journal.lab, ".json")) == 0 else {
            let reason = String(cString: strerror(errno))
            unlink(tmp)
            throw LabError("cannot write the journal of lab '\(journal.lab)' in \(directory): \(reason)",
                           fix: "check that the file system of \(directory) is writable and has space")
        }
    }

    public func remove(_ lab: String) { unlink(path(lab, ".json")) }

    public func labs() -> [String] {
        ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".json") }.map { String($0.dropLast(5)) }
            .filter { LabName.problem($0) == nil }.sorted()
    }

    /// Takes the lab's exclusive lock, or says who holds it.
    public func lock(_ lab: String) throws(LabError) -> LabLock {
        try prepare()
        let path = path(lab, ".lock")
        return try FileLock(path: path) { LabError("another pathbed is working on lab '\(lab)' right now (it holds \(path))", fix: "wait for it to finish, or stop it") }
    }
}

/// An exclusive lock per lab, so that two `up`s of one lab cannot race (see FileLock).
public typealias LabLock = FileLock
