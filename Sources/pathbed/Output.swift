#if canImport(Glibc)
import Glibc
#endif

enum FileHandleOutput {
    static func writeStderr(_ s: String) {
        var s = s
        s.withUTF8 { buf in _ = write(2, buf.baseAddress, buf.count) }
    }
}
