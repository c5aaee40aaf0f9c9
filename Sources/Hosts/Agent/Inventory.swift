import Foundation
import Planning
import TopologyModel
import Yams

/// Binds a topology's host names to real machines: `pathbed vm up` writes one for the built-in
/// pair; people write one for their own hosts (JSON, or the same in YAML), or use an Ansible
/// inventory (INI or YAML: AnsibleInventory.swift). A host the inventory does not name is
/// reached as the topology says (`ssh:`), or in process when it has no `ssh:`.
public struct Inventory: Codable, Sendable {
    /// By name. An Ansible inventory's group of exactly one host is here too, under the group's name.
    public var hosts: [String: HostAccess]
    /// Where it was read from.
    public var file: String?
    /// An Ansible inventory's groups of several hosts, with their hosts: a topology host may not name one.
    public var groups: [String: [String]] = [:]

    enum CodingKeys: String, CodingKey { case hosts, file }

    public init(hosts: [String: HostAccess], file: String? = nil, groups: [String: [String]] = [:]) {
        self.hosts = hosts; self.file = file; self.groups = groups
    }

    /// The access for each of the topology's hosts. A host that names a group of several hosts
    /// gets an access that fails, saying why, when it is used (`check` says it before).
    public func access(for t: Topology) -> [String: HostAccess] {
        Dictionary(uniqueKeysWithValues: t.hosts.map { h in
            if var a = hosts[h.name] { a.host = h.name; return (h.name, a) }
            if let e = groupProblem(h.name) {
                var a = HostAccess(host: h.name)
                a.command = ["/bin/sh", "-c", "echo \"$1\" >&2; exit 1", "sh", e.description]
                return (h.name, a)
            }
            return (h.name, HostAccess(host: h.name, ssh: h.ssh))
        })
    }

    /// Refuses a topology host that names a group of several hosts: which of them would it be?
    public func check(_ t: Topology) throws(LabError) {
        for h in t.hosts where hosts[h.name] == nil { if let e = groupProblem(h.name) { throw e } }
    }

    func groupProblem(_ name: String) -> LabError? {
        guard let members = groups[name] else { return nil }
        return LabError("inventory \(file ?? ""): the topology's host '\(name)' names the group '\(name)', which has \(members.count) hosts (\(members.prefix(8).joined(separator: ", "))\(members.count > 8 ? ", ..." : ""))",
                        fix: "name one of them in the topology instead, or make '\(name)' a group of one host")
    }

    public func write(to path: String) throws {
        let e = JSONEncoder(); e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        var copy = self; copy.file = nil
        try e.encode(copy).write(to: URL(fileURLWithPath: path), options: .atomic)
    }

    public static func read(_ path: String) throws(LabError) -> Inventory {
        let data: Data
        switch RegularFile.read(path, limit: 16 << 20) {
        case let .success(d): data = d
        case let .failure(e):
            throw LabError("cannot read the inventory \(path): \(e.why)", fix: "`pathbed vm up` writes one for the built-in VM pair; docs/agent.md shows the format")
        }
        let yaml: String?
        switch try AnsibleInventory.format(of: data, path: path) {
        case let .ansible(inventory): return inventory
        case .pathbedJSON: yaml = nil
        case let .pathbedYAML(text): yaml = text
        }
        do {
            var inv = try yaml.map { try YAMLDecoder().decode(Inventory.self, from: $0) } ?? JSONDecoder().decode(Inventory.self, from: data)
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
