import Foundation
import Testing
@testable import ColdArchive

/// Every archive gets a minisign sidecar that Debian's stock `minisign -V` accepts with the site's
/// signing key in minisign's format (`keys export-public` writes it), and refuses once a byte changes.
@Suite struct MinisignTests {
    static let minisign = "/usr/bin/minisign"

    func minisignVerify(_ archive: String, publicKey: String) throws -> CLIResult {
        try CLI.run(["-Vm", archive, "-p", publicKey], executable: Self.minisign)
    }

    @Test func stockMinisignChecksEveryArchiveAndEveryRewrap() throws {
        try #require(FileManager.default.isExecutableFile(atPath: Self.minisign), "Debian's minisign is needed (make deps installs it)")
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        let export = try CLI.run(["keys", "export-public", "--keyring", keyring, "--out", scratch.sub("auditor")])
        #expect(export.status == 0, "\(export.stderr)")
        let publicKey = scratch.sub("auditor/minisign.pub")
        try FileManager.default.createDirectory(atPath: scratch.sub("crm"), withIntermediateDirectories: true)
        try TreeBuilder.write(scratch.sub("crm/orders.csv"), "id\n1\n")

        // A lone archive and one in a vault series: both signed, and minisign prints what they are.
        let archive = scratch.sub("a.car")
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", archive, scratch.sub("crm")]).status == 0)
        let digest = try ArchiveFile(path: archive).summary.archiveDigest
        let checked = try minisignVerify(archive, publicKey: publicKey)
        #expect(checked.status == 0, "\(checked.stdout)\(checked.stderr)")
        #expect(checked.stdout.contains("Trusted comment: coldarchive archive_digest:\(digest)\tfile:a.car"))
        let vault = scratch.sub("vault")
        #expect(try CLI.run(["vault", "init", vault, "--series", "crm", "--keyring", keyring]).status == 0)
        #expect(try CLI.run(["create", "--vault", vault, "--series", "crm", "--period", "2026-10", "--keyring", keyring, scratch.sub("crm")]).status == 0)
        let inVault = "\(vault)/series/crm/crm.2026-10.000001.car"
        let series = try minisignVerify(inVault, publicKey: publicKey)
        #expect(series.status == 0, "\(series.stderr)")
        #expect(series.stdout.contains("series:crm\tsequence:1\tperiod:2026-10\tfile:crm.2026-10.000001.car"))

        // A rewrap changes the file's bytes (not its archive digest): the sidecar is signed anew.
        let escrow = scratch.sub("escrow")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", escrow]).status == 0)
        let added = try CLI.run(["keys", "add-recipient", "--keyring", keyring, "--label", "escrow", "\(escrow)/encryption/\(try Keyring(directory: escrow).activeEncryptionKeyID).pub"])
        #expect(added.status == 0, "\(added.stderr)")
        let rewrapped = try CLI.run(["rewrap", archive, "--keyring", keyring])
        #expect(rewrapped.status == 0, "\(rewrapped.stderr)")
        #expect(try ArchiveFile(path: archive).recipientKeyIDs.count == 2)
        #expect(try minisignVerify(archive, publicKey: publicKey).status == 0)

        // One flipped byte, and minisign refuses.
        let handle = try FileHandle(forUpdating: URL(fileURLWithPath: archive))
        try handle.seek(toOffset: 100)
        let byte = try #require(handle.readData(ofLength: 1).first)
        try handle.seek(toOffset: 100)
        handle.write(Data([byte ^ 0x80]))
        try handle.close()
        let refused = try minisignVerify(archive, publicKey: publicKey)
        #expect(refused.status != 0)
        #expect(refused.stderr.contains("Signature verification failed"), "\(refused.stdout)\(refused.stderr)")
    }
}
