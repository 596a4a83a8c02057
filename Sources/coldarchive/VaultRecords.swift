import ColdArchive
import ColdArchiveCatalog
import Foundation

/// What commands leave in a vault besides archives: journal records (signed) and catalog rows (an
/// index). Neither may fail the command whose work is done: a read-only vault, say, gets a warning.
enum VaultRecords {
    /// After `create --vault`: the new archive's catalog row.
    static func created(_ made: VaultCreateReport, in vault: Vault) {
        guard let catalog = Catalog.openIfWritable(vault: vault) else { return }
        do {
            let file = String(made.path.dropFirst(vault.root.count + 1))
            let now = ISO8601DateFormatter().string(from: Date())
            try catalog.record(try Catalog.row(for: try ArchiveFile(path: made.path), file: file, added: now))
        } catch {
            Output.warning("the archive is complete, but the vault's catalog was not updated (\(error)); 'coldarchive catalog rebuild --vault \(vault.root)' makes it again")
        }
    }

    /// After a check of an archive that sits in a vault: a catalog row with its time and result.
    /// `digest`: the archive digest when the check read it (else it is read here, for the row).
    static func checked(file: String, kind: String, ok: Bool, digest: String?, detail: String?) {
        guard let (vault, relative) = Vault.containing(file: file), let catalog = Catalog.openIfWritable(vault: vault) else { return }
        let digest = digest ?? (try? ArchiveFile(path: file))?.summary.archiveDigest
        try? catalog.record(CatalogCheck(file: relative, archiveDigest: digest, kind: kind, result: ok ? "ok" : "failed", detail: detail))
    }

    /// After a restore of an archive that sits in a vault: a journal record signed by the keyring's
    /// signing key when it is the key that signed the archive (the site's own), and a catalog row.
    /// `bytes` and `seconds`: what the restore wrote and how long it took, for `plan`'s estimates.
    static func restored(file: String, target: String, keyring: Keyring, bytes: UInt64? = nil, seconds: Double? = nil) {
        let absolute = target.hasPrefix("/") ? target : FileManager.default.currentDirectoryPath + "/" + target
        journal(file: file, keyring: keyring, what: "restore") { vault, relative, digest, signer in
            try vault.journalRestore(file: relative, archiveDigest: digest, target: absolute, signer: signer)
            if let catalog = Catalog.openIfWritable(vault: vault) {
                try? catalog.record(CatalogCheck(file: relative, archiveDigest: digest, kind: "restore", result: "ok", detail: "to \(absolute)",
                                                 bytes: bytes.map(Int64.init), seconds: seconds))
            }
        }
    }

    /// After an archive in a vault was decrypted without a restore (`list`, `verify --deep`): a signed
    /// journal record of who decrypted what, and why, so an auditor sees every opening of customer data.
    static func decrypted(file: String, purpose: String, keyring: Keyring) {
        journal(file: file, keyring: keyring, what: purpose) { vault, relative, digest, signer in
            try vault.journalDecryption(file: relative, archiveDigest: digest, purpose: purpose, signer: signer)
        }
    }

    /// After `push` of an archive that sits in a vault: a signed `copy-made` journal record (what `keys
    /// retire` checks) and a catalog row.
    static func copied(_ report: PushReport, keyring: Keyring) {
        journal(file: report.archive, keyring: keyring, what: "copy") { vault, relative, _, signer in
            // A copy already recorded as it is (same archive, same recipients) is not recorded again: a
            // daily push of a whole vault must not grow the journal by a record per archive per day.
            let known = try vault.recordedCopies(trusting: try keyring.trustedSigningKeys()).last { $0.target == report.absoluteCopy }
            if let known, known.archiveDigest == report.archiveDigest, known.recipients == report.recipients { return }
            try Push.journal(report, in: vault, file: relative, signer: signer)
            if let catalog = Catalog.openIfWritable(vault: vault) {
                try? catalog.record(CatalogCheck(file: relative, archiveDigest: report.archiveDigest, kind: "copy", result: "ok",
                                                 detail: "verified copy at \(report.copy), wrapped to \(report.recipients.joined(separator: ", "))"))
            }
        }
    }

    /// Appends with the keyring's signing key when it is one the archive's signer is trusted by (the
    /// site's own: an escrow holder's keyring signs nothing into the site's journal); warns otherwise.
    private static func journal(file: String, keyring: Keyring, what: String, _ append: (Vault, String, String, SigningKey) throws -> Void) {
        guard let (vault, relative) = Vault.containing(file: file) else { return }
        do {
            let archive = try ArchiveFile(path: file)
            let signer = try keyring.signingKey()
            guard try archive.signerPublicKey == signer.publicKey || keyring.trustedSigningKeys().contains(try archive.signerPublicKey) else {
                Output.warning("the \(what) was not recorded in the vault journal: this keyring's signing key is not the one that signed the archive")
                return
            }
            try append(vault, relative, archive.summary.archiveDigest, signer)
        } catch {
            Output.warning("the \(what) is complete, but it was not recorded in the vault journal (\(error))")
        }
    }
}
