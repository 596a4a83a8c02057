import Foundation

/// The on-disk forms of keys (docs/KEYS.md): secret keys in a small checksummed binary file that
/// must be private to its owner; public keys as one line of text an auditor can paste into an email.
enum KeyFiles {
    enum Kind: UInt8 {
        case signing = 1
        case encryption = 2

        var publicKeyTag: String {
            switch self {
            case .signing: "coldarchive-signing-ed25519"
            case .encryption: "coldarchive-encryption-x25519"
            }
        }

        var secretLength: Int {
            switch self {
            case .signing: Sodium.signSecretKeyBytes
            case .encryption: Sodium.boxSecretKeyBytes
            }
        }
    }

    static let secretMagic: [UInt8] = Array("CASECKEY".utf8)
    static let maxKeyFileBytes = 4096

    // MARK: secret key files

    enum Protection: UInt8 {
        case none = 0
        /// Argon2id (parameters and salt in the file) derives a key that seals the secret with
        /// XChaCha20-Poly1305; the associated data is every byte of the file before the ciphertext.
        case passphrase = 1
    }

    static func encodeSecret(kind: Kind, secret: SecretBytes, publicKey: [UInt8], created: Date,
                             passphrase: Passphrase?, limits: (ops: UInt64, mem: UInt64)) throws -> [UInt8] {
        var w = ByteWriter(capacity: 256)
        w.raw(secretMagic)
        w.u8(1)
        w.u8(kind.rawValue)
        w.u8(passphrase == nil ? Protection.none.rawValue : Protection.passphrase.rawValue)
        w.u8(0)
        w.i64(Int64(created.timeIntervalSince1970))
        w.raw(publicKey)
        var bytes: [UInt8]
        if let passphrase {
            let salt = Sodium.randomBytes(Sodium.pwhashSaltBytes)
            let nonce = Sodium.randomBytes(Sodium.aeadNonceBytes)
            w.u64(limits.ops)
            w.u64(limits.mem)
            w.raw(salt)
            w.raw(nonce)
            w.u16(UInt16(secret.count))
            guard let key = Sodium.argon2id(passphrase: passphrase.secret, salt: salt, opsLimit: limits.ops, memLimit: limits.mem) else {
                throw KeyError.malformedKey(what: "passphrase key", reason: "Argon2id could not run with \(limits.mem >> 20) MiB")
            }
            bytes = w.bytes
            var sealed = [UInt8](repeating: 0, count: secret.count + Sodium.aeadTagBytes)
            let n = secret.withUnsafeBytes { plain in
                sealed.withUnsafeMutableBytes {
                    Sodium.aeadSeal(plaintext: plain, output: $0, additionalData: bytes, nonce: nonce, key: key)
                }
            }
            bytes += sealed[0..<n]
        } else {
            w.u16(UInt16(secret.count))
            bytes = w.bytes
            // Room for everything up front, so no reallocation leaves a copy of the secret behind.
            bytes.reserveCapacity(bytes.count + secret.count + 32)
            secret.withUnsafeBytes { bytes.append(contentsOf: $0) }
        }
        bytes += Sodium.blake2b(bytes)
        return bytes
    }

    /// Writes a secret key file atomically with mode 0600, zeroing the encoded copy afterwards.
    static func writeSecret(kind: Kind, secret: SecretBytes, publicKey: [UInt8], created: Date, to path: String,
                            passphrase: Passphrase?, limits: (ops: UInt64, mem: UInt64) = defaultLimits) throws {
        var bytes = try encodeSecret(kind: kind, secret: secret, publicKey: publicKey, created: created,
                                     passphrase: passphrase, limits: limits)
        defer { bytes.withUnsafeMutableBytes { Sodium.memzero($0) } }
        try FileSystem.writeAtomically(bytes, to: path, mode: 0o600)
    }

    /// Argon2id cost for new key files: libsodium's MODERATE.
    static let defaultLimits = (ops: Sodium.pwhashOpsModerate, mem: Sodium.pwhashMemModerate)

    /// What a secret key file says about itself without being opened.
    struct SecretFileInfo {
        var protection: Protection
        var created: Date
        var publicKey: [UInt8]
    }

    /// Reads a secret key file: refuses one others can read, one whose checksum fails, one whose
    /// Argon2id limits are out of bounds, and (in the callers) one whose public half does not belong
    /// to its secret half. Asks `passphrase` only if the file is protected.
    static func readSecret(kind: Kind, from path: String, passphrase: PassphraseSource) throws -> (secret: SecretBytes, info: SecretFileInfo) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { throw KeyError.missingKey(what: kind == .signing ? "signing secret key" : "encryption secret key", path: path) }
            throw SystemError(operation: "stat", path: path, errno: errno)
        }
        guard UInt32(st.st_mode) & 0o077 == 0 else { throw KeyError.insecurePermissions(path: path, mode: UInt32(st.st_mode) & 0o777) }
        var bytes = try FileSystem.readSmallFile(path, limit: maxKeyFileBytes)
        defer { bytes.withUnsafeMutableBytes { Sodium.memzero($0) } }
        // Only `bytes` ever holds the secret in the clear, and it is zeroed on the way out: the
        // checksum is computed in place and only the non-secret prefix is copied for parsing.
        guard bytes.count > 32 + 52 else { throw KeyError.keyFileTampered(path: path) }
        let bodyEnd = bytes.count - 32
        let checksum = Sodium.Blake2bState(outputBytes: 32)
        bytes.withUnsafeBytes { checksum.update(UnsafeRawBufferPointer(rebasing: $0[0..<bodyEnd])) }
        guard checksum.finalize() == Array(bytes[bodyEnd...]) else { throw KeyError.keyFileTampered(path: path) }
        do {
            return try decodeSecret(bytes, bodyEnd: bodyEnd, kind: kind, path: path, passphrase: passphrase)
        } catch is IntegrityError {
            throw KeyError.keyFileTampered(path: path)
        }
    }

    /// The fixed prefix of a secret key file: magic, version, kind, protection, created, public key.
    private static let prefixSize = 52
    /// What follows the prefix when the key is passphrase-protected: limits, salt, nonce, length.
    private static let passphraseFieldsSize = 8 + 8 + 16 + 24 + 2

    private static func decodeSecret(_ bytes: [UInt8], bodyEnd: Int, kind: Kind, path: String,
                                     passphrase: PassphraseSource) throws -> (secret: SecretBytes, info: SecretFileInfo) {
        var r = ByteReader(Array(bytes[0..<prefixSize]), what: "key file")
        guard try r.raw(8) == secretMagic, try r.u8() == 1 else { throw KeyError.keyFileTampered(path: path) }
        guard try r.u8() == kind.rawValue else {
            throw KeyError.malformedKey(what: "key in '\(path)'", reason: "it is not a \(kind == .signing ? "signing" : "encryption") key")
        }
        guard let protection = Protection(rawValue: try r.u8()) else {
            throw KeyError.malformedKey(what: "key in '\(path)'", reason: "it is protected in a way this coldarchive does not know")
        }
        _ = try r.u8()
        let created = Date(timeIntervalSince1970: TimeInterval(try r.i64()))
        let info = SecretFileInfo(protection: protection, created: created, publicKey: try r.raw(32))
        switch protection {
        case .none:
            guard bodyEnd >= prefixSize + 2 else { throw KeyError.keyFileTampered(path: path) }
            var lr = ByteReader(Array(bytes[prefixSize..<prefixSize + 2]), what: "key file")
            let length = Int(try lr.u16())
            let start = prefixSize + 2
            guard length == kind.secretLength, bodyEnd - start == length else { throw KeyError.keyFileTampered(path: path) }
            let secret = bytes.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[start..<start + length])) }
            return (secret, info)
        case .passphrase:
            let start = prefixSize + passphraseFieldsSize
            guard bodyEnd >= start else { throw KeyError.keyFileTampered(path: path) }
            var pr = ByteReader(Array(bytes[prefixSize..<start]), what: "key file")
            let ops = try pr.u64(), mem = try pr.u64()
            guard (Sodium.pwhashOpsModerate...Sodium.pwhashOpsSensitive).contains(ops),
                  (Sodium.pwhashMemModerate...Sodium.pwhashMemSensitive).contains(mem) else {
                throw KeyError.argon2LimitsOutOfRange(path: path, ops: ops, mem: mem)
            }
            let salt = try pr.raw(Sodium.pwhashSaltBytes)
            let nonce = try pr.raw(Sodium.aeadNonceBytes)
            let length = Int(try pr.u16())
            guard length == kind.secretLength, bodyEnd - start == length + Sodium.aeadTagBytes else { throw KeyError.keyFileTampered(path: path) }
            guard let passphrase = try passphrase.passphrase() else { throw KeyError.passphraseRequired(path: path) }
            guard let key = Sodium.argon2id(passphrase: passphrase.secret, salt: salt, opsLimit: ops, memLimit: mem) else {
                throw KeyError.malformedKey(what: "key file '\(path)'", reason: "Argon2id could not run with \(mem >> 20) MiB of memory")
            }
            let secret = SecretBytes(count: length)
            let opened = bytes.withUnsafeBytes { all in
                secret.withUnsafeMutableBytes { out in
                    Sodium.aeadOpen(ciphertext: UnsafeRawBufferPointer(rebasing: all[start..<bodyEnd]), output: out,
                                    additionalData: Array(all[0..<start]), nonce: nonce, key: key)
                }
            }
            guard opened == length else { throw KeyError.wrongPassphrase(path: path) }
            return (secret, info)
        }
    }

    // MARK: public key files

    static func encodePublic(kind: Kind, publicKey: [UInt8], created: Date) -> String {
        let what = kind == .signing ? "signing public key (Ed25519): verifies archives" : "encryption public key (X25519): archives are sealed to it"
        let fingerprint = Sodium.blake2b(publicKey, outputBytes: 16).hex
        return """
        # coldarchive \(what)
        # fingerprint \(fingerprint), created \(ISO8601DateFormatter().string(from: created))
        \(kind.publicKeyTag) \(Data(publicKey).base64EncodedString())

        """
    }

    static func readPublic(kind: Kind, from path: String) throws -> [UInt8] {
        guard FileSystem.exists(path) else {
            throw KeyError.missingKey(what: kind == .signing ? "signing public key" : "encryption public key", path: path)
        }
        let bytes = try FileSystem.readSmallFile(path, limit: maxKeyFileBytes)
        guard let text = String(validating: bytes, as: UTF8.self) else {
            throw KeyError.malformedKey(what: "public key in '\(path)'", reason: "it is not text")
        }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }
            .filter { !$0.isEmpty && !$0.hasPrefix("#") }
        guard lines.count == 1 else {
            throw KeyError.malformedKey(what: "public key in '\(path)'", reason: "expected one key line, found \(lines.count)")
        }
        let parts = lines[0].split(separator: " ")
        guard parts.count == 2, parts[0] == kind.publicKeyTag else {
            throw KeyError.malformedKey(what: "public key in '\(path)'", reason: "it is not a '\(kind.publicKeyTag)' key")
        }
        guard let data = Data(base64Encoded: String(parts[1])), data.count == 32 else {
            throw KeyError.malformedKey(what: "public key in '\(path)'", reason: "its key is not 32 bytes of base64")
        }
        return Array(data)
    }
}

extension SigningPublicKey {
    /// Reads a signing public key file (`coldarchive-signing-ed25519 BASE64`), e.g. a keyring's
    /// `signing.pub` handed to an auditor.
    public init(contentsOf path: String) throws {
        try self.init(bytes: KeyFiles.readPublic(kind: .signing, from: path))
    }
}
