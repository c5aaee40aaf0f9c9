import Foundation
import Hosts
import Planning
import TopologyModel

/// Which machines a lab's hosts are: an inventory given by path (or `PATHBED_INVENTORY`), else
/// the built-in VM pair's when it is up and names every remote host of the lab, else what the
/// topology says (`ssh:` targets, and this machine for hosts without one).
public enum HostBinding {
    /// The controller for `t`'s hosts; `note` hears which machines were chosen when it was not said.
    public static func controller(for t: Topology, inventory path: String?, store: StateStore = StateStore(),
                                  note: (String) -> Void = { _ in }) throws -> LabController {
        let remote = t.hosts.filter { !$0.isLocal }.map(\.name)
        var inventory: Inventory?
        if let path = path ?? ProcessInfo.processInfo.environment["PATHBED_INVENTORY"] {
            inventory = try Inventory.read(path)
            try inventory?.check(t)
        } else if !remote.isEmpty {
            let pair = LocalVMs()
            if pair.load() != nil, FileManager.default.fileExists(atPath: pair.inventoryPath), let i = try? Inventory.read(pair.inventoryPath),
               remote.allSatisfy({ i.hosts[$0] != nil }) {
                inventory = i
                note("hosts \(remote.joined(separator: ", ")): the local VMs (`pathbed vm status`); --inventory chooses others")
            }
        }
        // A host that is a VM and nothing else must be bound to one: never built here instead.
        let unbound = t.hosts.filter { $0.vm != nil && $0.ssh == nil && inventory?.hosts[$0.name] == nil }.map(\.name)
        if !unbound.isEmpty {
            let booted = LocalVMs().load()?.machines.map(\.name) ?? []
            throw LabError("host\(unbound.count == 1 ? "" : "s") \(unbound.joined(separator: ", ")) of \(t.file) \(unbound.count == 1 ? "is a VM" : "are VMs") (`vm:`) that no inventory binds"
                           + (booted.isEmpty ? "; no VMs are up" : "; the VMs up are \(booted.joined(separator: ", "))"),
                           fix: "pathbed vm up \(t.file) (boots them and writes the inventory), or bind them to machines with --inventory")
        }
        // Two hosts of a lab on this machine would be one host twice (the file's validation
        // refuses it; an inventory may still bind two names here, e.g. `ansible_connection=local`).
        let here = (inventory ?? Inventory(hosts: [:])).access(for: t).filter { $0.value.isLocal }.keys.sorted()
        if here.count > 1 {
            throw LabError("hosts \(here.joined(separator: " and ")) of \(t.file) are both this machine\(inventory?.file.map { " (as inventory \($0) binds them)" } ?? "")",
                           fix: "bind all but one of them to other machines (ssh, or `pathbed vm up FILE` for hosts with `vm:`)")
        }
        if let inventory, !inventory.hosts.isEmpty, inventory.hosts.keys.allSatisfy({ name in !t.hosts.contains { $0.name == name } }) {
            throw LabError("inventory \(inventory.file ?? "") names none of the lab's hosts (it has \(inventory.hosts.keys.sorted().joined(separator: ", ")); the lab has \(t.hosts.map(\.name).joined(separator: ", ")))",
                           fix: "name the topology's hosts in the inventory")
        }
        return LabController.forLab(t, inventory: inventory, store: store)
    }
}
