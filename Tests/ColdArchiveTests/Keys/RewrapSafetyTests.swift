import Foundation
import Testing
@testable import ColdArchive

/// `rewrap` replaces an archive in place, so it must never replace a good file with a bad one nor
/// touch a file it cannot vouch for: a damaged, forged or foreign archive stays byte-identical, and
/// a killed rewrap leaves the original and nothing that a later run trips on.
@Suite(.serialized) struct RewrapSafetyTests {
    /// A keyring whose encryption key was rotated after `a.car` was made: a rewrap has work to do.
    func rotatedArchive(passphrase: String? = nil, attachmentBytes: Int = 300_000) throws -> (Scratch, String, String) {
        let scratch = try Scratch()
        let directory = scratch.sub("keys")
        var bytes = passphrase.map { Array($0.utf8) }
        let ring = try Keyring.initialize(at: directory, passphrase: try bytes.map { b in var b = b; return try Passphrase(bytes: &b) })
        bytes = nil
        let source = try TreeBuilder.crmTree(at: scratch.sub("src"), attachmentBytes: attachmentBytes)
        var options = CreateOptions(sources: [source], output: scratch.sub("a.car"))
        options.chunkRawSize = 64 << 10
        _ = try ArchiveCreator.create(options, signer: ring.signingKey(), recipients: ring.recipientPublicKeys())
        _ = try ring.rotateEncryptionKey()
        return (scratch, directory, scratch.sub("a.car"))
    }

    func contents(_ path: String) throws -> Data { try Data(contentsOf: URL(fileURLWithPath: path)) }

    func partials(_ scratch: Scratch) throws -> [String] {
        try FileManager.default.contentsOfDirectory(atPath: scratch.path).filter { $0.contains(".partial-") }
    }

    @Test func rewrapOfADamagedArchiveLeavesItByteIdentical() throws {
        let (scratch, directory, archive) = try rotatedArchive()
        let file = try ArchiveFile(path: archive)
        try flipBit(archive, at: file.footer.payloadOffset + 200)
        let before = try contents(archive)
        #expect(throws: IntegrityError.chunkHashMismatch(index: 0, offset: file.footer.payloadOffset)) {
            _ = try Rewrapper.rewrap(path: archive, keyring: Keyring(directory: directory))
        }
        #expect(try contents(archive) == before)
        #expect(try partials(scratch).isEmpty)
    }

    /// Refused on the signature before any secret is needed: no passphrase is asked for an archive
    /// this site did not sign (the keyring here is passphrase-protected and given none).
    @Test func rewrapOfAForgedOrUntrustedArchiveLeavesItByteIdentical() throws {
        let (scratch, directory, archive) = try rotatedArchive(passphrase: "custodian passphrase")
        let surgeon = try ArchiveSurgeon(archive)
        var forgery = surgeon
        forgery.signature[3] ^= 0x20
        try forgery.write(to: scratch.sub("forged.car"))
        // Sealed to this site's keys, signed by another site.
        let intruder = try TestKeys(in: scratch, name: "intruder")
        let ring = try Keyring(directory: directory)
        _ = try ArchiveCreator.create(CreateOptions(sources: [scratch.sub("src/crm")], output: scratch.sub("foreign.car")),
                                      signer: intruder.signer, recipients: ring.recipientPublicKeys())
        let trusted = try ring.signingPublicKey().fingerprint

        let forged = try contents(scratch.sub("forged.car"))
        #expect(throws: IntegrityError.badSignature) { _ = try Rewrapper.rewrap(path: scratch.sub("forged.car"), keyring: ring) }
        #expect(try contents(scratch.sub("forged.car")) == forged)

        let foreign = try contents(scratch.sub("foreign.car"))
        #expect(throws: IntegrityError.untrustedSigner(fingerprint: intruder.signer.publicKey.fingerprint, trusted: trusted)) {
            _ = try Rewrapper.rewrap(path: scratch.sub("foreign.car"), keyring: ring)
        }
        #expect(try contents(scratch.sub("foreign.car")) == foreign)
        #expect(try partials(scratch).isEmpty)
    }

    /// SIGKILL once the rewrap's temporary file exists (polled, not timed): the original is intact,
    /// and the next rewrap removes the leftover and finishes.
    @Test func aKilledRewrapLeavesTheOriginalAndTheNextOneCleansUp() throws {
        let (scratch, directory, archive) = try rotatedArchive(attachmentBytes: 48 << 20)
        let before = try contents(archive)
        let process = Process()
        process.executableURL = URL(fileURLWithPath: CLI.executable)
        process.arguments = ["rewrap", "--keyring", directory, archive]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        var seen = false
        while process.isRunning && !seen { seen = try !partials(scratch).isEmpty }
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
        try #require(seen && process.terminationReason == .uncaughtSignal, "the rewrap finished before it could be killed mid-write")
        #expect(try contents(archive) == before)
        #expect(try partials(scratch).count == 1)

        let again = try CLI.run(["rewrap", "--keyring", directory, archive])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try partials(scratch).isEmpty)
        let ring = try Keyring(directory: directory)
        #expect(try ArchiveFile(path: archive).recipientKeyIDs == ring.recipientPublicKeys().map(\.keyIDHex))
        #expect(try ArchiveFile(path: archive).archiveDigest == ArchiveFile(path: scratch.sub("a.car")).archiveDigest)
    }

    /// An archive already wrapped to the current keys is left as it is (issue 16): a second rewrap
    /// would only change its bytes (sealed boxes are randomized) and its mtime.
    @Test func rewrapOfAnArchiveAlreadyCurrentLeavesItUntouched() throws {
        let (scratch, directory, archive) = try rotatedArchive(attachmentBytes: 10_000)
        defer { withExtendedLifetime(scratch) {} }
        let ring = try Keyring(directory: directory)
        #expect(try Rewrapper.rewrap(path: archive, keyring: ring).rewritten)
        let once = try contents(archive)
        let again = try CLI.run(["rewrap", "--keyring", directory, archive])
        #expect(again.status == 0, "\(again.stderr)")
        #expect(again.stdout.hasPrefix("unchanged \(archive): already wrapped to the current keys"), "\(again.stdout)")
        #expect(try contents(archive) == once)
    }
}
