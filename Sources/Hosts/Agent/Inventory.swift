import Foundation
import Planning
import TopologyModel

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
        let data: Data
        switch RegularFile.read(path, limit: 16 << 20) {
        case let .success(d): data = d
        case let .failure(e):
            throw LabError("cannot read the inventory \(path): \(e.why)", fix: "`pathbed vm up` writes one for the built-in VM pair; docs/agent.md shows the format")
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
