#if canImport(Glibc)
import Glibc
#endif

/// Holds the manifest while the tar stream is written (the manifest is sealed after the data), in a
/// temporary file that is unlinked as soon as it is created, so memory stays bounded and a killed
/// run leaves nothing behind.
final class ManifestSpool {
    private let file: OpenFile
    private var buffer = ByteWriter(capacity: 1 << 20)
    private(set) var length: UInt64 = 0

    static let namePrefix = ".coldarchive-manifest-"

    private let version: UInt16
    /// The top-level entries spooled so far, in order: what the v2 source description must name.
    private(set) var topLevel: [String] = []

    /// A spool for the entries of a manifest of format `version`; `replay` puts the magic (and, for v2,
    /// the source description) in front of them.
    init(directory: String, version: UInt16) throws {
        self.version = version
        let path = "\(directory)/\(Self.namePrefix)\(getpid())-\(Sodium.randomBytes(6).hex)"
        file = try OpenFile.createNew(path, mode: 0o600, readWrite: true)
        FileSystem.remove(path)
    }

    func append(_ entry: ManifestEntry) throws {
        if PathRules.isTopLevel(entry.path) { topLevel.append(entry.path) }
        entry.encode(into: &buffer, version: version)
        if buffer.bytes.count >= 1 << 20 { try flush() }
    }

    /// Sends the whole manifest, in order, to `sink`: the magic, for v2 the source `description`, and
    /// every entry.
    func replay(description: [UInt8], into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try flush()
        var head = ByteWriter()
        if version >= FormatV1.version2 {
            head.raw(FormatV1.manifestMagicV2)
            head.u32(UInt32(description.count))
            head.raw(description)
        } else {
            head.raw(FormatV1.manifestMagic)
        }
        try head.bytes.withUnsafeBytes { try sink($0) }
        let chunk = ByteBuffer(capacity: 1 << 20)
        var offset: UInt64 = 0
        while offset < length {
            chunk.count = try file.read(into: chunk.storage, at: offset)
            guard chunk.count > 0 else { throw SystemError(operation: "read back manifest spool", path: file.path, errno: EIO) }
            try sink(chunk.bytes)
            offset += UInt64(chunk.count)
        }
    }

    private func flush() throws {
        guard !buffer.bytes.isEmpty else { return }
        try file.write(buffer.bytes)
        length += UInt64(buffer.bytes.count)
        buffer = ByteWriter(capacity: 1 << 20)
    }
}
