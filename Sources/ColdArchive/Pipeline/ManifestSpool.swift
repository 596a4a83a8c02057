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

    init(directory: String) throws {
        let path = "\(directory)/\(Self.namePrefix)\(getpid())-\(Sodium.randomBytes(6).hex)"
        file = try OpenFile.createNew(path, mode: 0o600, readWrite: true)
        FileSystem.remove(path)
        buffer.raw(FormatV1.manifestMagic)
    }

    func append(_ entry: ManifestEntry) throws {
        entry.encode(into: &buffer)
        if buffer.bytes.count >= 1 << 20 { try flush() }
    }

    /// Sends the whole manifest, in order, to `sink`.
    func replay(into sink: (UnsafeRawBufferPointer) throws -> Void) throws {
        try flush()
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
