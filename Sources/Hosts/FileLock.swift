import Foundation
import Planning

/// An exclusive lock on a file (`flock`), so that two commands cannot work on one thing at once
/// (a lab, the VMs). The kernel releases it when the process ends, however it ends; `release()`
/// also removes the file.
public final class FileLock {
    let fd: Int32
    let path: String
    private var released = false

    /// Takes the lock; while another process holds it, waits up to `wait` seconds (0: not at all;
    /// `waiting` hears it once), then throws `busy`. Ctrl-C ends the wait.
    public init(path: String, wait: Double = 0, waiting: (String) -> Void = { _ in }, busy: () -> LabError) throws(LabError) {
        self.path = path
        let deadline = monotonicNanoseconds() + UInt64(max(0, wait) * 1e9)
        var said = false
        while true {
            let fd = open(path, O_RDWR | O_CREAT | O_NOFOLLOW | O_CLOEXEC, 0o600)
            guard fd >= 0 else {
                throw LabError("cannot open the lock \(path): \(String(cString: strerror(errno)))",
                               fix: "if \(path) is not a plain file Pathbed made, remove it; check that its directory is writable")
            }
            if flock(fd, LOCK_EX | LOCK_NB) != 0 {
                close(fd)
                guard monotonicNanoseconds() < deadline, Interrupts.signal == 0 else { throw busy() }
                if !said { waiting("waiting for the other command that holds \(path)"); said = true }
                usleep(200_000)
                continue
            }
            // The holder before us may have removed the file after we opened it: lock the file that is there now.
            var held = stat(), there = stat()
            if fstat(fd, &held) == 0, lstat(path, &there) == 0, held.st_ino == there.st_ino, held.st_dev == there.st_dev {
                self.fd = fd
                return
            }
            close(fd)
        }
    }

    public func release() {
        guard !released else { return }
        released = true
        unlink(path)
        close(fd)
    }

    deinit { release() }
}
