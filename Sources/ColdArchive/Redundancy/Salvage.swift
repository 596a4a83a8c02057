import Foundation

/// What a salvage could not restore, and why.
public struct SalvageSummary: Sendable, Equatable, Codable {
    /// The damaged chunks (index, byte offset, length), found by the keyless hash pass.
    public var damagedChunks: [DamagedChunk]
    /// Entries not restored, with the reason (at most `maxListed`; `lostCount` counts them all).
    public var lost: [LostEntry] = []
    public var lostCount = 0
    /// The file in the target that lists every entry not restored.
    public var listFile: String?

    public static let maxListed = 1000
}

public struct LostEntry: Sendable, Equatable, Codable {
    public var path: String
    public var reason: String
}

/// `restore --salvage` (issue 20): out of a damaged archive and no intact copy, every entry whose tar
/// bytes lie in intact chunks — never the default, and said loudly. The damaged chunks are found by the
/// keyless hash pass; an entry is restored when every chunk its bytes span (from its `tar_offset` to
/// the next entry's, FORMAT.md §8) is intact, and checked against its manifest entry like any other;
/// a file touching a damaged chunk is not restored at all (no file comes back partly wrong). Directories
/// are made from their manifest entries. Every entry not restored is named, with the chunk that holds
/// it, in the report and in a list file left in the target. Needs the archive's structure, signature and
/// manifest intact (else: `repair` from a copy first) and format version 2 (whose manifest has offsets).
public enum Salvage {
    static let listPrefix = "coldarchive-salvage-"

    public static func restore(archivePath: String, to target: String, keyring: Keyring, trusting trusted: [SigningPublicKey]? = nil,
                               force: Bool = false, checkContent: Bool = false, owners: OwnerPolicy = .automatic,
                               workers: Int = Verifier.defaultWorkers) throws -> RestoreReport {
        let archive = try ArchiveFile(path: archivePath)
        _ = try archive.checkSignature(trusting: try trusted ?? keyring.trustedSigningKeys())
        guard archive.header.formatVersion >= FormatV1.version2 else {
            throw OperationError("'\(archivePath)' is a version 1 archive, whose manifest does not say where each entry is: it cannot be salvaged entry by entry", kind: .usage)
        }
        guard archive.header.backupMode == nil || archive.header.backupMode == .full else {
            throw OperationError("'\(archivePath)' is an incremental or differential archive: salvage restores full archives only", kind: .usage)
        }
        let damaged = try Verifier.damagedChunks(archive: archive, workers: workers)
        if let manifestChunk = damaged.first(where: { $0.index >= archive.totals.manifestFirstChunk }) {
            throw IntegrityError.inconsistent(what: "the manifest itself is damaged (chunk \(manifestChunk.index), bytes \(manifestChunk.offset)–\(manifestChunk.offset + manifestChunk.length - 1)): nothing can be salvaged without it. Repair the archive from a copy ('coldarchive repair')")
        }
        let cipher = try archive.unlock(with: keyring)
        _ = try archive.checkManifest(cipher: cipher)
        let bad = Set(damaged.map(\.index))
        let plan = try plan(archive, cipher: cipher, damaged: bad, keep: true)
        var summary = SalvageSummary(damagedChunks: damaged, lost: plan.lost, lostCount: plan.lostCount)

        var again = plan.kept == nil ? try Decisions(archive, cipher: cipher, damaged: bad) : nil
        var kept = plan.kept?[...]
        var report = try Restorer.place(archive: archive, topLevel: plan.topLevel, target: target, force: force, checkContent: checkContent,
                                        owners: owners, workers: workers) { sink in
            let (found, _) = try ArchiveFile.extract(runs: plan.runs.map { ArchiveRun(archive: 0, run: $0) }, from: [(archive, cipher)],
                                                     workers: workers, sink: sink, checkContent: checkContent, hashesChecked: true) {
                if kept != nil { return kept!.popFirst() }
                // Beyond the kept limit: the manifest again, the same decisions.
                while let decided = try again!.next() {
                    if let taken = decided.taken { return taken }
                }
                return nil
            }
            return found
        }
        // The list of what was not restored, left in the target (never over an existing file); the
        // manifest is read again for it only when the first reading kept part of the list.
        if summary.lostCount > 0 || !damaged.isEmpty {
            let listed = plan.lostCount > plan.lost.count ? try Self.plan(archive, cipher: cipher, damaged: bad, keep: false, listAll: true) : plan
            summary.listFile = try writeList(in: target, archive: archive, damaged: damaged, plan: listed)
        }
        report.salvage = summary
        report.bytesRead = archive.file.bytesRead
        return report
    }

    /// The salvage's decisions, entry by entry in manifest order (the same on every reading).
    struct Decider {
        let rawSize: UInt64
        let damaged: Set<UInt64>
        /// Files not restored: a hardlink to one is not restored either.
        var lostFiles = Set<[UInt8]>()
        /// The current entry's position among the tar entries.
        var ordinal = -1
        var lastReason: String?

        init(archive: ArchiveFile, damaged: Set<UInt64>) {
            rawSize = UInt64(archive.header.chunkRawSize)
            self.damaged = damaged
        }

        /// The entry as taken (a directory made from its manifest entry, anything else read from the tar
        /// stream), or nil with `lastReason` set (nil too for a deleted entry).
        mutating func decide(_ entry: ManifestEntry, end: UInt64) -> TakenEntry? {
            lastReason = nil
            guard entry.kind != .deleted else { return nil }
            ordinal += 1
            if entry.kind == .directory { return TakenEntry(archive: 0, entry: entry, direct: true, end: end) }
            let first = entry.tarOffset / rawSize, last = max(entry.tarOffset, end - 1) / rawSize
            if let chunk = (first...last).first(where: { damaged.contains($0) }) {
                lastReason = "its bytes lie in damaged chunk \(chunk)"
            } else if entry.kind == .hardlink, lostFiles.contains(PathRules.key(entry.linkTarget)) {
                lastReason = "it links to '\(DisplayName.escaped(entry.linkTarget))', which was not restored"
            }
            if lastReason != nil {
                if entry.kind == .file { lostFiles.insert(PathRules.key(entry.path)) }
                return nil
            }
            return TakenEntry(archive: 0, entry: entry, direct: false, end: end, ordinal: ordinal)
        }
    }

    struct Plan {
        var runs: [TarRun] = []
        var topLevel: [String] = []
        var kept: [TakenEntry]? = []
        var lost: [LostEntry] = []
        var lostCount = 0
    }

    /// One reading of the manifest: the runs of the entries taken, the lost ones (all of them with
    /// `listAll`, else the first `maxListed`), and the taken entries while at most `SelectivePlan.keptLimit`.
    static func plan(_ archive: ArchiveFile, cipher: ChunkCipher, damaged: Set<UInt64>, keep: Bool, listAll: Bool = false) throws -> Plan {
        var plan = Plan()
        if !keep { plan.kept = nil }
        var decisions = try Decisions(archive, cipher: cipher, damaged: damaged)
        let rawSize = UInt64(archive.header.chunkRawSize)
        while let (entry, end, taken, reason) = try decisions.next() {
            if let taken {
                if PathRules.isTopLevel(entry.path) { plan.topLevel.append(entry.path) }
                if plan.kept != nil {
                    plan.kept!.append(taken)
                    if plan.kept!.count > SelectivePlan.keptLimit { plan.kept = nil }
                }
                if !taken.direct, plan.runs.isEmpty || !plan.runs[plan.runs.count - 1].absorb(tarOffset: entry.tarOffset, end: end, chunkRawSize: rawSize) {
                    plan.runs.append(TarRun(start: entry.tarOffset, end: end, count: 1, firstOrdinal: taken.ordinal))
                }
            } else if let reason {
                plan.lostCount += 1
                if listAll || plan.lost.count < SalvageSummary.maxListed { plan.lost.append(LostEntry(path: entry.path, reason: reason)) }
            }
        }
        return plan
    }

    /// One reading of the manifest with the salvage's decision on each entry: where it ends in the tar
    /// stream (the next entry's `tar_offset`), and either how it is taken or why it is not.
    struct Decisions {
        private let reader: ManifestReader
        private let tarBytes: UInt64
        private var decider: Decider
        private var upcoming: ManifestEntry?
        private var started = false

        init(_ archive: ArchiveFile, cipher: ChunkCipher, damaged: Set<UInt64>) throws {
            reader = try ManifestReader(archive: archive, cipher: cipher)
            tarBytes = archive.totals.tarBytes
            decider = Decider(archive: archive, damaged: damaged)
        }

        mutating func next() throws -> (entry: ManifestEntry, end: UInt64, taken: TakenEntry?, reason: String?)? {
            if !started { (upcoming, started) = (try reader.next(), true) }
            guard let entry = upcoming else { return nil }
            upcoming = try reader.next()
            let end = upcoming?.tarOffset ?? tarBytes
            let taken = decider.decide(entry, end: end)
            return (entry, end, taken, decider.lastReason)
        }
    }

    /// Writes the list of lost entries into the target as `coldarchive-salvage-ARCHIVEID.txt` (or with
    /// `-2`, `-3` … when taken). Returns its path.
    static func writeList(in target: String, archive: ArchiveFile, damaged: [DamagedChunk], plan: Plan) throws -> String {
        var text = "# coldarchive restore --salvage of \(archive.path)\n"
        text += "# archive digest \(archive.archiveDigest.hex), salvaged \(ISO8601DateFormatter().string(from: Date()))\n"
        text += "# damaged chunks: \(damaged.map { "\($0.index) (bytes \($0.offset)–\($0.offset + $0.length - 1))" }.joined(separator: ", "))\n"
        text += "# \(plan.lostCount) entries NOT restored (path, a tab, the reason); everything else was restored and checked\n"
        for lost in plan.lost { text += "\(DisplayName.escaped(lost.path))\t\(lost.reason)\n" }
        let base = "\(target)/\(listPrefix)\(archive.header.archiveID.hex.prefix(8))"
        var attempt = 1
        while true {
            let path = attempt == 1 ? "\(base).txt" : "\(base)-\(attempt).txt"
            do {
                let file = try OpenFile.createNew(path, mode: 0o644)
                try file.write(Array(text.utf8))
                try file.sync()
                return path
            } catch let error as SystemError where error.errno == EEXIST && attempt < 100 {
                attempt += 1
            }
        }
    }
}
