import Foundation
import Testing
@testable import Hosts
import Planning

/// Putting an underlay's MTU back needs the record its lab left on the host.
@Suite struct MTURecordsTests {
    /// A host rebooted since its lab went up has no records (they live in /run): the underlay is
    /// left as it is, and that is said, not a failure that would keep `down` failing forever.
    @Test func anUnderlayWithoutARecordIsLeftAsItIsWithoutFailingDown() {
        let name = "pbnorec\(UInt16.random(in: 0...9999))"
        #expect(MTURecords.read(name) == nil)
        let said = LocalExecutor(host: "here").restoreMTUs([MTUChange(interface: name, mtu: 1500)], lab: "gone")
        #expect(said.count == 1 && said.allSatisfy { $0.hasPrefix(LocalExecutor.keptPrefix + name + " ") && $0.contains("no lab on this host recorded raising it") }, "\(said)")
    }

    /// A record no `up` could have written (the loopback, an MTU out of range) is not followed,
    /// however it names the lab: the interface is left as it is, and that is said.
    @Test func aRecordPathbedCouldNotHaveWrittenIsNotFollowed() throws {
        let lab = "pbrec\(UInt16.random(in: 0...9999))"
        let loBefore = try String(contentsOfFile: "/sys/class/net/lo/mtu", encoding: .utf8)
        try MTURecords.write("lo", .init(before: 1400, holders: [lab]))
        defer { MTURecords.forget("lo") }
        let said = LocalExecutor(host: "here").restoreMTUs([MTUChange(interface: "lo", mtu: 1400)], lab: lab)
        #expect(said.count == 1 && said[0].hasPrefix(LocalExecutor.keptPrefix + "lo left as it is"), "\(said)")
        #expect(try String(contentsOfFile: "/sys/class/net/lo/mtu", encoding: .utf8) == loBefore, "the loopback's MTU is untouched")
        // Without a journal, only the underlays the file gives the host are looked up at all.
        #expect(try LocalExecutor(host: "here").heldMTUs(lab: lab, underlays: ["eth0"]).isEmpty)
    }
}
