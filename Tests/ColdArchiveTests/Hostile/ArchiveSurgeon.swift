import Foundation
@testable import ColdArchive

/// Takes an archive apart into its stored pieces and puts it back together — optionally re-signing
/// the trailer — so tests can play the attacker who holds the signing key (a compromised host) and
/// check that the encryption layer still refuses what the signature would have let through.
struct ArchiveSurgeon {
    var headerBytes: [UInt8]           // prelude + header fields
    var recipientBytes: [UInt8]        // the whole recipient block
    var chunks: [[UInt8]]              // stored ciphertexts
    var rawLengths: [UInt32]
    var totals: TrailerTotals
    var signature: [UInt8]

    init(_ path: String) throws {
        let file = try ArchiveFile(path: path)
        let bytes = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let headerEnd = file.header.encoded().count
        headerBytes = Array(bytes[0..<headerEnd])
        recipientBytes = Array(bytes[headerEnd..<Int(file.footer.payloadOffset)])
        totals = file.totals
        chunks = []
        rawLengths = []
        let cursor = file.chunkTable()
        while let (_, offset, record) = try cursor.next() {
            chunks.append(Array(bytes[Int(offset)..<Int(offset) + Int(record.sealedLength)]))
            rawLengths.append(record.rawLength)
        }
        signature = Array(bytes[(bytes.count - 56 - 64)..<(bytes.count - 56)])
    }

    /// The file as these pieces describe it. With `resignWith`, the trailer's totals and chunk table
    /// are recomputed from the chunks and signed again; otherwise the original trailer is kept.
    func assemble(resignWith signer: SigningKey? = nil, headerDigestFromHeader: Bool = false) -> [UInt8] {
        var totals = self.totals
        var records: [ChunkRecord] = []
        for (chunk, raw) in zip(chunks, rawLengths) {
            records.append(ChunkRecord(sealedLength: UInt32(chunk.count), rawLength: raw, hash: Sodium.blake2b(chunk)))
        }
        var signature = self.signature
        if signer != nil || headerDigestFromHeader {
            totals.chunkCount = UInt64(chunks.count)
            totals.payloadBytes = UInt64(chunks.reduce(0) { $0 + $1.count })
            if headerDigestFromHeader { totals.headerDigest = Sodium.blake2b(headerBytes) }
        }
        var table = ByteWriter()
        for record in records { record.encode(into: &table) }
        let trailerBody = totals.encoded() + table.bytes
        if let signer { signature = signer.sign(FormatV1.signatureContext + Sodium.blake2b(trailerBody)) }
        let payload = chunks.flatMap { $0 }
        let payloadOffset = UInt64(headerBytes.count + recipientBytes.count)
        let footer = Footer(formatVersion: UInt16(headerBytes[8]) | UInt16(headerBytes[9]) << 8, payloadOffset: payloadOffset, trailerOffset: payloadOffset + UInt64(payload.count),
                            trailerLength: UInt64(trailerBody.count + 64))
        return headerBytes + recipientBytes + payload + trailerBody + signature + footer.encoded()
    }

    func write(to path: String, resignWith signer: SigningKey? = nil, headerDigestFromHeader: Bool = false) throws {
        try Data(assemble(resignWith: signer, headerDigestFromHeader: headerDigestFromHeader)).write(to: URL(fileURLWithPath: path))
    }
}
