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
        if let inventory, !inventory.hosts.isEmpty, inventory.hosts.keys.allSatisfy({ name in !t.hosts.contains { $0.name == name } }) {
            throw LabError("inventory \(inventory.file ?? "") names none of the lab's hosts (it has \(inventory.hosts.keys.sorted().joined(separator: ", ")); the lab has \(t.hosts.map(\.name).joined(separator: ", ")))",
                           fix: "name the topology's hosts in the inventory")
        }
        return LabController.forLab(t, inventory: inventory, store: store)
    }
}
