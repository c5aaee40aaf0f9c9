import Foundation
import Testing
@testable import Planning
import TopologyModel

/// The plan's order, checked against what each operation really needs (not against the sort
/// that produced it): every namespace, interface, bridge and address exists before it is used.
@Suite struct DependencyOrderTests {
    @Test(arguments: ["thesis-two-vms.yaml", "thesis-one-machine.yaml", "two-paths.yaml"])
    func everyOperationComesAfterWhatItNeeds(name: String) throws {
        for h in Planner.plan(try topology(name)).hosts {
            var namespaces: Set<String> = [], interfaces: Set<InterfaceRef> = [], up: Set<InterfaceRef> = []
            var addresses: [String: [IPNetwork]] = [:]
            func needNS(_ ns: String, _ op: LabOperation) { #expect(namespaces.contains(ns), "\(name): \(op.command) before its namespace") }
            func needIf(_ r: InterfaceRef, _ op: LabOperation) { #expect(interfaces.contains(r), "\(name): \(op.command) before \(r) exists") }
            for op in h.operations {
                switch op {
                case let .createNamespace(n, _): namespaces.insert(n); interfaces.insert(InterfaceRef(namespace: n, name: "lo"))
                case let .setSysctl(ns, _, _): needNS(ns, op)
                case let .createBridge(r, _, _): needNS(r.namespace, op); interfaces.insert(r)
                case let .createVeth(a, b, _, _): needNS(a.namespace, op); needNS(b.namespace, op); interfaces.insert(a); interfaces.insert(b)
                case let .createGretap(r, _, _, _, _, _), let .createVxlan(r, _, _, _, _, _): needNS(r.namespace, op); interfaces.insert(r)
                case let .enslave(r, bridge): needIf(r, op); needIf(InterfaceRef(namespace: r.namespace, name: bridge), op)
                case let .addAddress(r, a): needIf(r, op); addresses[r.namespace, default: []].append(a)
                case let .setUp(r): needIf(r, op); up.insert(r)
                case let .setQdisc(r, _): needIf(r, op)
                case let .addRoute(ns, r):
                    needNS(ns, op)
                    if let dev = r.device { #expect(up.contains(InterfaceRef(namespace: ns, name: dev)), "\(name): \(op.command) before its device is up") }
                    if let via = r.via { #expect(addresses[ns, default: []].contains { $0.contains(via) }, "\(name): \(op.command) before a subnet reaches its gateway") }
                case let .addRule(ns, from, _, _): needNS(ns, op); #expect(addresses[ns, default: []].contains { $0.address == from })
                case let .setMPTCPLimits(ns, _, _): needNS(ns, op)
                case let .addMPTCPEndpoint(ns, address, dev, _, _):
                    needIf(InterfaceRef(namespace: ns, name: dev), op)
                    #expect(addresses[ns, default: []].contains { $0.address == address }, "\(name): \(op.command) before its address")
                case .setUnderlayMTU: break
                case let .disableMPTCP(ns): needNS(ns, op)
                case .deleteRoute, .deleteRule, .deleteMPTCPEndpoint, .awaitGone: Issue.record("\(name): \(op.command) is a change to a running lab, not part of a plan")
                }
            }
        }
    }

    @Test func planTextIsShellSafe() {
        #expect(sh("eth0") == "eth0")
        #expect(sh("$(reboot)") == "'$(reboot)'")
        #expect(sh("a'b; touch x") == "'a'\\''b; touch x'")
        #expect(sh("") == "''")
    }
}
