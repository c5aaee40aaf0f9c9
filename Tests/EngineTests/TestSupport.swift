import Foundation
import TopologyModel

/// The repository's root, found from this file's path, so tests read topologies/ and fixtures.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// An example lab of topologies/, by its file name.
func topology(_ name: String) throws -> Topology { try TopologyLoader.load(path: repositoryRoot.appendingPathComponent("topologies/\(name)").path) }

/// A fresh state directory for one test's journals, removed with the suite instance that holds
/// it (each test gets its own instance).
final class ScratchDirectory: Sendable {
    let path = FileManager.default.temporaryDirectory.appendingPathComponent("pb-state-\(UUID().uuidString)").path
    deinit { try? FileManager.default.removeItem(atPath: path) }
}
