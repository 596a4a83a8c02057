import Foundation
import Testing
@testable import ColdArchive

@Suite struct KeyringTests {
    func mode(_ path: String) throws -> Int {
        (try FileManager.default.attributesOfItem(atPath: path)[.posixPermissions] as? Int) ?? -1
    }

    @Test func secretKeyFilesAreReadableByTheOwnerOnly() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        #expect(try mode("\(keys.directory)/signing.key") == 0o600)
        #expect(try mode("\(keys.directory)/encryption/\(keys.recipients[0].keyIDHex).key") == 0o600)
        #expect(try mode("\(keys.directory)/signing.pub") == 0o644)
        // No temporary files are left by the atomic writes.
        #expect(try FileManager.default.contentsOfDirectory(atPath: keys.directory).sorted() == ["encryption", "keyring.json", "signing.key", "signing.pub"])
    }

    @Test func initRefusesToOverwriteAKeyring() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let before = try Data(contentsOf: URL(fileURLWithPath: "\(keys.directory)/signing.key"))
        #expect(throws: KeyError.keyringExists(path: keys.directory)) { try Keyring.initialize(at: keys.directory, passphrase: nil) }
        #expect(try Data(contentsOf: URL(fileURLWithPath: "\(keys.directory)/signing.key")) == before)
    }

    @Test func aTamperedSecretKeyFileIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        try flipBit("\(keys.directory)/signing.key", at: 60)
        #expect(throws: KeyError.keyFileTampered(path: "\(keys.directory)/signing.key")) { try keys.keyring.signingKey() }
    }

    @Test func aSecretKeyFileOthersCanReadIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let path = "\(keys.directory)/encryption/\(keys.recipients[0].keyIDHex).key"
        try FileManager.default.setAttributes([.posixPermissions: 0o644], ofItemAtPath: path)
        #expect(throws: KeyError.insecurePermissions(path: path, mode: 0o644)) { try keys.keyring.encryptionKey(id: keys.recipients[0].keyID) }
    }

    @Test func aMismatchedPublicKeyFileIsRefused() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let other = try TestKeys(in: scratch, name: "other")
        try copyFile("\(other.directory)/signing.pub", "\(keys.directory)/signing.pub")
        #expect(throws: KeyError.self) { try keys.keyring.signingKey() }
    }

    @Test func publicKeyFilesAreOneLineOfText() throws {
        let scratch = try Scratch()
        let keys = try TestKeys(in: scratch)
        let text = try String(contentsOfFile: "\(keys.directory)/signing.pub", encoding: .utf8)
        let keyLines = text.split(separator: "\n").filter { !$0.hasPrefix("#") }
        #expect(keyLines.count == 1)
        #expect(keyLines[0].hasPrefix("coldarchive-signing-ed25519 "))
        #expect(text.contains(keys.signer.publicKey.fingerprint))
    }
}
