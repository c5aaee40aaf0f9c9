import Foundation

/// The repository's root, found from this file's path, so tests read topologies/ and schema/.
let repositoryRoot: URL = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

func repoPath(_ relative: String) -> String { repositoryRoot.appendingPathComponent(relative).path }

func files(in directory: String, ending: String) -> [String] {
    let dir = repoPath(directory)
    return ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasSuffix(ending) }.sorted().map { "\(dir)/\($0)" }
}
