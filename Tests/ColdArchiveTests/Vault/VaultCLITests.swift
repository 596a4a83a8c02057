import Foundation
import Testing
@testable import ColdArchive

/// The vault and the audit through the built binary, as an operator and an auditor use them.
@Suite struct VaultCLITests {
    @Test func theCommittedJournalVectorVerifiesAndAnEditDoesNot() throws {
        let vectors = VectorTests.vectors
        let trusted = [try SigningPublicKey(contentsOf: "\(vectors)/keys/signing.pub")]
        var events: [String] = []
        try Journal.read("\(vectors)/journal-v1.log", trusting: trusted) { line in
            #expect(line.problem == nil, "line \(line.number): \(line.problem ?? "")")
            events += line.record.map { [$0.event.rawValue] } ?? []
        }
        #expect(events == ["vault-created", "series-created", "archive-added", "period-explained"])
        let scratch = try Scratch()
        var text = try String(contentsOfFile: "\(vectors)/journal-v1.log", encoding: .utf8)
        text = text.replacingOccurrences(of: "CHG-1234", with: "CHG-1235")
        try text.write(toFile: scratch.sub("journal.log"), atomically: false, encoding: .utf8)
        var problems: [String] = []
        try Journal.read(scratch.sub("journal.log"), trusting: trusted) { line in problems += line.problem.map { [$0] } ?? [] }
        #expect(problems == ["its signature does not verify: the record was changed, or forged"])
    }

    @Test func anOperatorFillsASeriesAndAnAuditorChecksIt() throws {
        let v = try CLIVault(months: [])
        let (scratch, keyring, vault) = (v.scratch, v.keyring, v.vault)
        for month in ["2026-08", "2026-09", "2026-10"] {
            try TreeBuilder.write(scratch.sub("crm/orders.csv"), "id,month\n1,\(month)\n")
            let created = try CLI.run(["create", "--vault", vault, "--series", "crm", "--period", month, "--keyring", keyring, scratch.sub("crm")])
            #expect(created.status == 0, "\(created.stderr)")
            #expect(created.stdout.contains("created \(vault)/series/crm/crm.\(month).00000"))
        }
        let audit = ["audit", "--vault", vault, "--trust", "\(keyring)/signing.pub", "--to", "2026-10"]
        let clean = try CLI.run(audit)
        #expect(clean.status == 0, "\(clean.stdout)\(clean.stderr)")
        #expect(clean.stdout.contains("PASSED: no finding"))
        #expect(clean.stdout.contains("2026-09      ok         crm.2026-09.000002.car"))
        let json = try CLI.run(audit + ["--json"])
        let object = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
        #expect(object["passed"] as? Bool == true && object["archives"] as? Int == 3)

        // A plaintext export left beside the archives: a finding, exit 1, named.
        try TreeBuilder.write("\(vault)/series/crm/export.csv", "id,name\n1,Ada\n")
        let stray = try CLI.run(audit)
        #expect(stray.status == 1)
        #expect(stray.stdout.contains("FAILED: 1 finding"))
        #expect(stray.stdout.contains("stray: crm series/crm/export.csv: it belongs to nothing the vault knows"))
        try FileManager.default.removeItem(atPath: "\(vault)/series/crm/export.csv")

        // The journal, readable and checked; an edited line fails `vault log` with exit 1.
        let log = try CLI.run(["vault", "log", "--vault", vault, "--trust", "\(keyring)/signing.pub"])
        #expect(log.status == 0 && log.stdout.contains("archive-added  crm  sequence 3  2026-10"), "\(log.stdout)\(log.stderr)")
        var journal = try String(contentsOfFile: "\(vault)/journal.log", encoding: .utf8)
        journal = journal.replacingOccurrences(of: "\"sequence\":2", with: "\"sequence\":7")
        try journal.write(toFile: "\(vault)/journal.log", atomically: false, encoding: .utf8)
        let edited = try CLI.run(["vault", "log", "--vault", vault, "--trust", "\(keyring)/signing.pub"])
        #expect(edited.status == 1)
        #expect(edited.stdout.contains("line 4: NOT VERIFIED: its signature does not verify"))
        // And create will not grow a series whose journal does not verify.
        let refused = try CLI.run(["create", "--vault", vault, "--series", "crm", "--period", "2026-11", "--keyring", keyring, scratch.sub("crm")])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("the vault journal does not verify (line 4: its signature does not verify"))
    }

    /// Every decryption of a vault's archive is in its signed journal: restores, and also `list` and
    /// `verify --deep`, which open customer data without writing it anywhere.
    @Test func listAndDeepVerifyAreJournaled() throws {
        let v = try CLIVault(months: ["2026-10"])
        let (keyring, vault, archive) = (v.keyring, v.vault, v.archive("2026-10", 1))
        let listed = try CLI.run(["list", archive, "--keyring", keyring])
        #expect(listed.status == 0 && listed.stdout.contains("crm/customers.csv"), "\(listed.stderr)")
        #expect(try CLI.run(["verify", "--deep", archive, "--keyring", keyring]).status == 0)
        #expect(try CLI.run(["verify", archive, "--trust", "\(keyring)/signing.pub"]).status == 0)   // keyless: nothing decrypted
        let log = try CLI.run(["vault", "log", "--vault", vault, "--trust", "\(keyring)/signing.pub"])
        let lines = log.stdout.split(separator: "\n").filter { $0.contains("  decrypt  ") }
        #expect(lines.count == 2, "\(log.stdout)")
        #expect(lines.first?.hasSuffix("series/crm/crm.2026-10.000001.car  digest \(try ArchiveFile(path: archive).summary.archiveDigest)  for list") == true)
        #expect(lines.last?.hasSuffix("for verify-deep") == true)

        // A record with an event a later version writes: verified like any other, and otherwise ignored.
        let path = "\(vault)/journal.log"
        let last = try #require(try String(contentsOfFile: path, encoding: .utf8).split(separator: "\n").last)
        let signer = try Keyring(directory: keyring).signingKey()
        let json = "{\"event\":\"drill\",\"host\":\"h\",\"n\":6,\"prev\":\"\(Sodium.blake2b(Array(last.utf8)).hex)\",\"signer\":\"\(signer.publicKey.fingerprint)\",\"time\":\"2026-11-01T00:00:00Z\"}"
        let signature = Data(signer.sign(Journal.signatureContext + Array(json.utf8))).base64EncodedString()
        let handle = try #require(FileHandle(forWritingAtPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data("\(json)\t\(signature)\n".utf8))
        try handle.close()
        let audit = try CLI.run(["audit", "--vault", vault, "--trust", "\(keyring)/signing.pub", "--to", "2026-10"])
        #expect(audit.status == 0, "\(audit.stdout)\(audit.stderr)")
        #expect(audit.stdout.contains("journal: 6 records"))
    }

    /// A month skipped by create is said at once, not first by the audit; an explained one is not.
    @Test func createWarnsOfASkippedMonth() throws {
        let v = try CLIVault(months: ["2026-06"])
        #expect(try CLI.run(["vault", "explain", "--vault", v.vault, "--series", "crm", "--period", "2026-07", "--reason", "freeze",
                             "--keyring", v.keyring]).status == 0)
        try TreeBuilder.write(v.scratch.sub("crm/orders.csv"), "id\n2\n")
        let made = try CLI.run(["create", "--vault", v.vault, "--series", "crm", "--period", "2026-10", "--keyring", v.keyring, v.scratch.sub("crm")])
        #expect(made.status == 0)
        #expect(made.stderr.contains("series 'crm' has no archive for 2026-08, 2026-09: the audit reports each as missing until you record why, e.g. coldarchive vault explain --vault \(v.vault) --series crm --period 2026-08 --reason TEXT"), "\(made.stderr)")
        // The audit agrees; and a deleted archive's sidecar is named as such.
        try FileManager.default.removeItem(atPath: v.archive("2026-06", 1))
        let audit = try CLI.run(["audit", "--vault", v.vault, "--trust", v.trust, "--to", "2026-10"])
        #expect(audit.stdout.contains("missing-period: crm 2026-08"))
        #expect(audit.stdout.contains("stray: crm series/crm/crm.2026-06.000001.car.minisig: the sidecar of crm.2026-06.000001.car, which is not in the vault"))
    }

    @Test func createSaysWhatAVaultNeeds() throws {
        let scratch = try Scratch()
        let both = try CLI.run(["create", "--vault", scratch.sub("v"), "--series", "crm", "--out", scratch.sub("a.car"), scratch.path])
        #expect(both.status == 2 && both.stderr.contains("--out and --vault exclude each other"))
        let noSeries = try CLI.run(["create", "--vault", scratch.sub("v"), scratch.path])
        #expect(noSeries.status == 2 && noSeries.stderr.contains("--vault needs --series NAME"))
        let noVault = try CLI.run(["create", "--keyring", scratch.sub("k"), "--vault", scratch.sub("v"), "--series", "crm", scratch.path])
        #expect(noVault.status == 3 && noVault.stderr.contains("is not a vault (it has no vault.json)"), "\(noVault.stderr)")
    }
}

/// A vault made through the built binary, as an operator makes one: a keyring (`keys init`), a vault with
/// a monthly series `crm` (`vault init`), and an archive of a small CRM tree for each of `months`.
struct CLIVault {
    let scratch: Scratch
    let keyring: String
    let vault: String
    /// The signing public key an auditor trusts.
    var trust: String { "\(keyring)/signing.pub" }

    init(months: [String]) throws {
        scratch = try Scratch()
        keyring = scratch.sub("keys")
        vault = scratch.sub("vault")
        let keys = try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring])
        #expect(keys.status == 0, "\(keys.stderr)")
        try FileManager.default.createDirectory(atPath: scratch.sub("crm"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("crm/customers.csv"), "id,name\n1,Ada\n")
        let made = try CLI.run(["vault", "init", vault, "--series", "crm", "--keyring", keyring])
        #expect(made.status == 0 && made.stdout.contains("added series crm: monthly"), "\(made.stderr)")
        for month in months { try add(month) }
    }

    /// The month's archive, of a tree whose orders name the month.
    func add(_ month: String) throws {
        try TreeBuilder.write(scratch.sub("crm/orders.csv"), "id,month\n1,\(month)\n")
        let created = try CLI.run(["create", "--vault", vault, "--series", "crm", "--period", month, "--keyring", keyring, scratch.sub("crm")])
        #expect(created.status == 0, "\(created.stderr)")
    }

    func archive(_ month: String, _ sequence: Int) -> String {
        "\(vault)/series/crm/crm.\(month).\(String(format: "%06d", sequence)).car"
    }
}
