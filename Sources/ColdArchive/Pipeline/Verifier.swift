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
        var found: [DamagedChunk] = []
        do {
            _ = try archive.checkChunkHashes(workers: workers) { found.append($0) }
        } catch IntegrityError.chunkHashMismatch {
            // Reported chunk by chunk above.
        }
        return found
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
