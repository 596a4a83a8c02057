import Foundation

/// What a verification checked.
public struct VerificationReport: Sendable, Codable, Equatable {
    public var archive: String
    public var valid: Bool
    public var signer: String
    public var chunksChecked: UInt64
    public var bytesHashed: UInt64
    /// Set by `verify --deep`: entries and content bytes decrypted, decompressed and hashed.
    public var entriesChecked: UInt64?
    public var contentBytesChecked: UInt64?
    public var summary: ArchiveSummary
}

/// A chunk whose stored bytes do not hash to the signed chunk table's record: `length` bytes at byte
/// `offset` of the file.
public struct DamagedChunk: Sendable, Codable, Equatable {
    public var index: UInt64
    public var offset: UInt64
    public var length: UInt64
    /// With a key, for a data chunk of a version 2 archive: the entries whose tar bytes lie (partly) in
    /// this chunk — what a restore of everything else would lose (at most `maxFilesListed`).
    public var files: [String]?
    /// How many more entries the chunk holds than `files` lists.
    public var moreFiles: Int?
    /// Why `files` is absent although a key was given (a manifest chunk, a version 1 archive, …).
    public var filesUnknown: String?

    public static let maxFilesListed = 1000

    init(index: UInt64, offset: UInt64, length: UInt64) {
        self.index = index
        self.offset = offset
        self.length = length
    }
}

/// Checks archives without writing anything.
public enum Verifier {
    /// One worker per core.
    public static var defaultWorkers: Int { max(1, ProcessInfo.processInfo.activeProcessorCount) }

    /// The auditor's check, with no secret key: the structure, the signature by one of `trusted` over
    /// the header and trailer, the recipient block's checksum, and every chunk's BLAKE2b hash.
    public static func verify(path: String, trusting trusted: [SigningPublicKey], workers: Int = defaultWorkers) throws -> VerificationReport {
        try verify(archive: try ArchiveFile(path: path), trusting: trusted, workers: workers)
    }

    static func verify(archive: ArchiveFile, trusting trusted: [SigningPublicKey], workers: Int) throws -> VerificationReport {
        let path = archive.path
        let signer = try archive.checkSignature(trusting: trusted)
        let hashed = try archive.checkChunkHashes(workers: workers)
        return VerificationReport(archive: path, valid: true, signer: signer.fingerprint, chunksChecked: archive.totals.chunkCount,
                                  bytesHashed: hashed, entriesChecked: nil, contentBytesChecked: nil, summary: archive.summary)
    }

    /// Every damaged chunk of an archive whose structure and signature check out (keyless, like
    /// `verify`): all chunks are hashed, not only up to the first bad one. Empty when the archive is intact.
    public static func damagedChunks(path: String, trusting trusted: [SigningPublicKey], workers: Int = defaultWorkers) throws -> [DamagedChunk] {
        let archive = try ArchiveFile(path: path)
        _ = try archive.checkSignature(trusting: trusted)
        return try damagedChunks(archive: archive, workers: workers)
    }

    /// Every damaged chunk of an opened archive (its signature checked by the caller).
    static func damagedChunks(archive: ArchiveFile, workers: Int) throws -> [DamagedChunk] {
        var found: [DamagedChunk] = []
        do {
            _ = try archive.checkChunkHashes(workers: workers, damaged: { found.append($0) })
        } catch IntegrityError.chunkHashMismatch {
            // Reported chunk by chunk above.
        }
        return found
    }

    /// Names the entries each damaged data chunk holds (FORMAT.md §8 `tar_offset`: every data chunk but
    /// the last is exactly `chunk_raw_size` bytes of tar, so chunk k holds tar bytes
    /// [k·size, (k+1)·size), and an entry spans from its `tar_offset` to the next entry's). Needs a key to
    /// read the manifest, and the manifest chunks intact; otherwise each chunk says why it cannot tell.
    public static func identifyFiles(in damaged: [DamagedChunk], path: String, keyring: Keyring) -> [DamagedChunk] {
        guard !damaged.isEmpty else { return damaged }
        var out = damaged
        func unknown(_ why: String) -> [DamagedChunk] {
            out.indices.forEach { out[$0].filesUnknown = why }
            return out
        }
        do {
            let archive = try ArchiveFile(path: path)
            let rawSize = UInt64(archive.header.chunkRawSize)
            let firstManifestChunk = archive.totals.manifestFirstChunk
            for i in out.indices where out[i].index >= firstManifestChunk {
                out[i].filesUnknown = "a chunk of the manifest: which files the archive holds cannot be read past it"
            }
            if out.contains(where: { $0.index >= firstManifestChunk }) {
                for i in out.indices where out[i].filesUnknown == nil {
                    out[i].filesUnknown = "the manifest is damaged too (see the manifest chunk)"
                }
                return out
            }
            guard archive.header.formatVersion >= FormatV1.version2 else {
                return unknown("a version 1 archive does not record where each file lies in the tar stream")
            }
            let cipher = try archive.unlock(with: keyring)
            let reader = try ManifestReader(archive: archive, cipher: cipher)
            var files = Array(repeating: [String](), count: out.count)
            var more = Array(repeating: 0, count: out.count)
            var previous: ManifestEntry?
            func settle(_ entry: ManifestEntry, end: UInt64) {
                for (i, chunk) in out.enumerated() {
                    let start = chunk.index * rawSize, stop = start + rawSize
                    guard entry.tarOffset < stop, end > start else { continue }
                    if files[i].count < DamagedChunk.maxFilesListed { files[i].append(entry.path) } else { more[i] += 1 }
                }
            }
            while let entry = try reader.next() {
                guard entry.kind != .deleted else { continue }
                if let previous { settle(previous, end: entry.tarOffset) }
                previous = entry
            }
            if let previous { settle(previous, end: archive.totals.tarBytes) }
            for i in out.indices {
                out[i].files = files[i]
                out[i].moreFiles = more[i] > 0 ? more[i] : nil
            }
            return out
        } catch {
            return unknown("the manifest could not be read: \(error)")
        }
    }

    public static func verify(path: String, trusting trusted: SigningPublicKey, workers: Int = defaultWorkers) throws -> VerificationReport {
        try verify(path: path, trusting: [trusted], workers: workers)
    }

    /// The keyholder's check: everything `verify` checks (trusting the keyring's signing keys), then
    /// every chunk decrypted and decompressed, the tar stream parsed and every entry compared with the
    /// manifest, content hashes included.
    public static func verifyDeep(path: String, keyring: Keyring, trusting trusted: [SigningPublicKey]? = nil,
                                  workers: Int = defaultWorkers) throws -> VerificationReport {
        let trusted = try trusted ?? keyring.trustedSigningKeys()
        let archive = try ArchiveFile(path: path)
        var report = try verify(archive: archive, trusting: trusted, workers: workers)
        let cipher = try archive.unlock(with: keyring)
        _ = try archive.checkManifest(cipher: cipher)
        let found = try archive.readPayload(cipher: cipher, workers: workers, sink: nil)
        report.entriesChecked = found.entries
        report.contentBytesChecked = found.contentBytes
        return report
    }
}
