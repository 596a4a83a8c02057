import Foundation

/// One archive of a restore chain, verified. Shared with the thread that checks the manifests while
/// the chunks are hashed: both only read (positional reads of the open file, the cipher's key).
struct ChainLink: @unchecked Sendable {
    let file: ArchiveFile
    let cipher: ChunkCipher
    /// The vault-relative path, for messages and the journal.
    let name: String
}

/// Point-in-time restore from a vault series (issue 19): the tree as it was at a period, from the
/// full archive it rests on and the incrementals (or the one differential) after it. Every archive of
/// the chain is verified first — signature, every chunk, manifest, base links — and only then is
/// anything written; of each archive only the chunks holding entries of the final tree are read.
public enum PointInTime {
    /// The archives a restore of `series` at `period` (or of the archive whose id or file name is
    /// `archive`; the series' last one when neither is given) needs, oldest first: the full, then each
    /// incremental up to the target, or the differential alone. Throws `VaultError` naming the broken
    /// link when a base is missing or does not verify.
    public static func chain(vault: Vault, series: String, period: String? = nil, archive: String? = nil,
                             trusting trusted: [SigningPublicKey]) throws -> [String] {
        let names = try vault.archiveNames(in: series)
        guard !names.isEmpty else { throw VaultError("series '\(series)' has no archive to restore", kind: .usage) }
        let directory = vault.seriesDirectory(series)
        var target: VaultArchiveName?
        if let archive {
            target = names.first { $0.fileName == archive || $0.fileName == FileSystem.baseName(of: archive) }
            if target == nil {
                for name in names where (try? ArchiveFile(path: "\(directory)/\(name.fileName)"))?.header.archiveID.hex.hasPrefix(archive.lowercased()) == true {
                    target = name
                }
            }
            guard target != nil else { throw VaultError("series '\(series)' has no archive '\(archive)' (give a file name or an archive id, as 'coldarchive inspect' shows)", kind: .usage) }
        } else if let period {
            guard let wanted = Period(period) else { throw VaultError("'\(period)' is not a period", kind: .usage) }
            // The last archive covering the period or an earlier one: the state at the period's end.
            target = names.last { Period($0.period).map { $0 <= wanted } ?? false }
            guard target != nil else { throw VaultError("series '\(series)' has no archive for \(period) or before it (its first covers \(names[0].period))", kind: .usage) }
        } else {
            target = names.last
        }
        // From the target back along the signed base links to a full.
        var chain: [String] = []
        var byDigest: [[UInt8]: String]?
        var file = "\(directory)/\(target!.fileName)"
        while true {
            let archive = try ArchiveFile(path: file)
            _ = try archive.checkSignature(trusting: trusted)
            chain.insert(file, at: 0)
            guard let mode = archive.header.backupMode, mode != .full else { break }
            guard let base = archive.header.baseArchiveDigest, chain.count <= names.count else {
                throw VaultError("'\(FileSystem.baseName(of: file))' names no base archive", kind: .integrity)
            }
            if byDigest == nil {
                var map: [[UInt8]: String] = [:]
                for name in names {
                    let path = "\(directory)/\(name.fileName)"
                    if let a = try? ArchiveFile(path: path) { map[a.archiveDigest] = path }
                }
                byDigest = map
            }
            guard let next = byDigest?[base] else {
                throw VaultError("the chain to '\(FileSystem.baseName(of: chain.last ?? file))' is broken: the base of '\(FileSystem.baseName(of: file))' (archive digest \(base.hex.prefix(16))…) is not in the vault; nothing was restored. Put it back from a copy", kind: .integrity)
            }
            let nextArchive = try ArchiveFile(path: next)
            guard let p = nextArchive.header.position, let q = archive.header.position, p.series == q.series, p.sequence < q.sequence else {
                throw VaultError("'\(FileSystem.baseName(of: file))' names as its base '\(FileSystem.baseName(of: next))', which is not an earlier archive of its series", kind: .integrity)
            }
            if mode == .differential, nextArchive.header.backupMode.map({ $0 != .full }) ?? false {
                throw VaultError("the differential '\(FileSystem.baseName(of: file))' rests on '\(FileSystem.baseName(of: next))', which is not a full archive", kind: .integrity)
            }
            file = next
        }
        return chain
    }

    /// Restores the chain `paths` (oldest first, as `chain` gives it) into `target`: verifies every
    /// archive whole, then writes the tree the last one describes — each path from the newest archive
    /// holding it, deletions applied — checked entry by entry against the manifests. With `include`,
    /// only the matching entries (as `Restorer.restore` selects them). On any failure the target is
    /// left as it was.
    public static func restore(chain paths: [String], to target: String, keyring: Keyring, trusting trusted: [SigningPublicKey]? = nil,
                               force: Bool = false, checkContent: Bool = false, owners: OwnerPolicy = .automatic,
                               workers: Int = Verifier.defaultWorkers, include: [String] = []) throws -> RestoreReport {
        let trust = try trusted ?? keyring.trustedSigningKeys()
        // A version 1 archive (no offsets in its manifest) is always a full, restored as one.
        if paths.count == 1, try ArchiveFile(path: paths[0]).header.formatVersion < FormatV1.version2 {
            var report = try Restorer.restore(archivePath: paths[0], to: target, keyring: keyring, trusting: trust, force: force,
                                              checkContent: checkContent, owners: owners, workers: workers, include: include)
            report.chain = [FileSystem.baseName(of: paths[0])]
            return report
        }
        // 1. Verify every archive of the chain, whole, before anything is written.
        var links: [ChainLink] = []
        for (i, path) in paths.enumerated() {
            let archive = try ArchiveFile(path: path)
            _ = try archive.checkSignature(trusting: trust)
            let mode = archive.header.backupMode ?? .full
            if i == 0 {
                guard mode == .full else { throw VaultError("'\(FileSystem.baseName(of: path))' is not a full archive: a chain starts with one", kind: .usage) }
            } else {
                let base = mode == .differential ? links[0].file : links[i - 1].file
                guard mode != .full, archive.header.baseArchiveDigest == base.archiveDigest else {
                    throw VaultError("'\(FileSystem.baseName(of: path))' does not rest on '\(FileSystem.baseName(of: base.path))': not a chain", kind: .integrity)
                }
            }
            links.append(ChainLink(file: archive, cipher: try archive.unlock(with: keyring), name: FileSystem.baseName(of: path)))
        }
        // Every manifest is checked whole (each entry decoded) on a thread of its own, the manifests are
        // merged into the plan — the tree to restore, as runs of each archive's tar stream — on another,
        // while the workers hash every chunk of every archive (as a single restore does). Nothing is
        // written before all three are done; the first damaged archive is named.
        let verified = links
        @Sendable func damaged(_ i: Int, _ error: Error) -> VaultError {
            VaultError("'\(verified[i].name)', archive \(i + 1) of the \(verified.count) the restore needs, is damaged (\(error)); nothing was restored", kind: .integrity)
        }
        let manifests = BackgroundTask(name: "coldarchive-manifests") { () throws -> Void in
            for (i, link) in verified.enumerated() {
                do { _ = try link.file.checkManifest(cipher: link.cipher) } catch let error as IntegrityError { throw damaged(i, error) }
            }
        }
        let rawSizes = links.map { UInt64($0.file.header.chunkRawSize) }
        let merged = BackgroundTask(name: "coldarchive-merge") { () throws -> ChainPlan in
            do {
                var plan = ChainPlan(chunkRawSizes: rawSizes)
                var merge = try ManifestMerge(verified, include: include)
                while let taken = try merge.next() { plan.add(taken) }
                return plan
            } catch let failure as ManifestMerge.Damaged {
                throw damaged(failure.archive, failure.error)
            }
        }
        let hashed = Result {
            for (i, link) in links.enumerated() {
                do { _ = try link.file.checkChunkHashes(workers: workers) } catch let error as IntegrityError { throw damaged(i, error) }
            }
        }
        let checked = manifests.wait()
        let planned = merged.wait()
        _ = mallocTrim(0)
        try hashed.get()
        try checked.get()
        let plan = try planned.get()
        guard plan.entries > 0 else {
            throw OperationError(include.isEmpty ? "the chain holds no entry to restore"
                                 : "no entry matches \(include.map { "'\(DisplayName.escaped($0))'" }.joined(separator: ", ")); nothing was restored", kind: .usage)
        }

        // 3. Extract, reading the manifests (merged again unless the plan kept the entries).
        var again = plan.kept == nil ? try ManifestMerge(links, include: include) : nil
        var kept = plan.kept?[...]
        let versions = links.map(\.file.header.formatVersion)
        let names = OwnerNameCache()
        var chunksRead: [Int] = []
        var report = try Restorer.place(archive: links.last!.file, topLevel: plan.topLevel, target: target, force: force,
                                        checkContent: checkContent, owners: owners, workers: workers) { sink in
            let (found, chunks) = try ArchiveFile.extract(runs: plan.runs, from: links.map { ($0.file, $0.cipher) }, workers: workers, sink: sink,
                                                          checkContent: checkContent, hashesChecked: true) {
                let merged = kept != nil ? kept!.popFirst() : try again?.next()
                return try merged?.taken(versions: versions, names: names)
            }
            chunksRead = chunks
            return found
        }
        report.bytesRead = links.reduce(0) { $0 + $1.file.file.bytesRead }
        report.dataChunksRead = chunksRead.reduce(0, +)
        report.dataChunks = links.reduce(0) { $0 + Int($1.file.totals.manifestFirstChunk) }
        report.chain = links.map(\.name)
        if !include.isEmpty { report.include = include }
        return report
    }
}

/// The runs of a restore through several archives, built entry by entry in the merged order.
struct ChainPlan: @unchecked Sendable {
    /// A chain restore keeps up to this many entries from the plan (about 250 bytes each, as their
    /// encoded manifest bodies) rather than merging the manifests again to extract.
    static let keptLimit = 400_000
    let chunkRawSizes: [UInt64]
    var runs: [ArchiveRun] = []
    /// Per archive, the index in `runs` of its last run.
    var lastRun: [Int: Int] = [:]
    var topLevel: [String] = []
    var entries = 0
    /// The planned entries while at most `keptLimit`; nil beyond (the manifests are merged again to extract).
    var kept: [MergedEntry]? = []

    mutating func add(_ merged: MergedEntry) {
        entries += 1
        if let name = merged.topLevelName { topLevel.append(name) }
        if kept != nil {
            kept!.append(merged)
            if kept!.count > Self.keptLimit { kept = nil }
        }
        guard !merged.direct else { return }
        // Each archive's entries extend its own last run (the extraction reads each archive with a tar
        // reader of its own), so a full is not cut into a run between each two entries newer archives replaced.
        if let last = lastRun[merged.archive],
           runs[last].run.absorb(tarOffset: merged.tarOffset, end: merged.end, chunkRawSize: chunkRawSizes[merged.archive]) {
            return
        }
        lastRun[merged.archive] = runs.count
        runs.append(ArchiveRun(archive: merged.archive, run: TarRun(start: merged.tarOffset, end: merged.end, count: 1, firstOrdinal: merged.ordinal)))
    }
}

/// An entry of the merged tree: the archive it comes from, where it lies in that archive's tar stream,
/// and its manifest body — decoded only when it is extracted, unless the merge had to decode it (a
/// selective restore's entries) or made it (a directory taken for what is below it, `direct`).
struct MergedEntry {
    enum Content {
        case encoded([UInt8])
        indirect case decoded(ManifestEntry)
    }

    var archive: Int
    var content: Content
    var direct: Bool
    var tarOffset: UInt64
    /// Where the entry ends in its archive's tar stream (the next entry's `tar_offset`).
    var end: UInt64
    /// Its position among its archive's tar entries.
    var ordinal: Int
    /// Its path when it is a top-level entry.
    var topLevelName: String?

    func taken(versions: [UInt16], names: OwnerNameCache) throws -> TakenEntry {
        let entry: ManifestEntry
        switch content {
        case .encoded(let body): entry = try ManifestEntry.decode(body, version: versions[archive], names: names)
        case .decoded(let decoded): entry = decoded
        }
        return TakenEntry(archive: archive, entry: entry, direct: direct, end: end, ordinal: ordinal)
    }
}

/// Merges the manifests of a chain (oldest first) into the entries of the tree the newest describes,
/// in canonical order (FORMAT.md §8): for each path the entry of the newest archive holding it; a
/// `deleted` entry removes the path and what is below it in older archives, and so does any entry that
/// is not a directory (a directory replaced by a file or link). Reads each manifest once, one entry
/// ahead, so memory does not grow with the tree; decodes of each entry only its head (`EntryHead`),
/// checked as it is read (`ManifestChecks`: order, offsets, sizes, totals — what the merge relies
/// on), while the entries themselves are checked whole by `checkManifest` on another thread and
/// decoded again to be extracted.
struct ManifestMerge {
    /// An archive of the chain whose manifest failed a check: `archive` is its index in the chain.
    struct Damaged: Error {
        let archive: Int
        let error: IntegrityError
    }

    private final class Cursor {
        let reader: ManifestReader
        let tarBytes: UInt64
        private let index: Int
        private var checks: ManifestChecks
        var current: (head: EntryHead, body: [UInt8], end: UInt64, ordinal: Int)?
        private var next: (head: EntryHead, body: [UInt8])?
        /// Tar entries before `next` (deleted entries have none).
        private var ordinal = 0

        init(_ link: ChainLink, index: Int) throws {
            self.index = index
            checks = ManifestChecks(archive: link.file)
            guard link.file.header.formatVersion >= FormatV1.version2 else {
                throw IntegrityError.inconsistent(what: "'\(link.name)' is a version 1 archive, whose manifest does not say where each entry is: it cannot be restored as part of a chain")
            }
            reader = try ManifestReader(archive: link.file, cipher: link.cipher)
            tarBytes = link.file.totals.tarBytes
            next = try read()
            try advance()
        }

        private func read() throws -> (head: EntryHead, body: [UInt8])? {
            do {
                guard let body = try reader.nextBody() else {
                    try checks.finish()
                    return nil
                }
                let head = try EntryHead(v2: body)
                try checks.check(kind: head.kind, path: head.path, link: head.kind == .hardlink ? head.link : [], size: head.size,
                                 tarOffset: head.tarOffset)
                return (head, body)
            } catch let error as IntegrityError {
                throw Damaged(archive: index, error: error)
            }
        }

        func advance() throws {
            guard let (head, body) = next else {
                current = nil
                return
            }
            next = try read()
            let end = next?.head.tarOffset ?? tarBytes
            guard end >= head.tarOffset else {
                throw Damaged(archive: index, error: .malformed(what: "manifest entry '\(DisplayName.escaped(NameCodec.decode(head.path)))' (tar_offset \(head.tarOffset))"))
            }
            current = (head, body, end, ordinal)
            if head.kind != .deleted { ordinal += 1 }
        }

        func decode(_ body: [UInt8]) throws -> ManifestEntry { try reader.decode(body) }
    }

    private var cursors: [Cursor]
    /// Paths removed or replaced by a non-directory, with the archive that did it: what is below them in
    /// older archives is not part of the tree.
    private var cuts: [(path: [UInt8], archive: Int)] = []
    /// Files of an archive that a newer one replaced: a hardlink of that archive naming one cannot be restored.
    private var replaced = Set<[UInt8]>()
    private var selection: EntrySelection?
    private var queue: [MergedEntry] = []

    init(_ links: [ChainLink], include: [String]) throws {
        cursors = try links.enumerated().map { try Cursor($0.element, index: $0.offset) }
        if !include.isEmpty { selection = EntrySelection(patterns: include) }
    }

    mutating func next() throws -> MergedEntry? {
        while queue.isEmpty {
            guard let winner = try nextWinner() else { return nil }
            guard selection != nil else {
                return MergedEntry(archive: winner.archive, content: .encoded(winner.body), direct: false, tarOffset: winner.head.tarOffset,
                                   end: winner.end, ordinal: winner.ordinal, topLevelName: Self.topLevelName(winner.head.path))
            }
            // Only directories and what the patterns would take are decoded (as `planSelection` does).
            guard winner.head.kind == .directory || selection!.wouldTake(path: winner.head.path) else { continue }
            let entry = try cursors[winner.archive].decode(winner.body)
            queue = try selection!.feed(entry, end: winner.end, path: winner.head.path).map {
                MergedEntry(archive: winner.archive, content: .decoded($0.entry), direct: $0.direct, tarOffset: $0.entry.tarOffset, end: $0.end,
                            ordinal: $0.direct ? 0 : winner.ordinal, topLevelName: PathRules.isTopLevel($0.entry.path) ? $0.entry.path : nil)
            }
            queue.reverse()
        }
        return queue.removeLast()
    }

    private static func topLevelName(_ path: [UInt8]) -> String? {
        path.contains(UInt8(ascii: "/")) ? nil : NameCodec.decode(path)
    }

    private mutating func nextWinner() throws -> (archive: Int, head: EntryHead, body: [UInt8], end: UInt64, ordinal: Int)? {
        while true {
            var lowest: Int?
            for i in cursors.indices {
                guard let p = cursors[i].current?.head.path else { continue }
                if let l = lowest, !PathRules.precedes(bytes: p, cursors[l].current!.head.path) { continue }
                lowest = i
            }
            guard let first = lowest else { return nil }
            let path = cursors[first].current!.head.path
            var candidates: [(archive: Int, head: EntryHead, body: [UInt8], end: UInt64, ordinal: Int)] = []
            for i in first..<cursors.count {
                guard let c = cursors[i].current, c.head.path == path else { continue }
                candidates.append((i, c.head, c.body, c.end, c.ordinal))
                try cursors[i].advance()
            }
            let newest = candidates.last!
            while let top = cuts.last, !PathRules.isBelow(path, top.path) { cuts.removeLast() }
            if cuts.contains(where: { $0.archive > newest.archive }) { continue }
            for older in candidates.dropLast() where older.head.kind == .file {
                replaced.insert(Self.key(older.archive, path))
            }
            // What lies below the path in archives older than the newest that deleted it or replaced it
            // by a non-directory is gone — even when a later archive made the directory again.
            let cutBy = candidates.last { $0.head.kind != .directory }?.archive
            if newest.head.kind == .deleted {
                cuts.append((path, newest.archive))
                continue
            }
            if let cutBy { cuts.append((path, cutBy)) }
            if newest.head.kind == .hardlink, replaced.contains(Self.key(newest.archive, newest.head.link)) {
                throw IntegrityError.inconsistent(what: "'\(DisplayName.escaped(NameCodec.decode(path)))' is a hardlink to '\(DisplayName.escaped(NameCodec.decode(newest.head.link)))', which a later archive of the chain replaced: the chain cannot be restored exactly")
            }
            return newest
        }
    }

    private static func key(_ archive: Int, _ path: [UInt8]) -> [UInt8] { [UInt8(truncatingIfNeeded: archive), UInt8(truncatingIfNeeded: archive >> 8)] + path }
}

/// glibc's `malloc_trim(3)`.
@_silgen_name("malloc_trim") private func mallocTrim(_ pad: Int) -> Int32
