import Foundation
import Testing
@testable import ColdArchive

/// What a new user's review of the vault and the audit found (2026-11-30), each kept as a test.
@Suite struct VaultReviewTests {
    func kinds(_ report: AuditReport) -> [String] { report.findings.map { "\($0.kind.rawValue) \($0.period ?? "-")" } }

    @Test func createRefusesAPeriodNotBegunOrBeforeTheLastOne() throws {
        let v = try MonthlyVault(months: ["2025-03"])
        #expect {
            try v.vault.create(CreateOptions(sources: [v.source], output: ""), series: "crm", period: "2099-01", signer: v.keys.signer,
                               recipients: v.keys.recipients, trusting: v.trusted, now: MonthlyVault.cut)
        } throws: { error in (error as? VaultError)?.kind == .usage && "\(error)".contains("period 2099-01 has not begun yet") }
        #expect {
            try v.add("2025-02")
        } throws: { error in "\(error)".contains("already holds 2025-03 (sequence 1): archives go forward in time") }
        #expect(try v.add("2025-03").position.sequence == 2)  // a second archive of the same month is fine
    }

    @Test func anotherKeyringCannotWriteIntoTheVaultsJournal() throws {
        let v = try MonthlyVault(months: [])
        let other = try TestKeys(in: v.scratch, name: "other-keys")
        let before = try String(contentsOfFile: v.vault.journalPath, encoding: .utf8)
        #expect {
            try v.vault.addSeries(SeriesSettings(series: "tickets"), signer: other.signer)
        } throws: { error in (error as? VaultError)?.kind == .integrity && "\(error)".contains("does not verify with this keyring's signing keys") }
        #expect(try String(contentsOfFile: v.vault.journalPath, encoding: .utf8) == before)
    }

    @Test func theJournalBelongsToItsVaultAndIsNotEmpty() throws {
        let v = try MonthlyVault(months: ["2025-05", "2025-06"])
        // vault.json's id edited: the journal names another vault.
        let settings = "\(v.vault.root)/vault.json"
        let original = try String(contentsOfFile: settings, encoding: .utf8)
        try original.replacingOccurrences(of: v.vault.settings.id, with: String(repeating: "7", count: 32))
            .write(toFile: settings, atomically: false, encoding: .utf8)
        var options = Auditor.Options()
        options.to = "2025-06"
        let edited = try Auditor.audit(vault: v.vault.root, trusting: v.trusted, options: options)
        #expect(edited.findings.contains { $0.kind == .journal && $0.reason.contains("the journal is that of vault \(v.vault.settings.id)") })
        try original.write(toFile: settings, atomically: false, encoding: .utf8)
        // An emptied journal.
        try "".write(toFile: v.vault.journalPath, atomically: false, encoding: .utf8)
        let emptied = try Auditor.audit(vault: v.vault.root, trusting: v.trusted, options: options)
        #expect(emptied.findings.contains { $0.kind == .journal && $0.reason.contains("holds no verified record") })
    }

    @Test func findingsNameWhatIsWrongAndComeInOrder() throws {
        let v = try MonthlyVault(months: ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"])
        let fm = FileManager.default
        // A deleted sidecar; a damaged one.
        try fm.removeItem(atPath: v.path("2025-02", 2) + ".minisig")
        try "garbage\n".write(toFile: v.path("2025-04", 4) + ".minisig", atomically: false, encoding: .utf8)
        // series.json's period_from_date changed.
        let seriesFile = "\(v.vault.seriesDirectory("crm"))/series.json"
        try String(contentsOfFile: seriesFile, encoding: .utf8).replacingOccurrences(of: "\"previous\"", with: "\"current\"")
            .write(toFile: seriesFile, atomically: false, encoding: .utf8)
        // An unreadable archive is not "missing" for its successor.
        try Data("not an archive".utf8).write(to: URL(fileURLWithPath: v.path("2025-05", 5)))
        let report = try v.audit()
        let sidecars = report.findings.filter { $0.kind == .sidecar }.map(\.reason)
        #expect(sidecars == ["crm.2025-02.000002.car.minisig is missing: the archive cannot be checked with minisign",
                             "crm.2025-04.000004.car.minisig is damaged: it is not minisign's prehashed signature format"])
        #expect(report.findings.contains { $0.kind == .settings && $0.reason.contains("period_from_date is current in series.json, previous in the signed journal record") })
        #expect(report.findings.contains { $0.kind == .unreadable && $0.period == "2025-05" })
        #expect(!report.findings.contains { $0.kind == .missingArchive })
        // The same findings in the same order, run after run.
        #expect(try v.audit().findings == report.findings)
        // Five recorded archives gone at once: reported in file order.
        try fm.moveItem(atPath: v.vault.seriesDirectory("crm"), toPath: v.scratch.sub("moved-away"))
        try fm.createDirectory(atPath: v.vault.seriesDirectory("crm"), withIntermediateDirectories: false)
        try fm.copyItem(atPath: v.scratch.sub("moved-away/series.json"), toPath: seriesFile)
        let gone = try v.audit().findings.filter { $0.kind == .missingArchive }.compactMap(\.period)
        #expect(gone == ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"])
    }

    @Test func theAuditorsCommandsSayWhatTheyNeedAndNeverToWriteToTheEvidence() throws {
        let scratch = try Scratch()
        let notAVault = try CLI.run(["audit", "--vault", scratch.sub("nowhere"), "--trust", "/dev/null"])
        #expect(notAVault.status != 0)
        let v = try MonthlyVault(months: ["2025-01"])
        let trust = "\(v.keys.directory)/signing.pub"
        let missing = try CLI.run(["audit", "--vault", scratch.sub("nowhere"), "--trust", trust])
        #expect(missing.status == 3 && missing.stderr.contains("is not a vault: it has no vault.json. Check the path"), "\(missing.stderr)")
        #expect(!missing.stderr.contains("vault init"))
        let wrongForm = try CLI.run(["audit", "--vault", v.vault.root, "--trust", trust, "--from", "2025-W03"])
        #expect(wrongForm.status == 2 && wrongForm.stderr.contains("--from 2025-W03 is not a period of series 'crm', which is monthly"), "\(wrongForm.stderr)")
        let reversed = try CLI.run(["audit", "--vault", v.vault.root, "--trust", trust, "--from", "2025-06", "--to", "2025-01"])
        #expect(reversed.status == 2 && reversed.stderr.contains("--from 2025-06 is after --to 2025-01"), "\(reversed.stderr)")
        let noTrust = try CLI.run(["vault", "log", "--vault", v.vault.root, "--keyring", scratch.sub("no-keyring")])
        #expect(noTrust.status == 2 && noTrust.stderr.contains("pass --trust SIGNING_PUB"), "\(noTrust.stderr)")
        let rebuild = try CLI.run(["catalog", "rebuild", "--vault", v.vault.root, "--keyring", scratch.sub("no-keyring")])
        #expect(rebuild.status == 2 && rebuild.stderr.contains("pass --trust SIGNING_PUB"))
    }

    @Test func explainRefusesWhatNeedsNoExplanation() throws {
        let v = try MonthlyVault(months: ["2025-01"])
        let base = ["vault", "explain", "--vault", v.vault.root, "--series", "crm", "--keyring", v.keys.directory]
        let empty = try CLI.run(base + ["--period", "2024-12", "--reason", " "])
        #expect(empty.status == 2 && empty.stderr.contains("give the reason"))
        let covered = try CLI.run(base + ["--period", "2025-01", "--reason", "x"])
        #expect(covered.status == 2 && covered.stderr.contains("has an archive ('crm.2025-01.000001.car'): nothing to explain"))
        let future = try CLI.run(base + ["--period", "2099-01", "--reason", "x"])
        #expect(future.status == 2 && future.stderr.contains("has not begun yet"))
        let fine = try CLI.run(base + ["--period", "2024-12", "--reason", "before the CRM went live"])
        #expect(fine.status == 0, "\(fine.stderr)")
    }
}
