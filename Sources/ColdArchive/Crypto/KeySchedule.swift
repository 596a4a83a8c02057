/// The per-archive random file key and the keys derived from it (docs/FORMAT.md, "Key schedule").
/// The payload key depends only on the file key and the header's `payload_salt`, never on the
/// recipient block, so an archive can be re-wrapped to new recipients without touching its payload.
struct FileKey: Sendable {
    static let size = 32
    let secret: SecretBytes

    init(secret: SecretBytes) throws {
        guard secret.count == Self.size else { throw IntegrityError.malformed(what: "wrapped file key (wrong length)") }
        self.secret = secret
    }

    static func generate() -> FileKey {
        FileKey(unchecked: SecretBytes.random(count: size))
    }

    private init(unchecked secret: SecretBytes) { self.secret = secret }

    /// `payload_key = BLAKE2b-256(key = file_key, "coldarchive/v1/payload-key" || payload_salt)`.
    func payloadKey(salt: [UInt8]) -> SecretBytes { derive(FormatV1.payloadKeyLabel, salt) }

    /// `header_mac_key = BLAKE2b-256(key = file_key, "coldarchive/v1/header-mac-key" || payload_salt)`.
    func headerMACKey(salt: [UInt8]) -> SecretBytes { derive(FormatV1.headerMACKeyLabel, salt) }

    private func derive(_ label: [UInt8], _ salt: [UInt8]) -> SecretBytes {
        let h = Sodium.Blake2bState(outputBytes: 32, key: secret)
        h.update(label)
        h.update(salt)
        return h.finalizeSecret()
    }
}

/// Seals and opens payload chunks with XChaCha20-Poly1305-IETF under the payload key.
/// `nonce = nonce_prefix (16 bytes) || u64le(chunk_index | last << 63)`;
/// `associated data = header_digest (32 bytes) || section (1 byte)`.
struct ChunkCipher: Sendable {
    let payloadKey: SecretBytes
    let noncePrefix: [UInt8]
    let headerDigest: [UInt8]

    static let tagSize = Sodium.aeadTagBytes

    func nonce(index: UInt64, last: Bool) -> [UInt8] {
        precondition(index < 1 << 63)
        var w = ByteWriter(capacity: 24)
        w.raw(noncePrefix)
        w.u64(index | (last ? 1 << 63 : 0))
        return w.bytes
    }

    func associatedData(_ section: FormatV1.Section) -> [UInt8] {
        headerDigest + [section.rawValue]
    }

    /// Seals one zstd frame; `output` must hold `frame.count + 16` bytes. Returns the sealed length.
    func seal(_ frame: UnsafeRawBufferPointer, index: UInt64, last: Bool, section: FormatV1.Section,
              into output: UnsafeMutableRawBufferPointer) -> Int {
        Sodium.aeadSeal(plaintext: frame, output: output, additionalData: associatedData(section),
                        nonce: nonce(index: index, last: last), key: payloadKey)
    }

    /// Opens one sealed chunk into `output`; nil if it does not authenticate at this index,
    /// section and position (last or not).
    func open(_ sealed: UnsafeRawBufferPointer, index: UInt64, last: Bool, section: FormatV1.Section,
              into output: UnsafeMutableRawBufferPointer) -> Int? {
        Sodium.aeadOpen(ciphertext: sealed, output: output, additionalData: associatedData(section),
                        nonce: nonce(index: index, last: last), key: payloadKey)
    }
}
