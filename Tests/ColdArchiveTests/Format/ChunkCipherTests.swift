import Testing
@testable import ColdArchive

/// The nonce and associated data bind each chunk to its index, its section, whether it is last,
/// and its archive.
@Suite struct ChunkCipherTests {
    let cipher = ChunkCipher(payloadKey: SecretBytes.random(count: 32), noncePrefix: Sodium.randomBytes(16),
                             headerDigest: Sodium.randomBytes(32))

    func seal(_ text: String, index: UInt64, last: Bool = false, section: FormatV1.Section = .data) -> ByteBuffer {
        let plain = Array(text.utf8)
        let out = ByteBuffer(capacity: plain.count + 16)
        out.count = plain.withUnsafeBytes { cipher.seal($0, index: index, last: last, section: section, into: out.storage) }
        return out
    }

    func open(_ sealed: ByteBuffer, with c: ChunkCipher? = nil, index: UInt64, last: Bool = false, section: FormatV1.Section = .data) -> String? {
        let out = ByteBuffer(capacity: sealed.count)
        guard let n = (c ?? cipher).open(sealed.bytes, index: index, last: last, section: section, into: out.storage) else { return nil }
        out.count = n
        return String(decoding: out.bytes, as: UTF8.self)
    }

    @Test func opensAtItsOwnPosition() {
        #expect(open(seal("chunk three", index: 3), index: 3) == "chunk three")
    }

    @Test func refusesAnotherIndex() {
        #expect(open(seal("chunk three", index: 3), index: 4) == nil)
    }

    @Test func refusesWhenTheLastFlagDiffers() {
        #expect(open(seal("end", index: 9, last: true), index: 9, last: false) == nil)
        #expect(open(seal("middle", index: 9, last: false), index: 9, last: true) == nil)
    }

    @Test func refusesAnotherSection() {
        #expect(open(seal("manifest", index: 2, section: .manifest), index: 2, section: .data) == nil)
    }

    @Test func refusesAnotherArchivesHeader() {
        let other = ChunkCipher(payloadKey: cipher.payloadKey, noncePrefix: cipher.noncePrefix, headerDigest: Sodium.randomBytes(32))
        #expect(open(seal("x", index: 0), with: other, index: 0) == nil)
    }

    @Test func payloadKeyDoesNotDependOnRecipients() throws {
        let fileKey = FileKey.generate()
        let salt = Sodium.randomBytes(32)
        let a = fileKey.payloadKey(salt: salt), b = fileKey.payloadKey(salt: salt)
        let mac = fileKey.headerMACKey(salt: salt)
        a.withUnsafeBytes { pa in b.withUnsafeBytes { pb in #expect(Array(pa) == Array(pb)) } }
        a.withUnsafeBytes { pa in mac.withUnsafeBytes { pm in #expect(Array(pa) != Array(pm)) } }
    }
}
