import Foundation
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

/// Binds a topology's host names to real machines: `pathbed vm up` writes one for the built-in
/// pair; people write one for their own hosts (YAML or JSON). A host the inventory does not
/// name is reached as the topology says (`ssh:`), or in process when it has no `ssh:`.
public struct Inventory: Codable, Sendable {
    public var hosts: [String: HostAccess]
    /// Where it was read from.
    public var file: String?

    public init(hosts: [String: HostAccess], file: String? = nil) { self.hosts = hosts; self.file = file }

    /// The access for each of the topology's hosts.
    public func access(for t: Topology) -> [String: HostAccess] {
        Dictionary(uniqueKeysWithValues: t.hosts.map { h in
            if var a = hosts[h.name] { a.host = h.name; return (h.name, a) }
            return (h.name, HostAccess(host: h.name, ssh: h.ssh))
        })
    }

    public func write(to path: String) throws {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var copy = self; copy.file = nil
        try e.encode(copy).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    public static func read(_ path: String) throws(LabError) -> Inventory {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw LabError("cannot read the inventory \(path)", fix: "`pathbed vm up` writes one for the built-in VM pair; docs/agent.md shows the format")
        }
        do {
            var inv = try JSONDecoder().decode(Inventory.self, from: data)
            inv.file = path
            // Files an inventory names are relative to the inventory's own directory.
        let base = URL(fileURLWithPath: path).deletingLastPathComponent()
        func resolve(_ p: String?) -> String? { p.map { $0.hasPrefix("/") ? $0 : base.appendingPathComponent($0).standardized.path } }
        for (name, var a) in inv.hosts {
            a.host = name
            a.identity = resolve(a.identity)
            a.sshConfig = resolve(a.sshConfig)
            a.vagrant = resolve(a.vagrant)
            if a.vagrant != nil && a.ssh == nil { a.ssh = name }
            inv.hosts[name] = a
        }
        for (name, a) in inv.hosts where a.ssh == nil && a.command == nil {
                throw LabError("inventory \(path): host '\(name)' has none of `ssh`, `vagrant` or `command`", fix: "give `\"ssh\": \"user@address\"` (docs/agent.md)")
            }
            return inv
        } catch let e as LabError { throw e } catch {
            throw LabError("inventory \(path) is not valid: \(error)", fix: "docs/agent.md shows the format")
        }
    }
}
