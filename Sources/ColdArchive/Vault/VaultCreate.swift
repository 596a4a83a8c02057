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
    public func create(_ options: CreateOptions, series: String, period: String?, wait: Bool = false, signer: SigningKey,
                       recipients: [EncryptionPublicKey], trusting trusted: [SigningPublicKey], now: Date = Date()) throws -> VaultCreateReport {
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
            let report = try ArchiveCreator.create(options, signer: signer, recipients: recipients, now: now)
            var record = JournalRecord(event: .archiveAdded)
            record.series = series
            record.sequence = sequence
            record.period = chosen
            record.file = "\(Self.seriesFolder)/\(series)/\(name.fileName)"
            record.archiveDigest = report.summary.archiveDigest
            record.bytes = report.summary.fileSize
            try Journal.append(record, to: journalPath, signer: signer, now: now)
            return VaultCreateReport(report: report, path: options.output, position: position, skipped: skipped)
        }
    }
}
