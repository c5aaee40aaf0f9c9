import Foundation
import Planning
import TopologyModel

/// How the controller reaches one host of a lab: in process, or by starting `pathbed agent`
/// there with the system's OpenSSH client (the user's keys, config, ProxyJump all apply).
public struct HostAccess: Codable, Sendable, Hashable {
    public var host: String
    /// `user@address`, or a Host of an ssh config. Nil: this machine, in process.
    public var ssh: String?
    public var port: Int?
    /// A private key file (`ssh -i`).
    public var identity: String?
    /// An ssh config file (`ssh -F`), e.g. the output of `vagrant ssh-config`.
    public var sshConfig: String?
    /// A Vagrant project directory: the ssh settings come from `vagrant ssh-config HOST` run there.
    public var vagrant: String?
    /// More ssh arguments, e.g. ["-o", "ProxyJump=bastion"].
    public var sshOptions: [String] = []
    /// The pathbed binary on that host. Nil: `pathbed` on its PATH. "self": the path of this
    /// very binary (hosts that see this machine's file system, as the built-in VM pair does).
    public var pathbed: String?
    /// Instead of ssh, start the agent with this command (tests; other transports).
    public var command: [String]?

    public init(host: String, ssh: String? = nil) { self.host = host; self.ssh = ssh }

    enum CodingKeys: String, CodingKey { case host, ssh, port, identity, sshConfig = "ssh-config", sshOptions = "ssh-options", pathbed, command, vagrant }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        host = try c.decodeIfPresent(String.self, forKey: .host) ?? ""
        ssh = try c.decodeIfPresent(String.self, forKey: .ssh)
        port = try c.decodeIfPresent(Int.self, forKey: .port)
        identity = try c.decodeIfPresent(String.self, forKey: .identity)
        sshConfig = try c.decodeIfPresent(String.self, forKey: .sshConfig)
        sshOptions = try c.decodeIfPresent([String].self, forKey: .sshOptions) ?? []
        pathbed = try c.decodeIfPresent(String.self, forKey: .pathbed)
        command = try c.decodeIfPresent([String].self, forKey: .command)
        vagrant = try c.decodeIfPresent(String.self, forKey: .vagrant)
        if let port, !(1...65535).contains(port) { throw DecodingError.dataCorruptedError(forKey: .port, in: c, debugDescription: "port \(port) is not 1-65535") }
        if let command, command.first?.isEmpty ?? true {
            throw DecodingError.dataCorruptedError(forKey: .command, in: c, debugDescription: "`command` must name a program: a list like [\"ssh\", \"host\", \"pathbed\", \"agent\"]")
        }
        if let ssh, ssh.hasPrefix("-") || ssh.contains(where: { $0.isWhitespace }) {
            throw DecodingError.dataCorruptedError(forKey: .ssh, in: c, debugDescription: "'\(ssh)' is not an ssh destination")
        }
    }

    public var isLocal: Bool { ssh == nil && command == nil }

    /// Where it is, for people.
    public var label: String {
        if let command { return command.joined(separator: " ") }
        guard let ssh else { return "this machine" }
        return "ssh \(ssh)\(port.map { ":\($0)" } ?? "")"
    }

    /// The agent binary's path on the host.
    var agentBinary: String {
        switch pathbed {
        case nil: return "pathbed"
        case "self"?: return HostAccess.selfPath
        case let p?: return p
        }
    }

    /// This machine's `pathbed`: this binary, or the one beside it (for pathbed-bench).
    static var selfPath: String {
        let me = (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let url = URL(fileURLWithPath: me)
        if url.lastPathComponent == "pathbed" { return me }
        let sibling = url.deletingLastPathComponent().appendingPathComponent("pathbed").path
        return FileManager.default.isExecutableFile(atPath: sibling) ? sibling : me
    }

    /// The command that starts `pathbed agent` on the host. One ssh connection per host is
    /// shared by every command (ControlMaster), kept for a minute after the last one ends.
    public func agentCommand(controlDirectory: String) -> [String] {
        if let command { return command }
        // ssh keeps the first value it is given for an option: the inventory's own options come
        // first, so that they override these defaults.
        var argv = ["ssh", "-T"]
        if let sshConfig { argv += ["-F", sshConfig] }
        if let port { argv += ["-p", String(port)] }
        if let identity { argv += ["-i", identity, "-o", "IdentitiesOnly=yes"] }
        argv += sshOptions
        argv += ["-o", "BatchMode=yes", "-o", "ConnectTimeout=15", "-o", "ServerAliveInterval=5", "-o", "ServerAliveCountMax=4",
                 "-o", "ControlMaster=auto", "-o", "ControlPath=\(controlDirectory)/%C", "-o", "ControlPersist=60"]
        argv += [ssh ?? "localhost", "--", agentBinary, "agent"]
        return argv
    }
}

extension HostAccess {
    /// The executor that reaches this host: this machine in process, any other through its agent.
    public func executor(controlDirectory: String = PrivateDirectory.sshControl) -> HostExecutor {
        isLocal ? LocalExecutor(host: host) : RemoteExecutor(access: self, controlDirectory: controlDirectory)
    }
}
