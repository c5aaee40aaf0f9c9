import Foundation

/// Reads, decodes and validates a topology file, reporting every problem at once.
public enum TopologyLoader {
    /// Loads the file at `path`. Throws `TopologyErrors` naming file, line, column and key of each problem.
    public static func load(path: String) throws -> Topology {
        let data: Data
        do {
            data = try readRegularFile(path)
        } catch let e as TopologyErrors {
            throw e
        } catch {
            let reason = (error as NSError).localizedFailureReason ?? (error as NSError).localizedDescription
            throw TopologyErrors([Diagnostic(SourceLocation(file: path, line: 0, column: 0), path: "",
                                             "cannot read the file: \(reason)", hint: "check the path and permissions")])
        }
        return try load(data: data, file: path)
    }

    /// Reads a file only if it is a regular file (or standard input as `-`): a FIFO, a device or a
    /// directory would hang the read or make no sense, and is named as what it is.
    static func readRegularFile(_ path: String) throws -> Data {
        if path == "-" { return FileHandle.standardInput.readDataToEndOfFile() }
        func refuse(_ why: String, _ hint: String) -> TopologyErrors {
            TopologyErrors([Diagnostic(SourceLocation(file: path, line: 0, column: 0), path: "", why, hint: hint)])
        }
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            throw refuse("cannot read the file: \(String(cString: strerror(e)))", e == ENOENT ? "check the path" : "check the path and permissions")
        }
        var st = stat()
        guard fstat(fd, &st) == 0 else { close(fd); throw refuse("cannot read the file: \(String(cString: strerror(errno)))", "check the path") }
        let kind = st.st_mode & S_IFMT
        if kind != S_IFREG {
            close(fd)
            let what = kind == S_IFDIR ? "a directory" : kind == S_IFIFO ? "a FIFO (named pipe)" : kind == S_IFCHR || kind == S_IFBLK ? "a device" : kind == S_IFSOCK ? "a socket" : "not a regular file"
            throw refuse("this is \(what), not a topology file", kind == S_IFIFO ? "to read a stream, pass `-` and pipe the YAML to standard input" : "pass a YAML file")
        }
        if st.st_size > off_t(YAMLReader.maxFileSize) {
            close(fd)
            throw refuse("the file is \(st.st_size) bytes; topology files are limited to \(YAMLReader.maxFileSize >> 20) MiB", "is this the right file?")
        }
        return FileHandle(fileDescriptor: fd, closeOnDealloc: true).readDataToEndOfFile()
    }

    /// Loads a topology from bytes; `file` names it in messages.
    public static func load(data: Data, file: String, pathsRelativeTo: String? = nil) throws -> Topology {
        let (result, _) = loadTracingFields(data: data, file: file, pathsRelativeTo: pathsRelativeTo)
        return try result.get()
    }

    /// As `load`, and also reports which shape fields the decoder read (for the schema drift test).
    public static func loadTracingFields(data: Data, file: String, pathsRelativeTo: String? = nil) -> (Result<Topology, TopologyErrors>, Set<String>) {
        let reader = YAMLReader(file: file)
        guard let root = reader.parse(data) else {
            return (.failure(TopologyErrors(reader.diagnostics)), reader.fieldsRead)
        }
        var decoder = TopologyDecoder(reader: reader)
        var written = decoder.decode(root)
        written.pathsRelativeTo = pathsRelativeTo
        var validator = TopologyValidator(written, reader: reader)
        let topology = validator.validate()
        if !reader.diagnostics.isEmpty {
            let sorted = reader.diagnostics.enumerated().sorted {
                ($0.element.location.line, $0.element.location.column, $0.offset) < ($1.element.location.line, $1.element.location.column, $1.offset)
            }.map(\.element)
            return (.failure(TopologyErrors(sorted)), reader.fieldsRead)
        }
        return (.success(topology), reader.fieldsRead)
    }

    /// The length of a run: `run.duration`, or until the last workload ends.
    public static func runLength(of topology: Topology) -> Duration? { TopologyValidator.runLength(topology) }
}
