import Foundation
import Testing
@testable import ColdArchive

/// Hostile bytes inside validly signed, validly sealed archives — what a compromised host holding
/// the signing key and an encryption key could write: tar records of absurd size, overlong or NUL
/// names, sizes that lie, and zstd frames that would exhaust memory.
@Suite struct HostileStreamTests {
    let data = Array("name,email\n".utf8)

    /// A hand-made zstd frame: one raw block of `content`, declaring `declared` content bytes and a
    /// window of 2^`windowLog` bytes (docs: RFC 8878 §3.1.1).
    func frame(_ content: [UInt8], declared: UInt32, windowLog: UInt8) -> [UInt8] {
        var out: [UInt8] = [0x28, 0xB5, 0x2F, 0xFD]
        out.append(0x80)                                  // 4-byte content size, not single-segment
        out.append((windowLog - 10) << 3)                 // window descriptor
        withUnsafeBytes(of: declared.littleEndian) { out += $0 }
        let header = UInt32(content.count) << 3 | 1       // last block, raw
        out += [UInt8(header & 0xff), UInt8(header >> 8 & 0xff), UInt8(header >> 16 & 0xff)]
        return out + content
    }

    /// Replaces data chunk 0 of a fresh archive with `frame`, sealed and signed as a compromised
    /// host would, and expects restore to refuse it.
    func expectFrameRefused(_ frame: [UInt8], rawLength: UInt32? = nil, lastDataChunk: Bool = false, containing: String,
                            sourceLocation: SourceLocation = #_sourceLocation) throws {
        let f = try TamperCampaignTests.Fixture()
        let cipher = try f.file.unlock(with: f.keys.keyring)
        var surgeon = try ArchiveSurgeon(f.path)
        let index = lastDataChunk ? Int(f.file.totals.manifestFirstChunk) - 1 : 0
        let sealed = ByteBuffer(capacity: frame.count + 16)
        sealed.count = frame.withUnsafeBytes { cipher.seal($0, index: UInt64(index), last: false, section: .data, into: sealed.storage) }
        surgeon.chunks[index] = sealed.toArray()
        let raw = rawLength ?? surgeon.rawLengths[index]
        surgeon.totals.tarBytes = surgeon.totals.tarBytes - UInt64(surgeon.rawLengths[index]) + UInt64(raw)
        surgeon.rawLengths[index] = raw
        try f.expectRestoreRefuses(surgeon.assemble(resignWith: f.keys.signer), "crafted frame", containing: containing,
                                   sourceLocation: sourceLocation)
    }

    @Test func aFrameAskingForAHugeWindowIsRefused() throws {
        try expectFrameRefused(frame([UInt8](repeating: 0, count: 4096), declared: 4096, windowLog: 31), rawLength: 4096,
                               containing: "frame asks for a 2048 MiB window")
    }

    @Test func aFrameThatDecompressesBeyondTheSignedSizeIsRefused() throws {
        // Declares the signed size but holds twice as much: a bomb stopped at the declared size.
        try expectFrameRefused(frame([UInt8](repeating: 0, count: 4150), declared: 4096, windowLog: 12), rawLength: 4096,
                               containing: "does not decompress")
        // Declares more than the signed size of the (shorter) last data chunk.
        try expectFrameRefused(frame([UInt8](repeating: 0, count: 4096), declared: 4096, windowLog: 12), lastDataChunk: true,
                               containing: "frame declares 4096 content bytes, the trailer records")
    }

    @Test func aPaxHeaderOfAbsurdSizeIsRefused() throws {
        // A pax extended header claiming 8 GiB of records, in a stream far shorter than that.
        var pax = HandTar.header("crm/PaxHeader", .file, size: 0)
        pax[156] = 0x78  // 'x'
        let size = Array(String(0o77777777777, radix: 8).utf8)
        for (i, b) in size.enumerated() { pax[124 + i] = b }
        for i in 148..<156 { pax[i] = 0x20 }
        let sum = pax.reduce(0) { $0 + Int($1) }
        for (i, b) in Array(String(format: "%06o", sum).utf8).enumerated() { pax[148 + i] = b }
        pax[154] = 0
        try HostileContentTests().expectRefused(tar: HostileContentTests.crm + pax + [UInt8](repeating: 0x41, count: 1024),
                                                manifest: [.directory("crm")], where: { if case .tarStream = $0 { true } else { false } },
                                                outside: ["crm"])
    }

    /// A pax record for `key`.
    func paxRecord(_ key: String, _ value: [UInt8]) -> [UInt8] {
        let body = Array(" \(key)=".utf8) + value + [0x0A]
        var length = body.count + 1
        while String(length).utf8.count + body.count != length { length += 1 }
        return Array(String(length).utf8) + body
    }

    func paxEntry(path: [UInt8], data: [UInt8]) -> [UInt8] {
        let records = paxRecord("path", path)
        var header = HandTar.header("crm/PaxHeader", .file, size: records.count)
        header[156] = 0x78
        for i in 148..<156 { header[i] = 0x20 }
        let sum = header.reduce(0) { $0 + Int($1) }
        for (i, b) in Array(String(format: "%06o", sum).utf8).enumerated() { header[148 + i] = b }
        header[154] = 0
        var out = header + records
        out += [UInt8](repeating: 0, count: (512 - records.count % 512) % 512)
        return out + HandTar.entry("crm/placeholder", .file, data: data)
    }

    /// A name over 4 096 bytes: the manifest decoder's cap refuses it in the manifest, the path rules
    /// in the tar stream (where the manifest holds an ordinary name at that position).
    @Test func namesLongerThanTheLimitAreRefused() throws {
        let long = "crm/" + String(repeating: "d/", count: 2100) + "x.csv"
        try HostileContentTests().expectRefused(tar: HostileContentTests.crm + paxEntry(path: Array(long.utf8), data: data),
                                                manifest: [.directory("crm"), .file(long, data)],
                                                because: .outOfRange(field: "length of manifest path", value: UInt64(long.utf8.count), min: 0,
                                                                     max: UInt64(FormatV1.maxPathBytes)), outside: ["crm"])
        try HostileContentTests().expectRefused(tar: HostileContentTests.crm + paxEntry(path: Array(long.utf8), data: data),
                                                manifest: [.directory("crm"), .file("crm/x.csv", data)],
                                                because: .unsafeEntry(path: long, reason: .nameTooLong), outside: ["crm"])
    }

    @Test func aNameWithANulByteIsRefused() throws {
        let name = Array("crm/a".utf8) + [0] + Array("b.csv".utf8)
        let path = String(decoding: name, as: UTF8.self)
        try HostileContentTests().expectRefused(tar: HostileContentTests.crm + paxEntry(path: name, data: data),
                                                manifest: [.directory("crm"), .file(path, data)],
                                                because: .malformed(what: "manifest path (not valid UTF-8, or it holds a NUL byte)"), outside: ["crm"])
    }

    @Test func anEntrySizeThatDisagreesWithItsDataIsRefused() throws {
        // The header (and the manifest) promise 5000 bytes; the stream ends first.
        let header = HandTar.header("crm/a.csv", .file, size: 5000)
        let padded = data + [UInt8](repeating: 0, count: 512 - data.count)
        var entry = ManifestEntry.file("crm/a.csv", data)
        entry.size = 5000
        try HostileContentTests().expectRefused(tar: HostileContentTests.crm + header + padded,
                                                manifest: [.directory("crm"), entry],
                                                where: { if case .tarStream = $0 { true } else { false } }, outside: ["crm"])
    }
}
