import Foundation
import Hosts
import Planning
import TopologyModel

/// `pathbed doctor FILE`: each host of a lab, what its kernel and tools offer, and what the lab
/// needs that is missing there; the same rules `up` applies before its first change.
public struct HostCheck: Sendable {
    public var host: String
    /// How it is reached, for people.
    public var reach: String
    public var declaredMPTCP: Bool
    /// Its kernel, or why it could not be asked.
    public var info: Result<HostInfo, LabError>
    public var capabilities: Capabilities?
    /// What the lab needs there and does not find.
    public var missing: [Capabilities.Check]
}

extension LabController {
    /// Every host of the lab, checked as `up` would check it.
    public func doctor(_ t: Topology) -> [HostCheck] {
        Planner.plan(t).hosts.map { h in
            let declared = t.host(named: h.host)?.mptcp ?? true
            let reach = access[h.host]?.label ?? "this machine"
            guard let e = executors[h.host] else {
                return HostCheck(host: h.host, reach: reach, declaredMPTCP: declared,
                                 info: .failure(LabError("no way to reach host '\(h.host)' here")), capabilities: nil, missing: [])
            }
            do {
                let info = try e.info()
                let caps = e.capabilities(sysctls: h.sysctlKeys)
                return HostCheck(host: h.host, reach: reach, declaredMPTCP: declared, info: .success(info), capabilities: caps,
                                 missing: caps.problems(for: h, declaredMPTCP: declared, labSpansHosts: t.hosts.count > 1, origins: Capabilities.Origins(t)))
            } catch {
                return HostCheck(host: h.host, reach: reach, declaredMPTCP: declared,
                                 info: .failure(error as? LabError ?? LabError("\(error)")), capabilities: nil, missing: [])
            }
        }
    }
}
