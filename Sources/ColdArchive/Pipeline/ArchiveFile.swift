import Foundation

/// The plaintext facts of an archive: what `inspect` prints and what create and verify report.
public struct ArchiveSummary: Sendable, Codable, Equatable {
    public var formatVersion: Int
    public var suite: Int
    public var archiveID: String
    public var created: String
    public var label: String?
    public var sources: [String]
    public var creator: String?
    public var chunkRawSize: Int
    public var signerFingerprint: String
    public var recipientKeyIDs: [String]
    public var headerDigest: String
    public var archiveDigest: String
    public var chunkCount: UInt64
    public var manifestFirstChunk: UInt64
    public var entryCount: UInt64
    public var contentBytes: UInt64
    public var tarBytes: UInt64
    public var manifestBytes: UInt64
    public var payloadBytes: UInt64
    public var fileSize: UInt64
    // v2 series and retention fields (FORMAT.md §5); absent when the header has none.
    public var series: String?
    public var sequence: UInt64?
    public var period: String?
    public var previousArchiveDigest: String?
    public var backupMode: String?
    public var baseArchiveDigest: String?
    public var retainUntil: String?

    init(header: ArchiveHeader, headerDigest: [UInt8], recipients: [Recipient], totals: TrailerTotals,
         archiveDigest: [UInt8], fileSize: UInt64) {
        formatVersion = Int(header.formatVersion)
        suite = Int(header.suite)
        archiveID = header.archiveID.hex
        created = ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval(header.created)))
        label = header.label
        sources = header.sources
        creator = header.creator
        chunkRawSize = Int(header.chunkRawSize)
        signerFingerprint = Sodium.blake2b(header.signerPublicKey, outputBytes: 16).hex
        recipientKeyIDs = recipients.map { $0.keyID.hex }
        self.headerDigest = headerDigest.hex
        self.archiveDigest = archiveDigest.hex
        chunkCount = totals.chunkCount
        manifestFirstChunk = totals.manifestFirstChunk
        entryCount = totals.entryCount
        contentBytes = totals.contentBytes
        tarBytes = totals.tarBytes
        manifestBytes = totals.manifestBytes
        payloadBytes = totals.payloadBytes
        self.fileSize = fileSize
        series = header.position?.series
        sequence = header.position?.sequence
        period = header.position?.period
        previousArchiveDigest = header.position?.previousArchiveDigest?.hex
        backupMode = header.backupMode.map { "\($0)" }
        baseArchiveDigest = header.baseArchiveDigest?.hex
        retainUntil = header.retainUntil.map { ISO8601DateFormatter().string(from: Date(timeIntervalSince1970: TimeInterval($0))) }
    }
}

/// An archive opened for reading: every structure outside the payload parsed and cross-checked
/// (lengths capped before anything is allocated), without any key. The payload itself is read
/// chunk by chunk, never whole.
public final class ArchiveFile {
    let file: OpenFile
    public let path: String
    public let fileSize: UInt64
    public let header: ArchiveHeader
    let headerDigest: [UInt8]
    let recipientBlock: RecipientBlock
    package let footer: Footer
    let totals: TrailerTotals
    package let archiveDigest: [UInt8]
    let signature: [UInt8]
    /// Where the manifest's first chunk starts.
    let manifestOffset: UInt64
    /// The file as it was when opened; any write to it changes the ctime, which users cannot set back.
    private let snapshot: FileSnapshot

    private struct FileSnapshot: Equatable {
        var device: UInt64, inode: UInt64, size: Int64
        var mtime: Int, mtimeNanoseconds: Int, ctime: Int, ctimeNanoseconds: Int

        init(_ file: OpenFile) throws {
            var st = stat()
            guard fstat(file.fd, &st) == 0 else { throw SystemError(operation: "stat", path: file.path, errno: errno) }
            device = UInt64(st.st_dev); inode = UInt64(st.st_ino); size = Int64(st.st_size)
            mtime = st.st_mtim.tv_sec; mtimeNanoseconds = st.st_mtim.tv_nsec
            ctime = st.st_ctim.tv_sec; ctimeNanoseconds = st.st_ctim.tv_nsec
        }
    }

    /// Every later pass reads the same open file again; this refuses to go on (or to publish a
    /// restore) if the file was written to since it was opened and verified.
    package func checkUnchanged() throws {
        guard try FileSnapshot(file) == snapshot else {
            throw IntegrityError.inconsistent(what: "the archive file was modified while it was being read; nothing was restored — check who writes to it")
        }
    }

    public var summary: ArchiveSummary {
        ArchiveSummary(header: header, headerDigest: headerDigest, recipients: recipientBlock.recipients, totals: totals,
                       archiveDigest: archiveDigest, fileSize: fileSize)
    }

    public init(path: String) throws {
        self.path = path
        file = try OpenFile.forReading(path)
        snapshot = try FileSnapshot(file)
        fileSize = try file.size()
        let minimum = UInt64(FormatV1.preludeSize + FormatV1.footerSize)
        guard fileSize >= 8 else {
            throw IntegrityError.truncatedFile(reason: fileSize == 0 ? "the file is empty" : "the file is only \(fileSize) bytes long")
        }
        let magic = try file.readExactly(8, at: 0, what: "prelude")
        guard magic == FormatV1.magic else {
            throw IntegrityError.notAnArchive(reason: "the file does not start with the coldarchive magic bytes")
        }
        guard fileSize >= minimum else { throw IntegrityError.truncatedFile(reason: "the file is only \(fileSize) bytes long") }
        let prelude = try file.readExactly(FormatV1.preludeSize, at: 0, what: "prelude")
        let headerLength = UInt64(try ArchiveHeader.parsePrelude(prelude))
        footer = try Footer.decode(try file.readExactly(FormatV1.footerSize, at: fileSize - UInt64(FormatV1.footerSize), what: "footer"))
        let preludeVersion = UInt16(prelude[8]) | UInt16(prelude[9]) << 8
        guard footer.formatVersion == preludeVersion else {
            throw IntegrityError.inconsistent(what: "the prelude says format version \(preludeVersion), the footer \(footer.formatVersion)")
        }

        let space = fileSize - UInt64(FormatV1.footerSize)
        guard UInt64(FormatV1.preludeSize) + headerLength + 4 <= space else { throw IntegrityError.truncated(what: "header") }
        let fields = try file.readExactly(Int(headerLength), at: UInt64(FormatV1.preludeSize), what: "header")
        header = try ArchiveHeader.decode(prelude: prelude, fields: fields)
        headerDigest = Sodium.blake2b(prelude + fields)

        let blockOffset = UInt64(FormatV1.preludeSize) + headerLength
        let blockLength = UInt64(try RecipientBlock.parseLength(try file.readExactly(4, at: blockOffset, what: "recipient block")))
        guard blockOffset + 4 + blockLength <= space else { throw IntegrityError.truncated(what: "recipient block") }
        recipientBlock = try RecipientBlock.decode(try file.readExactly(Int(4 + blockLength), at: blockOffset, what: "recipient block"))
        let payloadOffset = blockOffset + 4 + blockLength

        // The footer must describe exactly this file.
        guard footer.payloadOffset == payloadOffset else {
            throw IntegrityError.inconsistent(what: "the footer puts the payload at byte \(footer.payloadOffset), the header ends at \(payloadOffset)")
        }
        guard footer.trailerOffset >= payloadOffset, footer.trailerOffset <= space,
              footer.trailerLength == space - footer.trailerOffset else {
            throw IntegrityError.inconsistent(what: "the footer's trailer position does not match the file's length (\(fileSize) bytes)")
        }
        guard footer.trailerLength >= UInt64(FormatV1.trailerFixedSize + FormatV1.signatureSize) else {
            throw IntegrityError.truncated(what: "trailer")
        }
        totals = try TrailerTotals.decode(try file.readExactly(FormatV1.trailerFixedSize, at: footer.trailerOffset, what: "trailer"))
        guard totals.trailerLength == footer.trailerLength else {
            throw IntegrityError.inconsistent(what: "the trailer holds \(totals.chunkCount) chunk records but is \(footer.trailerLength) bytes long")
        }
        guard totals.headerDigest == headerDigest else {
            throw IntegrityError.inconsistent(what: "the trailer belongs to another archive (its header digest differs)")
        }
        guard totals.payloadBytes == footer.trailerOffset - payloadOffset else {
            throw IntegrityError.inconsistent(what: "the trailer records \(totals.payloadBytes) payload bytes, the file holds \(footer.trailerOffset - payloadOffset)")
        }

        // One pass over the chunk table: the archive digest, and every record within its limits.
        let digest = Sodium.Blake2bState(outputBytes: 32)
        digest.update(totals.encoded())
        var sums: (sealed: UInt64, data: UInt64, manifest: UInt64) = (0, 0, 0)
        var manifestOffset: UInt64 = 0
        let table = ChunkTableCursor(file: file, trailerOffset: footer.trailerOffset, totals: totals, payloadOffset: payloadOffset,
                                     chunkRawSize: header.chunkRawSize)
        while let (index, offset, record) = try table.next(rawTable: { digest.update($0) }) {
            if index == totals.manifestFirstChunk { manifestOffset = offset }
            let lastOfSection = index == totals.manifestFirstChunk - 1 || index == totals.chunkCount - 1
            guard record.rawLength == header.chunkRawSize || lastOfSection else {
                throw IntegrityError.inconsistent(what: "chunk \(index) is shorter than chunk_raw_size but is not the last of its section")
            }
            sums.sealed += UInt64(record.sealedLength)
            if index < totals.manifestFirstChunk { sums.data += UInt64(record.rawLength) } else { sums.manifest += UInt64(record.rawLength) }
        }
        guard sums.sealed == totals.payloadBytes else {
            throw IntegrityError.inconsistent(what: "the chunk table adds up to \(sums.sealed) payload bytes, the trailer says \(totals.payloadBytes)")
        }
        guard totals.tarBytes % 512 == 0 else {
            throw IntegrityError.inconsistent(what: "the tar stream is \(totals.tarBytes) bytes, not a whole number of 512-byte blocks")
        }
        guard sums.data == totals.tarBytes, sums.manifest == totals.manifestBytes else {
            throw IntegrityError.inconsistent(what: "the chunk table's sizes do not add up to the trailer's totals")
        }
        self.manifestOffset = manifestOffset
        archiveDigest = digest.finalize()
        signature = try file.readExactly(FormatV1.signatureSize, at: fileSize - UInt64(FormatV1.footerSize + FormatV1.signatureSize),
                                         what: "signature")
    }

    /// The key that signed the archive, as the header names it.
    public var signerPublicKey: SigningPublicKey {
        get throws { try SigningPublicKey(bytes: header.signerPublicKey) }
    }

    /// Checks that one of `trusted` signed this archive's header and trailer (and so every chunk
    /// hash). Returns the key that did.
    @discardableResult
    public func checkSignature(trusting trusted: [SigningPublicKey]) throws -> SigningPublicKey {
        let signer = try signerPublicKey
        guard trusted.contains(signer) else {
            throw IntegrityError.untrustedSigner(fingerprint: signer.fingerprint, trusted: trusted.map(\.fingerprint).joined(separator: ", "))
        }
        guard Sodium.verify(signature: signature, message: FormatV1.signatureContext + archiveDigest, publicKey: signer.bytes) else {
            throw IntegrityError.badSignature
        }
        return signer
    }

    /// A cursor over the chunk table, from the first chunk or from the manifest's first chunk.
    package func chunkTable(fromManifest: Bool = false) -> ChunkTableCursor {
        ChunkTableCursor(file: file, trailerOffset: footer.trailerOffset, totals: totals,
                         payloadOffset: fromManifest ? manifestOffset : footer.payloadOffset, chunkRawSize: header.chunkRawSize,
                         firstIndex: fromManifest ? totals.manifestFirstChunk : 0)
    }

    /// Unwraps the file key with a recipient entry `keyFor` holds a key for (entries of unknown types
    /// are skipped; an entry that does not open is passed over for the next), then checks the header
    /// MAC with it — which covers every entry, so an altered block is refused either way.
    func unwrapFileKey(_ keyFor: ([UInt8]) throws -> EncryptionKey?) throws -> FileKey {
        var failed: [String] = []
        for recipient in recipientBlock.recipients where recipient.type == Recipient.typeX25519SealedBox {
            guard let key = try keyFor(recipient.keyID) else { continue }
            guard let fileKey = key.unwrap(recipient) else {
                failed.append(recipient.keyID.hex)
                continue
            }
            let mac = RecipientBlock.mac(headerDigest: headerDigest, entries: recipientBlock.entriesEncoded(),
                                         macKey: fileKey.headerMACKey(salt: header.payloadSalt))
            guard Sodium.constantTimeEqual(mac, recipientBlock.headerMAC) else { throw IntegrityError.headerMACMismatch }
            return fileKey
        }
        if !failed.isEmpty {
            throw IntegrityError.inconsistent(what: "the wrapped file key for key id \(failed.joined(separator: ", ")) does not open with that key: the recipient block was altered")
        }
        throw KeyError.noMatchingKey(keyIDs: recipientBlock.recipients.map { $0.keyID.hex })
    }

    /// The cipher that opens the payload, for a file key already unwrapped.
    func cipher(for fileKey: FileKey) -> ChunkCipher {
        ChunkCipher(payloadKey: fileKey.payloadKey(salt: header.payloadSalt), noncePrefix: header.noncePrefix, headerDigest: headerDigest)
    }

    /// Unwraps the file key with one of the keyring's encryption keys and returns the payload cipher.
    func unlock(with keyring: Keyring) throws -> ChunkCipher {
        do {
            return cipher(for: try unwrapFileKey { try keyring.encryptionKey(id: $0) })
        } catch KeyError.noMatchingKey(let ids) {
            // Say so when it is because this keyring destroyed the key: not a mystery, nor tampering.
            let retired = keyring.retirements(among: ids)
            guard let last = retired.map(\.retired).max() else { throw KeyError.noMatchingKey(keyIDs: ids) }
            let retiredIDs = retired.map(\.id)
            throw KeyError.retiredKey(keyIDs: retiredIDs, retired: last, otherRecipients: ids.filter { !retiredIDs.contains($0) })
        }
    }

    /// The key ids this archive's file key is wrapped to.
    public var recipientKeyIDs: [String] { recipientBlock.recipients.map { $0.keyID.hex } }
}

/// Reads the chunk table one record at a time (64 KiB at a time from disk), yielding each chunk's
/// index, its byte offset in the file, and its record — each record checked against its limits every
/// time it is read, so no pass allocates on the word of an unchecked length.
package final class ChunkTableCursor {
    private let file: OpenFile
    private let chunkRawSize: UInt32
    private let maxSealed: UInt64
    private let tableOffset: UInt64
    private let count: UInt64
    private var index: UInt64 = 0
    private var payloadCursor: UInt64
    private var buffer: [UInt8] = []
    private var bufferStart: UInt64 = 0

    /// `payloadOffset` is where chunk `firstIndex` starts.
    init(file: OpenFile, trailerOffset: UInt64, totals: TrailerTotals, payloadOffset: UInt64, chunkRawSize: UInt32,
         firstIndex: UInt64 = 0) {
        self.file = file
        self.chunkRawSize = chunkRawSize
        self.maxSealed = UInt64(ZstdFrameEncoder.bound(Int(chunkRawSize)) + ChunkCipher.tagSize)
        self.tableOffset = trailerOffset + UInt64(FormatV1.trailerFixedSize)
        self.count = totals.chunkCount
        self.payloadCursor = payloadOffset
        self.index = firstIndex
        self.bufferStart = firstIndex * UInt64(FormatV1.chunkRecordSize)
    }

    /// The next record, or nil after the last. `rawTable` sees every table byte once, in order.
    package func next(rawTable: ([UInt8]) -> Void = { _ in }) throws -> (index: UInt64, offset: UInt64, record: ChunkRecord)? {
        guard index < count else { return nil }
        let size = UInt64(FormatV1.chunkRecordSize)
        let position = index * size
        if position >= bufferStart + UInt64(buffer.count) {
            let want = Int(min(UInt64(1638) * size, (count - index) * size))
            buffer = try file.readExactly(want, at: tableOffset + position, what: "chunk table")
            bufferStart = position
            rawTable(buffer)
        }
        let local = Int(position - bufferStart)
        var r = ByteReader(Array(buffer[local..<local + FormatV1.chunkRecordSize]), what: "chunk record")
        let record = try ChunkRecord.decode(&r)
        guard UInt64(record.sealedLength) > UInt64(ChunkCipher.tagSize), UInt64(record.sealedLength) <= maxSealed else {
            throw IntegrityError.outOfRange(field: "sealed_len of chunk \(index)", value: UInt64(record.sealedLength), min: 17, max: maxSealed)
        }
        guard record.rawLength >= 1, record.rawLength <= chunkRawSize else {
            throw IntegrityError.outOfRange(field: "raw_len of chunk \(index)", value: UInt64(record.rawLength), min: 1, max: UInt64(chunkRawSize))
        }
        defer {
            index += 1
            payloadCursor += UInt64(record.sealedLength)
        }
        return (index, payloadCursor, record)
    }
}
