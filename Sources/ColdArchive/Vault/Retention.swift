import Foundation

/// Which archives of a series to keep (`coldarchive prune`), in the terms restic and borg users know.
/// Every rule decides from the archives' signed periods and sequence numbers only — never from file
/// names or file times, which anyone with write access to the vault can forge.
public struct RetentionPolicy: Sendable, Equatable {
    /// Keep the last archive of each of the N most recent months that have one.
    public var monthly = 0
    /// Keep the last archive of each of the N most recent years that have one.
    public var yearly = 0
    /// Keep every archive whose period begins within this span before the latest archive's period:
    /// years, months and days (`1y`, `18m`, `90d`).
    public var within: (years: Int, months: Int, days: Int)?

    public init(monthly: Int = 0, yearly: Int = 0, within: (years: Int, months: Int, days: Int)? = nil) {
        self.monthly = monthly
        self.yearly = yearly
        self.within = within
    }

    public static func == (a: RetentionPolicy, b: RetentionPolicy) -> Bool {
        a.monthly == b.monthly && a.yearly == b.yearly && a.within?.years == b.within?.years
            && a.within?.months == b.within?.months && a.within?.days == b.within?.days
    }

    /// Parses `1y`, `18m`, `90d` (or combinations such as `1y6m`).
    public static func span(_ text: String) -> (years: Int, months: Int, days: Int)? {
        var span = (years: 0, months: 0, days: 0)
        var number = ""
        var any = false
        for c in text {
            if c.isASCII && c.isNumber { number.append(c); continue }
            guard let n = Int(number) else { return nil }
            switch c {
            case "y": span.years += n
            case "m": span.months += n
            case "d": span.days += n
            default: return nil
            }
            number = ""
            any = true
        }
        return any && number.isEmpty ? span : nil
    }

    var isEmpty: Bool { monthly == 0 && yearly == 0 && within == nil }
}

/// What `prune` decided for one archive.
public struct PruneDecision: Sendable, Codable, Equatable {
    public var file: String
    public var sequence: UInt64
    public var period: String
    public var mode: String
    /// Why it is kept (every reason that applies), empty when it is removed.
    public var keptBecause: [String]
    public var kept: Bool { !keptBecause.isEmpty }
}

/// A prune's plan: each archive with its decision, oldest first, and the retention extensions journaled.
public struct PrunePlan: Sendable, Codable {
    public var series: String
    public var decisions: [PruneDecision]
    public var removed: [String] { decisions.filter { !$0.kept }.map(\.file) }
    /// Archives whose removal an earlier, interrupted prune had journaled: removed now.
    public var finished: [String] = []
}

extension Vault {
    /// One archive of a series as its signed header and the journal describe it.
    struct SeriesArchive {
        let file: String
        let sequence: UInt64
        let period: Period
        let mode: ArchiveHeader.BackupMode
        let digest: [UInt8]
        let base: [UInt8]?
        /// The later of the header's `retain_until` and every `retention-extended` record (seconds).
        var retainUntil: Int64?
    }

    /// The series' archives, verified against `trusted`, oldest first, with the retention the journal
    /// extended; and the files the journal records as pruned.
    func seriesArchives(_ series: String, trusting trusted: [SigningPublicKey]) throws -> (archives: [SeriesArchive], pruned: Set<String>) {
        var extended: [String: Int64] = [:]
        var pruned = Set<String>()
        try Journal.read(journalPath, trusting: trusted) { line in
            guard let r = line.record else { return }
            if r.event == .retentionExtended, let digest = r.archiveDigest, let until = r.retainUntil.flatMap(Journal.parseRFC3339) {
                extended[digest] = max(extended[digest] ?? .min, Int64(until.timeIntervalSince1970))
            }
            if r.event == .archivePruned, r.series == series, let file = r.file { pruned.insert(file) }
        }
        var archives: [SeriesArchive] = []
        for name in try archiveNames(in: series) {
            let file = "\(Self.seriesFolder)/\(series)/\(name.fileName)"
            let archive = try ArchiveFile(path: "\(root)/\(file)")
            _ = try archive.checkSignature(trusting: trusted)
            guard let position = archive.header.position, position.series == series, let period = Period(position.period) else {
                throw VaultError("'\(file)' does not say in its signed header that it belongs to series '\(series)'; nothing was pruned. Run 'coldarchive audit'", kind: .integrity)
            }
            var retain = archive.header.retainUntil
            if let more = extended[archive.archiveDigest.hex] { retain = max(retain ?? .min, more) }
            archives.append(SeriesArchive(file: file, sequence: position.sequence, period: period, mode: archive.header.backupMode ?? .full,
                                          digest: archive.archiveDigest, base: archive.header.baseArchiveDigest, retainUntil: retain))
        }
        return (archives.sorted { $0.sequence < $1.sequence }, pruned)
    }

    /// Decides, without changing anything, which archives of `series` `policy` keeps and why: the rules,
    /// the series' latest archive (the base of the next incremental), every archive whose retention has
    /// not ended at `now`, and the whole chain (full, incrementals) every kept archive rests on.
    public func planPrune(series: String, policy: RetentionPolicy, trusting trusted: [SigningPublicKey], now: Date = Date()) throws -> PrunePlan {
        guard !policy.isEmpty else {
            throw VaultError("give at least one rule (--keep-monthly N, --keep-yearly N, --keep-within SPAN): without one, prune would remove everything", kind: .usage)
        }
        _ = try self.series(series)
        let (all, pruned) = try seriesArchives(series, trusting: trusted)
        // Removals an earlier, interrupted prune journaled are finished, whatever the rules say now.
        let archives = all.filter { !pruned.contains($0.file) }
        var reasons = Array(repeating: [String](), count: archives.count)
        let utc = TimeZone(identifier: "UTC")!
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = utc
        func starts(_ a: SeriesArchive) -> DateComponents { calendar.dateComponents([.year, .month], from: a.period.start(in: utc)) }
        let newestFirst = Array(archives.indices.reversed())
        if let latest = newestFirst.first { reasons[latest].append("the series' latest archive") }
        func buckets(_ count: Int, _ key: (SeriesArchive) -> String, _ label: String) {
            var seen: [String] = []
            for i in newestFirst {
                let k = key(archives[i])
                if seen.contains(k) { continue }
                guard seen.count < count else { break }
                seen.append(k)
                reasons[i].append("\(label) \(k) (\(seen.count) of \(count))")
            }
        }
        if policy.monthly > 0 {
            buckets(policy.monthly, { a in let c = starts(a); return String(format: "%04d-%02d", c.year!, c.month!) }, "monthly")
        }
        if policy.yearly > 0 { buckets(policy.yearly, { a in String(format: "%04d", starts(a).year!) }, "yearly") }
        if let within = policy.within, let latest = archives.last {
            var back = DateComponents()
            (back.year, back.month, back.day) = (-within.years, -within.months, -within.days)
            let limit = calendar.date(byAdding: back, to: latest.period.start(in: utc))!
            for i in archives.indices where archives[i].period.start(in: utc) >= limit {
                reasons[i].append("within \(within.years > 0 ? "\(within.years)y" : "")\(within.months > 0 ? "\(within.months)m" : "")\(within.days > 0 ? "\(within.days)d" : "") of the latest period")
            }
        }
        let nowSeconds = Int64(now.timeIntervalSince1970)
        for i in archives.indices {
            if let until = archives[i].retainUntil, until > nowSeconds {
                reasons[i].append("retained until \(Journal.rfc3339(Date(timeIntervalSince1970: TimeInterval(until))))")
            }
        }
        // The dependency closure: never a base that a kept incremental or differential rests on.
        let byDigest = Dictionary(archives.indices.map { (archives[$0].digest, $0) }, uniquingKeysWith: { a, _ in a })
        for i in newestFirst where !reasons[i].isEmpty {
            var current = i
            while let base = archives[current].base {
                guard let b = byDigest[base] else {
                    throw VaultError("'\(archives[current].file)' rests on an archive (digest \(base.hex.prefix(16))…) the series no longer holds: its chain is broken; nothing was pruned. Run 'coldarchive audit'", kind: .integrity)
                }
                let why = "needed by \(FileSystem.baseName(of: archives[i].file)) (\(archives[i].mode == .differential ? "differential" : "incremental"))"
                if !reasons[b].contains(why) { reasons[b].append(why) }
                current = b
            }
        }
        let modeName: [ArchiveHeader.BackupMode: String] = [.full: "full", .incremental: "incremental", .differential: "differential"]
        var plan = PrunePlan(series: series, decisions: archives.indices.map { i in
            PruneDecision(file: archives[i].file, sequence: archives[i].sequence, period: archives[i].period.description,
                          mode: modeName[archives[i].mode] ?? "full", keptBecause: reasons[i])
        })
        plan.finished = all.map(\.file).filter(pruned.contains)
        return plan
    }

    /// Carries out `planPrune`: for each archive to remove, first a signed `archive-pruned` journal
    /// record (so an interrupted prune is finished by the next one, and the audit shows the period as
    /// explained), then the archive and its sidecars are removed. Throws before removing anything when
    /// the journal does not verify or the signing key is revoked.
    public func prune(series: String, policy: RetentionPolicy, signer: SigningKey, trusting trusted: [SigningPublicKey],
                      now: Date = Date()) throws -> PrunePlan {
        try checkJournal(trusting: trusted)
        try checkNotRevoked(signer.publicKey, trusting: trusted, now: now, making: "the journal record of a removal")
        return try withSeriesLock(series, wait: false) {
            let plan = try planPrune(series: series, policy: policy, trusting: trusted, now: now)
            for decision in plan.decisions where !decision.kept {
                let path = "\(root)/\(decision.file)"
                do {
                    let archive = try ArchiveFile(path: path)
                    var record = JournalRecord(event: .archivePruned)
                    record.series = series
                    record.sequence = decision.sequence
                    record.period = decision.period
                    record.file = decision.file
                    record.archiveDigest = archive.archiveDigest.hex
                    record.reason = "outside the retention rules: \(policy.description)"
                    try Journal.append(record, to: journalPath, signer: signer, now: now)
                }
                for suffix in [Minisign.suffix, Timestamp.suffix, ""] { FileSystem.remove(path + suffix) }
            }
            // Removals an earlier prune journaled but did not finish.
            for file in plan.finished where FileSystem.exists("\(root)/\(file)") {
                for suffix in [Minisign.suffix, Timestamp.suffix, ""] { FileSystem.remove("\(root)/\(file)" + suffix) }
            }
            try FileSystem.syncDirectory(seriesDirectory(series))
            return plan
        }
    }

    /// Journals `retention-extended` for every archive `archive` rests on whose retention ends before
    /// `until` (seconds): a base is kept at least as long as what depends on it.
    func extendRetention(ofChainUnder archiveBase: [UInt8], series: String, until: Int64, dependent: String,
                         signer: SigningKey, trusting trusted: [SigningPublicKey], now: Date) throws {
        let (archives, _) = try seriesArchives(series, trusting: trusted)
        let byDigest = Dictionary(archives.map { ($0.digest, $0) }, uniquingKeysWith: { a, _ in a })
        var next: [UInt8]? = archiveBase
        while let digest = next, let base = byDigest[digest] {
            if (base.retainUntil ?? .min) < until {
                var record = JournalRecord(event: .retentionExtended)
                record.file = base.file
                record.archiveDigest = base.digest.hex
                record.retainUntil = Journal.rfc3339(Date(timeIntervalSince1970: TimeInterval(until)))
                record.reason = "needed by \(dependent)"
                try Journal.append(record, to: journalPath, signer: signer, now: now)
            }
            next = base.base
        }
    }
}

extension RetentionPolicy: CustomStringConvertible {
    public var description: String {
        var parts: [String] = []
        if monthly > 0 { parts.append("keep-monthly \(monthly)") }
        if yearly > 0 { parts.append("keep-yearly \(yearly)") }
        if let w = within { parts.append("keep-within \(w.years)y\(w.months)m\(w.days)d") }
        return parts.joined(separator: ", ")
    }
}
