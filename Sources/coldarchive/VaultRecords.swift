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
    static func restored(file: String, target: String, keyring: Keyring) {
        guard let (vault, relative) = Vault.containing(file: file) else { return }
        do {
            let archive = try ArchiveFile(path: file)
            let digest = archive.summary.archiveDigest
            let signer = try keyring.signingKey()
            guard try archive.signerPublicKey == signer.publicKey || keyring.trustedSigningKeys().contains(try archive.signerPublicKey) else {
                Output.warning("the restore was not recorded in the vault journal: this keyring's signing key is not the one that signed the archive")
                return
            }
            let absolute = target.hasPrefix("/") ? target : FileManager.default.currentDirectoryPath + "/" + target
            try vault.journalRestore(file: relative, archiveDigest: digest, target: absolute, signer: signer)
            if let catalog = Catalog.openIfWritable(vault: vault) {
                try? catalog.record(CatalogCheck(file: relative, archiveDigest: digest, kind: "restore", result: "ok", detail: "to \(absolute)"))
            }
        } catch {
            Output.warning("the restore is complete, but it was not recorded in the vault journal (\(error))")
        }
    }
}
