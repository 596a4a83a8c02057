import ArgumentParser
import ColdArchive
import Foundation

struct VerifyCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "verify",
        abstract: "Check archives' integrity and signer.",
        discussion: """
        With --trust (auditors): needs only the signing public key; checks the structure, the signature over \
        header and trailer, and every chunk's hash, and reads no customer data.
        With --chain DIR, signing key rotation statements are followed from the --trust key. \
        With --deep (key holders): additionally decrypts and decompresses everything and checks every entry \
        against the manifest; writes nothing.
        Every FILE given is checked, whatever the others gave; a damaged archive is reported with every damaged \
        chunk (index and byte range, and with --deep, for a format 2 archive, the files each damaged chunk holds: \
        what a restore would lose). With --json, one JSON object per archive and line, for success and failure \
        alike ("valid": true or false, "error", "damagedChunks"). Exit status: 1 if any archive failed a check, \
        else 3 if any could not be read, else 0.
        """)

    @Argument(help: "The archive files.")
    var files: [String] = []

    @OptionGroup var trust: TrustOption

    @Flag(name: .long, help: "Decrypt and check every entry (needs the keyring's secret keys).")
    var deep = false

    @OptionGroup var keyring: KeyringOption

    @Flag(name: .long, help: "Print one JSON object per archive (JSON Lines).")
    var json = false

    func validate() throws {
        if files.isEmpty { throw ValidationError("name at least one archive FILE") }
        if trust.trust == nil && !deep { throw ValidationError("pass --trust SIGNING_PUBLIC_KEY_FILE, or --deep to check with the keyring") }
        if trust.chain != nil && trust.trust == nil { throw ValidationError("--chain follows statements from the key given with --trust") }
    }

    /// One archive's result: the report's fields when it checked out, the error and every damaged
    /// chunk when it did not.
    struct Outcome: Encodable {
        var archive: String
        var report: VerificationReport?
        var error: String?
        var errorKind: FailureKind?
        var damagedChunks: [DamagedChunk] = []

        enum Keys: String, CodingKey { case archive, valid, error, errorKind, damagedChunks }

        func encode(to encoder: Encoder) throws {
            try report?.encode(to: encoder)
            var container = encoder.container(keyedBy: Keys.self)
            try container.encode(archive, forKey: .archive)
            try container.encode(report != nil, forKey: .valid)
            if let error {
                try container.encode(error, forKey: .error)
                try container.encode(errorKind == .integrity ? "integrity" : "other", forKey: .errorKind)
                try container.encode(damagedChunks, forKey: .damagedChunks)
            }
        }
    }

    func run() throws {
        let trusted = try trust.keys()
        let ring = deep ? try keyring.open() : nil
        var worst: Int32 = 0
        for file in files {
            var outcome = Outcome(archive: file)
            do {
                if let ring {
                    outcome.report = try Verifier.verifyDeep(path: file, keyring: ring, trusting: trusted)
                } else {
                    outcome.report = try Verifier.verify(path: file, trusting: trusted ?? [])
                }
            } catch let error as ColdArchiveError {
                outcome.error = error.description
                outcome.errorKind = error.kind
                if case IntegrityError.chunkHashMismatch = error, let keys = try trusted ?? ring?.trustedSigningKeys() {
                    outcome.damagedChunks = (try? Verifier.damagedChunks(path: file, trusting: keys)) ?? []
                    // With the keyring (--deep): which files each damaged chunk holds.
                    if let ring { outcome.damagedChunks = Verifier.identifyFiles(in: outcome.damagedChunks, path: file, keyring: ring) }
                }
                worst = error.kind == .integrity ? 1 : (worst == 1 ? 1 : error.kind.rawValue)
            }
            // An archive in a vault: the check goes into its catalog, with its time and result.
            VaultRecords.checked(file: file, kind: ring == nil ? "verify" : "verify-deep", ok: outcome.report != nil,
                                 digest: outcome.report?.summary.archiveDigest, detail: outcome.error)
            if let ring, outcome.report != nil { VaultRecords.decrypted(file: file, purpose: "verify-deep", keyring: ring) }
            if json {
                try Output.jsonLine(outcome)
            } else if let report = outcome.report {
                print("OK \(file): intact, signed by \(report.signer)")
                print("  \(report.chunksChecked) chunks hashed (\(Output.bytes(report.bytesHashed))), archive digest \(report.summary.archiveDigest)")
                if let entries = report.entriesChecked, let bytes = report.contentBytesChecked {
                    print("  \(entries) entries decrypted and checked against the manifest (\(Output.bytes(bytes)) of content)")
                }
            } else {
                print("FAILED \(file)")
                Output.error("\(file): \(outcome.error ?? "")")
                for chunk in outcome.damagedChunks {
                    print("  damaged chunk \(chunk.index): bytes \(chunk.offset)–\(chunk.offset + chunk.length - 1) (\(Output.bytes(chunk.length)))")
                    if let files = chunk.files {
                        let more = chunk.moreFiles.map { " and \($0) more" } ?? ""
                        print("    holds \(files.count + (chunk.moreFiles ?? 0)) entr\(files.count + (chunk.moreFiles ?? 0) == 1 ? "y" : "ies")\(files.isEmpty ? "" : ":")")
                        for path in files { print("      \(DisplayName.escaped(path))") }
                        if !more.isEmpty { print("     \(more)") }
                    } else if let why = chunk.filesUnknown {
                        print("    which files it holds is unknown: \(why)")
                    }
                }
            }
        }
        if worst != 0 { throw ExitCode(worst) }
    }
}
