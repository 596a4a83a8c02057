import Foundation
import Testing
@testable import ColdArchive

/// A vault with one monthly series, built through the public API.
struct MonthlyVault {
    let scratch: Scratch
    let keys: TestKeys
    let vault: Vault
    let source: String
    var trusted: [SigningPublicKey] { [keys.signer.publicKey] }

    static let start = Date(timeIntervalSince1970: 1_735_689_600)  // 2025-01-01T00:00:00Z
    /// When the test's archives are cut: after the periods they cover (no archive covers a period not begun).
    static let cut = Date(timeIntervalSince1970: 1_751_328_000)  // 2025-07-01T00:00:00Z

    init(months: [String]) throws {
        scratch = try Scratch()
        keys = try TestKeys(in: scratch)
        vault = try Vault.initialize(at: scratch.sub("vault"), signer: keys.signer, now: Self.start)
        try vault.addSeries(SeriesSettings(series: "crm", schedule: .monthly, timeZone: "UTC", periodFromDate: .previous),
                            signer: keys.signer, now: Self.start)
        source = scratch.sub("src/crm")
        try FileManager.default.createDirectory(atPath: source, withIntermediateDirectories: true)
        for month in months { try add(month) }
    }

    /// The month's archive, with content of its own.
    @discardableResult
    func add(_ month: String, signer: SigningKey? = nil, now: Date = MonthlyVault.cut) throws -> VaultCreateReport {
        try TreeBuilder.write("\(source)/orders.csv", "id,month\n1,\(month)\n")
        return try vault.create(CreateOptions(sources: [source], output: ""), series: "crm", period: month, signer: signer ?? keys.signer,
                                recipients: keys.recipients, trusting: trusted, now: now)
    }

    func path(_ month: String, _ sequence: UInt64) -> String {
        "\(vault.seriesDirectory("crm"))/\(VaultArchiveName(series: "crm", period: month, sequence: sequence).fileName)"
    }

    func audit(to: String = "2025-06", quick: Bool = false) throws -> AuditReport {
        var options = Auditor.Options()
        options.to = to
        options.quick = quick
        options.now = Date(timeIntervalSince1970: 1_751_328_000)  // 2025-07-01
        return try Auditor.audit(vault: vault.root, trusting: trusted, options: options)
    }
}

@Suite struct VaultTests {
    static let halfYear = ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"]

    @Test func aMonthlySeriesIsNumberedChainedJournaledAndAuditsClean() throws {
        let v = try MonthlyVault(months: Self.halfYear)
        var previous: [UInt8]?
        for (i, month) in Self.halfYear.enumerated() {
            let archive = try ArchiveFile(path: v.path(month, UInt64(i + 1)))
            let position = try #require(archive.header.position)
            #expect(position.series == "crm" && position.sequence == UInt64(i + 1) && position.period == month)
            #expect(position.previousArchiveDigest == previous)
            previous = archive.archiveDigest
        }
        let report = try v.audit()
        #expect(report.findings == [])
        #expect(report.passed && report.archives == 6 && report.journalRecords == 8)
        #expect(report.series.first?.periods.map(\.status) == Array(repeating: .ok, count: 6))
        #expect(report.bytesHashed > 0)
        // Quick: the same verdict without hashing chunks.
        let quick = try v.audit(quick: true)
        #expect(quick.passed && quick.bytesHashed == 0)
    }

    /// Each way of tampering with a vault is its own finding, naming the file, the period and the reason.
    enum Tampering: String, CaseIterable {
        case deleteAnArchive, replaceWithAnotherSignersArchive, replaceWithOtherContent, swapTwo, flipAByte, strayFile, forgedJournalRecord, editedJournalRecord
        case sidecarOfAnotherArchive
    }

    @Test(arguments: Tampering.allCases)
    func tamperingIsAFinding(_ tampering: Tampering) throws {
        let v = try MonthlyVault(months: Self.halfYear)
        let third = v.path("2025-03", 3)
        let fm = FileManager.default
        var expected: [(AuditFinding.Kind, String?)] = []
        switch tampering {
        case .deleteAnArchive:
            try fm.removeItem(atPath: third)
            try fm.removeItem(atPath: third + ".minisig")
            expected = [(.missingArchive, "2025-03")]   // one finding: not again as a chain gap and an empty period
        case .replaceWithAnotherSignersArchive:
            // A validly signed archive with the very same series fields, by a key the auditor does not trust.
            let other = try TestKeys(in: v.scratch, name: "other-keys")
            let original = try #require(try ArchiveFile(path: third).header.position)
            var options = CreateOptions(sources: [v.source], output: v.scratch.sub("forged.car"))
            options.position = original
            _ = try ArchiveCreator.create(options, signer: other.signer, recipients: other.recipients)
            try fm.removeItem(atPath: third)
            try fm.moveItem(atPath: v.scratch.sub("forged.car"), toPath: third)
            expected = [(.signature, "2025-03")]
        case .replaceWithOtherContent:
            // Validly signed by the trusted key, same series fields, other content: its digest differs,
            // so the journal and the successor's link both say so.
            let original = try #require(try ArchiveFile(path: third).header.position)
            try TreeBuilder.write("\(v.source)/orders.csv", "id,month\n1,forged\n")
            var options = CreateOptions(sources: [v.source], output: v.scratch.sub("forged.car"))
            options.position = original
            _ = try ArchiveCreator.create(options, signer: v.keys.signer, recipients: v.keys.recipients)
            try fm.removeItem(atPath: third)
            try fm.moveItem(atPath: v.scratch.sub("forged.car"), toPath: third)
            expected = [(.replaced, "2025-03"), (.chainBreak, "2025-04")]
        case .swapTwo:
            let second = v.path("2025-02", 2)
            try fm.moveItem(atPath: second, toPath: v.scratch.sub("t.car"))
            try fm.moveItem(atPath: third, toPath: second)
            try fm.moveItem(atPath: v.scratch.sub("t.car"), toPath: third)
            expected = [(.misplaced, "2025-02"), (.misplaced, "2025-03")]
        case .flipAByte:
            let handle = try FileHandle(forUpdating: URL(fileURLWithPath: third))
            let size = try handle.seekToEnd()
            try handle.seek(toOffset: size / 2)
            let byte = try #require(handle.readData(ofLength: 1).first)
            try handle.seek(toOffset: size / 2)
            handle.write(Data([byte ^ 0x01]))
            try handle.close()
            expected = [(.damaged, "2025-03")]
        case .strayFile:
            try TreeBuilder.write("\(v.vault.seriesDirectory("crm"))/customers-export.csv", "id\n1\n")
            expected = [(.stray, nil)]
        case .forgedJournalRecord:
            // A well-formed record of an archive nobody added, signed by a key the auditor does not trust.
            let other = try TestKeys(in: v.scratch, name: "other-keys")
            var record = JournalRecord(event: .periodExplained)
            record.series = "crm"
            record.period = "2025-07"
            record.reason = "nothing happened"
            try Journal.append(record, to: v.vault.journalPath, signer: other.signer)
            expected = [(.journal, nil)]
        case .sidecarOfAnotherArchive:
            // The minisign sidecar of sequence 2 beside sequence 3: validly signed, but not this archive's.
            try fm.removeItem(atPath: third + ".minisig")
            try fm.copyItem(atPath: v.path("2025-02", 2) + ".minisig", toPath: third + ".minisig")
            expected = [(.sidecar, "2025-03")]
        case .editedJournalRecord:
            // The archive-added record of sequence 3 edited to name another digest.
            var text = try String(contentsOfFile: v.vault.journalPath, encoding: .utf8)
            let digest = try ArchiveFile(path: third).summary.archiveDigest
            text = text.replacingOccurrences(of: digest, with: String(repeating: "0", count: 64))
            try text.write(toFile: v.vault.journalPath, atomically: false, encoding: .utf8)
            expected = [(.journal, nil)]
        }
        let report = try v.audit()
        #expect(!report.passed)
        for (kind, period) in expected {
            #expect(report.findings.contains { $0.kind == kind && (period == nil || $0.period == period) },
                    "\(tampering): no \(kind) finding for \(period ?? "-") in \(report.findings.map { "\($0.kind) \($0.period ?? "-") \($0.reason)" })")
        }
        for finding in report.findings { #expect(!finding.reason.isEmpty && (finding.file != nil || finding.series != nil)) }
        if tampering == .deleteAnArchive {
            #expect(report.findings.count == 1, "one deletion, one finding: \(report.findings.map(\.reason))")
        }
    }

    @Test func aMissingMonthIsAFindingUntilTheJournalExplainsIt() throws {
        let v = try MonthlyVault(months: ["2025-01", "2025-02", "2025-03", "2025-05", "2025-06"])
        let report = try v.audit()
        #expect(report.findings.map(\.kind) == [.missingPeriod])
        #expect(report.findings.first?.period == "2025-04")
        #expect(report.series.first?.periods.first { $0.period == "2025-04" }?.status == .missing)
        var record = JournalRecord(event: .periodExplained)
        record.series = "crm"
        record.period = "2025-04"
        record.reason = "CRM migration, no data changed (CHG-1234)"
        try Journal.append(record, to: v.vault.journalPath, signer: v.keys.signer)
        let explained = try v.audit()
        #expect(explained.passed, "\(explained.findings)")
        #expect(explained.series.first?.periods.first { $0.period == "2025-04" }?.status == .explained)
        // A second explanation of the same period adds to the first: the auditor reads both.
        record.reason = "correction: the CRM was read-only that month"
        let second = try Journal.append(record, to: v.vault.journalPath, signer: v.keys.signer)
        let twice = try v.audit().series.first?.periods.first { $0.period == "2025-04" }
        #expect(twice?.explanation == "CRM migration, no data changed (CHG-1234); then (record \(second.n), \(second.time)): correction: the CRM was read-only that month")
        // And the calendar runs to the last month due: July is due once August has begun.
        var options = Auditor.Options()
        options.now = Date(timeIntervalSince1970: 1_754_006_400)  // 2025-08-01
        let later = try Auditor.audit(vault: v.vault.root, trusting: v.trusted, options: options)
        #expect(later.findings.map { "\($0.kind.rawValue) \($0.period ?? "")" } == ["missing-period 2025-07"])
        // A period not due yet is refused, not reported missing.
        options.to = "2025-08"
        #expect(throws: VaultError("--to 2025-08 is not due yet: the last period of series 'crm' due now is 2025-07", kind: .usage)) {
            _ = try Auditor.audit(vault: v.vault.root, trusting: v.trusted, options: options)
        }
    }

    /// One edited journal line is two findings (its signature, and the next line's link) and makes its own
    /// archive unrecorded — not the next one's, whose record is still genuine.
    @Test func oneEditedJournalLineDoesNotCascade() throws {
        let v = try MonthlyVault(months: ["2025-01", "2025-02", "2025-03"])
        var journal = try String(contentsOfFile: v.vault.journalPath, encoding: .utf8)
        journal = journal.replacingOccurrences(of: "\"sequence\":2", with: "\"sequence\":7")
        try journal.write(toFile: v.vault.journalPath, atomically: false, encoding: .utf8)
        let report = try v.audit(to: "2025-03")
        #expect(report.findings.map { "\($0.kind.rawValue) \($0.period ?? $0.file ?? "")" }
                == ["journal journal.log", "journal journal.log", "unrecorded 2025-02"])
        #expect(report.findings[1].reason == "line 5: its link to the line before does not match: the line before was changed, removed or inserted")
    }

    @Test func concurrentCreatesIntoOneSeriesNeverFork() throws {
        let v = try MonthlyVault(months: ["2025-01"])
        final class Outcomes: @unchecked Sendable {
            let lock = NSLock()
            var values: [Result<UInt64, Error>] = []
        }
        let outcomes = Outcomes()
        let (vault, source, signer, recipients, trusted) = (v.vault, v.source, v.keys.signer, v.keys.recipients, v.trusted)
        let group = DispatchGroup()
        // Three archives of one period (as daily runs into a monthly series make), started at once.
        for month in ["2025-02", "2025-02", "2025-02"] {
            group.enter()
            Thread {
                let result = Result { try vault.create(CreateOptions(sources: [source], output: ""), series: "crm", period: month, wait: true,
                                                       signer: signer, recipients: recipients, trusting: trusted,
                                                       now: MonthlyVault.cut).position.sequence }
                outcomes.lock.lock(); outcomes.values.append(result); outcomes.lock.unlock()
                group.leave()
            }.start()
        }
        group.wait()
        let sequences = try outcomes.values.map { try $0.get() }.sorted()
        #expect(sequences == [2, 3, 4])
        let report = try v.audit(to: "2025-02")
        #expect(report.passed, "\(report.findings)")
    }

    @Test func aHeldSeriesLockStopsASecondCreateWithAClearMessage() throws {
        let v = try MonthlyVault(months: [])
        try v.vault.withSeriesLock("crm", wait: false) {
            #expect {
                try v.add("2025-01")
            } throws: { error in
                "\(error)".contains("another create into series 'crm' is running (pid \(getpid())")
            }
        }
        #expect(try v.add("2025-01").position.sequence == 1)
    }

    @Test func createRefusesToChainOntoAMissingOrUnrecordedArchive() throws {
        let v = try MonthlyVault(months: ["2025-01", "2025-02"])
        try FileManager.default.moveItem(atPath: v.path("2025-02", 2), toPath: v.scratch.sub("away.car"))
        #expect {
            try v.add("2025-03")
        } throws: { error in
            (error as? VaultError)?.kind == .integrity && "\(error)".contains("'series/crm/crm.2025-02.000002.car' (sequence 2), is missing")
        }
        try FileManager.default.moveItem(atPath: v.scratch.sub("away.car"), toPath: v.path("2025-02", 2))
        // An archive dropped into the series folder by hand is not continued from either.
        try FileManager.default.copyItem(atPath: v.path("2025-02", 2), toPath: v.path("2025-03", 3))
        #expect {
            try v.add("2025-04")
        } throws: { error in
            "\(error)".contains("holds 'crm.2025-03.000003.car', which the vault journal does not record")
        }
    }

    @Test func periodsFollowTheSeriesSchedule() throws {
        let utc = TimeZone(identifier: "UTC")!
        let december2 = Date(timeIntervalSince1970: 1_796_169_600)  // 2026-12-02T00:00:00Z
        let monthly = SeriesSettings(series: "crm", schedule: .monthly, timeZone: "UTC", periodFromDate: .previous)
        #expect(monthly.period(at: december2)?.description == "2026-11")
        // In Auckland (UTC+13 in December) it is already 2 December 13:00; in Honolulu still 1 December.
        let honolulu = SeriesSettings(series: "crm", schedule: .daily, timeZone: "Pacific/Honolulu", periodFromDate: .current)
        #expect(honolulu.period(at: december2)?.description == "2026-12-01")
        #expect(Period(containing: Date(timeIntervalSince1970: 1_735_603_200), schedule: .weekly, timeZone: utc).description == "2025-W01")  // 2024-12-31
        #expect(Period("2026-W53")?.next.description == "2027-W01" || Period("2026-W53") == nil)
        #expect(Period("2020-W53")?.next.description == "2021-W01")
        #expect(Period("2024-12")?.next.description == "2025-01")
        #expect(Period("2025-01")?.previous.description == "2024-12")
        #expect(Period("2024-02-28")?.next.description == "2024-02-29")
        #expect(Period.range(Period("2025-11")!, through: Period("2026-02")!).map(\.description) == ["2025-11", "2025-12", "2026-01", "2026-02"])
        let none = SeriesSettings(series: "crm", schedule: .monthly, timeZone: "UTC", periodFromDate: .none)
        #expect(none.period(at: december2) == nil)
        // A period of another schedule than the series' is refused.
        let v = try MonthlyVault(months: [])
        #expect {
            try v.vault.create(CreateOptions(sources: [v.source], output: ""), series: "crm", period: "2025-W03", signer: v.keys.signer,
                               recipients: v.keys.recipients, trusting: v.trusted)
        } throws: { error in
            (error as? VaultError)?.kind == .usage && "\(error)".contains("series 'crm' is monthly")
        }
    }
}
