import Foundation

/// What `create --vault` made.
public struct VaultCreateReport: Sendable {
    public var report: CreateReport
    /// The archive's path in the vault.
    public var path: String
    public var position: ArchiveHeader.SeriesPosition
    /// Periods between the series' previous archive and this one that have no archive and no explanation
    /// in the journal: the audit reports each as missing until `vault explain` records why.
    public var skipped: [String] = []
    /// What was made: full, incremental or differential (a requested incremental or differential is a
    /// full when its base or the base's change index is missing: `fullBecause` says why).
    public var mode: ArchiveHeader.BackupMode = .full
    /// The base's archive digest (hex) and sequence, for an incremental or differential.
    public var base: (digest: String, sequence: UInt64)?
    public var fullBecause: String?
    /// Files and links found unchanged since the base (not stored), and paths recorded as deleted.
    public var unchanged: UInt64 = 0
    public var deleted: UInt64 = 0
    /// Why the new change index could not be written (the archive is complete; the next incremental
    /// of the series will be a full).
    public var indexProblem: String?
}

/// How `Vault.create` finds changes: which mode was asked for, whether to read unchanged files to
/// compare their content too, and where the archiving host keeps its change indexes.
public struct ChangeOptions: Sendable {
    public var mode: ArchiveHeader.BackupMode
    public var rehash: Bool
    /// Compare without change times (file systems whose change times are unreliable).
    public var ignoreChangeTime: Bool
    /// The state directory (`ChangeIndex.defaultStateDirectory`); nil: no index is read or written, so
    /// only a full can be made.
    public var state: String?

    public init(mode: ArchiveHeader.BackupMode = .full, rehash: Bool = false, ignoreChangeTime: Bool = false, state: String? = nil) {
        self.mode = mode
        self.rehash = rehash
        self.ignoreChangeTime = ignoreChangeTime
        self.state = state
    }
}

extension Vault {
    /// The last archive the series holds, as its journal and its folder agree on it: sequence, archive
    /// digest, period, and the periods of the series the journal explains (read in the same pass). Nil for
    /// a series with no archive yet. Throws when the two disagree or the archive does not verify against
    /// `trusted` — the chain must not grow on a broken link.
    func lastArchive(of series: String, trusting trusted: [SigningPublicKey]) throws
        -> (sequence: UInt64, digest: [UInt8], file: String, period: Period?, explained: Set<String>)? {
        var recorded: JournalRecord?
        var problem: String?
        var explained = Set<String>()
        try Journal.read(journalPath, trusting: trusted) { line in
            if let p = line.problem, problem == nil { problem = "line \(line.number): \(p)" }
            guard let r = line.record, r.series == series else { return }
            if r.event == .archiveAdded { recorded = r }
            if r.event == .periodExplained, let p = r.period { explained.insert(p) }
        }
        if let problem {
            throw VaultError("the vault journal does not verify (\(problem)); nothing was written. Run 'coldarchive audit --vault \(root) --trust SIGNING_PUB'", kind: .integrity)
        }
        let files = try archiveNames(in: series)
        if let newest = files.last, newest.sequence > (recorded?.sequence ?? 0) {
            throw VaultError("series '\(series)' holds '\(newest.fileName)', which the vault journal does not record; nothing was written. Run 'coldarchive audit --vault \(root) --trust SIGNING_PUB'", kind: .integrity)
        }
        guard let recorded, let sequence = recorded.sequence, let file = recorded.file,
              let digest = recorded.archiveDigest.flatMap({ [UInt8](hex: $0) }) else { return nil }
        let path = "\(root)/\(file)"
        guard FileSystem.exists(path) else {
            throw VaultError("the last archive of series '\(series)', '\(file)' (sequence \(sequence)), is missing; nothing was written. Put it back from a copy, then create again", kind: .integrity)
        }
        let archive = try ArchiveFile(path: path)
        _ = try archive.checkSignature(trusting: trusted)
        guard archive.archiveDigest == digest, archive.header.position?.sequence == sequence else {
            throw VaultError("'\(file)' is not the archive the vault journal recorded as sequence \(sequence) of '\(series)'; nothing was written. Run 'coldarchive audit --vault \(root) --trust SIGNING_PUB'", kind: .integrity)
        }
        return (sequence, digest, file, archive.header.position.flatMap { Period($0.period) }, explained)
    }

    /// Creates the next archive of `series` covering `period` (nil: derived from `now` by the series'
    /// settings) from `options` (its `output` and `position` are set here): under the series' lock,
    /// numbered one past the last archive and chained to it by its digest (FORMAT.md §5), written to
    /// `series/NAME/NAME.PERIOD.SEQUENCE.car`, then journaled. `trusted`: the signing keys whose
    /// archives the series may continue from (the keyring's current and earlier keys).
    ///
    /// `changes`: an incremental stores what changed since the series' last archive, a differential
    /// what changed since its last full; both compare with the change index the archiving host kept of
    /// that base (`ChangeIndex`), and make a full, saying why, when there is none. Every create with a
    /// state directory writes the new archive's index.
    public func create(_ options: CreateOptions, series: String, period: String?, wait: Bool = false, signer: SigningKey,
                       recipients: [EncryptionPublicKey], trusting trusted: [SigningPublicKey], now: Date = Date(),
                       changes: ChangeOptions = ChangeOptions()) throws -> VaultCreateReport {
        if changes.mode != .full && changes.state == nil {
            throw VaultError("an \(changes.mode == .incremental ? "incremental" : "differential") needs the archiving host's change index: give its state directory", kind: .usage)
        }
        let settings = try self.series(series)
        let chosen: String
        if let period {
            guard let parsed = Period(period) else {
                throw VaultError("'\(period)' is not a period: YYYY-MM, YYYY-Www, YYYY-MM-DD or YYYY", kind: .usage)
            }
            guard parsed.schedule == settings.schedule else {
                throw VaultError("series '\(series)' is \(settings.schedule.rawValue): its periods look like \(Period(containing: now, schedule: settings.schedule, timeZone: settings.zone)), not '\(period)'", kind: .usage)
            }
            chosen = parsed.description
        } else if let derived = settings.period(at: now) {
            chosen = derived.description
        } else {
            throw VaultError("series '\(series)' needs --period (its settings derive none)", kind: .usage)
        }
        if let parsed = Period(chosen), parsed > settings.currentPeriod(at: now) {
            throw VaultError("period \(chosen) has not begun yet (it is \(settings.currentPeriod(at: now)) in \(settings.timeZone)): an archive covers a period that has begun", kind: .usage)
        }
        try checkNotRevoked(signer.publicKey, trusting: trusted, now: now, making: "an archive")
        return try withSeriesLock(series, wait: wait) {
            let last = try lastArchive(of: series, trusting: trusted)
            if let last, let lastPeriod = last.period, let parsed = Period(chosen), parsed < lastPeriod {
                throw VaultError("series '\(series)' already holds \(lastPeriod) (sequence \(last.sequence)): archives go forward in time, and \(chosen) is before it", kind: .usage)
            }
            var skipped: [String] = []
            if let last, let lastPeriod = last.period, let parsed = Period(chosen), lastPeriod.next < parsed {
                skipped = Period.range(lastPeriod.next, through: parsed.previous).map(\.description).filter { !last.explained.contains($0) }
            }
            let sequence = (last?.sequence ?? 0) + 1
            let position = ArchiveHeader.SeriesPosition(series: series, sequence: sequence, period: chosen, previousArchiveDigest: last?.digest)
            let name = VaultArchiveName(series: series, period: chosen, sequence: sequence)
            var options = options
            options.output = "\(seriesDirectory(series))/\(name.fileName)"
            options.position = position
            var made = (mode: ArchiveHeader.BackupMode.full, base: (digest: String, sequence: UInt64)?.none, fullBecause: String?.none)
            var tracker: ChangeTracker?
            var indexDirectory: String?
            var stateProblem: String?
            if let state = changes.state {
                let directory = ChangeIndex.directory(state: state, vaultID: self.settings.id, series: series)
                do {
                    try FileSystem.makeDirectories(directory, mode: 0o700)
                    indexDirectory = directory
                } catch {
                    // A host whose state directory cannot be made (a system account without a home) still
                    // archives: a full, and the reason said.
                    stateProblem = "the state directory '\(directory)' cannot be made (\(error)); give another with --state or COLDARCHIVE_STATE"
                }
            }
            if let directory = indexDirectory {
                var reader: IndexReader?
                if changes.mode != .full {
                    if let base = try backupBase(of: series, mode: changes.mode, last: last, trusting: trusted) {
                        do {
                            reader = try IndexReader(path: ChangeIndex.path(in: directory, archiveDigest: base.digest.hex),
                                                     archiveDigest: base.digest)
                            made.mode = changes.mode
                            made.base = (base.digest.hex, base.sequence)
                            options.backup = (changes.mode, base.digest)
                        } catch {
                            made.fullBecause = "\(error)"
                        }
                    } else {
                        made.fullBecause = "the series has no \(changes.mode == .differential ? "full archive" : "archive") yet to be the base"
                    }
                }
                tracker = try ChangeTracker(base: reader, rehash: changes.rehash, ignoreChangeTime: changes.ignoreChangeTime, workDirectory: directory)
            }
            let report: CreateReport
            do {
                report = try ArchiveCreator.create(options, signer: signer, recipients: recipients, now: now, changes: tracker)
            } catch {
                tracker?.draft.discard()
                throw error
            }
            // A base is kept at least as long as what rests on it: retention extended (journaled), never shortened.
            if let until = options.retainUntil, let base = options.backup?.base {
                try extendRetention(ofChainUnder: base, series: series, until: until, dependent: name.fileName,
                                    signer: signer, trusting: trusted, now: now)
            }
            var result = VaultCreateReport(report: report, path: options.output, position: position, skipped: skipped)
            (result.mode, result.base, result.fullBecause) = (made.mode, made.base, made.fullBecause)
            if let stateProblem {
                if changes.mode != .full { result.fullBecause = stateProblem } else { result.indexProblem = stateProblem }
            }
            if let tracker, let indexDirectory, let digest = [UInt8](hex: report.summary.archiveDigest) {
                result.unchanged = tracker.unchanged
                result.deleted = tracker.deleted
                do {
                    try tracker.writeIndex(to: ChangeIndex.path(in: indexDirectory, archiveDigest: report.summary.archiveDigest), archiveDigest: digest,
                                           sequence: sequence, mode: made.mode)
                    let full = made.mode == .full ? nil : try latestFull(of: series, trusting: trusted)?.digest.hex
                    try pruneIndexes(in: indexDirectory, keeping: [report.summary.archiveDigest] + [full].compactMap { $0 })
                } catch {
                    tracker.draft.discard()
                    result.indexProblem = "\(error)"
                }
            }
            var record = JournalRecord(event: .archiveAdded)
            record.series = series
            record.sequence = sequence
            record.period = chosen
            record.file = "\(Self.seriesFolder)/\(series)/\(name.fileName)"
            record.archiveDigest = report.summary.archiveDigest
            record.bytes = report.summary.fileSize
            try Journal.append(record, to: journalPath, signer: signer, now: now)
            return result
        }
    }

    /// The base of a new incremental (the series' last archive) or differential (its last full), or nil.
    private func backupBase(of series: String, mode: ArchiveHeader.BackupMode,
                            last: (sequence: UInt64, digest: [UInt8], file: String, period: Period?, explained: Set<String>)?,
                            trusting trusted: [SigningPublicKey]) throws -> (digest: [UInt8], sequence: UInt64)? {
        guard let last else { return nil }
        if mode == .incremental { return (last.digest, last.sequence) }
        return try latestFull(of: series, trusting: trusted)
    }

    /// The series' most recent full archive (by its signed header), newest first.
    func latestFull(of series: String, trusting trusted: [SigningPublicKey]) throws -> (digest: [UInt8], sequence: UInt64)? {
        for name in try archiveNames(in: series).reversed() {
            let archive = try ArchiveFile(path: "\(seriesDirectory(series))/\(name.fileName)")
            _ = try archive.checkSignature(trusting: trusted)
            if archive.header.backupMode == nil || archive.header.backupMode == .full, let position = archive.header.position {
                return (archive.archiveDigest, position.sequence)
            }
        }
        return nil
    }

    /// Removes a series' change indexes other than `keeping` (archive digests, hex): each is only needed
    /// while its archive can be a base.
    private func pruneIndexes(in directory: String, keeping: [String]) throws {
        for name in try FileSystem.directoryEntries(directory) where name.hasSuffix(".index") {
            if !keeping.contains(String(name.dropLast(6))) { FileSystem.remove("\(directory)/\(name)") }
        }
    }
}
