import CNetlink
import CShims
import NetlinkTypes
#if canImport(Glibc)
import Glibc
#endif

/// The in-kernel MPTCP path manager of one namespace (generic netlink family `mptcp_pm`):
/// endpoints and limits, as `ip mptcp endpoint` / `ip mptcp limits` set them.
public final class MPTCPHandle {
    public let namespace: String
    let socket: NetlinkSocket
    let family: Int32
    var sock: OpaquePointer { socket.pointer }
    var lastErrno: UnsafeMutablePointer<Int32> { socket.lastErrno }

    public struct Flags: OptionSet, Sendable {
        public let rawValue: UInt32
        public init(rawValue: UInt32) { self.rawValue = rawValue }
        public static let signal = Flags(rawValue: UInt32(MPTCP_PM_ADDR_FLAG_SIGNAL))
        public static let subflow = Flags(rawValue: UInt32(MPTCP_PM_ADDR_FLAG_SUBFLOW))
        public static let backup = Flags(rawValue: UInt32(MPTCP_PM_ADDR_FLAG_BACKUP))
        public static let fullmesh = Flags(rawValue: UInt32(MPTCP_PM_ADDR_FLAG_FULLMESH))
        public init(names: [String]) {
            var f: Flags = []
            for n in names {
                switch n { case "signal": f.insert(.signal); case "subflow": f.insert(.subflow); case "backup": f.insert(.backup); case "fullmesh": f.insert(.fullmesh); default: break }
            }
            self = f
        }
    }

    public init(nsfd: Int32, namespace: String) throws(NetlinkError) {
        self.namespace = namespace
        socket = try NetlinkSocket(protocol: NETLINK_GENERIC, nsfd: nsfd, namespace: namespace, label: "mptcp_pm")
        let r = genl_ctrl_resolve(socket.pointer, MPTCP_PM_NAME)
        guard r >= 0 else {
            throw NetlinkError("find generic netlink family", MPTCP_PM_NAME, namespace: namespace, errno: r == -NLE_OBJ_NOTFOUND ? ENOENT : ENOPROTOOPT,
                               hint: "this kernel has no MPTCP (CONFIG_MPTCP); run MPTCP nodes on a host with it, or declare the host `mptcp: false`")
        }
        family = r
    }

    private func send(_ command: Int32, _ operation: String, _ object: String, _ fill: (OpaquePointer) -> Int32) throws(NetlinkError) {
        guard let msg = nlmsg_alloc() else { throw NetlinkError(operation, object, namespace: namespace, errno: ENOMEM) }
        defer { nlmsg_free(msg) }
        guard genlmsg_put(msg, UInt32(NL_AUTO_PORT), UInt32(NL_AUTO_SEQ), family, 0, 0, UInt8(command), UInt8(MPTCP_PM_VER)) != nil,
              fill(msg) >= 0 else {
            throw NetlinkError(operation, object, namespace: namespace, errno: EMSGSIZE)
        }
        lastErrno.pointee = 0
        var r = nl_send_auto(sock, msg)
        if r >= 0 { r = nl_wait_for_ack(sock) }
        if r < 0 {
            let e = lastErrno.pointee != 0 ? lastErrno.pointee : RouteHandle.errnoFromLibnl(-r)
            throw NetlinkError(operation, object, namespace: namespace, errno: e)
        }
    }

    public func setLimits(subflows: UInt32?, addAddrAccepted: UInt32?) throws(NetlinkError) {
        try send(Int32(MPTCP_PM_CMD_SET_LIMITS), "set MPTCP limits", "subflows \(subflows.map(String.init) ?? "-") add_addr_accepted \(addAddrAccepted.map(String.init) ?? "-")") { msg in
            if let s = subflows, nla_put_u32(msg, Int32(MPTCP_PM_ATTR_SUBFLOWS), s) < 0 { return -1 }
            if let a = addAddrAccepted, nla_put_u32(msg, Int32(MPTCP_PM_ATTR_RCV_ADD_ADDRS), a) < 0 { return -1 }
            return 0
        }
    }

    /// Deletes endpoint `id`; one already gone is no error.
    public func deleteEndpoint(id: UInt8) throws(NetlinkError) {
        do {
            try send(Int32(MPTCP_PM_CMD_DEL_ADDR), "delete MPTCP endpoint", "id \(id)") { msg in
                guard let nest = nla_nest_start(msg, Int32(MPTCP_PM_ATTR_ADDR) | Int32(NLA_F_NESTED)) else { return -1 }
                if nla_put_u8(msg, Int32(MPTCP_PM_ADDR_ATTR_ID), id) < 0 { return -1 }
                return nla_nest_end(msg, nest)
            }
        } catch { if error.errno != ENOENT && error.errno != EINVAL { throw error } }
    }

    /// Adds an endpoint: an address of `ifindex` with flags (subflow, signal, backup, fullmesh).
    public func addEndpoint(address: [UInt8], ifindex: Int32, id: UInt8, flags: Flags, label: String) throws(NetlinkError) {
        try send(Int32(MPTCP_PM_CMD_ADD_ADDR), "add MPTCP endpoint", label) { msg in
            guard let nest = nla_nest_start(msg, Int32(MPTCP_PM_ATTR_ADDR) | Int32(NLA_F_NESTED)) else { return -1 }
            let v4 = address.count == 4
            if nla_put_u16(msg, Int32(MPTCP_PM_ADDR_ATTR_FAMILY), UInt16(v4 ? AF_INET : AF_INET6)) < 0 { return -1 }
            if nla_put_u8(msg, Int32(MPTCP_PM_ADDR_ATTR_ID), id) < 0 { return -1 }
            let attr = Int32(v4 ? MPTCP_PM_ADDR_ATTR_ADDR4 : MPTCP_PM_ADDR_ATTR_ADDR6)
            if address.withUnsafeBytes({ nla_put(msg, attr, Int32($0.count), $0.baseAddress) }) < 0 { return -1 }
            if nla_put_s32(msg, Int32(MPTCP_PM_ADDR_ATTR_IF_IDX), ifindex) < 0 { return -1 }
            if nla_put_u32(msg, Int32(MPTCP_PM_ADDR_ATTR_FLAGS), flags.rawValue) < 0 { return -1 }
            return nla_nest_end(msg, nest)
        }
    }
}
