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

    static func encodeSecret(kind: Kind, secret: SecretBytes, publicKey: [UInt8], created: Date) -> [UInt8] {
        var w = ByteWriter(capacity: 160)
        w.raw(secretMagic)
        w.u8(1)
        w.u8(kind.rawValue)
        w.u8(0)  // protection: none (a passphrase-protected form is a later version of this file)
        w.u8(0)
        w.i64(Int64(created.timeIntervalSince1970))
        w.raw(publicKey)
        w.u16(UInt16(secret.count))
        var bytes = w.bytes
        secret.withUnsafeBytes { bytes.append(contentsOf: $0) }
        bytes += Sodium.blake2b(bytes)
        return bytes
    }

    /// Writes a secret key file atomically with mode 0600, zeroing the encoded copy afterwards.
    static func writeSecret(kind: Kind, secret: SecretBytes, publicKey: [UInt8], created: Date, to path: String) throws {
        var bytes = encodeSecret(kind: kind, secret: secret, publicKey: publicKey, created: created)
        defer { bytes.withUnsafeMutableBytes { Sodium.memzero($0) } }
        try FileSystem.writeAtomically(bytes, to: path, mode: 0o600)
    }

    /// Reads a secret key file: refuses one others can read, one whose checksum fails, and one whose
    /// public half does not belong to its secret half.
    static func readSecret(kind: Kind, from path: String) throws -> (secret: SecretBytes, publicKey: [UInt8]) {
        var st = stat()
        guard stat(path, &st) == 0 else {
            if errno == ENOENT { throw KeyError.missingKey(what: kind == .signing ? "signing secret key" : "encryption secret key", path: path) }
            throw SystemError(operation: "stat", path: path, errno: errno)
        }
        guard UInt32(st.st_mode) & 0o077 == 0 else { throw KeyError.insecurePermissions(path: path, mode: UInt32(st.st_mode) & 0o777) }
        var bytes = try FileSystem.readSmallFile(path, limit: maxKeyFileBytes)
        defer { bytes.withUnsafeMutableBytes { Sodium.memzero($0) } }
        guard bytes.count > 32 + 8 else { throw KeyError.keyFileTampered(path: path) }
        let body = Array(bytes[0..<(bytes.count - 32)])
        var bodyCopy = body
        defer { bodyCopy.withUnsafeMutableBytes { Sodium.memzero($0) } }
        guard Sodium.blake2b(body) == Array(bytes[(bytes.count - 32)...]) else { throw KeyError.keyFileTampered(path: path) }
        var r = ByteReader(body, what: "key file")
        guard try r.raw(8) == secretMagic, try r.u8() == 1 else { throw KeyError.keyFileTampered(path: path) }
        guard try r.u8() == kind.rawValue else {
            throw KeyError.malformedKey(what: "key in '\(path)'", reason: "it is not a \(kind == .signing ? "signing" : "encryption") key")
        }
        let protection = try r.u8()
        guard protection == 0 else {
            throw KeyError.malformedKey(what: "key in '\(path)'", reason: "it is protected in a way this coldarchive does not know (\(protection))")
        }
        _ = try r.u8()
        _ = try r.i64()
        let publicKey = try r.raw(32)
        let length = Int(try r.u16())
        guard length == kind.secretLength, r.remaining == length else { throw KeyError.keyFileTampered(path: path) }
        let start = r.offset
        let secret = bytes.withUnsafeBytes { SecretBytes(copying: UnsafeRawBufferPointer(rebasing: $0[start..<start + length])) }
        return (secret, publicKey)
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
