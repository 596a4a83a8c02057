import Foundation

/// One thing an audit found wrong (docs/AUDIT.md explains each kind and what it proves).
public struct AuditFinding: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable {
        /// The file is not a readable archive (truncated, not an archive at all).
        case unreadable
        /// The signature does not verify, or the signer is not trusted (nor reached by a rotation chain).
        case signature
        /// A chunk's bytes do not match its signed hash.
        case damaged
        /// The file name and the signed header disagree on series, period or sequence (renamed, swapped).
        case misplaced
        /// An archive's `previous_archive_digest` is not the digest of the archive before it.
        case chainBreak = "chain-break"
        /// An archive the journal recorded, or the chain points to, is not in the vault.
        case missingArchive = "missing-archive"
        /// Two archives claim one sequence number of a series.
        case fork
        /// A period of the series' calendar has no archive and the journal does not explain why.
        case missingPeriod = "missing-period"
        /// An archive the journal does not record.
        case unrecorded
        /// The archive under a recorded name is not the one the journal recorded (its digest differs).
        case replaced
        /// A journal line that is not a record, is not signed by a trusted key, or breaks the chain.
        case journal
        /// A file in the vault that belongs to nothing.
        case stray
        /// A series' settings file disagrees with its signed journal record.
        case settings
        /// An archive's minisign sidecar is missing, or not the signer's signature of this archive.
        case sidecar
        /// An archive covers a period that has not begun.
        case future
        /// An archive signed by a key revoked as compromised, and created at or after the revocation's date.
        case revoked
        /// A revocation statement that is not valid, or not signed by the revoked key or a trusted key.
        case revocation
        /// An archive's RFC 3161 time-stamp (`ARCHIVE.tsr`) is unreadable, stamps something else, is not
        /// signed by the authority (with `--tsa-ca`), or is older than the archive claims to be.
        case timestamp
    }

    public var kind: Kind
    public var series: String?
    public var period: String?
    public var file: String?
    public var reason: String

    public init(_ kind: Kind, series: String? = nil, period: String? = nil, file: String? = nil, _ reason: String) {
        self.kind = kind
        self.series = series
        self.period = period
        self.file = file
        self.reason = reason
    }
}

/// How one period of a series' calendar stands.
public struct AuditPeriod: Codable, Sendable, Equatable {
    public enum Status: String, Codable, Sendable {
        /// At least one archive covers it, and none has a finding.
        case ok
        /// Archives cover it, but one has a finding.
        case failed
        /// No archive covers it, and nothing explains why: a finding.
        case missing
        /// No archive covers it, and a signed journal record says why.
        case explained
    }

    public var period: String
    public var status: Status
    /// Vault-relative paths of the archives that cover it.
    public var files: [String]
    public var explanation: String?
}

/// One series as audited.
public struct AuditSeries: Codable, Sendable, Equatable {
    public var series: String
    public var schedule: String
    public var archives: Int
    public var bytes: UInt64
    public var firstSequence: UInt64?
    public var lastSequence: UInt64?
    public var periods: [AuditPeriod]

    enum CodingKeys: String, CodingKey {
        case series, schedule, archives, bytes, firstSequence = "first_sequence", lastSequence = "last_sequence", periods
    }
}

/// A signing key revoked as compromised, by a valid statement (FORMAT.md §14).
public struct AuditRevocation: Codable, Sendable, Equatable {
    public var fingerprint: String
    /// RFC 3339, UTC.
    public var since: String
    public var reason: String
    /// Where the statement was: vault-relative, or the path given with `--revocation`.
    public var file: String
}

/// What `audit` checked and found (docs/AUDIT.md). `passed` exactly when there is no finding.
public struct AuditReport: Encodable, Sendable {
    public var vault: String
    public var vaultID: String?
    public var checkedAt: String
    /// Chunk hashing skipped (`--quick`): signatures, chains, calendar and journal only.
    public var quick: Bool
    /// Fingerprints of the trusted signing keys (the one given and those its rotation chain reaches).
    public var trustedSigners: [String]
    /// Fingerprints of the keys that signed the archives and journal records found.
    public var signers: [String]
    public var series: [AuditSeries]
    public var archives: Int
    public var bytesHashed: UInt64
    public var journalRecords: Int
    /// The signing keys revoked by valid statements; archives they signed from that date on are findings.
    public var revokedSigners: [AuditRevocation] = []
    /// Archives with an RFC 3161 time-stamp for their digest, and whether the authority's signature on
    /// each was checked too (`--tsa-ca`), not only what it stamps.
    public var timestamped: Int = 0
    public var timestampSignaturesChecked: Bool = false
    public var findings: [AuditFinding]
    public var passed: Bool { findings.isEmpty }

    enum CodingKeys: String, CodingKey {
        case vault, vaultID = "vault_id", checkedAt = "checked_at", quick, trustedSigners = "trusted_signers", signers, series, archives
        case bytesHashed = "bytes_hashed", journalRecords = "journal_records", revokedSigners = "revoked_signers", findings, passed
        case timestamped, timestampSignaturesChecked = "timestamp_signatures_checked"
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(vault, forKey: .vault)
        try c.encodeIfPresent(vaultID, forKey: .vaultID)
        try c.encode(checkedAt, forKey: .checkedAt)
        try c.encode(quick, forKey: .quick)
        try c.encode(trustedSigners, forKey: .trustedSigners)
        try c.encode(signers, forKey: .signers)
        try c.encode(series, forKey: .series)
        try c.encode(archives, forKey: .archives)
        try c.encode(bytesHashed, forKey: .bytesHashed)
        try c.encode(journalRecords, forKey: .journalRecords)
        try c.encode(revokedSigners, forKey: .revokedSigners)
        try c.encode(timestamped, forKey: .timestamped)
        try c.encode(timestampSignaturesChecked, forKey: .timestampSignaturesChecked)
        try c.encode(findings, forKey: .findings)
        try c.encode(passed, forKey: .passed)
    }
}

/// Audits a vault without any secret key and without writing to it (docs/AUDIT.md): every archive's
/// signature and (unless quick) chunk hashes; each series' chain of sequence numbers and previous-archive
/// digests; the calendar of periods; the journal's signatures and chain; and files that belong to nothing.
public enum Auditor {
    public struct Options: Sendable {
        public var series: String?
        public var from: String?
        public var to: String?
        public var quick = false
        public var workers = Verifier.defaultWorkers
        public var now = Date()
        /// Revocation statement files to apply besides those in `VAULT/revocations/` (an auditor's own).
        public var revocations: [String] = []
        /// A directory of signing key rotation statements (KEYRING/signing-chain) to follow from the
        /// trusted keys; a statement dated at or after its signer's revocation is not followed.
        public var chain: String?
        /// Checks the authority's signature on a time-stamp: given the `.tsr` path and the stamped imprint
        /// (hex), nil when it verifies, else why not. The CLI runs `openssl ts -verify` with `--tsa-ca`;
        /// without it tokens are checked for what they stamp, and their time is not relied on.
        public var timestampSignature: (@Sendable (_ tsr: String, _ imprintHex: String) -> String?)?
        public init() {}
    }

    /// What the journal says, read once.
    private struct JournalFacts {
        var records = 0
        var seriesCreated: [String: JournalRecord] = [:]
        /// By vault-relative path, the last record of each.
        var added: [String: JournalRecord] = [:]
        var explained: [String: [String: String]] = [:]
        var signers: Set<String> = []
        /// `signing-key-revoked` records: each statement must still be there.
        var revocations: [JournalRecord] = []
        /// By vault-relative path, the `archive-pruned` record of each archive `prune` removed.
        var pruned: [String: JournalRecord] = [:]
        /// The `vault` of the verified vault-created record, and whether it was record 1.
        var vaultID: String?
        var firstEvent: JournalRecord.Event?
    }

    public static func audit(vault root: String, trusting trusted: [SigningPublicKey], options: Options = Options()) throws -> AuditReport {
        guard FileSystem.exists("\(root)/\(Vault.settingsName)") else {
            throw VaultError("'\(root)' is not a vault: it has no \(Vault.settingsName). Check the path (a vault's root holds vault.json, journal.log and series/)")
        }
        for (name, text) in [("from", options.from), ("to", options.to)] {
            if let text, Period(text) == nil { throw VaultError("--\(name) '\(text)' is not a period", kind: .usage) }
        }
        if let from = options.from.flatMap(Period.init), let to = options.to.flatMap(Period.init), from.schedule == to.schedule, to < from {
            throw VaultError("--from \(from) is after --to \(to)", kind: .usage)
        }
        let vault = try Vault.open(root)
        var findings: [AuditFinding] = []
        var signers: Set<String> = []
        var facts = JournalFacts()
        var trusted = trusted
        if let chain = options.chain {
            // Revocations are authorized by the keys the whole chain reaches; then the chain is followed
            // again without the statements a revoked key made after its revocation.
            let statements = try SigningKeyStatement.load(from: chain)
            let everyKey = SigningKeyStatement.follow(from: trusted, statements: statements.map(\.statement)).reached
            var unused: [AuditFinding] = []
            let since = try revocations(of: vault, extra: options.revocations, trusting: everyKey, findings: &unused).mapValues(\.since)
            let followed = SigningKeyStatement.follow(from: trusted, statements: statements.map(\.statement), revokedSince: since)
            trusted = followed.reached
            for refused in followed.refused {
                let file = statements.first { $0.statement == refused }.map { "\(chain)/\($0.file)" } ?? chain
                findings.append(AuditFinding(.revoked, file: file, "the rotation from \(refused.previous.fingerprint) to \(refused.next.fingerprint) is dated \(Journal.rfc3339(refused.date)), when \(refused.previous.fingerprint) was already revoked as compromised: not followed, so \(refused.next.fingerprint) is not trusted through it"))
            }
        }
        let revoked = try revocations(of: vault, extra: options.revocations, trusting: trusted, findings: &findings)
        if FileSystem.exists(vault.journalPath) {
            try Journal.read(vault.journalPath, trusting: trusted) { line in
                if let problem = line.problem {
                    findings.append(AuditFinding(.journal, file: Journal.fileName, "line \(line.number): \(problem)"))
                }
                // A record whose own signature verifies is applied even when its link to the line before is
                // broken (that is the finding above): otherwise one edited line would make its successor's
                // archive "unrecorded" too.
                guard let record = line.record ?? line.signed else { return }
                facts.records += 1
                // A record by a key revoked as compromised, dated from the revocation on, is not applied (an
                // explanation by whoever stole the key would hide a missing month). Archives it added are
                // findings of their own, below.
                if let revoked = revoked[record.signer], let time = Journal.parseRFC3339(record.time), time >= revoked.since,
                   record.event != .archiveAdded, record.event != .signingKeyRevoked {
                    findings.append(AuditFinding(.revoked, series: record.series, period: record.period, file: Journal.fileName,
                                                 "record \(record.n) (\(record.event.rawValue)) is signed by \(record.signer), revoked as compromised since \(revoked.revocation.since), and dated \(record.time): not applied"))
                    return
                }
                facts.signers.insert(record.signer)
                if facts.firstEvent == nil { facts.firstEvent = record.event }
                if record.event == .vaultCreated, facts.vaultID == nil { facts.vaultID = record.vault }
                switch record.event {
                case .seriesCreated: if let s = record.series { facts.seriesCreated[s] = record }
                case .archiveAdded: if let f = record.file { facts.added[f] = record }
                case .signingKeyRevoked: facts.revocations.append(record)
                case .archivePruned: if let f = record.file { facts.pruned[f] = record }
                case .periodExplained:
                    // A period explained twice keeps both reasons, in the journal's order.
                    if let s = record.series, let p = record.period {
                        let reason = record.reason ?? "explained"
                        facts.explained[s, default: [:]][p] = facts.explained[s]?[p].map { "\($0); then (record \(record.n), \(record.time)): \(reason)" } ?? reason
                    }
                default: break
                }
            }
        } else {
            findings.append(AuditFinding(.journal, file: Journal.fileName, "the vault has no journal: what was added or removed cannot be told"))
        }
        if FileSystem.exists(vault.journalPath) {
            if facts.records == 0 {
                findings.append(AuditFinding(.journal, file: Journal.fileName, "the journal holds no verified record: it was emptied, or replaced"))
            } else if facts.firstEvent != .vaultCreated {
                findings.append(AuditFinding(.journal, file: Journal.fileName, "the journal does not begin with the vault's creation: its beginning was cut off"))
            } else if facts.vaultID != vault.settings.id {
                findings.append(AuditFinding(.journal, file: Journal.fileName, "the journal is that of vault \(facts.vaultID ?? "?"), but vault.json names vault \(vault.settings.id): one of the two was replaced"))
            }
        }
        signers.formUnion(facts.signers)
        for record in facts.revocations where record.key.map({ revoked[$0] == nil }) ?? true {
            findings.append(AuditFinding(.revocation, file: record.file ?? Journal.fileName,
                                         "journal record \(record.n) says \(record.key ?? "?") was revoked as compromised (\(record.reason ?? "no reason given")), but no valid statement revoking it is in the vault or given with --revocation: it was removed"))
        }

        var names = Set(try vault.seriesNames())
        names.formUnion(facts.seriesCreated.keys)
        if let only = options.series {
            guard names.contains(only) else { throw VaultError("the vault has no series '\(only)'", kind: .usage) }
            names = [only]
        }
        for name in names {
            let schedule = facts.seriesCreated[name]?.schedule.flatMap(Schedule.init) ?? (try? vault.series(name))?.schedule
            for (option, text) in [("from", options.from), ("to", options.to)] {
                if let text, let period = Period(text), let schedule, period.schedule != schedule {
                    throw VaultError("--\(option) \(text) is not a period of series '\(name)', which is \(schedule.rawValue)", kind: .usage)
                }
            }
        }
        var report = AuditReport(vault: root, vaultID: vault.settings.id, checkedAt: Journal.rfc3339(options.now), quick: options.quick,
                                 trustedSigners: trusted.map(\.fingerprint), signers: [], series: [], archives: 0, bytesHashed: 0,
                                 journalRecords: facts.records, findings: [])
        report.revokedSigners = revoked.values.map(\.revocation).sorted { $0.fingerprint < $1.fingerprint }
        report.timestampSignaturesChecked = options.timestampSignature != nil
        for name in names.sorted() {
            let audited = try auditSeries(name, vault: vault, facts: facts, trusted: trusted, revoked: revoked, options: options,
                                          findings: &findings, signers: &signers, report: &report)
            report.series.append(audited)
        }
        if options.series == nil { findings += strays(in: vault, series: names) }
        report.signers = signers.sorted()
        report.findings = findings
        return report
    }

    private struct Checked {
        let name: VaultArchiveName
        let file: String
        let position: ArchiveHeader.SeriesPosition?
        let digest: [UInt8]?
        var failed: Bool
        /// An incremental's or differential's base (signed header field), and its mode.
        var base: [UInt8]? = nil
        var mode: ArchiveHeader.BackupMode? = nil
    }

    /// A valid revocation: as the report shows it, and its date.
    struct Revoked {
        let revocation: AuditRevocation
        let since: Date
    }

    /// The valid revocation statements in `VAULT/revocations/` and `extra`, by revoked key fingerprint
    /// (the earliest date when a key is revoked twice); each invalid or unauthorized one is a finding.
    /// Throws `SystemError` when a statement given in `extra` cannot be read.
    static func revocations(of vault: Vault, extra: [String], trusting trusted: [SigningPublicKey],
                            findings: inout [AuditFinding]) throws -> [String: Revoked] {
        for path in extra where !FileSystem.exists(path) {
            throw SystemError(operation: "read the revocation statement", path: path, errno: ENOENT)
        }
        let folder = "\(vault.root)/\(Vault.revocationsFolder)"
        var sources = ((try? FileSystem.directoryEntries(folder)) ?? []).sorted()
            .filter { $0.hasSuffix(".\(SigningKeyRevocation.fileExtension)") }
            .map { (file: "\(Vault.revocationsFolder)/\($0)", path: "\(folder)/\($0)") }
        sources += extra.map { (file: $0, path: $0) }
        var found: [String: Revoked] = [:]
        for source in sources {
            let statement: SigningKeyRevocation
            do {
                let bytes = try FileSystem.readSmallFile(source.path, limit: 4096)
                statement = try SigningKeyRevocation(text: String(decoding: bytes, as: UTF8.self))
            } catch {
                findings.append(AuditFinding(.revocation, file: source.file, "\(error)"))
                continue
            }
            guard statement.isAuthorized(trusting: trusted) else {
                findings.append(AuditFinding(.revocation, file: source.file, "signed by \(statement.signer.fingerprint), which is neither the key it revokes (\(statement.revoked.fingerprint)) nor a trusted key: not applied"))
                continue
            }
            let fingerprint = statement.revoked.fingerprint
            if let known = found[fingerprint], known.since <= statement.since { continue }
            found[fingerprint] = Revoked(revocation: AuditRevocation(fingerprint: fingerprint, since: Journal.rfc3339(statement.since),
                                                                     reason: statement.reason, file: source.file),
                                         since: statement.since)
        }
        return found
    }

    private static func auditSeries(_ series: String, vault: Vault, facts: JournalFacts, trusted: [SigningPublicKey],
                                    revoked: [String: Revoked], options: Options,
                                    findings: inout [AuditFinding], signers: inout Set<String>, report: inout AuditReport) throws -> AuditSeries {
        let directory = vault.seriesDirectory(series)
        let folder = "\(Vault.seriesFolder)/\(series)"
        var settings: SeriesSettings?
        let settingsFile = "\(folder)/\(Vault.seriesSettingsName)"
        if !FileSystem.exists("\(vault.root)/\(settingsFile)") {
            findings.append(AuditFinding(.settings, series: series, file: settingsFile, "the series' settings file is missing"))
        } else {
            do { settings = try vault.series(series) } catch {
                findings.append(AuditFinding(.settings, series: series, file: settingsFile, "\(error)"))
            }
        }
        let recorded = facts.seriesCreated[series]
        let differences: [String] = (settings.flatMap { settings in recorded.map { recorded in
            [("schedule", settings.schedule.rawValue, recorded.schedule), ("time_zone", settings.timeZone, recorded.timeZone),
             ("period_from_date", settings.periodFromDate.rawValue, recorded.periodFromDate)]
                .filter { $0.2 != nil && $0.1 != $0.2 }.map { "\($0.0) is \($0.1) in series.json, \($0.2!) in the signed journal record" }
        } }) ?? []
        if !differences.isEmpty {
            findings.append(AuditFinding(.settings, series: series, file: settingsFile, differences.joined(separator: "; ") + ": changed outside coldarchive"))
        } else if recorded == nil && facts.records > 0 {
            findings.append(AuditFinding(.journal, series: series, "the journal does not record the series' creation"))
        }
        let schedule = Schedule(rawValue: recorded?.schedule ?? "") ?? settings?.schedule ?? .monthly
        let zone = TimeZone(identifier: recorded?.timeZone ?? settings?.timeZone ?? "UTC") ?? TimeZone(identifier: "UTC")!

        // Every archive: readable, signed by a trusted key, intact, where its header says it belongs.
        var checked: [Checked] = []
        var bytes: UInt64 = 0
        let present = FileSystem.isDirectory(directory) ? try FileSystem.directoryEntries(directory) : []
        for entry in present.sorted() {
            guard let name = VaultArchiveName(fileName: entry, series: series) else { continue }
            let file = "\(folder)/\(entry)"
            var item = Checked(name: name, file: file, position: nil, digest: nil, failed: false)
            func find(_ kind: AuditFinding.Kind, _ reason: String) {
                findings.append(AuditFinding(kind, series: series, period: name.period, file: file, reason))
                item.failed = true
            }
            report.archives += 1
            do {
                let archive = try ArchiveFile(path: "\(vault.root)/\(file)")
                bytes += archive.fileSize
                signers.insert((try? archive.signerPublicKey.fingerprint) ?? "?")
                do {
                    let signer = try archive.checkSignature(trusting: trusted)
                    item = Checked(name: name, file: file, position: archive.header.position, digest: archive.archiveDigest, failed: false,
                                   base: archive.header.baseArchiveDigest, mode: archive.header.backupMode)
                    let created = Journal.rfc3339(Date(timeIntervalSince1970: TimeInterval(archive.header.created)))
                    // When the archive was made: `created` is the writer's own claim (whoever holds a stolen key
                    // can also backdate), a time-stamp whose authority's signature was checked is not.
                    var madeBy = (seconds: archive.header.created, what: "created \(created)")
                    let stamp = "\(vault.root)/\(file)\(Timestamp.suffix)"
                    if FileSystem.exists(stamp) {
                        switch timestampCheck(stamp, archive: archive, options: options) {
                        case .failure(let problem): find(.timestamp, "\(FileSystem.baseName(of: stamp)): \(problem.text)")
                        case .success(let time):
                            report.timestamped += 1
                            if let time { madeBy = (Int64(time.timeIntervalSince1970), "time-stamped \(Journal.rfc3339(time))") }
                        }
                    }
                    if let revoked = revoked[signer.fingerprint], madeBy.seconds >= Int64(revoked.since.timeIntervalSince1970) {
                        let r = revoked.revocation
                        find(.revoked, "signed by \(signer.fingerprint), revoked as compromised since \(r.since) (\(r.reason); \(r.file)), and \(madeBy.what): it may not be the company's")
                    }
                    if let problem = sidecarProblem("\(vault.root)/\(file)", signer: signer, digest: archive.archiveDigest) {
                        find(.sidecar, problem)
                    }
                } catch {
                    find(.signature, "\(error)")
                }
                if !options.quick {
                    do {
                        _ = try archive.checkChunkHashes(workers: options.workers)
                        report.bytesHashed += archive.fileSize
                    } catch { find(.damaged, "\(error)") }
                }
            } catch {
                find(.unreadable, "\(error)")
            }
            if let position = item.position {
                if position.series != series || position.sequence != name.sequence || position.period != name.period {
                    find(.misplaced, "the file name says \(name.series) sequence \(name.sequence) for \(name.period); the signed header says \(position.series) sequence \(position.sequence) for \(position.period): renamed, moved or swapped")
                }
            } else if !item.failed {
                find(.misplaced, "the signed header names no series: an archive made outside the vault")
            }
            if let added = facts.added[file] {
                if let digest = item.digest, added.archiveDigest != digest.hex {
                    find(.replaced, "the journal recorded archive digest \(added.archiveDigest ?? "?") under this name; the file's is \(digest.hex): replaced after it was added")
                }
            } else {
                find(.unrecorded, "the journal does not record this archive: added outside coldarchive, or the journal lost records")
            }
            checked.append(item)
        }
        let presentFiles = Set(checked.map(\.file))
        // An archive the journal recorded and the vault lacks is one finding: the chain's gap and the
        // calendar's empty period it leaves are not reported again.
        var goneSequences = Set<UInt64>()
        var gonePeriods = Set<String>()
        // An archive `prune` removed, with a signed record of it, is no finding: its period is explained,
        // and its successor's link is checked against the digest the record names.
        var prunedBySequence: [UInt64: JournalRecord] = [:]
        var prunedPeriods: [String: String] = [:]
        for (file, record) in facts.added.sorted(by: { $0.key < $1.key }) where record.series == series && !presentFiles.contains(file) {
            if let removal = facts.pruned[file], removal.archiveDigest == record.archiveDigest {
                if let sequence = record.sequence { prunedBySequence[sequence] = removal }
                if let period = record.period {
                    let why = "pruned (journal record \(removal.n), \(removal.time)): \(removal.reason ?? "retention")"
                    prunedPeriods[period] = prunedPeriods[period].map { "\($0); \(why)" } ?? why
                }
                continue
            }
            findings.append(AuditFinding(.missingArchive, series: series, period: record.period, file: file,
                                         "the journal recorded it as sequence \(record.sequence.map(String.init) ?? "?") (added \(record.time)); it is not in the vault"))
            if let sequence = record.sequence { goneSequences.insert(sequence) }
            if let period = record.period { gonePeriods.insert(period) }
        }

        // The chain: sequences 1, 2, 3 … each pointing at the digest of the one before.
        var bySequence: [UInt64: [Checked]] = [:]
        for item in checked { if let p = item.position, p.series == series { bySequence[p.sequence, default: []].append(item) } }
        var failedFiles = Set(checked.filter(\.failed).map(\.file))
        for (sequence, items) in bySequence.sorted(by: { $0.key < $1.key }) where items.count > 1 {
            for item in items {
                findings.append(AuditFinding(.fork, series: series, period: item.name.period, file: item.file,
                                             "\(items.count) archives claim sequence \(sequence): \(items.map(\.file).joined(separator: ", "))"))
                failedFiles.insert(item.file)
            }
        }
        let sequences = bySequence.keys.sorted()
        for sequence in sequences {
            guard let item = bySequence[sequence]?.first, let position = item.position else { continue }
            if sequence == 1 { continue }
            if bySequence[sequence - 1] == nil, let removal = prunedBySequence[sequence - 1] {
                if position.previousArchiveDigest?.hex != removal.archiveDigest {
                    findings.append(AuditFinding(.chainBreak, series: series, period: item.name.period, file: item.file,
                                                 "its previous-archive digest is \(position.previousArchiveDigest?.hex ?? "none"), but the journal records sequence \(sequence - 1), pruned, with digest \(removal.archiveDigest ?? "?"): one of the two was replaced"))
                    failedFiles.insert(item.file)
                }
                continue
            }
            guard let before = bySequence[sequence - 1], before.count == 1, let digest = before[0].digest else {
                // Missing, unless present under its name but unreadable or untrusted (its own finding says why).
                if bySequence[sequence - 1] == nil && !checked.contains(where: { $0.name.sequence == sequence - 1 }) && !goneSequences.contains(sequence - 1) {
                    findings.append(AuditFinding(.missingArchive, series: series, period: item.name.period,
                                                 "sequence \(sequence - 1), which '\(item.file)' follows, is not in the vault"))
                }
                continue
            }
            if position.previousArchiveDigest != digest {
                findings.append(AuditFinding(.chainBreak, series: series, period: item.name.period, file: item.file,
                                             "its previous-archive digest is \(position.previousArchiveDigest?.hex ?? "none"), but sequence \(sequence - 1) ('\(before[0].file)') has digest \(digest.hex): one of the two was replaced"))
                failedFiles.insert(item.file)
            }
        }
        // Every incremental and differential rests on an archive the series still holds (prune never
        // removes one that is needed): else it can no longer be restored.
        let held = Dictionary(checked.compactMap { c in c.digest.map { ($0, c) } }, uniquingKeysWith: { a, _ in a })
        for item in checked {
            guard let base = item.base else { continue }
            guard let found = held[base] else {
                let pruned = prunedBySequence.values.contains { $0.archiveDigest == base.hex }
                findings.append(AuditFinding(.chainBreak, series: series, period: item.name.period, file: item.file,
                                             "it is \(item.mode == .differential ? "a differential" : "an incremental") resting on archive digest \(base.hex), which the series \(pruned ? "pruned" : "does not hold"): it cannot be restored"))
                failedFiles.insert(item.file)
                continue
            }
            if item.mode == .differential, found.mode.map({ $0 != .full }) ?? false {
                findings.append(AuditFinding(.chainBreak, series: series, period: item.name.period, file: item.file,
                                             "it is a differential resting on '\(found.file)', which is not a full archive"))
                failedFiles.insert(item.file)
            }
        }
        if let first = sequences.first, first != 1, !(1..<first).allSatisfy({ prunedBySequence[$0] != nil }) {
            findings.append(AuditFinding(.missingArchive, series: series, "the series starts at sequence \(first): sequences 1…\(first - 1) are not in the vault"))
        }

        // The calendar: every period from the first to the last due has an archive, or an explanation.
        var byPeriod: [Period: [String]] = [:]
        let current = Period(containing: options.now, schedule: schedule, timeZone: zone)
        for item in checked {
            // By the signed header where it could be read, else by the file name.
            guard let p = Period(item.position?.period ?? item.name.period), p.schedule == schedule else { continue }
            if p > current {
                findings.append(AuditFinding(.future, series: series, period: p.description, file: item.file,
                                             "it covers \(p), a period that has not begun (it is \(current))"))
                failedFiles.insert(item.file)
                continue
            }
            byPeriod[p, default: []].append(item.file)
        }
        for (file, record) in facts.added where record.series == series && !presentFiles.contains(file) {
            if let p = record.period.flatMap(Period.init) { byPeriod[p, default: []] += [] }
        }
        let explained = facts.explained[series] ?? [:]
        var candidates = Array(byPeriod.keys) + explained.keys.compactMap(Period.init)
        if candidates.isEmpty, let created = recorded.flatMap({ ISO8601DateFormatter().date(from: $0.time) }) {
            candidates.append(Period(containing: created, schedule: schedule, timeZone: zone))
        }
        var periods: [AuditPeriod] = []
        if var first = candidates.filter({ $0.schedule == schedule }).min() {
            let due = (settings ?? SeriesSettings(series: series, schedule: schedule, timeZone: zone.identifier,
                                                  periodFromDate: SeriesSettings.PeriodFromDate(rawValue: recorded?.periodFromDate ?? "") ?? .previous))
            var last = due.lastDuePeriod(at: options.now)
            if let latest = byPeriod.keys.max(), latest > last { last = latest }
            if let from = options.from.flatMap(Period.init), from.schedule == schedule { first = from }
            if let to = options.to.flatMap(Period.init), to.schedule == schedule {
                // A period not due yet has no archive to miss: the calendar would be all findings.
                guard to <= last else {
                    throw VaultError("--to \(to) is not due yet: the last period of series '\(series)' due now is \(last)", kind: .usage)
                }
                last = to
            }
            for period in Period.range(first, through: last) {
                let files = (byPeriod[period] ?? []).sorted()
                let text = period.description
                if !files.isEmpty {
                    periods.append(AuditPeriod(period: text, status: files.contains(where: failedFiles.contains) ? .failed : .ok, files: files))
                } else if let why = explained[text] ?? prunedPeriods[text] {
                    periods.append(AuditPeriod(period: text, status: .explained, files: [], explanation: why))
                } else {
                    periods.append(AuditPeriod(period: text, status: .missing, files: []))
                    if gonePeriods.contains(text) { continue }
                    findings.append(AuditFinding(.missingPeriod, series: series, period: text,
                                                 "no archive covers \(text), and the journal does not explain why"))
                }
            }
        }
        return AuditSeries(series: series, schedule: schedule.rawValue, archives: checked.count, bytes: bytes,
                           firstSequence: sequences.first, lastSequence: sequences.last, periods: periods)
    }

    /// Files that belong to nothing: not the vault's settings, journal, catalog or locks, not a series
    /// folder, not an archive of its series or that archive's sidecar.
    static func strays(in vault: Vault, series: Set<String>) -> [AuditFinding] {
        var out: [AuditFinding] = []
        let known: Set<String> = [Vault.settingsName, Journal.fileName, Vault.seriesFolder, Vault.lockName, Vault.revocationsFolder,
                                  "catalog.sqlite", "catalog.sqlite-wal", "catalog.sqlite-shm", "catalog.sqlite-journal"]
        for name in ((try? FileSystem.directoryEntries(vault.root)) ?? []).sorted() where !known.contains(name) {
            out.append(AuditFinding(.stray, file: name, "it belongs to nothing the vault knows"))
        }
        let revocations = "\(vault.root)/\(Vault.revocationsFolder)"
        for name in ((try? FileSystem.directoryEntries(revocations)) ?? []).sorted() where !name.hasSuffix(".\(SigningKeyRevocation.fileExtension)") {
            out.append(AuditFinding(.stray, file: "\(Vault.revocationsFolder)/\(name)", "it is not a revocation statement (NAME.\(SigningKeyRevocation.fileExtension))"))
        }
        let folder = "\(vault.root)/\(Vault.seriesFolder)"
        for name in ((try? FileSystem.directoryEntries(folder)) ?? []).sorted() where !series.contains(name) {
            out.append(AuditFinding(.stray, file: "\(Vault.seriesFolder)/\(name)", "it is not a series of the vault"))
        }
        for name in series.sorted() {
            let directory = vault.seriesDirectory(name)
            let entries = (try? FileSystem.directoryEntries(directory)) ?? []
            let archives = Set(entries.filter { VaultArchiveName(fileName: $0, series: name) != nil })
            for entry in entries.sorted() where !archives.contains(entry) && entry != Vault.seriesSettingsName && entry != Vault.lockName {
                if let base = sidecarBase(entry) {
                    if archives.contains(base) { continue }
                    if VaultArchiveName(fileName: base, series: name) != nil {
                        out.append(AuditFinding(.stray, series: name, file: "\(Vault.seriesFolder)/\(name)/\(entry)", "the sidecar of \(base), which is not in the vault"))
                        continue
                    }
                }
                // The work of a create running now on this host (a killed one's is a stray, which the
                // next create removes).
                if let pid = PartialFiles.stalePID(entry), kill(pid, 0) == 0 || errno != ESRCH { continue }
                out.append(AuditFinding(.stray, series: name, file: "\(Vault.seriesFolder)/\(name)/\(entry)", "it belongs to nothing the vault knows"))
            }
        }
        return out
    }

    /// What is wrong with an archive's minisign sidecar, if it has one: it must be the archive's signer's,
    /// and its signed trusted comment must name this archive's digest. (The signature over the file's
    /// bytes is left to `minisign -V`: the chunk hashes already cover every byte, keylessly.)
    static func sidecarProblem(_ path: String, signer: SigningPublicKey, digest: [UInt8]) -> String? {
        let sidecar = path + Minisign.suffix
        guard FileSystem.exists(sidecar) else {
            return "\(FileSystem.baseName(of: sidecar)) is missing: the archive cannot be checked with minisign"
        }
        do {
            let signature = try Minisign.Signature(text: String(decoding: try FileSystem.readSmallFile(sidecar, limit: 1 << 16), as: UTF8.self))
            if let problem = signature.check(signer: signer) { return "\(FileSystem.baseName(of: sidecar)): \(problem)" }
            guard signature.trustedComment.split(separator: "\t").contains(where: { $0 == "coldarchive archive_digest:\(digest.hex)" }) else {
                return "\(FileSystem.baseName(of: sidecar)) is the signature of another archive (its trusted comment: \(signature.trustedComment))"
            }
            return nil
        } catch {
            return "\(FileSystem.baseName(of: sidecar)) is damaged: it is not minisign's prehashed signature format"
        }
    }

    /// The archive a sidecar file belongs to (`NAME.car.minisig`, `NAME.car.tsr`, `NAME.car.parity`).
    /// Checks `ARCHIVE.tsr`: a token for this archive's digest and, with `options.timestampSignature`,
    /// signed by the authority and not older than the archive claims to be (10 minutes of clock skew
    /// allowed). Success carries the authority's time when its signature was checked, else nil.
    static func timestampCheck(_ path: String, archive: ArchiveFile, options: Options) -> Result<Date?, TimestampProblem> {
        let token: Timestamp.Token
        do {
            token = try Timestamp.Token(response: try FileSystem.readSmallFile(path, limit: 1 << 16))
        } catch {
            return .failure(TimestampProblem(text: "not a time-stamp response: \(error)"))
        }
        if let problem = token.problem(archiveDigest: archive.archiveDigest) { return .failure(TimestampProblem(text: problem)) }
        guard let verify = options.timestampSignature else { return .success(nil) }
        if let problem = verify(path, token.imprint.hex) {
            return .failure(TimestampProblem(text: "the authority's signature does not verify against --tsa-ca: \(problem)"))
        }
        if token.time.timeIntervalSince1970 < Double(archive.header.created) - 600 {
            return .failure(TimestampProblem(text: "stamped at \(Journal.rfc3339(token.time)), before the archive's own created time \(Journal.rfc3339(Date(timeIntervalSince1970: TimeInterval(archive.header.created)))): the writer's clock was wrong, or the header was made up"))
        }
        return .success(token.time)
    }

    struct TimestampProblem: Error { let text: String }

    static func sidecarBase(_ name: String) -> String? {
        for suffix in [".minisig", ".tsr", ".parity"] where name.hasSuffix(suffix) { return String(name.dropLast(suffix.count)) }
        return nil
    }
}
