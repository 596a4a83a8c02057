import Foundation
import Testing
@testable import ColdArchive

/// `push` to other media, and what `keys retire` makes of the copies it recorded (issues 20 and 16).
@Suite struct PushTests {
    @Test func aCopyIsReadBackVerifiedJournaledAndKeepsTheVaultsLayout() throws {
        let v = try CLIVault(months: ["2026-09", "2026-10"])
        let usb = v.scratch.sub("usb")
        let september = v.archive("2026-09", 1)
        let pushed = try CLI.run(["push", september, v.archive("2026-10", 2), "--to", usb, "--keyring", v.keyring])
        #expect(pushed.status == 0, "\(pushed.stderr)")
        let copy = "\(usb)/series/crm/crm.2026-09.000001.car"
        #expect(pushed.stdout.contains("COPIED \(september) -> \(copy)") && pushed.stdout.contains("read back and verified"), "\(pushed.stdout)")
        #expect(FileManager.default.contents(atPath: copy) == FileManager.default.contents(atPath: september))
        #expect(FileManager.default.fileExists(atPath: "\(copy).minisig"))
        // The journal records the copy, with the keys it is wrapped to; the copy is a vault copy scrub reads.
        let made = try Vault.open(v.vault).recordedCopies(trusting: [try SigningPublicKey(contentsOf: v.trust)])
        #expect(made.count == 2 && made[0].target == copy && made[0].file == "series/crm/crm.2026-09.000001.car")
        #expect(made[0].recipients == (try ArchiveFile(path: september)).recipientKeyIDs)
        #expect(try CLI.run(["scrub", "--vault", v.vault, "--copy", usb, "--trust", v.trust]).status == 0)
        // The destination is a vault of its own: its journal holds the copies, and the audit reads it alone.
        #expect(try Vault.open(usb).recordedCopies(trusting: [try SigningPublicKey(contentsOf: v.trust)]).count == 2)
        let audit = try CLI.run(["audit", "--vault", usb, "--trust", v.trust, "--to", "2026-10"])
        #expect(audit.status == 0, "\(audit.stdout)\(audit.stderr)")
        // Again: the verified copy is kept; another archive under the name is refused; a damaged archive is not copied.
        let again = try CLI.run(["push", september, "--to", usb, "--keyring", v.keyring])
        #expect(again.status == 0 && again.stdout.contains("OK \(copy): already a verified copy"), "\(again.stdout)")
        #expect(try Vault.open(v.vault).recordedCopies(trusting: [try SigningPublicKey(contentsOf: v.trust)]).count == 2, "not recorded twice")
        let journalLines = try String(contentsOfFile: "\(v.vault)/journal.log", encoding: .utf8).split(separator: "\n").count
        #expect(try CLI.run(["push", september, "--to", usb, "--keyring", v.keyring]).status == 0)
        #expect(try String(contentsOfFile: "\(v.vault)/journal.log", encoding: .utf8).split(separator: "\n").count == journalLines)
        let other = v.scratch.sub("other")
        try FileManager.default.createDirectory(atPath: "\(other)/series/crm", withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: v.archive("2026-10", 2), toPath: "\(other)/series/crm/crm.2026-09.000001.car")
        let clash = try CLI.run(["push", september, "--to", other, "--keyring", v.keyring])
        #expect(clash.status == 2 && clash.stderr.contains("exists and is another archive"), "\(clash.stderr)")
        // Not onto itself, and not into a copy of another vault (nothing is written there).
        let itself = try CLI.run(["push", september, "--to", v.vault, "--keyring", v.keyring])
        #expect(itself.status == 2 && itself.stderr.contains("is where '\(september)' already is"), "\(itself.stderr)")
        let foreign = try CLIVault(months: [])
        let intoForeign = try CLI.run(["push", september, v.archive("2026-10", 2), "--to", foreign.vault, usb, "--keyring", v.keyring])
        #expect(intoForeign.status == 2 && intoForeign.stderr.contains("is a copy of another vault"), "\(intoForeign.stderr)")
        #expect(!FileManager.default.fileExists(atPath: "\(foreign.vault)/series/crm/crm.2026-09.000001.car"))
        #expect(intoForeign.stdout.contains("OK \(copy): already a verified copy"), "one failed copy does not stop the others")
        let file = try ArchiveFile(path: september)
        try flipBit(september, at: file.footer.payloadOffset + 3)
        let damaged = try CLI.run(["push", september, "--to", v.scratch.sub("second"), "--keyring", v.keyring])
        #expect(damaged.status == 1 && damaged.stderr.contains("it was not copied. Repair it from another copy first"), "\(damaged.stderr)")
        #expect(!FileManager.default.fileExists(atPath: v.scratch.sub("second")))
    }

    /// A vault whose September archive was pushed to `usb`, then rewrapped to a new key: the copy is
    /// still wrapped only to the old one.
    func copiedThenRewrapped() throws -> (v: CLIVault, oldID: String, usb: String) {
        let v = try CLIVault(months: ["2026-09"])
        let oldID = try Keyring(directory: v.keyring).activeEncryptionKeyID
        let usb = v.scratch.sub("usb")
        #expect(try CLI.run(["push", v.archive("2026-09", 1), "--to", usb, "--keyring", v.keyring]).status == 0)
        #expect(try CLI.run(["keys", "rotate", "--keyring", v.keyring]).status == 0)
        #expect(try CLI.run(["rewrap", v.archive("2026-09", 1), "--keyring", v.keyring]).status == 0)
        return (v, oldID, usb)
    }

    /// Issue 16: an offsite copy made before a rewrap is still wrapped to the old key; retire finds it
    /// through the journal, and refuses while it cannot be reached.
    @Test func retireChecksEveryCopyTheJournalRecorded() throws {
        let (v, oldID, usb) = try copiedThenRewrapped()
        let keyFile = "\(v.keyring)/encryption/\(oldID).key"
        func retire(_ extra: [String] = []) throws -> CLIResult {
            try CLI.run(["keys", "retire", oldID, "--keyring", v.keyring, "--confirm", oldID, "--vault", v.vault] + extra)
        }
        // The disk is not mounted: the copy cannot be checked, and it was wrapped to the key.
        let unmounted = v.scratch.sub("usb-in-the-safe")
        try FileManager.default.moveItem(atPath: usb, toPath: unmounted)
        let refused = try retire()
        #expect(refused.status == 2 && refused.stderr.contains("records 1 copy wrapped to \(oldID) that cannot be reached: \(usb)/series/crm/crm.2026-09.000001.car"),
                "\(refused.stderr)")
        // Another file where the copy was recorded is not the copy: it cannot be checked either.
        try FileManager.default.createDirectory(atPath: "\(usb)/series/crm", withIntermediateDirectories: true)
        try TreeBuilder.write("\(usb)/series/crm/crm.2026-09.000001.car", "not the copy\n")
        #expect(try retire().status == 2)
        try FileManager.default.removeItem(atPath: usb)
        #expect(FileManager.default.fileExists(atPath: keyFile))
        // Mounted again: scanned, and listed as what the retirement makes unreadable.
        try FileManager.default.moveItem(atPath: unmounted, toPath: usb)
        let listed = try retire()
        #expect(listed.status == 0, "\(listed.stderr)")
        #expect(listed.stdout.contains("\(usb)/series/crm/crm.2026-09.000001.car: UNRECOVERABLE after retirement"), "\(listed.stdout)")
        #expect(!FileManager.default.fileExists(atPath: keyFile))
    }

    @Test func createCopiesTheNewArchiveAndSaysWhenACopyFails() throws {
        let v = try CLIVault(months: [])
        let usb = v.scratch.sub("usb")
        let made = try CLI.run(["create", "--vault", v.vault, "--series", "crm", "--period", "2026-09", "--keyring", v.keyring,
                                "--copies", usb, v.scratch.sub("crm")])
        #expect(made.status == 0, "\(made.stderr)")
        let copy = "\(usb)/series/crm/crm.2026-09.000001.car"
        #expect(made.stdout.contains("copied to \(copy), read back and verified"), "\(made.stdout)")
        #expect(FileManager.default.contents(atPath: copy) == FileManager.default.contents(atPath: v.archive("2026-09", 1)))
        // A destination that cannot be written: the archive stays in the vault, exit 4, and the way to copy it later.
        let blocked = v.scratch.sub("blocked")
        try TreeBuilder.write(blocked, "a file, not a directory\n")
        try TreeBuilder.write(v.scratch.sub("crm/orders.csv"), "id,month\n1,2026-10\n")
        let failed = try CLI.run(["create", "--vault", v.vault, "--series", "crm", "--period", "2026-10", "--keyring", v.keyring,
                                  "--copies", blocked, v.scratch.sub("crm")])
        #expect(failed.status == 4, "\(failed.stderr)")
        #expect(failed.stderr.contains("its copy to '\(blocked)' failed") && failed.stderr.contains("coldarchive push \(v.archive("2026-10", 2)) --to \(blocked)"))
        #expect(FileManager.default.fileExists(atPath: v.archive("2026-10", 2)))
    }

    @Test func unreachableCopiesMayBeLetGoOnPurpose() throws {
        let (v, oldID, usb) = try copiedThenRewrapped()
        try FileManager.default.removeItem(atPath: usb)
        let retired = try CLI.run(["keys", "retire", oldID, "--keyring", v.keyring, "--confirm", oldID, "--vault", v.vault, "--skip-unreachable-copies"])
        #expect(retired.status == 0, "\(retired.stderr)")
        #expect(retired.stdout.contains("not reachable, may become unreadable: \(usb)/series/crm/crm.2026-09.000001.car"), "\(retired.stdout)")
    }
}
