import Foundation
import Planning
import TopologyModel

/// `plugin`: an external program plays the fault (docs/plugins.md).
enum ExternalFault: FaultPlugin {
    static func describe(_ f: FaultEvent, _ options: FaultEvent.External, index i: Int, _ c: inout FaultContext) -> [FaultWindow] {
        let d = f.duration.seconds
        return Faults.starts(f, &c).enumerated().map { k, s in
            let launch = ExternalPlugin.Launch(program: options.program, role: .fault, name: "schedule[\(i)]", node: options.node,
                                               context: ExternalPlugin.context(c.topology, node: options.node, peer: options.peer),
                                               options: options.options, duration: d, link: options.link.map { c.topology.links[$0].name })
            return FaultWindow(event: i, kind: f.name, label: Faults.label(f, (options.written as NSString).lastPathComponent, k),
                               start: s, end: s + d, external: launch)
        }
    }
}
