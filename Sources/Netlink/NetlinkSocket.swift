import CNetlink
import CShims
import NetlinkTypes
#if canImport(Glibc)
import Glibc
#endif

/// A libnl socket opened inside one namespace (a short C section), that keeps the kernel's
/// errno of the last error reply. Shared by the route and MPTCP handles.
final class NetlinkSocket {
    let pointer: OpaquePointer
    let lastErrno = UnsafeMutablePointer<Int32>.allocate(capacity: 1)

    init(protocol proto: Int32, nsfd: Int32, namespace: String, label: String) throws(NetlinkError) {
        guard let s = nl_socket_alloc() else {
            lastErrno.deallocate()
            throw NetlinkError("open netlink socket", label, namespace: namespace, errno: ENOMEM)
        }
        lastErrno.pointee = 0
        let r = pb_nl_connect_in(s, proto, nsfd)
        guard r == 0 else {
            nl_socket_free(s)
            lastErrno.deallocate()
            throw NetlinkError("open netlink socket", label, namespace: namespace, errno: -r)
        }
        _ = pb_nl_keep_errno(s, lastErrno)
        pointer = s
    }

    deinit {
        nl_socket_free(pointer)
        lastErrno.deallocate()
    }
}
