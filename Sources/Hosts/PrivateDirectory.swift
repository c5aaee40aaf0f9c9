import Foundation
import Planning

/// Pathbed's own directories (lab journals and locks, ssh sockets, the VM pair's state): root's,
/// mode 0700, never followed through symlinks.
public enum PrivateDirectory {
    /// Lab journals and locks: PATHBED_STATE_DIR, else /run/pathbed/labs (cleared at boot, like namespaces).
    public static var labs: String { ProcessInfo.processInfo.environment["PATHBED_STATE_DIR"] ?? "/run/pathbed/labs" }

    /// The shared ssh connections' sockets, beside the journals.
    public static var sshControl: String { labs + "/ssh" }

    /// Creates the directory if needed (0700) and checks that nobody else can write into it.
    public static func prepare(_ directory: String, variable: String = "PATHBED_STATE_DIR") throws(LabError) {
        guard directory.hasPrefix("/") else {
            throw LabError("the state directory \(directory) is not an absolute path", fix: "set \(variable) to a path that starts with /")
        }
        var path = ""
        for part in directory.split(separator: "/") {
            path += "/" + part
            if mkdir(path, 0o700) != 0 && errno != EEXIST {
                throw LabError("cannot create the state directory \(path): \(String(cString: strerror(errno)))",
                               fix: "make \(directory) creatable by this user, or set \(variable) to a directory only you can write")
            }
        }
        var st = stat()
        guard lstat(directory, &st) == 0 else {
            throw LabError("cannot read the state directory \(directory): \(String(cString: strerror(errno)))", fix: "check that it exists and that you may read it, or set \(variable)")
        }
        let why: String?
        if (st.st_mode & S_IFMT) == S_IFLNK { why = "it is a symbolic link" }
        else if (st.st_mode & S_IFMT) != S_IFDIR { why = "it is not a directory" }
        else if st.st_uid != geteuid() { why = "it belongs to uid \(st.st_uid), not \(geteuid())" }
        else if st.st_mode & 0o022 != 0 { why = "others can write into it (mode \(String(st.st_mode & 0o777, radix: 8)))" }
        else { why = nil }
        if let why {
            throw LabError("the state directory \(directory) is not safe: \(why)",
                           fix: "remove it (pathbed recreates it with mode 0700), or set \(variable) to a directory only you can write")
        }
        // Journals name the lab's files and processes: nobody else needs to read them either.
        if st.st_mode & 0o077 != 0 { chmod(directory, 0o700) }
    }

    /// The ssh control directory made ready: a socket's path (the directory, a 40-character
    /// hash, and ssh's own 17-character suffix while it binds) must fit in 107 bytes.
    public static func prepareSSHControl(_ directory: String) throws(LabError) {
        guard directory.utf8.count + 1 + 40 + 17 <= 107 else {
            throw LabError("the ssh control directory \(directory) is too long for a socket's path (\(directory.utf8.count) bytes; at most 49)",
                           fix: "set PATHBED_STATE_DIR to a shorter path")
        }
        try prepare(directory)
    }
}
