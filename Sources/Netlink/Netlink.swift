import CNetlink
import CShims
import NetlinkTypes
#if canImport(Glibc)
import Glibc
#endif

/// A failed kernel operation: what was done, to which object, in which namespace, and the
/// kernel's own reason (its errno, which libnl's error codes would otherwise lose).
public struct NetlinkError: Error, CustomStringConvertible, Sendable {
    public var operation: String
    public var object: String
    public var namespace: String
    public var errno: Int32
    public var hint: String?

    public init(_ operation: String, _ object: String, namespace: String, errno: Int32, hint: String? = nil) {
        self.operation = operation; self.object = object; self.namespace = namespace; self.errno = errno; self.hint = hint
    }

    public var errnoName: String { Self.names[errno] ?? "errno \(errno)" }
    public var reason: String { String(cString: strerror(errno)) }

    public var description: String {
        var s = "\(operation) \(object) in \(namespace): \(reason) (\(errnoName))"
        if let hint { s += "\n    fix: \(hint)" }
        return s
    }

    static let names: [Int32: String] = [
        EPERM: "EPERM", ENOENT: "ENOENT", EEXIST: "EEXIST", EINVAL: "EINVAL", ENODEV: "ENODEV", EBUSY: "EBUSY",
        EOPNOTSUPP: "EOPNOTSUPP", ENETUNREACH: "ENETUNREACH", ERANGE: "ERANGE", EACCES: "EACCES", ENOMEM: "ENOMEM",
        ENOSPC: "ENOSPC", EADDRNOTAVAIL: "EADDRNOTAVAIL", ENOBUFS: "ENOBUFS", EAFNOSUPPORT: "EAFNOSUPPORT",
    ]
}

/// A directory's entries.
public enum Directory {
    /// The names in the directory at `path` (without `.` and `..`), or nil when it cannot be read.
    public static func names(in path: String) -> [String]? {
        guard let dir = opendir(path) else { return nil }
        defer { closedir(dir) }
        var names: [String] = []
        while let entry = readdir(dir) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            if name != "." && name != ".." { names.append(name) }
        }
        return names
    }
}

/// Network namespaces bound under /run/netns, as `ip netns` makes them.
public enum NetworkNamespace {
    /// A name `ip netns` can hold: one path component under /run/netns.
    public static func isValidName(_ name: String) -> Bool {
        !name.isEmpty && name.utf8.count <= 255 && name != "." && name != ".." && !name.contains("/") && !name.utf8.contains(0)
    }

    static func checkName(_ name: String, _ operation: String) throws(NetlinkError) {
        guard isValidName(name) else { throw NetlinkError(operation, "'\(name)'", namespace: "/run/netns", errno: EINVAL, hint: "not a namespace name") }
    }

    /// Creates a namespace bound to /run/netns/NAME; `tag`, when given, is the alias of its
    /// loopback, set before the name appears.
    public static func create(_ name: String, tag: String? = nil) throws(NetlinkError) {
        try checkName(name, "create namespace")
        let r = tag.map { pb_netns_create(name, $0) } ?? pb_netns_create(name, nil)
        if r < 0 { throw NetlinkError("create namespace", name, namespace: "/run/netns", errno: -r) }
    }

    public static func delete(_ name: String) throws(NetlinkError) {
        try checkName(name, "delete namespace")
        let r = pb_netns_delete(name)
        if r < 0 { throw NetlinkError("delete namespace", name, namespace: "/run/netns", errno: -r) }
    }

    /// An open descriptor of the namespace; the caller closes it.
    public static func open(_ name: String) throws(NetlinkError) -> Int32 {
        try checkName(name, "open namespace")
        let fd = pb_netns_open(name)
        if fd < 0 { throw NetlinkError("open namespace", name, namespace: "/run/netns", errno: -fd) }
        return fd
    }

    /// True when /run/netns/NAME is an empty file with no namespace bound to it: what a process
    /// killed between creating the name and binding the namespace leaves. It is no kernel object.
    public static func isPlaceholder(_ name: String) -> Bool {
        guard isValidName(name) else { return false }
        var entry = stat(), dir = stat()
        guard lstat("/run/netns/\(name)", &entry) == 0, stat("/run/netns", &dir) == 0 else { return false }
        return (entry.st_mode & S_IFMT) == S_IFREG && entry.st_size == 0 && entry.st_dev == dir.st_dev
    }

    /// Removes a placeholder left by a killed creation (never a bound namespace).
    public static func removePlaceholder(_ name: String) -> Bool {
        isPlaceholder(name) && unlink("/run/netns/\(name)") == 0
    }

    /// Names under /run/netns.
    public static func list() -> [String] { (Directory.names(in: "/run/netns") ?? []).sorted() }

    /// Processes whose network namespace is `name` (as `ip netns pids` finds them).
    public static func pids(_ name: String) -> [pid_t] { pids(in: [name]) }

    /// Processes whose network namespace is any of `names`, in one pass over /proc.
    public static func pids(in names: [String]) -> [pid_t] {
        struct Key: Hashable { var dev: UInt64, ino: UInt64 }
        var wanted: Set<Key> = []
        for name in names {
            var st = stat()
            if isValidName(name), stat("/run/netns/\(name)", &st) == 0 { wanted.insert(Key(dev: UInt64(st.st_dev), ino: UInt64(st.st_ino))) }
        }
        guard !wanted.isEmpty else { return [] }
        var out: [pid_t] = []
        for pidText in Directory.names(in: "/proc") ?? [] {
            guard let pid = pid_t(pidText) else { continue }
            var ps = stat()
            if stat("/proc/\(pid)/ns/net", &ps) == 0, wanted.contains(Key(dev: UInt64(ps.st_dev), ino: UInt64(ps.st_ino))) { out.append(pid) }
        }
        return out
    }

    /// A per-namespace sysctl key: `net.` and then names, never a path that leaves /proc/sys/net.
    public static func isNetSysctl(_ key: String) -> Bool {
        key.hasPrefix("net.") && !key.contains("..") && !key.hasSuffix(".")
            && key.unicodeScalars.allSatisfy { ("a"..."z").contains($0) || ("A"..."Z").contains($0) || ("0"..."9").contains($0) || "_.-".unicodeScalars.contains($0) }
    }

    public static func writeSysctl(_ nsfd: Int32, namespace: String, _ key: String, _ value: String) throws(NetlinkError) {
        guard isNetSysctl(key), !value.utf8.contains(0), !value.contains("\n") else {
            throw NetlinkError("set sysctl", "\(key)=\(value)", namespace: namespace, errno: EINVAL, hint: "only net.* keys and one-line values are written")
        }
        let r = pb_sysctl_write(nsfd, key, value)
        if r < 0 {
            throw NetlinkError("set sysctl", "\(key)=\(value)", namespace: namespace, errno: -r,
                               hint: -r == ENOENT ? "this kernel has no \(key); `pathbed doctor` lists what it supports" : nil)
        }
    }

    /// Nil when the key exists in the namespace and can be written, else the kernel's errno
    /// (ENOENT: no such key on this kernel; EACCES: read-only).
    public static func sysctlWriteProblem(_ nsfd: Int32, _ key: String) -> Int32? {
        guard isNetSysctl(key) else { return EINVAL }
        let r = pb_sysctl_access(nsfd, key, 1)
        return r < 0 ? -r : nil
    }

    public static func readSysctl(_ nsfd: Int32, _ key: String) -> String? {
        guard isNetSysctl(key) else { return nil }
        var buffer = [CChar](repeating: 0, count: 4096)
        guard pb_sysctl_read(nsfd, key, &buffer, Int32(buffer.count)) == 0 else { return nil }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// Starts a program inside the namespace; returns its pid.
    public static func spawn(_ nsfd: Int32, _ argv: [String]) -> pid_t {
        var cargs = argv.map { strdup($0) }
        cargs.append(nil)
        defer { for p in cargs { free(p) } }
        return pb_spawn_in(nsfd, &cargs)
    }

    /// Starts a program inside the namespace (-1: this one) in a process group of its own, with
    /// the given stdin, stdout and stderr (-1: inherited). Returns its pid, or a negative errno.
    public static func spawnInGroup(_ nsfd: Int32, _ argv: [String], stdin: Int32, stdout: Int32, stderr: Int32,
                                    environment: [String: String]? = nil) -> pid_t {
        var cargs = argv.map { strdup($0) }
        cargs.append(nil)
        defer { for p in cargs { free(p) } }
        guard let environment else { return pb_spawn_in_group(nsfd, &cargs, stdin, stdout, stderr) }
        var cenv = environment.map { strdup("\($0.key)=\($0.value)") }
        cenv.append(nil)
        defer { for p in cenv { free(p) } }
        return pb_spawn_in_group_env(nsfd, &cargs, &cenv, stdin, stdout, stderr)
    }
}
