import Foundation

/// Chunk-wise repair of an archive from other copies of it (issue 20; docs/OFFSITE.md): every chunk
/// is checked against the signed chunk table (FORMAT.md §9), each damaged one is taken from a copy
/// that holds it intact, and the result — the same archive digest, and the same bytes as the archive
/// before the damage — is verified whole before it replaces the damaged file. It works even when every
/// copy is damaged, as long as each chunk is intact in one of them. No key is needed: chunk hashes and
/// the signature are checked with the signing public key alone.
public enum Repair {
    /// A chunk taken from another copy: its index, its byte offset in the repaired file, and the copy.
    public struct RepairedChunk: Sendable, Codable, Equatable {
        public var index: UInt64
        public var offset: UInt64
        public var from: String
    }

    /// What `repair` did.
    public struct Report: Sendable, Codable, Equatable {
        public var archive: String
        /// Hex of the archive digest (FORMAT.md §9), the same before and after.
        public var archiveDigest: String
        public var chunks: UInt64
        /// The damaged chunks, each taken from an intact copy; empty when the archive was intact.
        public var repaired: [RepairedChunk] = []
        /// The copy whose prelude, header, recipient block, trailer and footer were used, when the
        /// archive's own could not be read or did not verify (or the file was gone).
        public var structureFrom: String?
        /// Why the archive's own structure was not used.
        public var structureProblem: String?
        /// The key ids the repaired file is wrapped to (a copy's recipient block, when its structure was
        /// taken: after a rewrap of one of them, they may differ).
        public var recipients: [String] = []
        /// Copies that could not be used, with the reason.
        public var unusable: [String: String] = [:]
        /// True when nothing needed repair: the file was left untouched.
        public var wasIntact: Bool { repaired.isEmpty && structureFrom == nil }
    }

    /// Repairs the archive at `path` from `copies` (paths of other copies of the same archive; a
    /// rewrapped copy serves too: chunks are found by index, not by offset). Trusts archives signed by
    /// one of `trusted`. Throws `IntegrityError` when a chunk is damaged in every copy (naming it),
    /// `OperationError` (usage) when a copy is of another archive or none is usable; on any failure the
    /// archive is left as it was and nothing else remains.
    public static func repair(_ path: String, from copies: [String], trusting trusted: [SigningPublicKey],
                              workers: Int = Verifier.defaultWorkers) throws -> Report {
        PartialFiles.removeStale(for: path)
        // The archive's own structure, when it opens and its signature verifies.
        var own: ArchiveFile?
        var ownProblem: String?
        if FileSystem.exists(path) {
            do {
                let file = try ArchiveFile(path: path)
                _ = try file.checkSignature(trusting: trusted)
                own = file
            } catch let error as IntegrityError {
                if case .untrustedSigner = error { throw error }
                ownProblem = "\(error)"
            }
        } else {
            ownProblem = "the file does not exist"
        }
        var sources: [ArchiveFile] = []
        var unusable: [String: String] = [:]
        for copy in copies {
            // A copy that is missing, unreadable, damaged in its structure or signed by another key is not
            // used (and said so); another copy may serve.
            do {
                let file = try ArchiveFile(path: copy)
                _ = try file.checkSignature(trusting: trusted)
                sources.append(file)
            } catch {
                unusable[copy] = "\(error)"
            }
        }
        // Without a usable structure of its own, the first copy the file is a damaged copy of gives it.
        var mismatch: Error?
        let matching = own == nil ? sources.first { source in
            do { try checkSameArchive(path, as: source, trusting: trusted); return true } catch { mismatch = mismatch ?? error; return false }
        } : nil
        if own == nil, matching == nil, let mismatch { throw mismatch }
        guard let skeleton = own ?? matching else {
            throw OperationError("'\(path)' cannot be repaired: \(ownProblem ?? "it does not verify"), and no copy given is usable"
                                 + (unusable.isEmpty ? " (give copies with --from)" : " (\(unusable.map { "'\($0.key)': \($0.value)" }.sorted().joined(separator: "; ")))"),
                                 kind: .integrity)
        }
        for source in sources where source.archiveDigest != skeleton.archiveDigest {
            throw OperationError("'\(source.path)' is not a copy of '\(skeleton.path)': its archive digest is \(source.archiveDigest.hex.prefix(16))…, not \(skeleton.archiveDigest.hex.prefix(16))…", kind: .usage)
        }
        var report = Report(archive: path, archiveDigest: skeleton.archiveDigest.hex, chunks: skeleton.totals.chunkCount, unusable: unusable)
        report.recipients = skeleton.recipientKeyIDs
        if own == nil {
            // The structure comes from a copy the file was checked to be a damaged copy of (never another
            // archive, whose intact chunks would all be lost).
            report.structureFrom = skeleton.path
            report.structureProblem = ownProblem
        }

        // Which chunks of the skeleton are damaged (keyless: hash against the signed table).
        let damaged = try Verifier.damagedChunks(archive: skeleton, workers: workers).map(\.index)
        if damaged.isEmpty && own != nil { return report }
        // Where else each chunk may be found: the other copies, each at its own payload offset (copies
        // share the chunk table; a rewrapped one's payload may start elsewhere) and, when the archive's
        // own structure was not usable, its bytes at the layout taken from the copy (the hash decides).
        var others = sources.filter { $0 !== skeleton }.map { (path: $0.path, file: $0.file, payloadOffset: $0.footer.payloadOffset) }
        if own == nil, let file = try? OpenFile.forReading(path) {
            others.insert((path, file, skeleton.footer.payloadOffset), at: 0)
        }

        // Write the repaired file beside the archive, under a partial name a killed run's successor removes.
        let partial = PartialFiles.name(for: path)
        do {
            let out = try OpenFile.createNew(partial, mode: 0o644)
            let table = skeleton.chunkTable()
            let maxSealed = ZstdFrameEncoder.bound(Int(skeleton.header.chunkRawSize)) + ChunkCipher.tagSize
            let buffer = ByteBuffer(capacity: max(maxSealed, 1 << 20))
            try skeleton.copyBytes(0..<skeleton.footer.payloadOffset, to: out, buffer: buffer)
            var pending = damaged[...]
            while let (index, offset, record) = try table.next() {
                let length = Int(record.sealedLength)
                if pending.first == index {
                    pending.removeFirst()
                    guard let source = try intactCopy(of: index, at: offset - skeleton.footer.payloadOffset, record: record,
                                                      in: others, into: buffer) else {
                        let why = unusable.isEmpty ? "" : " (not usable: \(unusable.map { "'\($0.key)': \($0.value)" }.sorted().joined(separator: "; ")))"
                        throw IntegrityError.inconsistent(what: "chunk \(index) (bytes \(offset)–\(offset + UInt64(length) - 1)) is damaged in '\(skeleton.path)' and in every copy given\(why); nothing was changed. Find another copy, or restore what is intact with 'restore --salvage'")
                    }
                    report.repaired.append(RepairedChunk(index: index, offset: offset, from: source))
                } else {
                    let n = try skeleton.file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.storage[0..<length]), at: offset)
                    guard n == length else { throw IntegrityError.truncated(what: "chunk \(index) of '\(skeleton.path)'") }
                }
                try out.write(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<length]))
            }
            try skeleton.copyBytes(skeleton.footer.trailerOffset..<skeleton.fileSize, to: out, buffer: buffer)
            try out.sync()
            // The result must be the same archive, whole: structure, signature, every chunk.
            try skeleton.checkWrittenCopy(at: partial, trusting: trusted, workers: workers)
            for archive in [own].compactMap({ $0 }) + sources { try archive.checkUnchanged() }
            try FileSystem.rename(partial, path)
            // The structure came from a copy: the file's bytes are now the copy's (its recipient block too,
            // which a rewrap may have changed), and so is what its minisign signature must cover.
            if own == nil, FileSystem.exists("\(skeleton.path).minisig") {
                try FileSystem.writeAtomically(try FileSystem.readSmallFile("\(skeleton.path).minisig", limit: 1 << 16), to: "\(path).minisig", mode: 0o644)
            }
            try FileSystem.syncDirectory(FileSystem.parent(of: path))
        } catch {
            FileSystem.remove(partial)
            throw error
        }
        return report
    }

    /// Refuses to rebuild `path` from `skeleton` unless it is that archive: in a vault, the journal's
    /// `archive-added` record of its file name names the skeleton's archive digest; and a file that is
    /// there holds at least one of the skeleton's chunks intact at its place.
    private static func checkSameArchive(_ path: String, as skeleton: ArchiveFile, trusting trusted: [SigningPublicKey]) throws {
        func refuse(_ why: String) -> OperationError {
            OperationError("'\(path)' was not rebuilt from '\(skeleton.path)': \(why); nothing was changed", kind: .usage)
        }
        if let (vault, file) = Vault.containing(file: path),
           let recorded = try? vault.recordedArchives(trusting: trusted).last(where: { $0.file == file }),
           let digest = recorded.archiveDigest, digest != skeleton.archiveDigest.hex {
            throw refuse("the vault's journal records '\(file)' as archive digest \(digest.prefix(16))…, the copy is \(skeleton.archiveDigest.hex.prefix(16))…")
        }
        guard FileSystem.exists(path) else { return }
        let file = try OpenFile.forReading(path)
        let table = skeleton.chunkTable()
        let buffer = ByteBuffer(capacity: ZstdFrameEncoder.bound(Int(skeleton.header.chunkRawSize)) + ChunkCipher.tagSize)
        while let (_, offset, record) = try table.next() {
            if readIntact(file, at: offset, record: record, into: buffer) { return }
        }
        throw refuse("none of its chunks is one of that archive's (another archive, or nothing of it left)")
    }

    /// Finds chunk `index` intact in one of `copies` (at `relative` bytes into its payload); leaves it
    /// in `buffer` and returns the copy's path, or nil.
    private static func intactCopy(of index: UInt64, at relative: UInt64, record: ChunkRecord,
                                   in copies: [(path: String, file: OpenFile, payloadOffset: UInt64)], into buffer: ByteBuffer) throws -> String? {
        copies.first { readIntact($0.file, at: $0.payloadOffset + relative, record: record, into: buffer) }?.path
    }

    /// Reads the chunk `record` describes from `file` at `offset` into `buffer`: true when it is there
    /// whole and its BLAKE2b-256 is the signed chunk table's (a read error counts as not intact).
    private static func readIntact(_ file: OpenFile, at offset: UInt64, record: ChunkRecord, into buffer: ByteBuffer) -> Bool {
        let space = UnsafeMutableRawBufferPointer(rebasing: buffer.storage[0..<Int(record.sealedLength)])
        guard (try? file.read(into: space, at: offset)) == space.count else { return false }
        let hash = Sodium.Blake2bState(outputBytes: 32)
        hash.update(UnsafeRawBufferPointer(space))
        return hash.finalize() == record.hash
    }
}

extension ArchiveFile {
    /// Checks that the file written at `path` (a copy, a repair) is this archive, whole: the same archive
    /// digest and length, signed by one of `trusted`, and every chunk as the signed table says.
    func checkWrittenCopy(at path: String, trusting trusted: [SigningPublicKey], workers: Int) throws {
        let written = try ArchiveFile(path: path)
        guard written.archiveDigest == archiveDigest, written.fileSize == fileSize else {
            throw IntegrityError.inconsistent(what: "'\(path)' is not the archive it was written from")
        }
        _ = try Verifier.verify(archive: written, trusting: trusted, workers: workers)
    }

    /// Copies the bytes `range` of the archive file to `out`, through `buffer`.
    func copyBytes(_ range: Range<UInt64>, to out: OpenFile, buffer: ByteBuffer) throws {
        var at = range.lowerBound
        while at < range.upperBound {
            let count = Int(min(UInt64(buffer.capacity), range.upperBound - at))
            let n = try file.read(into: UnsafeMutableRawBufferPointer(rebasing: buffer.storage[0..<count]), at: at)
            guard n == count else { throw IntegrityError.truncated(what: "'\(path)'") }
            try out.write(UnsafeRawBufferPointer(rebasing: buffer.storage[0..<count]))
            at += UInt64(count)
        }
    }
}
