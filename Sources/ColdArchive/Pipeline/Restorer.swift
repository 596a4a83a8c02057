import Foundation

/// What a restore wrote.
public struct RestoreReport: Sendable, Equatable, Codable {
    public var target: String
    public var entries: UInt64
    public var contentBytes: UInt64
    public var topLevel: [String]
    /// The most chunks held in memory at once during extraction.
    public var peakChunksInFlight: Int
    /// The most writer threads that ever created files in one directory at once: 1 by design (two
    /// would fight over the directory's lock; docs/BENCHMARKS.md, issue 17), 0 when none ran.
    public var peakWritersPerDirectory: Int = 0
    /// How many writer threads wrote large files (256 KiB or more): a directory's large files are spread
    /// over the threads, since copying bytes does not take the directory's lock.
    public var lanesForLargeFiles: Int = 0
    /// Whose owners were set: "archived" (by name, else number), "numeric", or "none" with the reason.
    public var owners: String = "none"
    /// Everything that could not be applied exactly (owner, attributes, ACLs, special bits) and every
    /// file that changed while it was archived, by path; at most `MetadataApplier.maxNotices` kept.
    public var notices: [RestoreNotice] = []
    /// How many notices there were in all.
    public var noticeCount: Int = 0
    /// Bytes read from the archive file, every pass counted (a whole restore reads it twice: the
    /// keyless hash pass, then extraction).
    public var bytesRead: UInt64 = 0
    /// With `--include`: the patterns, and how many of the archive's data chunks were read.
    public var include: [String]?
    public var dataChunksRead: Int?
    public var dataChunks: Int?
    /// With `--include`: files restored although no pattern matched them, because a restored hardlink
    /// names them (a hardlink is restored as a link to its file).
    public var hardlinkTargets: [String]?
    /// A point-in-time restore: the archives it read, oldest (the full) first.
    public var chain: [String]?
    /// A salvage (`restore --salvage`): what was damaged and what could not be restored.
    public var salvage: SalvageSummary?
}

/// Restores an archive into a directory, only after the whole archive has been verified, and
/// without ever writing outside the target or changing it when anything fails.
public enum Restorer {
    static let stagingPrefix = ".coldarchive-restore-"

    /// 1. Verify: signature by the keyring's signing key, every chunk hash, the header MAC, the
    ///    manifest and its totals. 2. Extract into a staging directory inside the target, checking
    ///    every entry against the manifest (with `checkContent`, each file's BLAKE2b-256 too; every
    ///    byte is authenticated by its chunk's AEAD tag either way). 3. Move the restored top-level
    ///    entries into place.
    /// An existing non-empty target is refused unless `force`; an existing entry is never replaced.
    /// `trusted` overrides the keyring's own signing keys (an escrow holder restoring a site's archive).
    ///
    /// With `include` (glob patterns, `EntrySelection`), a selective restore: only the matching entries
    /// (with the directories above them and the files their hardlinks name), reading of the data
    /// section only the chunks that hold them. It verifies the signature, the whole manifest, and every
    /// chunk it reads (hash against the signed chunk table, AEAD); the chunks it does not read are not
    /// checked — `verify` does that, keylessly (docs/OPERATIONS.md).
    public static func restore(archivePath: String, to target: String, keyring: Keyring, trusting trusted: [SigningPublicKey]? = nil,
                               force: Bool = false, checkContent: Bool = false, owners: OwnerPolicy = .automatic,
                               workers: Int = Verifier.defaultWorkers, include: [String] = []) throws -> RestoreReport {
        // Pass 1: verify everything that can be verified before a byte is written.
        let archive = try ArchiveFile(path: archivePath)
        try archive.checkSignature(trusting: try trusted ?? keyring.trustedSigningKeys())
        if !include.isEmpty {
            let cipher = try archive.unlock(with: keyring)
            let plan = try archive.planSelection(cipher: cipher, patterns: include)
            var chunksRead = 0
            var report = try place(archive: archive, topLevel: plan.topLevel, target: target, force: force, checkContent: checkContent,
                                   owners: owners, workers: workers) { sink in
                let (found, chunks) = try archive.readSelection(plan, cipher: cipher, workers: workers, sink: sink, checkContent: checkContent)
                chunksRead = chunks
                return found
            }
            report.include = include
            report.dataChunksRead = chunksRead
            report.dataChunks = Int(archive.totals.manifestFirstChunk)
            report.bytesRead = archive.file.bytesRead
            report.hardlinkTargets = plan.targets.map { NameCodec.decode($0) }.sorted()
            return report
        }
        // The manifest is decrypted and checked on a thread of its own while the workers hash every
        // chunk: one core's work for 160 000 entries (0.6–0.9 s at 1 GB) that ran alone before. Both
        // must pass before anything is written; a damaged chunk is reported first, as before.
        let manifestCheck = BackgroundTask(name: "coldarchive-manifest") { () throws -> (ChunkCipher, [String]) in
            let cipher = try archive.unlock(with: keyring)
            return (cipher, try archive.checkManifest(cipher: cipher))
        }
        let hashed = Result { try archive.checkChunkHashes(workers: workers) }
        let manifest = manifestCheck.wait()
        // What the manifest thread freed stays in its own malloc arena, counted in the peak RSS during
        // extraction (+12 MiB at 1 GB) unless handed back now.
        _ = mallocTrim(0)
        _ = try hashed.get()
        if archive.header.backupMode == .incremental || archive.header.backupMode == .differential {
            throw OperationError("'\(archivePath)' is an \(archive.header.backupMode == .incremental ? "incremental" : "differential") archive: it holds only changes since its base, and this version restores full archives only")
        }
        let (cipher, topLevel) = try manifest.get()
        var report = try place(archive: archive, topLevel: topLevel, target: target, force: force, checkContent: checkContent,
                               owners: owners, workers: workers) { sink in
            try archive.readPayload(cipher: cipher, workers: workers, sink: sink, checkContent: checkContent)
        }
        report.bytesRead = archive.file.bytesRead
        return report
    }

    /// Checks the target, extracts with `extract` into a staging directory inside it, and moves the
    /// top-level entries into place; on any failure the target is left as it was.
    static func place(archive: ArchiveFile, topLevel: [String], target: String, force: Bool, checkContent: Bool,
                              owners: OwnerPolicy, workers: Int, extract: (SafeExtractor) throws -> PayloadTotals) throws -> RestoreReport {
        if let reserved = topLevel.first(where: { $0.hasPrefix(stagingPrefix) }) {
            throw IntegrityError.unsafeEntry(path: reserved, reason: .reservedName(prefix: stagingPrefix))
        }

        // The target: created if missing, else it must be empty (or --force) with no name clash.
        var createdDirectories: [String] = []
        if FileSystem.exists(target) {
            guard FileSystem.isDirectory(target) else {
                throw OperationError("restore target '\(target)' exists and is not a directory")
            }
            // First undo what restores that were killed left (their process is gone): entries they had
            // already moved into place go back into their staging directory, which is then removed.
            for name in try FileSystem.directoryEntries(target) where staleStagingPID(name, in: target) != nil {
                try rollBack(staging: "\(target)/\(name)", target: target)
            }
            let present = try FileSystem.directoryEntries(target)
            if !present.isEmpty && !force {
                throw OperationError("restore target '\(target)' is not empty; restore into a new directory, or pass --force to add to it")
            }
            let presentKeys = Set(present.map(PathRules.key))
            let clashes = topLevel.filter { presentKeys.contains(PathRules.key($0)) }
            guard clashes.isEmpty else {
                throw OperationError("restore target '\(target)' already holds \(clashes.map { "'\($0)'" }.joined(separator: ", ")); restore never replaces existing data — move it away first")
            }
        } else {
            // Missing parents too (as `mkdir -p`); all of them go again if the restore fails.
            createdDirectories = try FileSystem.makeDirectories(target)
        }

        // Pass 2: extract into staging, then move into place.
        let staging = "\(target)/\(stagingPrefix)\(getpid())-\(Sodium.randomBytes(6).hex)"
        var moved: [String] = []
        var extractor: SafeExtractor?
        do {
            try FileSystem.makeDirectory(staging, mode: 0o700)
            let sink = try SafeExtractor(root: staging, writers: workers, checkContent: checkContent, owners: owners)
            extractor = sink
            let found = try extract(sink)
            // Top-level directories keep a writable mode until they are in place: moving a directory
            // to a new parent needs write permission on it.
            let topLevelDirectories = try sink.finish(exceptTopLevel: true)
            // A journal of what is about to move, so that a restore killed half-way through the moves
            // can be rolled back by the next one.
            try FileSystem.writeAtomically(Array(topLevel.joined(separator: "\n").utf8), to: "\(staging)/\(journalName)", mode: 0o600)
            for name in topLevel {
                try renameNoReplace("\(staging)/\(name)", "\(target)/\(name)")
                moved.append(name)
            }
            try FileSystem.removeTree(staging)
            try SafeExtractor.applyModeAndTimes(topLevelDirectories, under: target, applier: sink.applier)
            try FileSystem.syncDirectory(target)
            var report = RestoreReport(target: target, entries: found.entries, contentBytes: found.contentBytes, topLevel: topLevel,
                                       peakChunksInFlight: found.peakChunksInFlight)
            let (notices, total) = sink.applier.collected
            report.notices = notices
            report.peakWritersPerDirectory = sink.peakLanesPerDirectory
            report.lanesForLargeFiles = sink.lanesForLargeFiles
            report.noticeCount = total
            if archive.header.formatVersion < FormatV1.version2 {
                report.owners = "none (a version 1 archive keeps no owners)"
            } else if sink.applier.setsOwners {
                report.owners = owners == .numeric ? "numeric" : "archived"
            } else {
                report.owners = owners == .none ? "none (--no-owner)" : "none (not running as root: everything belongs to the user who restored)"
            }
            return report
        } catch {
            // No writer thread may still be adding to the staging directory while it is removed.
            extractor?.shutdown()
            for name in moved.reversed() { try? renameNoReplace("\(target)/\(name)", "\(staging)/\(name)") }
            try? FileSystem.removeTree(staging)
            for directory in createdDirectories.reversed() { _ = rmdir(directory) }
            throw error
        }
    }

    static let journalName = stagingPrefix + "journal"

    /// Moves back into a stale staging directory the entries its journal says were moved out, then
    /// removes the staging directory: the target is as it was before the killed restore began.
    static func rollBack(staging: String, target: String) throws {
        let journal = "\(staging)/\(journalName)"
        if FileSystem.exists(journal) {
            let names = String(decoding: try FileSystem.readSmallFile(journal, limit: 16 << 20), as: UTF8.self)
                .split(separator: "\n").map(String.init)
            for name in names where !name.isEmpty && !name.contains("/") && name != "." && name != ".." {
                if !FileSystem.exists("\(staging)/\(name)") && FileSystem.exists("\(target)/\(name)") {
                    try FileSystem.rename("\(target)/\(name)", "\(staging)/\(name)")
                }
            }
        }
        try FileSystem.removeTree(staging)
    }

    /// The process id in a staging directory's name (`.coldarchive-restore-PID-RANDOM`) when that
    /// process no longer runs and the entry is a directory: a leftover that may be removed.
    static func staleStagingPID(_ name: String, in target: String) -> Int32? {
        guard name.hasPrefix(stagingPrefix),
              let pid = name.dropFirst(stagingPrefix.count).split(separator: "-").first.flatMap({ Int32($0) }), pid > 0,
              kill(pid, 0) != 0 && errno == ESRCH else { return nil }
        var st = stat()
        guard lstat("\(target)/\(name)", &st) == 0, UInt32(st.st_mode) & 0o170000 == FileTypeBits.directory else { return nil }
        return pid
    }

    /// Moves an entry into place, refusing to replace an existing one. (`renameat2` with
    /// `RENAME_NOREPLACE` is not visible to Swift here; the check-then-rename window is only open to
    /// another process writing into the target during the restore.)
    static func renameNoReplace(_ from: String, _ to: String) throws {
        guard !FileSystem.exists(to) else {
            throw OperationError("'\(to)' appeared during the restore; restore never replaces existing data")
        }
        try FileSystem.rename(from, to)
    }
}

/// glibc's `malloc_trim(3)` (not in Swift's Glibc module): hands free memory of every arena back.
@_silgen_name("malloc_trim") private func mallocTrim(_ pad: Int) -> Int32
