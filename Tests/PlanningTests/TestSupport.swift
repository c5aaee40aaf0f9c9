import Foundation
import TopologyModel

/// The repository's root, found from this file's path, so tests read topologies/ and fixtures.
let repositoryRoot = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

/// An example lab of topologies/, by its file name.
func topology(_ name: String) throws -> Topology { try TopologyLoader.load(path: repositoryRoot.appendingPathComponent("topologies/\(name)").path) }

/// A lab from YAML text.
func lab(_ yaml: String) throws -> Topology { try TopologyLoader.load(data: Data(yaml.utf8), file: "test.yaml") }
