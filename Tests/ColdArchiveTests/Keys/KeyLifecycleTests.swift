import Foundation
import Testing
@testable import ColdArchive

@Suite struct KeyLifecycleTests {
    func archive(_ scratch: Scratch, _ keyring: Keyring, name: String, signer: SigningKey? = nil) throws -> String {
        let source = try TreeBuilder.crmTree(at: scratch.sub("src-\(name)"), attachmentBytes: 20_000)
        _ = try ArchiveCreator.create(CreateOptions(sources: [source], output: scratch.sub(name)),
                                      signer: try signer ?? keyring.signingKey(), recipients: try keyring.recipientPublicKeys())
        return scratch.sub(name)
    }

    func restores(_ path: String, _ keyring: Keyring, _ scratch: Scratch, trusting: [SigningPublicKey]? = nil) throws -> Bool {
        let target = scratch.sub("out-\(UUID().uuidString.prefix(6))")
        let report = try Restorer.restore(archivePath: path, to: target, keyring: keyring, trusting: trusting)
        return report.entries == 12
    }

    @Test func rotationKeepsArchivesOfEveryKeyVersionRestorable() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        var archives: [(String, String)] = []
        for version in 1...3 {
            let id = keys.keyring.activeEncryptionKeyID
            archives.append((try archive(scratch, keys.keyring, name: "v\(version).car"), id))
            try keys.keyring.rotateEncryptionKey()
        }
        #expect(Set(archives.map(\.1)).count == 3)
        for (path, id) in archives {
            #expect(try ArchiveFile(path: path).recipientKeyIDs == [id])
            #expect(try restores(path, keys.keyring, scratch))
        }
        let statuses = keys.keyring.keys().filter { $0.role == "encryption" }.map(\.status)
        #expect(statuses == ["decrypt-only", "decrypt-only", "decrypt-only", "active"])
    }

    @Test func rewrapThenRetireTheOldKeyThenRestore() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let oldID = keys.keyring.activeEncryptionKeyID
        let kept = try archive(scratch, keys.keyring, name: "kept.car")
        let shredded = try archive(scratch, keys.keyring, name: "shredded.car")
        let before = try ArchiveFile(path: kept).summary
        let newID = try keys.keyring.rotateEncryptionKey()

        let report = try Rewrapper.rewrap(path: kept, keyring: keys.keyring)
        #expect(report.previousRecipients == [oldID] && report.recipients == [newID])
        let after = try ArchiveFile(path: kept).summary
        // The archive's identity, totals and signature are untouched; only the recipients changed.
        #expect(after.headerDigest == before.headerDigest && after.archiveDigest == before.archiveDigest)
        #expect(after.recipientKeyIDs == [newID])
        _ = try Verifier.verify(path: kept, trusting: keys.signer.publicKey)

        let dependents = try KeyDependencies.scan([scratch.path], wrappedTo: oldID, keyring: keys.keyring).dependents
        #expect(dependents.map(\.archive) == [shredded])
        #expect(dependents[0].becomesUnreadable)

        let retiredAt = Date(timeIntervalSince1970: 1_798_761_600)  // 2027-01-01T00:00:00Z
        try keys.keyring.retire(keyID: oldID, now: retiredAt)
        #expect(!FileManager.default.fileExists(atPath: "\(keys.directory)/encryption/\(oldID).key"))
        #expect(try restores(kept, keys.keyring, scratch))
        // Crypto-shredding: the archive wrapped only to the retired key can no longer be opened, and the
        // message says it was retired and when (issue 16, input 4), not a generic "no key can open it".
        #expect(throws: KeyError.retiredKey(keyIDs: [oldID], retired: "2027-01-01T00:00:00Z", otherRecipients: [])) {
            _ = try restores(shredded, keys.keyring, scratch)
        }
        // But it is still intact and verifiable for the auditor.
        _ = try Verifier.verify(path: shredded, trusting: keys.signer.publicKey)
    }

    @Test func theActiveKeyCannotBeRetired() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        #expect(throws: KeyError.self) { try keys.keyring.retire(keyID: keys.keyring.activeEncryptionKeyID) }
        #expect(throws: KeyError.unknownKey(id: "00")) { try keys.keyring.retire(keyID: "00") }
    }

    @Test func theEscrowKeyAloneRestores() throws {
        let scratch = try Scratch()
        let site = try TestKeys(in: scratch, name: "site")
        let escrow = try TestKeys(in: scratch, name: "escrow")
        let escrowID = escrow.keyring.activeEncryptionKeyID
        try site.keyring.addRecipient(publicKeyFile: "\(escrow.directory)/encryption/\(escrowID).pub", label: "escrow: legal safe")
        let path = try archive(scratch, site.keyring, name: "a.car")
        #expect(try ArchiveFile(path: path).recipientKeyIDs == [site.keyring.activeEncryptionKeyID, escrowID])
        // The escrow holder trusts the site's signing key, and holds only the escrow secret.
        #expect(try restores(path, escrow.keyring, scratch, trusting: [site.signer.publicKey]))
        // Without that trust, the escrow keyring refuses an archive signed by someone else.
        #expect(throws: IntegrityError.self) { _ = try restores(path, escrow.keyring, scratch) }
    }

    @Test func aHostWithOnlyPublicKeysCreatesButCannotRestore() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try keys.keyring.exportPublic(to: scratch.sub("host"), includeSigningKey: true)
        let host = try Keyring(directory: scratch.sub("host"))
        #expect(host.secretKeyIDs().isEmpty)
        let path = try archive(scratch, host, name: "a.car")
        #expect(throws: KeyError.self) { _ = try restores(path, host, scratch) }
        #expect(try restores(path, keys.keyring, scratch))
        let secrets = try FileManager.default.subpathsOfDirectory(atPath: scratch.sub("host")).filter { $0.hasSuffix(".key") }
        #expect(secrets == ["signing.key"])
    }

    @Test func passphraseProtectedKeysOpenOnlyWithThePassphrase() throws {
        let scratch = try Scratch()
        var right = Array("correct horse battery staple".utf8)
        var wrong = Array("Tr0ub4dor&3".utf8)
        let directory = scratch.sub("keys")
        try Keyring.initialize(at: directory, passphrase: try Passphrase(bytes: &right))
        // The secret key bytes are not in the file in the clear.
        let keyfile = try Data(contentsOf: URL(fileURLWithPath: "\(directory)/signing.key"))
        #expect(keyfile[10] == 1)  // protection: passphrase
        #expect(throws: KeyError.wrongPassphrase(path: "\(directory)/signing.key")) {
            try Keyring(directory: directory, passphrase: .fixed(try Passphrase(bytes: &wrong))).signingKey()
        }
        #expect(throws: KeyError.passphraseRequired(path: "\(directory)/signing.key")) { try Keyring(directory: directory).signingKey() }
        var again = Array("correct horse battery staple".utf8)
        let ring = try Keyring(directory: directory, passphrase: .fixed(try Passphrase(bytes: &again)))
        let path = try archive(scratch, ring, name: "a.car")
        #expect(try restores(path, ring, scratch))

        // passwd: the new passphrase opens the keys, the old one no longer does.
        var newer = Array("a new passphrase for 2027".utf8)
        try ring.changePassphrase(to: try Passphrase(bytes: &newer))
        var old = Array("correct horse battery staple".utf8)
        #expect(throws: KeyError.self) { try Keyring(directory: directory, passphrase: .fixed(try Passphrase(bytes: &old))).signingKey() }
        var current = Array("a new passphrase for 2027".utf8)
        let reopened = try Keyring(directory: directory, passphrase: .fixed(try Passphrase(bytes: &current)))
        _ = try reopened.signingKey()
        #expect(try restores(path, reopened, scratch))
    }

    /// Rewrites a secret key file's bytes and recomputes its checksum: a well-formed but altered file.
    func alterKeyFile(_ path: String, _ change: (inout [UInt8]) -> Void) throws {
        var bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        change(&bytes)
        bytes.replaceSubrange((bytes.count - 32)..., with: Sodium.blake2b(Array(bytes[..<(bytes.count - 32)])))
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Argon2id limits outside MODERATE…SENSITIVE, each in a checksummed file: refused before Argon2id
    /// runs. Limits just past a cap are computable (a file without the cap would run them and then
    /// fail on the passphrase), so only the cap gives this reason.
    @Test(arguments: [(Sodium.pwhashOpsSensitive + 1, Sodium.pwhashMemModerate), (Sodium.pwhashOpsModerate, Sodium.pwhashMemSensitive + 1024),
                      (UInt64(1), Sodium.pwhashMemModerate), (Sodium.pwhashOpsModerate, UInt64(8192)), (Sodium.pwhashOpsModerate, UInt64(1) << 40)]
                      as [(UInt64, UInt64)])
    func argon2LimitsOutsideTheCapsAreRefusedBeforeArgon2Runs(ops: UInt64, mem: UInt64) throws {
        let scratch = try Scratch()
        var passphrase = Array("pass".utf8)
        let directory = scratch.sub("keys")
        try Keyring.initialize(at: directory, passphrase: try Passphrase(bytes: &passphrase))
        let path = "\(directory)/signing.key"
        // The limits follow the 52-byte prefix: opslimit (u64 LE at 52), memlimit (u64 LE at 60).
        var reader = ByteReader(Array(Array(try Data(contentsOf: URL(fileURLWithPath: path)))[52..<68]), what: "test")
        #expect(try reader.u64() == Sodium.pwhashOpsModerate)
        #expect(try reader.u64() == Sodium.pwhashMemModerate)
        try alterKeyFile(path) { bytes in
            withUnsafeBytes(of: ops.littleEndian) { for (i, b) in $0.enumerated() { bytes[52 + i] = b } }
            withUnsafeBytes(of: mem.littleEndian) { for (i, b) in $0.enumerated() { bytes[60 + i] = b } }
        }
        var again = Array("pass".utf8)
        #expect(throws: KeyError.argon2LimitsOutOfRange(path: path, ops: ops, mem: mem)) {
            try Keyring(directory: directory, passphrase: .fixed(try Passphrase(bytes: &again))).signingKey()
        }
    }

    /// A second name for a secret key file's inode: after the key is destroyed, what it holds is what
    /// stayed on the disk.
    func holdInode(_ path: String, _ scratch: Scratch) throws -> String {
        let held = scratch.sub("held-\(UUID().uuidString.prefix(6))")
        #expect(link(path, held) == 0)
        #expect(try Data(contentsOf: URL(fileURLWithPath: held)).contains { $0 != 0 })
        return held
    }

    @Test func signingKeyRotationOverwritesTheOldSecret() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let held = try holdInode("\(keys.directory)/signing.key", scratch)
        try keys.keyring.rotateSigningKey()
        #expect(try Data(contentsOf: URL(fileURLWithPath: held)).allSatisfy { $0 == 0 })
        #expect(try keys.keyring.signingKey().publicKey != keys.signer.publicKey)
        #expect(try FileManager.default.contentsOfDirectory(atPath: keys.directory).filter { $0.contains("superseded") }.isEmpty)
    }

    /// Issue 16: `export-public --update` after a signing rotation overwrites the host's old signing
    /// secret, as the rotation does at the custodian, instead of only unlinking it.
    @Test func updatingAHostOverwritesItsOldSigningSecret() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let host = scratch.sub("host")
        try keys.keyring.exportPublic(to: host, includeSigningKey: true)
        let held = try holdInode("\(host)/signing.key", scratch)
        try keys.keyring.rotateSigningKey()
        try keys.keyring.exportPublic(to: host, includeSigningKey: true, update: true)
        #expect(try Data(contentsOf: URL(fileURLWithPath: held)).allSatisfy { $0 == 0 })
        #expect(try Keyring(directory: host).signingKey().publicKey == keys.keyring.signingKey().publicKey)
        #expect(try FileManager.default.contentsOfDirectory(atPath: host).filter { $0.contains("superseded") }.isEmpty)
    }

    /// A rotation killed midway leaves a second name of a secret; the next rotation removes it —
    /// shredding an old secret, only unlinking a name of the current key.
    @Test func theNextRotationRemovesWhatAKilledOneLeft() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let current = "\(keys.directory)/signing.key"
        let oldSecret = "\(keys.directory)/\(Keyring.supersededSigningKeyPrefix)1"
        try copyFile(current, oldSecret)
        let held = try holdInode(oldSecret, scratch)
        #expect(link(current, "\(keys.directory)/\(Keyring.supersededSigningKeyPrefix)2") == 0)
        try keys.keyring.rotateSigningKey()
        #expect(try Data(contentsOf: URL(fileURLWithPath: held)).allSatisfy { $0 == 0 })
        #expect(try FileManager.default.contentsOfDirectory(atPath: keys.directory).filter { $0.contains("superseded") }.isEmpty)
        #expect(try keys.keyring.signingKey().publicKey != keys.signer.publicKey)
    }

    @Test func retireOverwritesTheKeyFile() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let old = keys.recipients[0].keyIDHex
        _ = try keys.keyring.rotateEncryptionKey()
        let held = try holdInode("\(keys.directory)/encryption/\(old).key", scratch)
        try keys.keyring.retire(keyID: old)
        #expect(try Data(contentsOf: URL(fileURLWithPath: held)).allSatisfy { $0 == 0 })
        #expect(!FileManager.default.fileExists(atPath: "\(keys.directory)/encryption/\(old).key"))
    }

    @Test func aSecretKeyFileOthersCanReadIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let path = "\(keys.directory)/signing.key"
        #expect(chmod(path, 0o640) == 0)
        #expect(throws: KeyError.insecurePermissions(path: path, mode: 0o640)) { try keys.keyring.signingKey() }
    }

    @Test func anOversizedKeyFileIsRefusedBeforeItIsRead() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let path = "\(keys.directory)/signing.key"
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(count: 5000))
        try handle.close()
        let size = fileSize(path)
        #expect(throws: OperationError("'\(path)' is \(size) bytes, larger than the 4096 bytes such a file may have")) {
            try keys.keyring.signingKey()
        }
    }

    @Test func anAlteredSecretKeyFileIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let path = "\(keys.directory)/signing.key"
        try flipBit(path, at: 14)  // inside `created`: harmless to the key, caught only by the checksum
        #expect(throws: KeyError.keyFileTampered(path: path)) { try keys.keyring.signingKey() }
    }

    /// A key file whose recorded public half belongs to another key (checksum recomputed).
    @Test func aSecretKeyFileWithAForeignPublicHalfIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let other = try TestKeys(in: scratch, name: "other")
        let path = "\(keys.directory)/signing.key"
        try alterKeyFile(path) { bytes in bytes.replaceSubrange(20..<52, with: other.signer.publicKey.bytes) }
        #expect(throws: KeyError.keyFileTampered(path: path)) { try keys.keyring.signingKey() }
    }

    /// Every command that writes a secret key file, each run under `umask 0` in its own process (a
    /// process-wide umask in the test runner would leak into tests running beside this one).
    @Test func everySecretKeyFileStaysPrivate() throws {
        let scratch = try Scratch()
        let directory = scratch.sub("keys")
        func run(_ arguments: String, _ environment: [String: String] = [:]) throws {
            let result = try CLI.run(["-c", "umask 0; exec '\(CLI.executable)' \(arguments)"], environment: environment, executable: "/bin/bash")
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
        }
        try run("keys init --no-passphrase --keyring '\(directory)'")
        try run("keys rotate --keyring '\(directory)'")
        try run("keys rotate --signing --keyring '\(directory)'")
        try run("keys passwd --keyring '\(directory)'", ["COLDARCHIVE_NEW_PASSPHRASE": "a passphrase for the umask test"])
        try run("keys export-public --include-signing-key --out '\(scratch.sub("host"))' --keyring '\(directory)'",
                ["COLDARCHIVE_PASSPHRASE": "a passphrase for the umask test"])
        for root in [directory, scratch.sub("host")] {
            for sub in try FileManager.default.subpathsOfDirectory(atPath: root) where sub.hasSuffix(".key") {
                let mode = try FileManager.default.attributesOfItem(atPath: "\(root)/\(sub)")[.posixPermissions] as? Int
                #expect(mode == 0o600, "\(root)/\(sub)")
            }
        }
    }

    /// `keys passwd`, `keys add-recipient` and `restore --trust`, as an operator and an escrow holder
    /// run them.
    @Test func passwdAddRecipientAndRestoreWithTrustThroughTheBinary() throws {
        let scratch = try Scratch()
        let site = scratch.sub("site"), escrow = scratch.sub("escrow")
        let first = ["COLDARCHIVE_PASSPHRASE": "first site passphrase"]
        let second = ["COLDARCHIVE_PASSPHRASE": "second site passphrase"]
        #expect(try CLI.run(["keys", "init", "--keyring", site], environment: first).status == 0)
        let passwd = try CLI.run(["keys", "passwd", "--keyring", site],
                                 environment: first.merging(["COLDARCHIVE_NEW_PASSPHRASE": "second site passphrase"]) { $1 })
        #expect(passwd.status == 0, "\(passwd.stderr)")
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", escrow]).status == 0)
        let escrowKey = try #require(try FileManager.default.contentsOfDirectory(atPath: "\(escrow)/encryption").first { $0.hasSuffix(".pub") })
        let added = try CLI.run(["keys", "add-recipient", "\(escrow)/encryption/\(escrowKey)", "--label", "escrow: legal", "--keyring", site],
                                environment: second)
        #expect(added.status == 0, "\(added.stderr)")

        let source = try TreeBuilder.crmTree(at: scratch.sub("src"), attachmentBytes: 5000)
        let archive = scratch.sub("a.car")
        // The old passphrase no longer opens the signing key; the new one does.
        let refused = try CLI.run(["create", "--keyring", site, "--out", archive, source], environment: first)
        #expect(refused.status == 3 && refused.stderr.contains("passphrase is wrong"), "\(refused.stderr)")
        let created = try CLI.run(["create", "--keyring", site, "--out", archive, source], environment: second)
        #expect(created.status == 0, "\(created.stderr)")

        // The escrow holder restores with its own key, trusting the site's signing key.
        let untrusted = try CLI.run(["restore", archive, "--keyring", escrow, "--to", scratch.sub("no")])
        #expect(untrusted.status == 1, "\(untrusted.stderr)")
        let restored = try CLI.run(["restore", archive, "--keyring", escrow, "--trust", "\(site)/signing.pub", "--to", scratch.sub("out")])
        #expect(restored.status == 0, "\(restored.stderr)")
        #expect(try TreeSnapshot(source) == TreeSnapshot(scratch.sub("out/crm")))
    }

    @Test func anAuditorFollowsTheSigningChainFromTheFirstKey() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let first = keys.signer.publicKey
        let oldArchive = try archive(scratch, keys.keyring, name: "old.car")
        try keys.keyring.rotateSigningKey()
        try keys.keyring.rotateSigningKey()
        let newArchive = try archive(scratch, keys.keyring, name: "new.car")
        #expect(try ArchiveFile(path: newArchive).summary.signerFingerprint != first.fingerprint)

        // Trusting only the first key fails; following the chain from it succeeds.
        #expect(throws: IntegrityError.self) { try Verifier.verify(path: newArchive, trusting: first) }
        let chain = try SigningKeyStatement.follow(from: first, statementsIn: keys.keyring.signingChainDirectory)
        #expect(chain.count == 3)
        _ = try Verifier.verify(path: newArchive, trusting: chain)
        // The keyring still trusts the archives its earlier keys signed.
        #expect(try restores(oldArchive, keys.keyring, scratch))

        // A statement altered after the fact breaks the chain.
        let dir = keys.keyring.signingChainDirectory
        let name = try FileManager.default.contentsOfDirectory(atPath: dir).sorted()[0]
        var text = try String(contentsOfFile: "\(dir)/\(name)", encoding: .utf8)
        text = text.replacingOccurrences(of: "date: 20", with: "date: 19")
        try text.write(toFile: "\(dir)/\(name)", atomically: false, encoding: .utf8)
        #expect(throws: IntegrityError.self) { _ = try SigningKeyStatement.follow(from: first, statementsIn: dir) }
    }

    @Test func anOverdueKeyIsReported() throws {
        let scratch = try Scratch()
        let ring = try Keyring.initialize(at: scratch.sub("keys"), passphrase: nil, now: Date().addingTimeInterval(-100 * 86_400))
        let warnings = ring.overdueWarnings()
        #expect(warnings.count == 1)
        #expect(warnings[0].contains("active encryption key") && warnings[0].contains("keys rotate"))
        // Through the binary: exit 1 as documented, the warning on stderr, no Swift error text.
        let status = try CLI.run(["keys", "status", "--keyring", scratch.sub("keys")])
        #expect(status.status == 1, "\(status.stderr)")
        #expect(status.stderr.contains("keys rotate") && !status.stderr.contains("ExitCode"), "\(status.stderr)")
        try ring.rotateEncryptionKey()
        #expect(ring.overdueWarnings().isEmpty)
        #expect(try CLI.run(["keys", "status", "--keyring", scratch.sub("keys")]).status == 0)
    }
}

@Suite struct KeyLifecycleCLITests {
    @Test func aWrongPassphraseExitsThreeAndSaysSo() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"), attachmentBytes: 1000)
        let right = ["COLDARCHIVE_PASSPHRASE": "right passphrase"]
        #expect(try CLI.run(["keys", "init", "--keyring", keyring], environment: right).status == 0)
        let wrong = try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("a.car"), source],
                                environment: ["COLDARCHIVE_PASSPHRASE": "wrong passphrase"])
        #expect(wrong.status == 3)
        #expect(wrong.stderr.contains("passphrase is wrong"))
        #expect(!FileManager.default.fileExists(atPath: scratch.sub("a.car")))
        // A passphrase file others can read is refused, as ssh refuses such a key; at 0600 it is used.
        try "right passphrase\n".write(toFile: scratch.sub("pass.txt"), atomically: false, encoding: .utf8)
        #expect(chmod(scratch.sub("pass.txt"), 0o644) == 0)
        let open = try CLI.run(["create", "--keyring", keyring, "--passphrase-file", scratch.sub("pass.txt"), "--out", scratch.sub("a.car"), source])
        #expect(open.status == 3)
        #expect(open.stderr.contains("passphrase file '\(scratch.sub("pass.txt"))' can be read or written by others (mode 644)"), "\(open.stderr)")
        #expect(chmod(scratch.sub("pass.txt"), 0o600) == 0)
        let ok = try CLI.run(["create", "--keyring", keyring, "--passphrase-file", scratch.sub("pass.txt"), "--out", scratch.sub("a.car"), source])
        #expect(ok.status == 0, "\(ok.stderr)")
    }

    @Test func aShortPassphraseIsAcceptedWithAWarning() throws {
        let scratch = try Scratch()
        let short = try CLI.run(["keys", "init", "--keyring", scratch.sub("short")], environment: ["COLDARCHIVE_PASSPHRASE": "hunter2"])
        #expect(short.status == 0)
        #expect(short.stderr.contains("warning: the passphrase has only 7 bytes"), "\(short.stderr)")
        let long = try CLI.run(["keys", "init", "--keyring", scratch.sub("long")], environment: ["COLDARCHIVE_PASSPHRASE": "correct horse battery staple"])
        #expect(long.status == 0)
        #expect(!long.stderr.contains("warning"), "\(long.stderr)")
    }

    /// A keyring path that cannot work is refused before any passphrase is asked (issue 16): here no
    /// passphrase source is given at all, so asking first would have ended in the usage error instead.
    @Test func keysInitRefusesABadPathBeforeAskingForAPassphrase() throws {
        let scratch = try Scratch()
        try TreeBuilder.write(scratch.sub("a-file"), "not a directory")
        let result = try CLI.run(["keys", "init", "--keyring", scratch.sub("a-file/keys")])
        #expect(result.status == 3)
        #expect(result.stderr.contains("cannot create a keyring at '\(scratch.sub("a-file/keys"))': '\(scratch.sub("a-file"))' is not a directory"),
                "\(result.stderr)")
    }

    @Test func keysInitWithoutAnyPassphraseSourceIsAUsageError() throws {
        let scratch = try Scratch()
        let result = try CLI.run(["keys", "init", "--keyring", scratch.sub("keys")])
        #expect(result.status == 2)
        #expect(result.stderr.contains("--no-passphrase"))
        let loud = try CLI.run(["keys", "init", "--no-passphrase", "--keyring", scratch.sub("keys")])
        #expect(loud.status == 0)
        #expect(loud.stderr.contains("UNENCRYPTED"))
    }

    @Test func statusListRotateRetireAndRewrapThroughTheBinary() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"), attachmentBytes: 1000)
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        #expect(try CLI.run(["keys", "status", "--keyring", keyring]).status == 0)
        try FileManager.default.createDirectory(atPath: scratch.sub("vault"), withIntermediateDirectories: true)
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("vault/a.car"), source]).status == 0)
        let oldID = try Keyring(directory: keyring).activeEncryptionKeyID
        #expect(try CLI.run(["keys", "rotate", "--keyring", keyring]).status == 0)
        let list = try CLI.run(["keys", "list", "--keyring", keyring, "--json"])
        let keys = try JSONDecoder().decode([Keyring.KeyInfo].self, from: Data(list.stdout.utf8))
        #expect(keys.filter { $0.role == "encryption" }.map(\.status) == ["decrypt-only", "active"])
        // A mistyped confirmation retires nothing.
        let mistyped = try CLI.run(["keys", "retire", oldID, "--keyring", keyring, "--archives", scratch.sub("vault"), "--confirm", "nope"])
        #expect(mistyped.status == 2)
        #expect(FileManager.default.fileExists(atPath: "\(keyring)/encryption/\(oldID).key"))
        // Rewrap, then retire: the listing says the archive no longer depends on the old key.
        #expect(try CLI.run(["rewrap", scratch.sub("vault/a.car"), "--keyring", keyring]).status == 0)
        let retire = try CLI.run(["keys", "retire", oldID, "--keyring", keyring, "--archives", scratch.sub("vault"), "--confirm", oldID])
        #expect(retire.status == 0, "\(retire.stderr)")
        #expect(retire.stdout.contains("scanned 1 archive in \(scratch.sub("vault")); 0 wrapped to \(oldID)"), "\(retire.stdout)")
        #expect(try CLI.run(["restore", scratch.sub("vault/a.car"), "--keyring", keyring, "--to", scratch.sub("out")]).status == 0)
        // An export without encryption secrets cannot restore (exit 3), but can create.
        #expect(try CLI.run(["keys", "export-public", "--keyring", keyring, "--out", scratch.sub("host"), "--include-signing-key"]).status == 0)
        #expect(try CLI.run(["create", "--keyring", scratch.sub("host"), "--out", scratch.sub("b.car"), source]).status == 0)
        let denied = try CLI.run(["restore", scratch.sub("b.car"), "--keyring", scratch.sub("host"), "--to", scratch.sub("out2")])
        #expect(denied.status == 3)
        #expect(denied.stderr.contains("none of this keyring's encryption keys"))
    }

    /// Issue 16, input 1: `keys retire` once said "no archive in … is wrapped to KID" for a path that did
    /// not exist and for an archive file, then destroyed the key. Crypto-shredding happens only on purpose.
    @Test func retireNeverGivesAFalseAllClear() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"), attachmentBytes: 1000)
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        try FileManager.default.createDirectory(atPath: scratch.sub("vault/2026"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: scratch.sub("empty"), withIntermediateDirectories: true)
        let archive = scratch.sub("vault/2026/crm-2026-11.car")
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", archive, source]).status == 0)
        let oldID = try Keyring(directory: keyring).activeEncryptionKeyID
        #expect(try CLI.run(["keys", "rotate", "--keyring", keyring]).status == 0)
        let keyFile = "\(keyring)/encryption/\(oldID).key"
        func retire(_ extra: [String]) throws -> CLIResult {
            try CLI.run(["keys", "retire", oldID, "--keyring", keyring, "--confirm", oldID] + extra)
        }

        let nowhere = try retire([])
        #expect(nowhere.status == 2 && nowhere.stderr.contains("--archives PATH"), "\(nowhere.stderr)")
        let typo = try retire(["--archives", "/nonexistent"])
        #expect(typo.status == 2 && typo.stderr.contains("'/nonexistent' does not exist"), "\(typo.stderr)")
        let empty = try retire(["--archives", scratch.sub("empty")])
        #expect(empty.status == 2 && empty.stderr.contains("no archive found in \(scratch.sub("empty"))"), "\(empty.stderr)")
        #expect(FileManager.default.fileExists(atPath: keyFile), "a refused retire destroyed the key")

        // An archive file is scanned as well as a directory, and its dependence is named before retiring.
        let named = try retire(["--archives", archive])
        #expect(named.status == 0, "\(named.stderr)")
        #expect(named.stdout.contains("scanned 1 archive in \(archive); 1 wrapped to \(oldID)"), "\(named.stdout)")
        #expect(named.stdout.contains("\(archive): UNRECOVERABLE after retirement"))
        #expect(!FileManager.default.fileExists(atPath: keyFile))

        // Said on purpose: nothing is meant to survive.
        let other = try Keyring(directory: keyring).activeEncryptionKeyID
        #expect(try CLI.run(["keys", "rotate", "--keyring", keyring]).status == 0)
        let deliberate = try CLI.run(["keys", "retire", other, "--keyring", keyring, "--confirm", other, "--no-archives-expected"])
        #expect(deliberate.status == 0, "\(deliberate.stderr)")
    }

    /// Issue 16, input 1 with a vault: every archive the vault's journal ever recorded must be found — in
    /// the vault, or as a copy elsewhere, told by its archive digest — before the key is destroyed; and
    /// the retirement is journaled.
    @Test func retireWithAVaultFindsEveryArchiveItsJournalRecorded() throws {
        let v = try CLIVault(months: ["2026-09", "2026-10"])
        let oldID = try Keyring(directory: v.keyring).activeEncryptionKeyID
        #expect(try CLI.run(["keys", "rotate", "--keyring", v.keyring]).status == 0)
        let keyFile = "\(v.keyring)/encryption/\(oldID).key"
        func retire(_ extra: [String]) throws -> CLIResult {
            try CLI.run(["keys", "retire", oldID, "--keyring", v.keyring, "--confirm", oldID, "--vault", v.vault] + extra)
        }
        // September's archive was moved to offline media: the vault alone is not enough.
        let offline = v.scratch.sub("usb")
        try FileManager.default.createDirectory(atPath: offline, withIntermediateDirectories: true)
        try FileManager.default.moveItem(atPath: v.archive("2026-09", 1), toPath: "\(offline)/september.car")
        let unseen = try retire([])
        #expect(unseen.status == 2 && unseen.stderr.contains("the journal of \(v.vault) records 1 archive not found (series/crm/crm.2026-09.000001.car): each may depend on \(oldID)"), "\(unseen.stderr)")
        #expect(FileManager.default.fileExists(atPath: keyFile), "a refused retire destroyed the key")
        // Named where it is (under another name): found by its digest, listed, then retired and journaled.
        let found = try retire(["--archives", offline])
        #expect(found.status == 0, "\(found.stderr)")
        #expect(found.stdout.contains("scanned 2 archives in \(offline), \(v.vault); 2 wrapped to \(oldID)"), "\(found.stdout)")
        #expect(found.stdout.contains("\(offline)/september.car: UNRECOVERABLE after retirement"))
        #expect(!FileManager.default.fileExists(atPath: keyFile))
        let log = try CLI.run(["vault", "log", "--vault", v.vault, "--keyring", v.keyring])
        #expect(log.status == 0 && log.stdout.contains("key-retired  \(oldID)"), "\(log.stdout)")
    }

    /// `--json` on every command that reports something (issue 16): keys status, restore, rewrap,
    /// keys retire, keys export-public.
    @Test func everyReportingCommandSpeaksJSON() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"), attachmentBytes: 1000)
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        func object(_ arguments: [String]) throws -> [String: Any] {
            let result = try CLI.run(arguments)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            return try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(arguments): \(result.stdout)")
        }
        let status = try object(["keys", "status", "--keyring", keyring, "--json"])
        #expect(status["ok"] as? Bool == true && (status["keys"] as? [Any])?.count == 2)

        let archive = scratch.sub("a.car")
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", archive, source]).status == 0)
        let restored = try object(["restore", archive, "--keyring", keyring, "--to", scratch.sub("out"), "--json"])
        #expect(restored["entries"] as? Int == 12 && restored["topLevel"] as? [String] == ["crm"])

        let oldID = try Keyring(directory: keyring).activeEncryptionKeyID
        #expect(try CLI.run(["keys", "rotate", "--keyring", keyring]).status == 0)
        let rewrapped = try object(["rewrap", archive, "--keyring", keyring, "--json"])
        #expect(rewrapped["rewritten"] as? Bool == true && rewrapped["previousRecipients"] as? [String] == [oldID])

        let retired = try object(["keys", "retire", oldID, "--keyring", keyring, "--archives", archive, "--confirm", oldID, "--json"])
        #expect(retired["retired"] as? Bool == true && retired["archivesScanned"] as? Int == 1 && (retired["dependents"] as? [Any])?.isEmpty == true)

        let exported = try object(["keys", "export-public", "--keyring", keyring, "--out", scratch.sub("host"), "--json"])
        #expect(exported["directory"] as? String == scratch.sub("host") && exported["holdsEncryptionSecrets"] as? Bool == false)
    }

    /// docs/KEYS.md, "Rotation with split custody, step by step", command by command (paths under a
    /// scratch directory), plus what the host must refuse and say (issue 16, input 2).
    @Test func theSplitCustodyWalkThroughRunsAsWritten() throws {
        let scratch = try Scratch()
        let custodian = scratch.sub("secure/keys"), host = scratch.sub("srv/archiver/keys"), escrow = scratch.sub("escrow/keys")
        let backup = scratch.sub("media/offline-backup/keys"), vault = scratch.sub("vault")
        let source = try TreeBuilder.crmTree(at: scratch.sub("srv/crm/export"), attachmentBytes: 2000)
        try FileManager.default.createDirectory(atPath: vault, withIntermediateDirectories: true)
        let env = ["COLDARCHIVE_PASSPHRASE": "custodian passphrase for the walk-through"]
        func run(_ arguments: [String], _ environment: [String: String] = [:]) throws -> CLIResult {
            let result = try CLI.run(arguments, environment: environment)
            #expect(result.status == 0, "\(arguments): \(result.stderr)")
            return result
        }
        // 1.
        _ = try run(["keys", "init", "--keyring", custodian], env)
        _ = try run(["keys", "export-public", "--keyring", custodian, "--include-signing-key", "--out", host], env)
        // 2.
        _ = try run(["create", "--keyring", host, "--out", "\(vault)/crm-2026-11.car", source], env)
        // The host cannot rotate: refused with the custodian's procedure, and nothing changes.
        let refused = try CLI.run(["keys", "rotate", "--keyring", host], environment: env)
        #expect(refused.status == 3)
        #expect(refused.stderr.contains("holds no encryption secret key: it is an archiving host's export"), "\(refused.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: "\(host)/encryption").allSatisfy { $0.hasSuffix(".pub") })
        let overdue = try Keyring(directory: host).overdueWarnings(now: Date().addingTimeInterval(200 * 86_400))
        #expect(overdue.count == 1 && overdue[0].contains("ask the key custodian"), "\(overdue)")
        // 3.
        _ = try run(["keys", "init", "--no-passphrase", "--keyring", escrow])
        let escrowID = try Keyring(directory: escrow).activeEncryptionKeyID
        // 4.
        let added = try run(["keys", "add-recipient", "\(escrow)/encryption/\(escrowID).pub", "--label", "escrow: legal", "--keyring", custodian], env)
        #expect(added.stdout.contains("next steps:") && added.stdout.contains("--update HOST_KEYRING"))
        let rotated = try run(["keys", "rotate", "--keyring", custodian], env)
        #expect(rotated.stdout.contains("update the offline key backup"))
        let newID = try Keyring(directory: custodian).activeEncryptionKeyID
        // 5.
        try FileManager.default.createDirectory(atPath: scratch.sub("media/offline-backup"), withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: custodian, toPath: backup)
        _ = try run(["keys", "export-public", "--keyring", custodian, "--include-signing-key", "--update", host], env)
        // 6.
        _ = try run(["create", "--keyring", host, "--out", "\(vault)/crm-2026-12.car", source], env)
        #expect(Set(try ArchiveFile(path: "\(vault)/crm-2026-12.car").recipientKeyIDs) == [newID, escrowID])
        // 7.
        _ = try run(["restore", "\(vault)/crm-2026-11.car", "--keyring", backup, "--to", scratch.sub("restore/2026-11")], env)
        _ = try run(["restore", "\(vault)/crm-2026-12.car", "--keyring", escrow, "--trust", "\(custodian)/signing.pub",
                     "--to", scratch.sub("restore/2026-12")])
        #expect(try TreeSnapshot(source) == TreeSnapshot(scratch.sub("restore/2026-12/crm")))
        // --update refuses a custodian's keyring and a directory that is not an export.
        let wrongWay = try CLI.run(["keys", "export-public", "--keyring", custodian, "--include-signing-key", "--update", backup], environment: env)
        #expect(wrongWay.status == 3 && wrongWay.stderr.contains("--update refreshes only an archiving host's export"), "\(wrongWay.stderr)")
    }

    @Test func anAuditorFollowsTheChainThroughTheBinary() throws {
        let scratch = try Scratch()
        let keyring = scratch.sub("keys")
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"), attachmentBytes: 1000)
        #expect(try CLI.run(["keys", "init", "--no-passphrase", "--keyring", keyring]).status == 0)
        try copyFile("\(keyring)/signing.pub", scratch.sub("first.pub"))
        #expect(try CLI.run(["keys", "rotate", "--signing", "--keyring", keyring]).status == 0)
        #expect(try CLI.run(["create", "--keyring", keyring, "--out", scratch.sub("a.car"), source]).status == 0)
        #expect(try CLI.run(["verify", scratch.sub("a.car"), "--trust", scratch.sub("first.pub")]).status == 1)
        let chained = try CLI.run(["verify", scratch.sub("a.car"), "--trust", scratch.sub("first.pub"), "--chain", "\(keyring)/signing-chain"])
        #expect(chained.status == 0, "\(chained.stderr)")
    }
}
