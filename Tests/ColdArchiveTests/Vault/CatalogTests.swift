import ColdArchiveCatalog
import Foundation
import Testing
@testable import ColdArchive

/// The catalog is an index: commands fill it, `catalog rebuild` makes the same one again from the
/// archives and the journal, and nothing needs it.
@Suite struct CatalogTests {
    @Test func commandsFillTheCatalogAndARebuildMakesTheSameOne() throws {
        let v = try CLIVault(months: ["2026-09", "2026-10"])
        let (scratch, keyring, vault) = (v.scratch, v.keyring, v.vault)
        let second = "\(vault)/series/crm/crm.2026-10.000002.car"
        #expect(try CLI.run(["verify", second, "--trust", "\(keyring)/signing.pub"]).status == 0)
        let restored = try CLI.run(["restore", second, "--keyring", keyring, "--to", scratch.sub("drill")])
        #expect(restored.status == 0 && restored.stderr.isEmpty, "\(restored.stderr)")

        let catalog = try Catalog.open(path: "\(vault)/catalog.sqlite")
        let archives = try catalog.archives(series: "crm")
        #expect(archives.map(\.file) == ["series/crm/crm.2026-09.000001.car", "series/crm/crm.2026-10.000002.car"])
        #expect(archives.map(\.sequence) == [1, 2])
        #expect(archives[1].previousArchiveDigest == archives[0].archiveDigest)
        #expect(archives[1].archiveDigest == (try ArchiveFile(path: second).summary.archiveDigest))
        let checks = try catalog.checks(file: "series/crm/crm.2026-10.000002.car")
        #expect(checks.map { "\($0.kind) \($0.result)" } == ["verify ok", "restore ok"])

        // The journal holds the restore, signed: who restored what, where, on which host.
        var restores: [JournalRecord] = []
        try Journal.read("\(vault)/journal.log", trusting: [try SigningPublicKey(contentsOf: "\(keyring)/signing.pub")]) { line in
            #expect(line.problem == nil)
            if let r = line.record, r.event == .restore { restores.append(r) }
        }
        #expect(restores.map(\.file) == ["series/crm/crm.2026-10.000002.car"])
        #expect(restores.first?.target == scratch.sub("drill"))

        // Deleted, then rebuilt: the same archives, and the restore again (from the journal). The
        // keyless verify was an index entry only, and says so by its absence.
        try FileManager.default.removeItem(atPath: "\(vault)/catalog.sqlite")
        let audit = ["audit", "--vault", vault, "--trust", "\(keyring)/signing.pub", "--to", "2026-10", "--json"]
        let withoutCatalog = try CLI.run(audit)
        #expect(withoutCatalog.status == 0, "\(withoutCatalog.stdout)")
        let rebuilt = try CLI.run(["catalog", "rebuild", "--vault", vault, "--trust", "\(keyring)/signing.pub"])
        #expect(rebuilt.status == 0 && rebuilt.stdout.contains("2 archives, 1 restores from the journal"), "\(rebuilt.stdout)\(rebuilt.stderr)")
        let again = try Catalog.open(path: "\(vault)/catalog.sqlite")
        let rebuiltArchives = try again.archives(series: "crm")
        #expect(rebuiltArchives.map(\.archiveDigest) == archives.map(\.archiveDigest))
        #expect(rebuiltArchives.map(\.file) == archives.map(\.file))
        #expect(try again.checks().map(\.kind) == ["restore"])
        // The same audit, catalog or not (it never reads the catalog; it does not count as a stray).
        let withCatalog = try CLI.run(audit)
        #expect(withCatalog.status == 0)
        func findings(_ json: String) throws -> String {
            let object = try #require(try JSONSerialization.jsonObject(with: Data(json.utf8)) as? [String: Any])
            return "\(object["findings"] ?? "") \(object["archives"] ?? "") \(object["passed"] ?? "")"
        }
        #expect(try findings(withCatalog.stdout) == findings(withoutCatalog.stdout))
        let listed = try CLI.run(["catalog", "list", "--vault", vault])
        #expect(listed.status == 0 && listed.stdout.contains("series/crm/crm.2026-10.000002.car  2026-10  sequence 2"), "\(listed.stdout)")
    }

    /// An escrow holder restores a site's archive with its own keyring (trusting the site's key): its
    /// signing key is not the site's, so it signs no journal record, and says so.
    @Test func anEscrowRestoreIsNotJournaledWithAForeignKey() throws {
        let scratch = try Scratch()
        let site = try TestKeys(in: scratch, name: "site")
        let escrow = try TestKeys(in: scratch, name: "escrow")
        let vault = try Vault.initialize(at: scratch.sub("vault"), signer: site.signer)
        try vault.addSeries(SeriesSettings(series: "crm"), signer: site.signer)
        try FileManager.default.createDirectory(atPath: scratch.sub("crm"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("crm/customers.csv"), "id\n1\n")
        let made = try vault.create(CreateOptions(sources: [scratch.sub("crm")], output: ""), series: "crm", period: "2026-10",
                                    signer: site.signer, recipients: site.recipients + escrow.recipients, trusting: [site.signer.publicKey])
        let journal = try String(contentsOfFile: vault.journalPath, encoding: .utf8)
        let restored = try CLI.run(["restore", made.path, "--keyring", escrow.directory, "--trust", "\(site.directory)/signing.pub",
                                    "--to", scratch.sub("out")])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(restored.stderr.contains("not recorded in the vault journal: this keyring's signing key is not the one that signed the archive"))
        #expect(try String(contentsOfFile: vault.journalPath, encoding: .utf8) == journal)
    }

    /// A vault on read-only media: audit, verify, list and restore all work, and nothing is written.
    @Test(.enabled(if: geteuid() != 0)) func aReadOnlyVaultWorksWithoutItsCatalog() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let vault = try Vault.initialize(at: scratch.sub("vault"), signer: keys.signer)
        try vault.addSeries(SeriesSettings(series: "crm"), signer: keys.signer)
        try FileManager.default.createDirectory(atPath: scratch.sub("crm"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("crm/customers.csv"), "id\n1\n")
        let made = try vault.create(CreateOptions(sources: [scratch.sub("crm")], output: ""), series: "crm", period: "2026-10",
                                    signer: keys.signer, recipients: keys.recipients, trusting: [keys.signer.publicKey])
        // As on read-only media: nothing can be written, not even to the journal that exists.
        let files = [vault.journalPath, "\(vault.root)/vault.json", made.path, made.path + ".minisig"]
        for path in files { #expect(chmod(path, 0o444) == 0) }
        for path in [vault.seriesDirectory("crm"), "\(vault.root)/series", vault.root] { #expect(chmod(path, 0o555) == 0) }
        defer { for path in [vault.root, "\(vault.root)/series", vault.seriesDirectory("crm")] { _ = chmod(path, 0o755) } }
        let before = try TreeSnapshot(vault.root)
        #expect(try CLI.run(["audit", "--vault", vault.root, "--trust", "\(keys.directory)/signing.pub", "--to", "2026-10"]).status == 0)
        #expect(try CLI.run(["verify", made.path, "--trust", "\(keys.directory)/signing.pub"]).status == 0)
        #expect(try CLI.run(["list", made.path, "--keyring", keys.directory]).status == 0)
        let restored = try CLI.run(["restore", made.path, "--keyring", keys.directory, "--to", scratch.sub("out")])
        #expect(restored.status == 0)
        #expect(restored.stderr.contains("the restore is complete, but it was not recorded in the vault journal"))
        #expect(try TreeSnapshot(vault.root) == before)
    }
}
