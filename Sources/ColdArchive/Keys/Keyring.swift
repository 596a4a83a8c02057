import Foundation

/// A directory of keys (docs/KEYS.md, keys/README.md):
///
///     keyring.json                  which encryption key is active, when each key was made
///     signing.key / signing.pub     the site's Ed25519 signing key pair
///     encryption/KEYID.key / .pub   X25519 encryption key pairs, named by key id
///
/// A host that only archives can hold the public files and `signing.key`; an auditor needs only
/// `signing.pub`.
public final class Keyring {
    public let directory: String
    private(set) var metadata: Metadata

    struct Metadata: Codable {
        struct EncryptionKeyInfo: Codable {
            var id: String
            var created: String
            var status: String
        }
        var format: String = "coldarchive-keyring"
        var version: Int = 1
        var created: String
        var signingFingerprint: String
        var activeEncryptionKey: String
        var encryptionKeys: [EncryptionKeyInfo]
    }

    /// `$COLDARCHIVE_KEYRING`, else `./keys`.
    public static var defaultDirectory: String {
        ProcessInfo.processInfo.environment["COLDARCHIVE_KEYRING"].flatMap { $0.isEmpty ? nil : $0 } ?? "keys"
    }

    var metadataPath: String { "\(directory)/keyring.json" }
    public var signingPublicKeyPath: String { "\(directory)/signing.pub" }
    var signingSecretKeyPath: String { "\(directory)/signing.key" }
    var encryptionDirectory: String { "\(directory)/encryption" }

    /// Opens an existing keyring.
    public init(directory: String) throws {
        self.directory = directory
        let path = "\(directory)/keyring.json"
        guard FileSystem.exists(path) else { throw KeyError.missingKey(what: "keyring", path: path) }
        let bytes = try FileSystem.readSmallFile(path, limit: 1 << 20)
        do {
            metadata = try JSONDecoder().decode(Metadata.self, from: Data(bytes))
        } catch {
            throw KeyError.malformedKey(what: "keyring '\(path)'", reason: "it is not a keyring file this coldarchive reads (\(error))")
        }
        guard metadata.format == "coldarchive-keyring", metadata.version == 1 else {
            throw KeyError.malformedKey(what: "keyring '\(path)'", reason: "unknown format or version \(metadata.version)")
        }
    }

    private init(directory: String, metadata: Metadata) {
        self.directory = directory
        self.metadata = metadata
    }

    /// Makes a new keyring: a signing key pair and a first, active encryption key pair. Refuses to
    /// touch a directory that already holds a keyring.
    @discardableResult
    public static func initialize(at directory: String, now: Date = Date()) throws -> Keyring {
        try FileSystem.makeDirectory(directory, mode: 0o700)
        for existing in ["keyring.json", "signing.key", "signing.pub"] where FileSystem.exists("\(directory)/\(existing)") {
            throw KeyError.keyringExists(path: directory)
        }
        try FileSystem.makeDirectory("\(directory)/encryption", mode: 0o700)
        let signing = SigningKey.generate()
        let encryption = EncryptionKey.generate()
        let stamp = ISO8601DateFormatter().string(from: now)
        let id = encryption.publicKey.keyIDHex
        let keyring = Keyring(directory: directory, metadata: Metadata(
            created: stamp, signingFingerprint: signing.publicKey.fingerprint, activeEncryptionKey: id,
            encryptionKeys: [.init(id: id, created: stamp, status: "active")]))
        try KeyFiles.writeSecret(kind: .signing, secret: signing.secret, publicKey: signing.publicKey.bytes, created: now,
                                 to: keyring.signingSecretKeyPath)
        try FileSystem.writeAtomically(Array(KeyFiles.encodePublic(kind: .signing, publicKey: signing.publicKey.bytes, created: now).utf8),
                                       to: keyring.signingPublicKeyPath, mode: 0o644)
        try KeyFiles.writeSecret(kind: .encryption, secret: encryption.secret, publicKey: encryption.publicKey.bytes, created: now,
                                 to: keyring.encryptionSecretKeyPath(id))
        try FileSystem.writeAtomically(Array(KeyFiles.encodePublic(kind: .encryption, publicKey: encryption.publicKey.bytes, created: now).utf8),
                                       to: keyring.encryptionPublicKeyPath(id), mode: 0o644)
        try keyring.saveMetadata()
        return keyring
    }

    func encryptionSecretKeyPath(_ id: String) -> String { "\(encryptionDirectory)/\(id).key" }
    func encryptionPublicKeyPath(_ id: String) -> String { "\(encryptionDirectory)/\(id).pub" }

    private func saveMetadata() throws {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        try FileSystem.writeAtomically(Array(try encoder.encode(metadata)) + [0x0A], to: metadataPath, mode: 0o644)
    }

    /// The site's signing public key: what archives are verified against.
    public func signingPublicKey() throws -> SigningPublicKey {
        try SigningPublicKey(bytes: KeyFiles.readPublic(kind: .signing, from: signingPublicKeyPath))
    }

    /// The site's signing key, checked against `signing.pub`.
    public func signingKey() throws -> SigningKey {
        let (secret, storedPublic) = try KeyFiles.readSecret(kind: .signing, from: signingSecretKeyPath)
        let key = try SigningKey(secret: secret)
        guard key.publicKey.bytes == storedPublic else { throw KeyError.keyFileTampered(path: signingSecretKeyPath) }
        if FileSystem.exists(signingPublicKeyPath), try signingPublicKey() != key.publicKey {
            throw KeyError.malformedKey(what: "signing key pair", reason: "'\(signingPublicKeyPath)' does not belong to '\(signingSecretKeyPath)'")
        }
        return key
    }

    /// The keys new archives are sealed to: the active encryption key.
    public func recipientPublicKeys() throws -> [EncryptionPublicKey] {
        let id = metadata.activeEncryptionKey
        let key = try EncryptionPublicKey(bytes: KeyFiles.readPublic(kind: .encryption, from: encryptionPublicKeyPath(id)))
        guard key.keyIDHex == id else {
            throw KeyError.malformedKey(what: "encryption public key '\(encryptionPublicKeyPath(id))'", reason: "its key id is \(key.keyIDHex), not \(id)")
        }
        return [key]
    }

    /// Every encryption secret key this keyring holds (old versions too): what can open archives.
    public func encryptionKeys() throws -> [EncryptionKey] {
        guard FileSystem.isDirectory(encryptionDirectory) else { return [] }
        return try FileSystem.directoryEntries(encryptionDirectory).filter { $0.hasSuffix(".key") }.map { name in
            let path = "\(encryptionDirectory)/\(name)"
            let (secret, storedPublic) = try KeyFiles.readSecret(kind: .encryption, from: path)
            let key = try EncryptionKey(secret: secret)
            guard key.publicKey.bytes == storedPublic, "\(key.publicKey.keyIDHex).key" == name else {
                throw KeyError.keyFileTampered(path: path)
            }
            return key
        }
    }

    /// Public facts about the keys, for `keys init` and later `keys list`.
    public var activeEncryptionKeyID: String { metadata.activeEncryptionKey }
}
