/// An Ed25519 public key that verifies archive signatures: what an auditor holds.
public struct SigningPublicKey: Sendable, Equatable, Hashable {
    public let bytes: [UInt8]

    package init(bytes: [UInt8]) throws {
        guard bytes.count == Sodium.signPublicKeyBytes else {
            throw KeyError.malformedKey(what: "signing public key", reason: "it has \(bytes.count) bytes, not 32")
        }
        self.bytes = bytes
    }

    /// BLAKE2b-128 of the key, in hex: how keys are named in messages and reports.
    public var fingerprint: String { Sodium.blake2b(bytes, outputBytes: 16).hex }
}

/// The site's Ed25519 signing key pair.
public final class SigningKey: Sendable {
    let secret: SecretBytes
    public let publicKey: SigningPublicKey

    init(secret: SecretBytes) throws {
        guard let pk = Sodium.signPublicKey(of: secret) else {
            throw KeyError.malformedKey(what: "signing secret key", reason: "it has the wrong length")
        }
        self.secret = secret
        self.publicKey = try SigningPublicKey(bytes: pk)
    }

    static func generate() -> SigningKey {
        let (_, sk) = Sodium.signKeyPair()
        guard let key = try? SigningKey(secret: sk) else { preconditionFailure("libsodium generated a malformed signing key") }
        return key
    }

    package func sign(_ message: [UInt8]) -> [UInt8] { Sodium.sign(message, secretKey: secret) }
}

/// An X25519 public key that archives are encrypted to.
public struct EncryptionPublicKey: Sendable, Equatable, Hashable {
    public let bytes: [UInt8]

    init(bytes: [UInt8]) throws {
        guard bytes.count == Sodium.boxPublicKeyBytes else {
            throw KeyError.malformedKey(what: "encryption public key", reason: "it has \(bytes.count) bytes, not 32")
        }
        self.bytes = bytes
    }

    /// `key_id`: BLAKE2b-128 of the public key, as stored in an archive's recipient block.
    public var keyID: [UInt8] { Sodium.blake2b(bytes, outputBytes: 16) }
    public var keyIDHex: String { keyID.hex }
}

/// An X25519 key pair that can unwrap the file keys of archives sealed to it.
public final class EncryptionKey: Sendable {
    let secret: SecretBytes
    public let publicKey: EncryptionPublicKey

    init(secret: SecretBytes) throws {
        guard let pk = Sodium.boxPublicKey(of: secret) else {
            throw KeyError.malformedKey(what: "encryption secret key", reason: "it has the wrong length")
        }
        self.secret = secret
        self.publicKey = try EncryptionPublicKey(bytes: pk)
    }

    static func generate() -> EncryptionKey {
        let (_, sk) = Sodium.boxKeyPair()
        guard let key = try? EncryptionKey(secret: sk) else { preconditionFailure("libsodium generated a malformed encryption key") }
        return key
    }

    /// Wraps a file key to this public key (`crypto_box_seal`).
    static func wrap(_ fileKey: FileKey, to recipient: EncryptionPublicKey) -> Recipient {
        Recipient(type: Recipient.typeX25519SealedBox, keyID: recipient.keyID,
                  wrappedKey: Sodium.sealedBox(fileKey.secret, to: recipient.bytes))
    }

    /// Unwraps a file key sealed to this key pair; nil when it was sealed to another key or altered.
    func unwrap(_ recipient: Recipient) -> FileKey? {
        guard recipient.type == Recipient.typeX25519SealedBox,
              let secret = Sodium.openSealedBox(recipient.wrappedKey, publicKey: publicKey.bytes, secretKey: self.secret)
        else { return nil }
        return try? FileKey(secret: secret)
    }
}

/// Problems with keys and key files.
public enum KeyError: ColdArchiveError, Equatable {
    case malformedKey(what: String, reason: String)
    case keyFileTampered(path: String)
    case missingKey(what: String, path: String)
    case noMatchingKey(keyIDs: [String])
    /// No keyring where one was looked for.
    case noKeyring(path: String)
    /// Every key the archive is wrapped to that this keyring knows was retired (crypto-shredded).
    case retiredKey(keyIDs: [String], retired: String, otherRecipients: [String])
    case keyringExists(path: String)
    case insecurePermissions(path: String, mode: UInt32)
    /// A passphrase-protected key file asks for Argon2id work outside MODERATE…SENSITIVE (a weak key,
    /// or memory exhaustion by an altered file), refused before Argon2id runs.
    case argon2LimitsOutOfRange(path: String, ops: UInt64, mem: UInt64)
    /// A passphrase file that others can read or write.
    case insecurePassphraseFile(path: String, mode: UInt32)
    case emptyPassphrase
    case passphraseRequired(path: String)
    case wrongPassphrase(path: String)
    case unknownKey(id: String)
    case refused(reason: String)

    public var kind: FailureKind { .other }

    public var description: String {
        switch self {
        case .malformedKey(let what, let reason):
            return "the \(what) is not usable: \(reason)"
        case .keyFileTampered(let path):
            return "key file '\(path)' is damaged or was altered (its checksum or its key pair does not match); restore it from your key backup"
        case .missingKey(let what, let path):
            return "no \(what) at '\(path)'; run 'coldarchive keys init' or pass --keyring DIR"
        case .noKeyring(let path):
            return """
            no keyring at '\(path)'. To open existing archives, point --keyring at the keyring that made them — or at \
            its offline backup — (or set COLDARCHIVE_KEYRING), or restore with an escrow holder's keyring and \
            --trust SITE_SIGNING_PUB. 'coldarchive keys init' makes a NEW keyring, which cannot open archives made \
            with another one; use it only to start a new site
            """
        case .retiredKey(let ids, let retired, let others):
            let rest = others.isEmpty ? "" : "; it is also wrapped to \(others.joined(separator: ", ")), which this keyring does not hold"
            return "this archive is wrapped to key \(ids.joined(separator: ", ")), which this keyring retired on \(retired) (its secret key was destroyed: crypto-shredding)\(rest). An escrow holder's keyring, or a copy of the archive rewrapped before that date, may still open it"
        case .noMatchingKey(let ids):
            return "none of this keyring's encryption keys can open the archive; it is encrypted to key id(s) \(ids.joined(separator: ", "))"
        case .keyringExists(let path):
            return "a keyring already exists at '\(path)'; refusing to overwrite its keys"
        case .insecurePermissions(let path, let mode):
            return "secret key file '\(path)' is readable by others (mode \(String(mode, radix: 8))); run 'chmod 600 \(path)'"
        case .argon2LimitsOutOfRange(let path, let ops, let mem):
            return "key file '\(path)' asks for Argon2id limits (\(ops) passes, \(mem >> 20) MiB) outside MODERATE…SENSITIVE; it was altered — restore it from your key backup"
        case .insecurePassphraseFile(let path, let mode):
            return "passphrase file '\(path)' can be read or written by others (mode \(String(mode, radix: 8))); run 'chmod 600 \(path)'"
        case .emptyPassphrase:
            return "the passphrase is empty; choose a passphrase, or use 'keys init --no-passphrase' for unattended hosts"
        case .passphraseRequired(let path):
            return "'\(path)' is protected by a passphrase; give it on the terminal, with --passphrase-file FILE, or in COLDARCHIVE_PASSPHRASE"
        case .wrongPassphrase(let path):
            return "the passphrase is wrong for '\(path)' (or the file was altered); try again"
        case .unknownKey(let id):
            return "this keyring has no key with id '\(id)'; run 'coldarchive keys list'"
        case .refused(let reason):
            return reason
        }
    }
}
