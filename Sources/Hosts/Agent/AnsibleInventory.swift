import Foundation
import Planning
import Yams

/// An Ansible inventory, INI or YAML, read as a Pathbed `Inventory` (docs/agent.md, "Ansible
/// inventories"). Each Ansible host becomes a `HostAccess` under its name; a group of exactly one
/// host is in `hosts` too, under the group's name; the groups of several hosts are in `groups`,
/// which a topology host may not name (`Inventory.check`).
struct AnsibleInventory {
    /// How `Inventory.read` reads a file, decided by its content.
    enum Format { case pathbedJSON, pathbedYAML(String), ansible(Inventory) }

    /// A variable's value (nil: a list or a mapping, which Pathbed reads in no variable) and its line.
    struct Value { var text: String?; var line: Int }
    struct Group { var line: Int; var hosts: [String] = []; var children: [(name: String, line: Int)] = []; var vars: [String: Value] = [:] }

    let file: String
    private(set) var groups: [String: Group] = [:]
    private(set) var hostVars: [String: [String: Value]] = [:]
    private var hostLine: [String: Int] = [:]
    private var entries = 0

    init(file: String) { self.file = file }

    /// Bounds on what a 16 MiB file may make: host entries (after ranges), and host-group pairs.
    static let maxEntries = 1_000_000, maxWork = 10_000_000
    static let docs = "docs/agent.md, \"Ansible inventories\", shows the format"
    static let neither = "it is neither Pathbed's JSON inventory nor an Ansible inventory (INI or YAML)"

    func error(_ line: Int?, _ what: String, fix: String = docs) -> LabError {
        LabError("inventory \(file)\(line.map { " line \($0)" } ?? ""): \(what)", fix: fix)
    }

    // MARK: Which format

    static func format(of data: Data, path: String) throws(LabError) -> Format {
        let me = AnsibleInventory(file: path)
        guard !data.contains(0), var text = String(validating: data, as: UTF8.self) else { throw me.error(nil, "\(neither): it is not text") }
        if text.hasPrefix("\u{FEFF}") { text.removeFirst() }
        let lines = text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
        guard let first = lines.first(where: { !$0.isEmpty && !$0.hasPrefix("#") && !$0.hasPrefix(";") }) else {
            throw me.error(nil, "it is empty", fix: "name hosts in it; \(docs)")
        }
        guard looksLikeYAML(first) else { return .ansible(try ini(lines, file: path).inventory()) }
        if let line = aliasLine(lines) {
            throw me.error(line, "a YAML alias (*name): inventories may not use aliases", fix: "write the value out (quote a value that begins with *)")
        }
        let root: Yams.Node?
        do { root = try Yams.compose(yaml: text) } catch {
            if first.hasPrefix("{") { return .pathbedJSON }  // JSON that YAML refuses: read as JSON, as always
            throw me.yamlError(error)
        }
        guard let root, let top = root.mapping else { throw me.error(root?.mark?.line, "\(neither): its top level is not a mapping") }
        // Pathbed's own `{"hosts": {NAME: {ssh: ...}}}`: where a group has hosts, vars and children, it has host names.
        let isAnsible = top.allSatisfy { k, v in
            v.null != nil || (v.mapping.map { m in !(k.string == "hosts" && m.isEmpty) && m.keys.allSatisfy { ["hosts", "vars", "children"].contains($0.string ?? "") } } ?? false)
        }
        if !isAnsible, top["hosts"] != nil { return first.hasPrefix("{") ? .pathbedJSON : .pathbedYAML(text) }
        return .ansible(try yaml(top, file: path).inventory())
    }

    /// A first line of YAML (or JSON): `key:`, `---`, `{`, `- `. INI starts with `[group]` or `host key=value`.
    static func looksLikeYAML(_ first: String) -> Bool {
        if first.hasPrefix("{") || first.hasPrefix("---") || first.hasPrefix("%") || first.hasPrefix("- ") || first == "-" || first.hasPrefix("\"") || first.hasPrefix("'") { return true }
        guard let colon = first.firstIndex(of: ":") else { return false }
        let key = first[..<colon], after = first[first.index(after: colon)...]
        return !key.isEmpty && !key.contains { $0 == "=" || $0 == "[" || $0.isWhitespace } && (after.first?.isWhitespace ?? true)
    }

    /// The first line with a YAML alias (`*name`) outside quotes and comments. Aliases are refused
    /// before Yams sees the text: nested ones expand exponentially (Yams hashes a key's whole value).
    static func aliasLine(_ lines: [String]) -> Int? {
        for (i, line) in lines.enumerated() {
            var quote: Character?, previous: Character = " "
            for c in line {
                let starts = previous.isWhitespace || "[{,:-?".contains(previous)
                if let q = quote { if c == q { quote = nil } }
                else if (c == "'" || c == "\"") && starts { quote = c }
                else if c == "#" && previous.isWhitespace { break }
                else if c == "*" && starts { return i + 1 }
                previous = c
            }
        }
        return nil
    }

    func yamlError(_ e: any Error) -> LabError {
        switch e as? YamlError {
        case let .scanner(_, problem, mark, _)?, let .parser(_, problem, mark, _)?, let .composer(_, problem, mark, _)?:
            return error(mark.line, "not YAML: \(problem) (column \(mark.column)); \(Self.neither)")
        case let .duplicatedKeysInMapping(keys, context)?:
            return error(context.mark.line, "\(keys.map { "'\($0)'" }.joined(separator: ", ")) appears twice in one mapping", fix: "write each name once")
        default:
            return error(nil, "not YAML: \(e); \(Self.neither)")
        }
    }

    // MARK: INI

    static func ini(_ lines: [String], file: String) throws(LabError) -> AnsibleInventory {
        enum Section { case hosts, vars, children }
        var inv = AnsibleInventory(file: file), section = Section.hosts, group = "ungrouped", sawHeader = false
        for (i, line) in lines.enumerated() {
            let n = i + 1
            if line.isEmpty || line.hasPrefix("#") || line.hasPrefix(";") { continue }
            // `[group]`, `[group:vars]`, `[group:children]`, and perhaps a comment.
            if line.hasPrefix("["), let close = line.firstIndex(of: "]"),
               line[line.index(after: close)...].trimmingCharacters(in: .whitespaces).first.map({ $0 == "#" || $0 == ";" }) ?? true {
                let parts = line[line.index(after: line.startIndex)..<close].split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false)
                let kind: Section?
                switch parts.count == 2 ? parts[1] : nil { case nil: kind = .hosts; case "vars"?: kind = .vars; case "children"?: kind = .children; default: kind = nil }
                guard let kind, !parts[0].isEmpty, !parts[0].contains(where: \.isWhitespace) else {
                    throw inv.error(n, "'\(line)' is not a section", fix: "write [GROUP], [GROUP:vars] or [GROUP:children]")
                }
                section = kind; group = String(parts[0]); sawHeader = true
                inv.define(group, n)
                continue
            }
            if line.hasPrefix("[") && line.hasSuffix("]") { throw inv.error(n, "'\(line)' is not a section", fix: "write [GROUP], [GROUP:vars] or [GROUP:children]") }
            switch section {
            case .hosts:
                try inv.iniHost(line, n, group, orElse: sawHeader ? "" : "; \(neither)")
            case .vars:
                guard let eq = line.firstIndex(of: "="), eq != line.startIndex else {
                    throw inv.error(n, "'\(line)' in [\(group):vars] is not NAME=VALUE", fix: "write one NAME=VALUE a line")
                }
                var value = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
                if value.count >= 2, let q = value.first, q == "\"" || q == "'", value.last == q { value = String(value.dropFirst().dropLast()) }
                inv.groups[group]!.vars[line[..<eq].trimmingCharacters(in: .whitespaces)] = Value(text: value, line: n)
            case .children:
                guard let w = words(line, comments: true), w.count == 1 else { throw inv.error(n, "'\(line)' in [\(group):children] is not a group name", fix: "write one group name a line") }
                inv.define(w[0], n)
                inv.groups[group]!.children.append((w[0], n))
            }
        }
        return inv
    }

    /// `NAME[:PORT] [key=value ...]`, quoted as a shell quotes, `#` starting a comment (as Ansible splits it).
    mutating func iniHost(_ line: String, _ n: Int, _ group: String, orElse: String) throws(LabError) {
        guard let w = Self.words(line, comments: true) else { throw error(n, "a quote is not closed", fix: "close the quote on that line") }
        guard let pattern = w.first else { return }
        var vars: [String: Value] = [:]
        let (name, port) = Self.splitPort(pattern)
        if let port { vars["ansible_port"] = Value(text: port, line: n) }
        for kv in w.dropFirst() {
            guard let eq = kv.firstIndex(of: "="), eq != kv.startIndex else {
                throw error(n, "'\(kv)' is not key=value\(orElse)", fix: "a host line is `NAME key=value ...`; \(Self.docs)")
            }
            vars[String(kv[..<eq])] = Value(text: String(kv[kv.index(after: eq)...]), line: n)
        }
        for h in try expand(name, n) { try add(h, to: group, vars: vars, line: n) }
    }

    /// `host:22` → ("host", "22"); the colons of IPv6 addresses and of ranges stay.
    static func splitPort(_ p: String) -> (String, String?) {
        var depth = 0, colons: [String.Index] = []
        for i in p.indices {
            switch p[i] { case "[": depth += 1; case "]": depth -= 1; case ":" where depth == 0: colons.append(i); default: break }
        }
        guard colons.count == 1, let c = colons.first else { return (p, nil) }
        let port = p[p.index(after: c)...]
        return port.isEmpty || !port.allSatisfy({ ("0"..."9").contains($0) }) ? (p, nil) : (String(p[..<c]), String(port))
    }

    // MARK: YAML

    static func yaml(_ top: Yams.Node.Mapping, file: String) throws(LabError) -> AnsibleInventory {
        var inv = AnsibleInventory(file: file)
        for (k, v) in top { try inv.yamlGroup(k, v, parent: nil) }
        return inv
    }

    mutating func yamlGroup(_ key: Yams.Node, _ node: Yams.Node, parent: String?) throws(LabError) {
        let line = key.mark?.line ?? 0, orElse = parent == nil ? "; \(Self.neither)" : ""
        guard let name = key.scalar?.string, !name.isEmpty else { throw error(line, "a group's name is not text\(orElse)") }
        define(name, line)
        if let parent { groups[parent]!.children.append((name, line)) }
        if node.null != nil { return }
        guard let m = node.mapping else { throw error(node.mark?.line ?? line, "group '\(name)' is not a mapping of hosts, vars and children\(orElse)") }
        for (k, v) in m where v.null == nil {
            switch k.scalar?.string {
            case "hosts"?:
                guard let hosts = v.mapping else { throw error(v.mark?.line, "the hosts of group '\(name)' are not a mapping", fix: "write `hosts:` and under it `NAME:` or `NAME: {VARIABLE: VALUE}`, one a line") }
                for (hk, hv) in hosts {
                    let hl = hk.mark?.line ?? line
                    guard let h = hk.scalar?.string else { throw error(hl, "a host's name in group '\(name)' is not text") }
                    let vars = try yamlVars(hv, of: "host '\(h)'")
                    for x in try expand(h, hl) { try add(x, to: name, vars: vars, line: hl) }
                }
            case "vars"?:
                groups[name]!.vars.merge(try yamlVars(v, of: "group '\(name)'")) { $1 }
            case "children"?:
                guard let children = v.mapping else { throw error(v.mark?.line, "the children of group '\(name)' are not a mapping", fix: "write `children:` and under it `GROUP:`, one a line") }
                for (ck, cv) in children { try yamlGroup(ck, cv, parent: name) }
            default:
                throw error(k.mark?.line, "group '\(name)' has '\(k.scalar?.string ?? "?")', but an Ansible group has only hosts, vars and children\(orElse)")
            }
        }
    }

    func yamlVars(_ node: Yams.Node, of whom: String) throws(LabError) -> [String: Value] {
        if node.null != nil { return [:] }
        guard let m = node.mapping else { throw error(node.mark?.line, "the variables of \(whom) are not a mapping", fix: "write `NAME: VALUE`, one a line") }
        var vars: [String: Value] = [:]
        for (k, v) in m where v.null == nil {
            if let name = k.scalar?.string { vars[name] = Value(text: v.scalar?.string, line: k.mark?.line ?? 0) }
        }
        return vars
    }

    // MARK: Both

    mutating func define(_ group: String, _ line: Int) {
        if groups[group] == nil { groups[group] = Group(line: line) }
    }

    mutating func add(_ host: String, to group: String, vars: [String: Value], line: Int) throws(LabError) {
        entries += 1
        guard entries <= Self.maxEntries else { throw error(line, "more than \(Self.maxEntries) host entries", fix: "is this the right file?") }
        guard !host.isEmpty else { throw error(line, "a host without a name") }
        define(group, line)
        groups[group]!.hosts.append(host)
        hostVars[host, default: [:]].merge(vars) { $1 }
        if hostLine[host] == nil { hostLine[host] = line }
    }

    /// Ansible's host ranges: `web[01:03]` is web01, web02, web03; `db-[a:c]` is db-a, db-b, db-c;
    /// `[BEGIN:END:STEP]` steps; several ranges multiply.
    func expand(_ pattern: String, _ line: Int) throws(LabError) -> [String] {
        var out = [""], rest = Substring(pattern)
        let fix = "write [BEGIN:END] or [BEGIN:END:STEP], e.g. web[01:20] or db-[a:f]"
        while let open = rest.firstIndex(of: "[") {
            guard let close = rest[open...].firstIndex(of: "]") else { throw error(line, "host range '\(pattern)' has '[' without ']'", fix: fix) }
            let b = rest[rest.index(after: open)..<close].split(separator: ":", omittingEmptySubsequences: false).map(String.init)
            guard b.count == 2 || b.count == 3, !b[1].isEmpty, let step = b.count == 3 ? Int(b[2]) : 1, step > 0 else {
                throw error(line, "host range '\(pattern)' is not [BEGIN:END] or [BEGIN:END:STEP]", fix: fix)
            }
            let begin = b[0].isEmpty ? "0" : b[0], end = b[1]
            let letters = Array("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
            var items: [String]
            if begin.count == 1, end.count == 1, let i = letters.firstIndex(of: begin.first!), let j = letters.firstIndex(of: end.first!) {
                guard i <= j else { throw error(line, "host range '\(pattern)' ends before it begins", fix: fix) }
                items = stride(from: i, through: j, by: step).map { String(letters[$0]) }
            } else {
                guard let lo = UInt(begin), let hi = UInt(end), lo <= hi, (hi - lo) / UInt(step) < UInt(Self.maxEntries) else {
                    throw error(line, "host range '\(pattern)' is not two numbers or two letters, the first no larger, at most \(Self.maxEntries) apart", fix: fix)
                }
                // A leading zero pads every number to the same width, which the end must have too.
                let width = begin.hasPrefix("0") && begin.count > 1 ? begin.count : 0
                guard width == 0 || end.count == width else { throw error(line, "host range '\(pattern)': a zero-padded range's begin and end have the same width", fix: fix) }
                items = stride(from: lo, through: hi, by: step).map { String(repeating: "0", count: max(0, width - String($0).count)) + String($0) }
            }
            guard out.count * items.count <= Self.maxEntries else { throw error(line, "host range '\(pattern)' makes more than \(Self.maxEntries) hosts", fix: fix) }
            let head = rest[..<open]
            out = out.flatMap { o in items.map { o + head + $0 } }
            rest = rest[rest.index(after: close)...]
        }
        return out.map { $0 + rest }
    }

    /// Words as a POSIX shell (and Python's shlex) splits them: quotes, backslashes, and `#`
    /// comments when asked. Nil: a quote is not closed.
    static func words(_ s: String, comments: Bool = false) -> [String]? {
        var out: [String] = [], word = "", inWord = false, quote: Character?
        let chars = Array(s)
        var i = 0
        while i < chars.count {
            let c = chars[i]; i += 1
            if let q = quote {
                if c == q { quote = nil }
                else if q == "\"", c == "\\", i < chars.count, "\"\\".contains(chars[i]) { word.append(chars[i]); i += 1 }
                else { word.append(c) }
            } else if c == "'" || c == "\"" { quote = c; inWord = true }
            else if c == "\\" { if i < chars.count { word.append(chars[i]); i += 1 }; inWord = true }
            else if c.isWhitespace { if inWord { out.append(word) }; word = ""; inWord = false }
            else if c == "#" && comments { break }
            else { word.append(c); inWord = true }
        }
        if quote != nil { return nil }
        if inWord { out.append(word) }
        return out
    }

    // MARK: Hosts and their variables

    /// Every host's access, with its variables in Ansible's order: all's, then its groups' from the
    /// shallowest to the deepest (of one depth, by name), then its own.
    func inventory() throws(LabError) -> Inventory {
        var groups = self.groups
        for g in ["all", "ungrouped"] where groups[g] == nil { groups[g] = Group(line: 0) }
        let grouped = Set(groups.filter { $0.key != "all" && $0.key != "ungrouped" }.values.flatMap(\.hosts))
        groups["ungrouped"]!.hosts += hostVars.keys.filter { !grouped.contains($0) }

        // Parents; a group no other group lists is a child of all.
        var parents: [String: Set<String>] = [:]
        for (name, g) in groups {
            for c in g.children {
                guard c.name != "all" else { throw error(c.line, "group 'all' cannot be a child of '\(name)'", fix: "every group is in all already: remove the line") }
                parents[c.name, default: []].insert(name)
            }
        }
        for name in groups.keys where name != "all" && parents[name] == nil { parents[name] = ["all"] }
        var children: [String: [String]] = [:]
        for (c, ps) in parents { for p in ps { children[p, default: []].append(c) } }

        // Depths, parents before children; what is left is in a loop of children, or under one.
        var depth = ["all": 0], pending = parents.mapValues(\.count), order = ["all"], i = 0
        while i < order.count {
            let g = order[i]; i += 1
            for c in children[g] ?? [] {
                depth[c] = max(depth[c] ?? 0, depth[g]! + 1)
                pending[c]! -= 1
                if pending[c] == 0 { order.append(c) }
            }
        }
        if order.count < groups.count {
            let left = Set(groups.keys).subtracting(order)
            func up(_ g: String) -> String { parents[g]!.filter(left.contains).min()! }
            var g = left.min()!, seen: Set<String> = []
            while seen.insert(g).inserted { g = up(g) }
            var loop = [g], p = up(g)
            while p != g { loop.append(p); p = up(p) }
            let line = groups[up(g)]!.children.first { $0.name == g }?.line
            throw error(line, "group '\(g)' is its own child: \(([g] + loop.dropFirst().reversed() + [g]).joined(separator: " > "))",
                        fix: "remove one of the children entries of that loop")
        }

        var direct: [String: Set<String>] = [:]
        for (name, g) in groups { for h in g.hosts { direct[h, default: []].insert(name) } }
        var work = 0, members: [String: [String]] = [:], hosts: [String: HostAccess] = [:]
        for (h, ds) in direct {
            var mine = ds.union(["all"]), todo = Array(ds)
            while let g = todo.popLast() {
                for p in parents[g] ?? [] where mine.insert(p).inserted { todo.append(p) }
            }
            work += mine.count
            guard work <= Self.maxWork else { throw error(nil, "its hosts are in more than \(Self.maxWork) groups in all", fix: "is this the right file?") }
            var vars: [String: Value] = [:]
            func apply(_ layer: [String: Value]) { for (k, v) in layer { vars[Self.synonyms[k] ?? k] = v } }
            for g in mine.sorted(by: { (depth[$0]!, $0) < (depth[$1]!, $1) }) {
                apply(groups[g]!.vars)
                members[g, default: []].append(h)
            }
            apply(hostVars[h] ?? [:])
            hosts[h] = try access(h, vars)
        }
        guard !hosts.isEmpty else { throw error(nil, "it names no hosts", fix: "is this the right file? \(Self.docs)") }
        // A topology host may name a group of one host; a group of several is ambiguous.
        var several: [String: [String]] = [:]
        for (g, hs) in members where hosts[g] == nil {
            if hs.count == 1 { hosts[g] = hosts[hs[0]]; hosts[g]!.host = g } else { several[g] = hs.sorted() }
        }
        return Inventory(hosts: hosts, file: file, groups: several)
    }

    /// Older names of the variables Pathbed reads, and `pathbed_binary`: each is the same variable.
    static let synonyms = ["ansible_ssh_host": "ansible_host", "ansible_ssh_user": "ansible_user", "ansible_ssh_port": "ansible_port",
                           "ansible_private_key_file": "ansible_ssh_private_key_file", "pathbed_binary": "pathbed"]

    func access(_ h: String, _ vars: [String: Value]) throws(LabError) -> HostAccess {
        func value(_ name: String) throws(LabError) -> (text: String, line: Int)? {
            guard let v = vars[name] else { return nil }
            guard let text = v.text else { throw error(v.line, "host '\(h)': \(name) is a list or a mapping", fix: "give \(name) one value") }
            return (text, v.line)
        }
        var a = HostAccess(host: h)
        if try value("ansible_connection")?.text != "local" {
            let address = try value("ansible_host") ?? (h, hostLine[h] ?? 0)
            let user = try value("ansible_user")
            let ssh = user.map { "\($0.text)@\(address.text)" } ?? address.text
            guard !address.text.isEmpty, user?.text.isEmpty != true, !ssh.hasPrefix("-"), !ssh.contains(where: \.isWhitespace) else {
                throw error(user?.line ?? address.line, "host '\(h)': '\(ssh)' is not an ssh destination", fix: "give ansible_host an address or a name, and ansible_user a user name")
            }
            a.ssh = ssh
        }
        if let p = try value("ansible_port") {
            guard let n = Int(p.text), (1...65535).contains(n) else {
                throw error(p.line, "host '\(h)': ansible_port '\(p.text)' is not a port (1-65535)", fix: "give a port number from 1 to 65535, e.g. ansible_port=22")
            }
            a.port = n
        }
        if let k = try value("ansible_ssh_private_key_file") {
            // Relative to the inventory's directory, as Pathbed's own inventories are; `~` is the home directory.
            let path = NSString(string: k.text).expandingTildeInPath
            a.identity = path.hasPrefix("/") ? path : URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path).standardized.path
        }
        for name in ["ansible_ssh_common_args", "ansible_ssh_extra_args"] {
            guard let s = try value(name) else { continue }
            guard let w = Self.words(s.text) else { throw error(s.line, "host '\(h)': \(name) has a quote that is not closed", fix: "close the quote") }
            a.sshOptions += w
        }
        a.pathbed = try value("pathbed")?.text
        return a
    }
}
