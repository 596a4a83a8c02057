/// One wrapped copy of the archive's file key.
public struct Recipient: Sendable, Equatable {
    /// `recipient_type` 1: the file key sealed to an X25519 public key with `crypto_box_seal`.
    static let typeX25519SealedBox: UInt8 = 1

    public var type: UInt8
    /// `key_id`: BLAKE2b-128 of the recipient's X25519 public key.
    public var keyID: [UInt8]
    /// `wrapped_key`: for type 1, the 80-byte sealed box of the 32-byte file key.
    public var wrappedKey: [UInt8]
}

/// The re-wrappable part of the header: the wrapped file keys, the header MAC (keyed from the file
/// key, so every recipient can check the whole header) and a keyless checksum (so an auditor can tell
/// bit rot here from a sound archive). It sits between the header and the payload and is not part of
/// `header_digest`, so re-wrapping leaves the archive's identity and signature intact.
public struct RecipientBlock: Sendable, Equatable {
    public var recipients: [Recipient]
    public var headerMAC: [UInt8]

    /// The bytes the header MAC covers after `header_digest`: `recipient_count` and the entries.
    func entriesEncoded() -> [UInt8] {
        var w = ByteWriter()
        w.u16(UInt16(recipients.count))
        for r in recipients {
            w.u8(r.type)
            w.raw(r.keyID)
            w.u16(UInt16(r.wrappedKey.count))
            w.raw(r.wrappedKey)
        }
        return w.bytes
    }

    /// `header_mac`: keyed BLAKE2b-256 over `header_digest` and the encoded entries.
    static func mac(headerDigest: [UInt8], entries: [UInt8], macKey: SecretBytes) -> [UInt8] {
        Sodium.blake2b(headerDigest + entries, key: macKey)
    }

    /// The whole block as stored: `recipients_length`, entries, `header_mac`, `recipients_checksum`.
    func encoded() -> [UInt8] {
        let entries = entriesEncoded()
        var w = ByteWriter()
        w.u32(UInt32(entries.count + 64))
        w.raw(entries)
        w.raw(headerMAC)
        let checksum = Sodium.blake2b(w.bytes)
        w.raw(checksum)
        return w.bytes
    }

    /// Checks `recipients_length` before anything is read or allocated.
    static func parseLength(_ bytes: [UInt8]) throws -> UInt32 {
        var r = ByteReader(bytes, what: "recipient block")
        let length = try r.u32()
        guard length >= 85, length <= FormatV1.maxRecipientsLength else {
            throw IntegrityError.outOfRange(field: "recipients_length", value: UInt64(length), min: 85, max: UInt64(FormatV1.maxRecipientsLength))
        }
        return length
    }

    /// Decodes a whole block (`recipients_length` included) and checks its keyless checksum.
    static func decode(_ block: [UInt8]) throws -> RecipientBlock {
        guard block.count >= 4 else { throw IntegrityError.truncated(what: "recipient block") }
        let length = try parseLength(Array(block[0..<4]))
        guard block.count == 4 + Int(length) else { throw IntegrityError.truncated(what: "recipient block") }
        let body = Array(block[0..<(block.count - 32)])
        guard Sodium.blake2b(body) == Array(block[(block.count - 32)...]) else {
            throw IntegrityError.checksumMismatch(what: "recipient block")
        }
        var r = ByteReader(Array(block[4..<(block.count - 32)]), what: "recipient block")
        let count = Int(try r.u16())
        guard count >= 1, count <= FormatV1.maxRecipientCount else {
            throw IntegrityError.outOfRange(field: "recipient_count", value: UInt64(count), min: 1, max: UInt64(FormatV1.maxRecipientCount))
        }
        var recipients: [Recipient] = []
        for _ in 0..<count {
            let type = try r.u8()
            let keyID = try r.raw(16)
            let len = Int(try r.u16())
            let wrapped = try r.raw(len)
            if type == Recipient.typeX25519SealedBox && len != 32 + Sodium.sealedBoxOverhead {
                throw IntegrityError.malformed(what: "recipient entry (sealed box of \(len) bytes)")
            }
            recipients.append(Recipient(type: type, keyID: keyID, wrappedKey: wrapped))
        }
        let mac = try r.raw(32)
        try r.expectEnd()
        return RecipientBlock(recipients: recipients, headerMAC: mac)
    }
}
