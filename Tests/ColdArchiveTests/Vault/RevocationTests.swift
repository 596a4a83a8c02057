import Foundation
import Testing
@testable import ColdArchive

/// A signing key revoked as compromised from a date on (FORMAT.md §14): `audit` reports every archive it
/// signed and created at or after that date; statements that are not valid, or not signed by the revoked
/// key or a trusted key, are findings themselves and change nothing.
@Suite struct RevocationTests {
    static func day(_ text: String) -> Date { Journal.parseRFC3339("\(text)T00:00:00Z")! }

    /// January to June, each archive cut on the first day of the month after its period.
    static func series() throws -> MonthlyVault {
        let series = try MonthlyVault(months: [])
        for (month, cut) in [("2025-01", "2025-02-01"), ("2025-02", "2025-03-01"), ("2025-03", "2025-04-01"),
                             ("2025-04", "2025-05-01"), ("2025-05", "2025-06-01"), ("2025-06", "2025-07-01")] {
            try series.add(month, now: day(cut))
        }
        return series
    }

    @Test func archivesSignedFromTheRevocationDateOnAreFindings() throws {
        let series = try Self.series()
        #expect(try series.audit().passed)
        let statement = try SigningKeyRevocation.make(since: Journal.parseRFC3339("2025-04-15T08:30:00Z")!,
                                                      reason: "archiving host's disk stolen; ticket SEC-77", signer: series.keys.signer)
        let saved = try statement.save(inVault: series.vault.root, journalSigner: series.keys.signer, now: MonthlyVault.cut)
        #expect(saved.hasSuffix("/revocations/\(series.keys.signer.publicKey.fingerprint)-20250415083000.revocation"))
        let report = try series.audit()
        #expect(report.revokedSigners == [AuditRevocation(fingerprint: series.keys.signer.publicKey.fingerprint, since: "2025-04-15T08:30:00Z",
                                                          reason: "archiving host's disk stolen; ticket SEC-77",
                                                          file: "revocations/\((saved as NSString).lastPathComponent)")])
        let revoked = report.findings.filter { $0.kind == .revoked }
        #expect(revoked.map(\.period) == ["2025-04", "2025-05", "2025-06"])
        #expect(report.findings.count == 3)
        #expect(revoked.first?.reason == "signed by \(series.keys.signer.publicKey.fingerprint), revoked as compromised since 2025-04-15T08:30:00Z (archiving host's disk stolen; ticket SEC-77; revocations/\((saved as NSString).lastPathComponent)), and created 2025-05-01T00:00:00Z: it may not be the company's")
        #expect(report.series.first?.periods.map(\.status) == [.ok, .ok, .ok, .failed, .failed, .failed])
        // And the revoked key signs nothing more into the vault.
        #expect(throws: VaultError("the signing key \(series.keys.signer.publicKey.fingerprint) is revoked as compromised since 2025-04-15T08:30:00Z (revocations/\((saved as NSString).lastPathComponent)): an archive it signs would be an audit finding. Rotate it first: coldarchive keys rotate --signing")) {
            try series.add("2025-07", now: Self.day("2025-08-01"))
        }
        // Deleting the statement from the vault does not make those archives good again: the journal recorded it.
        try FileManager.default.removeItem(atPath: saved)
        let deleted = try series.audit()
        let fingerprint = series.keys.signer.publicKey.fingerprint
        #expect(deleted.findings == [AuditFinding(.revocation, file: "revocations/\((saved as NSString).lastPathComponent)",
                                                  "journal record 9 says \(fingerprint) was revoked as compromised (archiving host's disk stolen; ticket SEC-77), but no valid statement revoking it is in the vault or given with --revocation: it was removed")])
        #expect(!deleted.passed)
    }

    /// Whoever stole the key could also sign journal records: an explanation dated after the revocation
    /// is a finding and explains nothing.
    @Test func aJournalRecordSignedWithTheRevokedKeyIsNotApplied() throws {
        let series = try MonthlyVault(months: [])
        for (month, cut) in [("2025-01", "2025-02-01"), ("2025-02", "2025-03-01"), ("2025-04", "2025-05-01")] {
            try series.add(month, now: Self.day(cut))
        }
        _ = try SigningKeyRevocation.make(since: Self.day("2025-05-15"), reason: "key stolen", signer: series.keys.signer)
            .save(inVault: series.vault.root, journalSigner: series.keys.signer, now: MonthlyVault.cut)
        var record = JournalRecord(event: .periodExplained)
        record.series = "crm"
        record.period = "2025-03"
        record.reason = "nothing happened in March"
        let forged = try Journal.append(record, to: series.vault.journalPath, signer: series.keys.signer, now: Self.day("2025-06-02"))
        let report = try series.audit(to: "2025-05")
        #expect(report.findings.map(\.kind) == [.revoked, .missingPeriod, .missingPeriod])
        #expect(report.findings.first?.reason == "record \(forged.n) (period-explained) is signed by \(series.keys.signer.publicKey.fingerprint), revoked as compromised since 2025-05-15T00:00:00Z, and dated 2025-06-02T00:00:00Z: not applied")
        #expect(report.findings.dropFirst().map(\.period) == ["2025-03", "2025-05"])
    }

    /// Whoever stole the key could also sign a rotation statement handing trust to a key of their own:
    /// one dated at or after the revocation is not followed (and is a finding); one dated before is.
    @Test func aRotationSignedByTheRevokedKeyAfterItsRevocationIsNotFollowed() throws {
        let series = try MonthlyVault(months: [])
        let first = series.keys.signer
        let successor = try TestKeys(in: series.scratch, name: "successor").signer
        let thief = try TestKeys(in: series.scratch, name: "thief").signer
        let everyone = [first.publicKey, successor.publicKey, thief.publicKey]
        func add(_ month: String, _ signer: SigningKey, _ cut: String) throws {
            try TreeBuilder.write("\(series.source)/orders.csv", "id,month\n1,\(month)\n")
            _ = try series.vault.create(CreateOptions(sources: [series.source], output: ""), series: "crm", period: month, signer: signer,
                                        recipients: series.keys.recipients, trusting: everyone, now: Self.day(cut))
        }
        let chain = series.scratch.sub("signing-chain")
        try FileManager.default.createDirectory(atPath: chain, withIntermediateDirectories: true)
        try add("2025-01", first, "2025-02-01")
        try SigningKeyStatement.make(from: first, to: successor.publicKey, date: Self.day("2025-02-10")).encoded()
            .write(toFile: "\(chain)/1.statement", atomically: false, encoding: .utf8)
        try add("2025-02", successor, "2025-03-01")
        _ = try SigningKeyRevocation.make(since: Self.day("2025-03-15"), reason: "old key found on a stolen laptop", signer: first)
            .save(inVault: series.vault.root, journalSigner: series.keys.signer, now: MonthlyVault.cut)
        try SigningKeyStatement.make(from: first, to: thief.publicKey, date: Self.day("2025-03-20")).encoded()
            .write(toFile: "\(chain)/2.statement", atomically: false, encoding: .utf8)
        try add("2025-03", thief, "2025-04-01")

        var options = Auditor.Options()
        options.to = "2025-03"
        options.now = MonthlyVault.cut
        options.chain = chain
        let report = try Auditor.audit(vault: series.vault.root, trusting: [first.publicKey], options: options)
        #expect(report.trustedSigners == [first.publicKey.fingerprint, successor.publicKey.fingerprint])
        #expect(report.findings.first == AuditFinding(.revoked, file: "\(chain)/2.statement",
                                                      "the rotation from \(first.publicKey.fingerprint) to \(thief.publicKey.fingerprint) is dated 2025-03-20T00:00:00Z, when \(first.publicKey.fingerprint) was already revoked as compromised: not followed, so \(thief.publicKey.fingerprint) is not trusted through it"))
        #expect(report.findings.contains { $0.kind == .signature && $0.period == "2025-03" })
        #expect(report.series.first?.periods.map(\.status) == [.ok, .ok, .failed])
    }

    @Test func theAuditorsOwnCopyCountsWhenTheVaultsWasDeleted() throws {
        let series = try Self.series()
        let statement = try SigningKeyRevocation.make(since: Self.day("2025-06-01"), reason: "key leaked in a backup", signer: series.keys.signer)
        let own = series.scratch.sub("auditor-copy.revocation")
        try statement.save(to: own)
        #expect(throws: OperationError.self) { try statement.save(to: own) }   // never replaces a file
        var options = Auditor.Options()
        options.to = "2025-06"
        options.now = MonthlyVault.cut
        options.revocations = [own]
        let report = try Auditor.audit(vault: series.vault.root, trusting: series.trusted, options: options)
        #expect(report.findings.map(\.kind) == [.revoked, .revoked])
        #expect(report.findings.map(\.period) == ["2025-05", "2025-06"])
        #expect(report.revokedSigners.map(\.file) == [own])
    }

    @Test func aStatementByAnUntrustedKeyOrAlteredChangesNothing() throws {
        let series = try Self.series()
        let folder = "\(series.vault.root)/\(Vault.revocationsFolder)"
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        // Someone else's key "revokes" the company's: not applied.
        let stranger = try TestKeys(in: series.scratch, name: "stranger")
        let foreign = try SigningKeyRevocation.make(revoking: series.keys.signer.publicKey, since: Self.day("2025-01-01"),
                                                    reason: "spite", signer: stranger.signer)
        try foreign.save(to: "\(folder)/foreign.revocation")
        // A valid statement with its date moved back afterwards: its signature no longer verifies.
        let genuine = try SigningKeyRevocation.make(since: Self.day("2025-06-01"), reason: "rotation drill", signer: series.keys.signer)
        try genuine.encoded().replacingOccurrences(of: "2025-06-01T00:00:00Z", with: "2025-01-01T00:00:00Z")
            .write(toFile: "\(folder)/altered.revocation", atomically: false, encoding: .utf8)
        try TreeBuilder.write("\(folder)/notes.txt", "draft\n")
        let report = try series.audit()
        #expect(report.revokedSigners.isEmpty)
        #expect(report.findings.count == 3)
        #expect(report.findings.contains(AuditFinding(.revocation, file: "revocations/altered.revocation",
                                                      "not a valid signing key revocation statement: its signature does not verify: it was changed after it was signed, or forged")))
        #expect(report.findings.contains(AuditFinding(.revocation, file: "revocations/foreign.revocation",
                                                      "signed by \(stranger.signer.publicKey.fingerprint), which is neither the key it revokes (\(series.keys.signer.publicKey.fingerprint)) nor a trusted key: not applied")))
        #expect(report.findings.contains(AuditFinding(.stray, file: "revocations/notes.txt", "it is not a revocation statement (NAME.revocation)")))
    }

    @Test func aStatementParsesOnlyInItsExactForm() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let statement = try SigningKeyRevocation.make(since: Self.day("2026-10-01"), reason: "laptop stolen", signer: keys.signer)
        let text = statement.encoded()
        #expect(try SigningKeyRevocation(text: text) == statement)
        #expect(text.hasPrefix("coldarchive signing key revocation v1\nrevoked: coldarchive-signing-ed25519 "))
        for (bad, why) in [(text.replacingOccurrences(of: "2026-10-01T00:00:00Z", with: "2026-10-01T00:00:00+00:00"), "bad date"),
                           (String(text.dropLast()), "it does not end with a line end"),
                           (text.replacingOccurrences(of: "reason: laptop stolen", with: "reason: "), "give the reason")] {
            #expect(throws: RevocationError.self, "\(why)") { _ = try SigningKeyRevocation(text: bad) }
        }
        #expect(throws: OperationError.self) { _ = try SigningKeyRevocation.make(since: Self.day("2026-10-01"), reason: "a\nb", signer: keys.signer) }
    }

    @Test func anOperatorRevokesAndTheAuditorSeesIt() throws {
        let v = try CLIVault(months: ["2026-10"])
        let (scratch, keyring, vault) = (v.scratch, v.keyring, v.vault)
        let audit = ["audit", "--vault", vault, "--trust", "\(keyring)/signing.pub", "--to", "2026-10"]
        #expect(try CLI.run(audit).status == 0)
        let revoke = try CLI.run(["keys", "revoke-signing", "--since", "2026-01-01", "--reason", "test of the revocation procedure",
                                  "--vault", vault, "--keyring", keyring])
        #expect(revoke.status == 0, "\(revoke.stderr)")
        #expect(revoke.stdout.contains("revoked as compromised since 2026-01-01T00:00:00Z") && revoke.stdout.contains("keys rotate --signing"))
        let log = try CLI.run(["vault", "log", "--vault", vault, "--keyring", keyring])
        #expect(log.stdout.contains("signing-key-revoked  \(try SigningPublicKey(contentsOf: "\(keyring)/signing.pub").fingerprint)  revocations/"), "\(log.stdout)")
        let after = try CLI.run(audit)
        #expect(after.status == 1)
        #expect(after.stdout.contains("revoked      "), "\(after.stdout)")
        #expect(after.stdout.contains("revoked: crm 2026-10 series/crm/crm.2026-10.000001.car: signed by "))
        let neither = try CLI.run(["keys", "revoke-signing", "--since", "2026-01-01", "--reason", "x", "--keyring", keyring])
        #expect(neither.status == 2 && neither.stderr.contains("give --out FILE, --vault VAULT, or both"))
        let other = try CLIVault(months: [])
        let foreign = try CLI.run(["keys", "revoke-signing", "--since", "2026-01-01", "--reason", "x", "--key", "\(other.keyring)/signing.pub",
                                   "--out", scratch.sub("f.revocation"), "--keyring", keyring])
        #expect(foreign.status == 2 && foreign.stderr.contains("was never this keyring's signing key"), "\(foreign.stderr)")
        let emptyReason = try CLI.run(["keys", "revoke-signing", "--since", "2026-01-01", "--reason", " ", "--out", scratch.sub("e"), "--keyring", keyring])
        #expect(emptyReason.status == 2 && emptyReason.stderr.contains("give the reason"), "\(emptyReason.stderr)")
        // And a thief holding the revoked key cannot explain a month away either.
        let explain = try CLI.run(["vault", "explain", "--vault", vault, "--series", "crm", "--period", "2026-09", "--reason", "x", "--keyring", keyring])
        #expect(explain.status == 3 && explain.stderr.contains("a journal record it signs would be an audit finding"), "\(explain.stderr)")
        let badDate = try CLI.run(["keys", "revoke-signing", "--since", "last tuesday", "--reason", "x", "--out", scratch.sub("r"), "--keyring", keyring])
        #expect(badDate.status == 2 && badDate.stderr.contains("is not a date"))
    }
}
