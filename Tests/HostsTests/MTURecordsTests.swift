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
}
