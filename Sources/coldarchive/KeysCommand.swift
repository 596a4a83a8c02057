import ArgumentParser
import ColdArchive
import Foundation

struct KeysCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "keys", abstract: "Manage the keyring: create, rotate, list, escrow, export, retire, change passphrase.",
        discussion: "docs/KEYS.md describes the custody model and the procedures.",
        subcommands: [Init.self, Rotate.self, List.self, Status.self, AddRecipient.self, ExportPublic.self, Retire.self, RevokeSigning.self, Passwd.self])

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Create a keyring: the site signing key (Ed25519) and a first encryption key (X25519).",
            discussion: """
            Secret key files are protected by a passphrase (Argon2id) and written with mode 0600, atomically. \
            The passphrase comes from --passphrase-file, $COLDARCHIVE_PASSPHRASE, or the terminal (asked twice). \
            Give auditors KEYRING/signing.pub only.
            """)

        @OptionGroup var keyring: KeyringOption

        @Flag(name: .long, help: "Store the secret keys unprotected (for unattended hosts whose disk is protected otherwise).")
        var noPassphrase = false

        @Option(name: .long, help: "Days an encryption key stays active before 'keys status' and 'create' warn.")
        var cryptoperiodDays = Keyring.defaultCryptoperiodDays

        func run() throws {
            // A path that cannot work fails now, not after the passphrase was typed twice.
            try Keyring.checkCanInitialize(at: keyring.directory)
            let passphrase: Passphrase?
            if noPassphrase {
                passphrase = nil
                Output.warning("""
                    --no-passphrase: the secret keys in \(keyring.directory) are stored UNENCRYPTED. Anyone who can read \
                    that directory can decrypt every archive and sign in the site's name. Use this only on hosts whose \
                    disks and backups are protected otherwise.
                    """)
            } else if let file = keyring.passphraseFile {
                passphrase = try Passphrase.fromFile(file)
            } else if let env = try Passphrase.fromEnvironment() {
                passphrase = env
            } else if let asked = try Terminal.askNewPassphrase() {
                passphrase = asked
            } else {
                throw ValidationFailure("keys init needs a passphrase: give --passphrase-file FILE or COLDARCHIVE_PASSPHRASE, run it on a terminal, or pass --no-passphrase")
            }
            Output.warnIfShort(passphrase)
            let ring = try Keyring.initialize(at: keyring.directory, passphrase: passphrase, cryptoperiodDays: cryptoperiodDays)
            let signing = try ring.signingPublicKey()
            print("created keyring in \(ring.directory)\(passphrase == nil ? " (secret keys NOT passphrase-protected)" : "")")
            print("  signing key      \(signing.fingerprint)  (\(ring.signingPublicKeyPath): give this file to auditors)")
            print("  encryption key   \(ring.activeEncryptionKeyID)  (active, cryptoperiod \(cryptoperiodDays) days)")
            print("back up \(ring.directory) to offline media: without its .key files no archive can be restored.")
        }
    }

    struct Rotate: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a new encryption key the active one (older keys stay, decrypt-only); --signing rotates the signing key.",
            discussion: "A signing rotation writes KEYRING/signing-chain/NNNN-FPR.statement, signed by the old key, for auditors to follow.")

        @OptionGroup var keyring: KeyringOption

        @Flag(name: .long, help: "Rotate the site signing key instead of the encryption key.")
        var signing = false

        func run() throws {
            let ring = try keyring.open()
            if signing {
                let statement = try ring.rotateSigningKey()
                print("new signing key \(statement.next.fingerprint) replaces \(statement.previous.fingerprint)")
                print("give auditors the new \(ring.signingPublicKeyPath) or the statement in \(ring.signingChainDirectory)/")
                Output.nextStepsAtTheCustodian(ring)
            } else {
                let id = try ring.rotateEncryptionKey()
                print("new active encryption key \(id); earlier keys stay decrypt-only. Run 'coldarchive rewrap' to move old archives to it.")
                Output.nextStepsAtTheCustodian(ring)
            }
        }
    }

    struct RevokeSigning: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "revoke-signing",
            abstract: "Sign a statement that a signing key is compromised from a date on: audit then reports every archive it signed from then.",
            discussion: """
            Signed by this keyring's signing key: revoke that key itself (the default; do it while you still hold \
            it), or, after a rotation, an older key with --key. Archives created before --since stay valid; \
            the audit reports each one signed by the key and created at or after it (docs/AUDIT.md). Then rotate \
            the signing key (keys rotate --signing) and give auditors the statement: with --vault it is written \
            to VAULT/revocations/, which audit reads; auditors should keep their own copy (audit --revocation FILE).
            """)

        @Option(name: .long, help: ArgumentHelp("From when the key is compromised: YYYY-MM-DD (00:00 UTC) or YYYY-MM-DDThh:mm:ssZ.", valueName: "DATE"))
        var since: String

        @Option(name: .long, help: "Why, in one line (what happened, a ticket): the auditor reads it.")
        var reason: String

        @Option(name: .long, help: ArgumentHelp("The signing public key to revoke (default: this keyring's own).", valueName: "FILE"))
        var key: String?

        @Option(name: .long, help: ArgumentHelp("Write the statement to this new file.", valueName: "FILE"))
        var out: String?

        @Option(name: .long, help: ArgumentHelp("Write the statement into this vault's revocations/ folder.", valueName: "VAULT"))
        var vault: String?

        @OptionGroup var keyring: KeyringOption

        func validate() throws {
            if out == nil && vault == nil { throw ValidationError("give --out FILE, --vault VAULT, or both") }
            if Self.date(since) == nil { throw ValidationError("'\(since)' is not a date: YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ") }
        }

        static func date(_ text: String) -> Date? {
            let f = ISO8601DateFormatter()
            f.timeZone = TimeZone(identifier: "UTC")
            f.formatOptions = text.count == 10 ? [.withFullDate] : [.withInternetDateTime]
            return f.date(from: text)
        }

        func run() throws {
            let ring = try keyring.open()
            let revoked = try key.map { path -> SigningPublicKey in
                guard FileManager.default.fileExists(atPath: path) else {
                    throw ValidationError("no file '\(path)': --key names the signing public key to revoke, e.g. \(ring.directory)/signing-history/FPR.pub")
                }
                return try SigningPublicKey(contentsOf: path)
            }
            // Only a key this keyring had: revoking someone else's key would mean nothing to their auditors.
            if let revoked, !(try ring.trustedSigningKeys()).contains(revoked) {
                throw ValidationError("\(revoked.fingerprint) was never this keyring's signing key (it is not in \(ring.directory)/signing-history/): revoke it with the keyring that had it")
            }
            let statement = try SigningKeyRevocation.make(revoking: revoked, since: Self.date(since)!, reason: reason, signer: try ring.signingKey())
            var paths: [String] = []
            if let out {
                try statement.save(to: out)
                paths.append(out)
            }
            if let vault { paths.append(try statement.save(inVault: vault, journalSigner: try ring.signingKey())) }
            print("signing key \(statement.revoked.fingerprint) revoked as compromised since \(ISO8601DateFormatter().string(from: statement.since)): \(paths.joined(separator: ", "))")
            if statement.revoked == statement.signer {
                print("next: rotate the signing key (coldarchive keys rotate --signing) and give auditors this statement")
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "List every key: id, role, status, created, due date, whether its secret is here.")

        @OptionGroup var keyring: KeyringOption

        @Flag(name: .long, help: "Print as JSON.")
        var json = false

        func run() throws {
            let keys = try keyring.open().keys()
            if json { return try Output.json(keys) }
            print("ID                                ROLE        STATUS        CREATED               DUE                   SECRET")
            for k in keys {
                let cols = [k.id.padding(toLength: 33, withPad: " ", startingAt: 0), k.role.padding(toLength: 11, withPad: " ", startingAt: 0),
                            k.status.padding(toLength: 13, withPad: " ", startingAt: 0), k.created.padding(toLength: 21, withPad: " ", startingAt: 0),
                            (k.due ?? "-").padding(toLength: 21, withPad: " ", startingAt: 0), k.holdsSecret ? "yes" : "no"]
                print(cols.joined(separator: " ") + (k.label.map { "  \($0)" } ?? ""))
            }
        }
    }

    struct Status: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Check the keys against their cryptoperiods: exit 0 when all is well, 1 when a key is overdue for rotation.")

        @OptionGroup var keyring: KeyringOption

        @Flag(name: .long, help: "Print the keys and any overdue warnings as JSON.")
        var json = false

        struct Report: Encodable {
            var ok: Bool
            var overdue: [String]
            var keys: [Keyring.KeyInfo]
        }

        func run() throws {
            let ring = try keyring.open()
            let warnings = ring.overdueWarnings()
            if json { try Output.json(Report(ok: warnings.isEmpty, overdue: warnings, keys: ring.keys())) }
            for warning in warnings { Output.warning(warning) }
            if !warnings.isEmpty { throw ExitCode(1) }
            if json { return }
            let active = ring.keys().filter { $0.status == "active" }
            for key in active { print("ok: \(key.role) key \(key.id) is within its cryptoperiod (due \(key.due ?? "-"))") }
        }
    }

    struct AddRecipient: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "add-recipient",
            abstract: "Add a standing recipient (escrow or break-glass public key): every new or re-wrapped archive is sealed to it too.")

        @Argument(help: "An encryption public key file (e.g. ESCROW_KEYRING/encryption/KEYID.pub).")
        var file: String

        @Option(name: .long, help: "What this recipient is, e.g. 'escrow: legal department safe'.")
        var label = "escrow"

        @OptionGroup var keyring: KeyringOption

        func run() throws {
            let ring = try keyring.open()
            let id = try ring.addRecipient(publicKeyFile: file, label: label)
            print("added standing recipient \(id) (\(label)); new archives are sealed to it as well")
            Output.nextStepsAtTheCustodian(ring)
        }
    }

    struct ExportPublic: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "export-public",
            abstract: "Write the keyring's public keys to a new directory: for an archiving host (with --include-signing-key) or auditors.",
            discussion: "An archiving host with this export can create and sign archives but never decrypt them.")

        @Option(name: .long, help: "The directory to create.")
        var out: String?

        @Flag(name: .long, help: "Also copy the signing secret key, so the export can create archives.")
        var includeSigningKey = false

        @Option(name: .long, help: "An existing archiving host's export to refresh in place (after a rotation or a new escrow recipient).")
        var update: String?

        func validate() throws {
            if (out == nil) == (update == nil) { throw ValidationError("give either --out NEW_DIR or --update EXISTING_EXPORT") }
        }

        @OptionGroup var keyring: KeyringOption

        @Flag(name: .long, help: "Print what was exported as JSON.")
        var json = false

        func run() throws {
            let target = update ?? out ?? ""
            try keyring.open().exportPublic(to: target, includeSigningKey: includeSigningKey, update: update != nil)
            if json {
                struct Exported: Encodable { var directory: String; var includesSigningKey: Bool; var holdsEncryptionSecrets: Bool }
                return try Output.json(Exported(directory: target, includesSigningKey: includeSigningKey, holdsEncryptionSecrets: false))
            }
            print("exported public keys\(includeSigningKey ? " and the signing key" : "") to \(target)\(update != nil ? " (updated in place)" : ""): it holds no encryption secret key")
        }
    }

    struct Retire: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Destroy the secret half of an encryption key (crypto-shredding), after a typed confirmation.",
            discussion: """
            Every archive wrapped only to this key becomes unrecoverable. Name where your archives are with --archives \
            (directories, searched recursively, or archive files; repeatable): the archives that depend on the key are \
            listed first, with how many were scanned. A path that does not exist is an error, and so is finding no \
            archive at all — unless --no-archives-expected says that no archive wrapped to this key is meant to survive. \
            With --vault, the vault's archives are scanned too, every archive its journal ever recorded must be found \
            (in the vault, or as a copy under --archives: copies are told by their archive digest), and the \
            retirement is recorded in its journal. Every copy the vault's journal records ('push') is checked as well: \
            one that is reachable is scanned like any archive (a copy made before a rewrap is still wrapped to the old \
            key); one that is not (an offsite disk not mounted) and was wrapped to this key stops the retirement, \
            named, unless --skip-unreachable-copies says it may become unreadable.
            """)

        @Argument(help: "The key id (see 'keys list').")
        var keyID: String

        @Option(name: .long, help: "A directory (searched recursively) or archive file to check for dependence on the key; repeatable.")
        var archives: [String] = []

        @Option(name: .long, help: ArgumentHelp("A vault: scan its archives, require every archive its journal records to be found, and journal the retirement; repeatable.", valueName: "VAULT"))
        var vault: [String] = []

        @Flag(name: .long, help: "Retire even though no archive was named or found: no archive wrapped to this key is meant to survive.")
        var noArchivesExpected = false

        @Flag(name: .long, help: "Retire although copies the vault's journal records as wrapped to this key cannot be reached (each is listed): they may become unreadable.")
        var skipUnreachableCopies = false

        @Option(name: .long, help: "The key id again, to confirm without a terminal (for scripts).")
        var confirm: String?

        @OptionGroup var keyring: KeyringOption

        @Flag(name: .long, help: "Print the scan and the result as JSON (needs --confirm: no prompt).")
        var json = false

        struct Report: Encodable {
            var keyID: String
            var archivesScanned: Int?
            var dependents: [KeyDependencies.Dependency]
            var retired: Bool
        }

        func validate() throws {
            if json && confirm == nil { throw ValidationError("--json needs --confirm KEYID (no prompt is shown)") }
        }

        func run() throws {
            let ring = try keyring.open()
            var report = Report(keyID: keyID, archivesScanned: nil, dependents: [], retired: false)
            if archives.isEmpty && vault.isEmpty && !noArchivesExpected {
                throw ValidationFailure("name where your archives are with --archives PATH or --vault VAULT (repeatable), so that the ones depending on \(keyID) are listed first; or pass --no-archives-expected if no archive wrapped to it is meant to survive")
            }
            // Each vault's journal is checked, and its signing key not revoked, before anything is destroyed:
            // the retirement must be recordable.
            let vaults = try vault.map { try Vault.open($0) }
            let (trusted, signer) = vaults.isEmpty ? ([], nil) : (try ring.trustedSigningKeys(), try ring.signingKey())
            for opened in vaults {
                try opened.checkJournal(trusting: trusted)
                try opened.checkNotRevoked(signer!.publicKey, trusting: trusted, making: "the journal record of the retirement")
            }
            // The copies each vault's journal records: reachable ones are scanned; unreachable ones wrapped to the
            // key stop the retirement unless the operator says they may go.
            var copies: [String] = []
            var unreachable: [JournalRecord] = []
            for opened in vaults {
                for record in try opened.recordedCopies(trusting: trusted) {
                    guard let target = record.target else { continue }
                    // Reachable: there, an archive, and the one recorded (by archive digest); anything else
                    // cannot be checked.
                    let there = (try? ArchiveFile(path: target)).map { $0.summary.archiveDigest == record.archiveDigest } ?? false
                    if there { copies.append(target) } else if record.recipients?.contains(keyID) ?? true { unreachable.append(record) }
                }
            }
            if !unreachable.isEmpty {
                let named = unreachable.map { "\($0.target ?? "?") (a copy of \($0.file ?? "?"), wrapped to \(($0.recipients ?? []).joined(separator: ", ")))" }
                if !skipUnreachableCopies {
                    throw ValidationFailure("the vault's journal records \(unreachable.count) cop\(unreachable.count == 1 ? "y" : "ies") wrapped to \(keyID) that cannot be reached: \(named.joined(separator: "; ")). Mount them (and, to keep them readable, rewrap them where they are: coldarchive rewrap COPY, then push again to record it), or pass --skip-unreachable-copies if they may become unreadable; key \(keyID) was not retired")
                }
                if !json { for name in named { print("  not reachable, may become unreadable: \(name)") } }
            }
            let paths = archives + vaults.map { "\($0.root)/\(Vault.seriesFolder)" }.filter { FileManager.default.fileExists(atPath: $0) } + copies
            if !paths.isEmpty {
                let scan = try KeyDependencies.scan(paths, wrappedTo: keyID, keyring: ring)
                let dependents = scan.dependents
                report.archivesScanned = scan.archivesScanned
                report.dependents = dependents
                if !json { print("scanned \(scan.archivesScanned) archive\(scan.archivesScanned == 1 ? "" : "s") in \((archives + vault).joined(separator: ", ")); \(dependents.count) wrapped to \(keyID)") }
                for opened in vaults {
                    let unseen = try opened.recordedArchives(trusting: trusted).filter { !scan.archiveDigests.contains($0.archiveDigest ?? "") }
                    guard unseen.isEmpty else {
                        let named = unseen.prefix(5).map { $0.file ?? "?" }.joined(separator: ", ") + (unseen.count > 5 ? ", …" : "")
                        throw ValidationFailure("the journal of \(opened.root) records \(unseen.count) archive\(unseen.count == 1 ? "" : "s") not found (\(named)): each may depend on \(keyID). Name where the copies are with --archives PATH; key \(keyID) was not retired")
                    }
                }
                if scan.archivesScanned == 0 && !noArchivesExpected {
                    throw ValidationFailure("no archive found in \((archives + vault).joined(separator: ", ")); key \(keyID) was not retired. Check the path, or pass --no-archives-expected if none is meant to survive")
                }
                for d in dependents where !json {
                    let note = d.becomesUnreadable
                        ? (d.escrowKeys.isEmpty ? "UNRECOVERABLE after retirement" : "unreadable here; escrow \(d.escrowKeys.joined(separator: ", ")) can still open it")
                        : "still opens with \(d.otherHeldKeys.joined(separator: ", "))"
                    print("  \(d.archive): \(note)")
                }
            }
            let typed = confirm ?? Terminal.ask("Type the key id \(keyID) to destroy its secret key for good: ")
            guard let typed else { throw ValidationFailure("no terminal to confirm on; pass --confirm \(keyID)") }
            guard typed.trimmingCharacters(in: .whitespaces) == keyID else {
                throw ValidationFailure("confirmation did not match; key \(keyID) was not retired")
            }
            try ring.retire(keyID: keyID)
            report.retired = true
            for opened in vaults {
                var record = JournalRecord(event: .keyRetired)
                record.key = keyID
                let written = try Journal.append(record, to: opened.journalPath, signer: signer!)
                if !json { print("journal record \(written.n) in \(opened.root): key \(keyID) retired") }
            }
            if json { return try Output.json(report) }
            print("retired \(keyID): its secret key is destroyed; archives wrapped only to it can no longer be opened")
        }
    }

    struct Passwd: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Change the passphrase that protects the keyring's secret key files.")

        @OptionGroup var keyring: KeyringOption

        @Option(name: .long, help: "File whose first line is the new passphrase (else $COLDARCHIVE_NEW_PASSPHRASE, else the terminal).")
        var newPassphraseFile: String?

        @Flag(name: .long, help: "Remove the passphrase protection (unattended hosts only).")
        var noPassphrase = false

        func run() throws {
            let ring = try keyring.open()
            var newPassphrase: Passphrase?
            if noPassphrase {
                Output.warning("--no-passphrase: the secret keys in \(keyring.directory) will be stored UNENCRYPTED")
            } else if let file = newPassphraseFile {
                newPassphrase = try Passphrase.fromFile(file)
            } else if var env = ProcessInfo.processInfo.environment["COLDARCHIVE_NEW_PASSPHRASE"].map({ Array($0.utf8) }), !env.isEmpty {
                newPassphrase = try Passphrase(bytes: &env)
            } else if let asked = try Terminal.askNewPassphrase() {
                newPassphrase = asked
            } else {
                throw ValidationFailure("give the new passphrase with --new-passphrase-file or COLDARCHIVE_NEW_PASSPHRASE, or run on a terminal")
            }
            Output.warnIfShort(newPassphrase)
            try ring.changePassphrase(to: newPassphrase)
            print(newPassphrase == nil ? "passphrase removed" : "passphrase changed for every secret key in \(keyring.directory)")
        }
    }
}
