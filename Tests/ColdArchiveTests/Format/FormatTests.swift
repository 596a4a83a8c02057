import Testing
@testable import ColdArchive

@Suite struct HeaderEncodingTests {
    func sampleHeader() -> ArchiveHeader {
        var header = ArchiveHeader(archiveID: [UInt8](repeating: 1, count: 16), created: 1_767_225_600, chunkRawSize: FormatV1.defaultChunkRawSize,
                                   noncePrefix: [UInt8](repeating: 2, count: 16), payloadSalt: [UInt8](repeating: 3, count: 32),
                                   signerPublicKey: [UInt8](repeating: 4, count: 32), label: "März 2026", sources: ["crm", "tickets"],
                                   creator: "test")
        header.formatVersion = 1
        return header
    }

    /// A version 2 header in a series (FORMAT.md §5).
    func seriesHeader(sequence: UInt64 = 2, previous: [UInt8]? = [UInt8](repeating: 7, count: 32)) -> ArchiveHeader {
        var header = sampleHeader()
        header.formatVersion = 2
        header.sources = []
        header.position = .init(series: "crm-monthly", sequence: sequence, period: "2026-11", previousArchiveDigest: previous)
        header.retainUntil = 1_767_225_600 + 10 * 365 * 86_400
        return header
    }

    func expectRefused(_ header: ArchiveHeader, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        let (prelude, body) = split(header.encoded())
        #expect(throws: IntegrityError.malformed(what: "header (\(what))"), sourceLocation: sourceLocation) {
            try ArchiveHeader.decode(prelude: prelude, fields: body)
        }
    }

    @Test func aSeriesHeaderRoundTrips() throws {
        let header = seriesHeader()
        let (prelude, body) = split(header.encoded())
        let decoded = try ArchiveHeader.decode(prelude: prelude, fields: body)
        #expect(decoded == header)
        #expect(decoded.position == header.position)
        #expect(decoded.retainUntil == header.retainUntil)
        var first = seriesHeader(sequence: 1, previous: nil)
        first.backupMode = .full
        let (p1, b1) = split(first.encoded())
        #expect(try ArchiveHeader.decode(prelude: p1, fields: b1).backupMode == .full)
    }

    @Test func theSeriesRulesAreEnforced() {
        expectRefused(seriesHeader(sequence: 2, previous: nil), "sequence 2 without a previous-archive digest")
        expectRefused(seriesHeader(sequence: 1), "sequence 1 with a previous-archive digest")
        expectRefused(seriesHeader(sequence: 0, previous: nil), "sequence 0")
        var badPeriod = seriesHeader()
        badPeriod.position?.period = "2026-02-30"
        expectRefused(badPeriod, "period '2026-02-30'")
        var badName = seriesHeader()
        badName.position?.series = "-crm"
        expectRefused(badName, "series name '-crm'")
        var incremental = seriesHeader()
        incremental.backupMode = .incremental
        expectRefused(incremental, "an incremental or differential archive needs a series and a base-archive digest, and only it has a base")
        var lonelyBase = seriesHeader()
        lonelyBase.baseArchiveDigest = [UInt8](repeating: 5, count: 32)
        expectRefused(lonelyBase, "an incremental or differential archive needs a series and a base-archive digest, and only it has a base")
        var early = seriesHeader()
        early.retainUntil = early.created - 1
        expectRefused(early, "retain_until before created")
        var plaintextSources = seriesHeader()
        plaintextSources.sources = ["crm"]
        expectRefused(plaintextSources, "a version 2 header holds the plaintext sources field")
        // A previous digest alone (no series) cannot be built through `position`; craft it.
        var fields = requiredFields() + [(0x0013, [UInt8](repeating: 7, count: 32))]
        fields.sort { $0.0 < $1.0 }
        let (prelude, body) = rawHeader(fields, version: 2)
        #expect(throws: IntegrityError.malformed(what: "header (a previous-archive digest without a series)")) {
            try ArchiveHeader.decode(prelude: prelude, fields: body)
        }
    }

    @Test func periodsAreRealDates() {
        for good in ["2026", "2026-11", "2024-02-29", "2026-W01", "2026-W52", "2020-W53", "2015-W53", "2026-W53", "2032-W53"] {
            #expect(ArchiveHeader.isValidPeriod(good), "\(good)")
        }
        for bad in ["26-11", "2026-13", "2026-00", "2025-02-29", "2025-W53", "2021-W53", "2026-W00", "2026-11-", "2026/11", "2026-1"] {
            #expect(!ArchiveHeader.isValidPeriod(bad), "\(bad)")
        }
    }

    @Test func aVersionOneHeaderRefusesVersionTwoFields() {
        var fields = requiredFields() + [(0x0011, [1, 0, 0, 0, 0, 0, 0, 0])]
        fields.sort { $0.0 < $1.0 }
        let (prelude, body) = rawHeader(fields, version: 1)
        #expect(throws: IntegrityError.unknownCriticalField(tag: 0x0011)) { try ArchiveHeader.decode(prelude: prelude, fields: body) }
    }

    func split(_ bytes: [UInt8]) -> ([UInt8], [UInt8]) { (Array(bytes[0..<16]), Array(bytes[16...])) }

    /// Builds a header from raw fields, with a correct prelude.
    func rawHeader(_ fields: [(UInt16, [UInt8])], version: UInt16 = 1) -> ([UInt8], [UInt8]) {
        var body = ByteWriter()
        for (tag, value) in fields { body.u16(tag); body.u32(UInt32(value.count)); body.raw(value) }
        var prelude = ByteWriter()
        prelude.raw(FormatV1.magic); prelude.u16(version); prelude.u16(0); prelude.u32(UInt32(body.bytes.count))
        return (prelude.bytes, body.bytes)
    }

    func requiredFields() -> [(UInt16, [UInt8])] {
        let (_, body) = split(sampleHeader().encoded())
        var r = ByteReader(body, what: "test")
        var out: [(UInt16, [UInt8])] = []
        while !r.isAtEnd {
            let tag = try! r.u16(); let len = try! r.u32(); let value = try! r.raw(Int(len))
            if tag & 0x8000 == 0 { out.append((tag, value)) }
        }
        return out
    }

    @Test func headerRoundTrips() throws {
        let header = sampleHeader()
        let (prelude, body) = split(header.encoded())
        let decoded = try ArchiveHeader.decode(prelude: prelude, fields: body)
        #expect(decoded == header)
        #expect(decoded.label == "März 2026")
        #expect(decoded.sources == ["crm", "tickets"])
    }

    @Test func unknownOptionalFieldIsSkippedAndKept() throws {
        let (prelude, body) = rawHeader(requiredFields() + [(0x8F00, [9, 9, 9])])
        let decoded = try ArchiveHeader.decode(prelude: prelude, fields: body)
        #expect(decoded.encoded() == prelude + body)
    }

    @Test func unknownCriticalFieldIsRefused() {
        let (prelude, body) = rawHeader(requiredFields() + [(0x0010, [1])])
        #expect(throws: IntegrityError.unknownCriticalField(tag: 0x10)) { try ArchiveHeader.decode(prelude: prelude, fields: body) }
    }

    @Test func fieldsOutOfOrderAreRefused() {
        let (prelude, body) = rawHeader(Array(requiredFields().reversed()))
        #expect(throws: IntegrityError.malformed(what: "header (fields out of order or repeated)")) {
            try ArchiveHeader.decode(prelude: prelude, fields: body)
        }
    }

    @Test func repeatedFieldIsRefused() {
        let fields = requiredFields()
        let (prelude, body) = rawHeader(fields + [fields.last!])
        #expect(throws: IntegrityError.malformed(what: "header (fields out of order or repeated)")) {
            try ArchiveHeader.decode(prelude: prelude, fields: body)
        }
    }

    @Test func missingRequiredFieldIsRefused() {
        let (prelude, body) = rawHeader(Array(requiredFields().dropFirst()))
        #expect(throws: IntegrityError.self) { try ArchiveHeader.decode(prelude: prelude, fields: body) }
    }

    @Test func aPreludeWithoutTheMagicIsRefused() {
        var (prelude, body) = rawHeader(requiredFields())
        prelude[0] ^= 0x01
        #expect(throws: IntegrityError.notAnArchive(reason: "the file does not start with the coldarchive magic bytes")) {
            try ArchiveHeader.decode(prelude: prelude, fields: body)
        }
    }

    @Test func unknownVersionIsRefusedClearly() {
        let (prelude, body) = rawHeader(requiredFields(), version: 3)
        #expect(throws: IntegrityError.unsupportedVersion(3)) { try ArchiveHeader.decode(prelude: prelude, fields: body) }
    }

    @Test func unknownSuiteIsRefused() {
        var fields = requiredFields()
        fields[0] = (0x0001, [7, 0])
        let (prelude, body) = rawHeader(fields)
        #expect(throws: IntegrityError.unsupportedSuite(7)) { try ArchiveHeader.decode(prelude: prelude, fields: body) }
    }

    @Test(arguments: [UInt32(0), FormatV1.maxHeaderLength + 1, UInt32.max])
    func headerLengthIsCappedBeforeAllocation(length: UInt32) {
        var prelude = ByteWriter()
        prelude.raw(FormatV1.magic); prelude.u16(1); prelude.u16(0); prelude.u32(length)
        #expect(throws: IntegrityError.outOfRange(field: "header_length", value: UInt64(length), min: 1, max: UInt64(FormatV1.maxHeaderLength))) {
            try ArchiveHeader.parsePrelude(prelude.bytes)
        }
    }

    @Test func chunkRawSizeOutOfRangeIsRefused() {
        var fields = requiredFields()
        let index = fields.firstIndex { $0.0 == 0x0004 }!
        var w = ByteWriter(); w.u32(FormatV1.maxChunkRawSize + 1)
        fields[index] = (0x0004, w.bytes)
        let (prelude, body) = rawHeader(fields)
        #expect(throws: IntegrityError.self) { try ArchiveHeader.decode(prelude: prelude, fields: body) }
    }
}

@Suite struct TrailerAndFooterTests {
    @Test func footerRoundTripsAndDetectsDamage() throws {
        let footer = Footer(payloadOffset: 400, trailerOffset: 10_000, trailerLength: 240)
        var bytes = footer.encoded()
        #expect(bytes.count == FormatV1.footerSize)
        #expect(try Footer.decode(bytes) == footer)
        bytes[20] ^= 1
        #expect(throws: IntegrityError.checksumMismatch(what: "footer")) { try Footer.decode(bytes) }
    }

    @Test func recipientBlockChecksumDetectsBitRot() throws {
        let block = RecipientBlock(recipients: [Recipient(type: 1, keyID: [UInt8](repeating: 5, count: 16),
                                                          wrappedKey: [UInt8](repeating: 6, count: 80))],
                                   headerMAC: [UInt8](repeating: 7, count: 32))
        var bytes = block.encoded()
        #expect(try RecipientBlock.decode(bytes) == block)
        bytes[10] ^= 1
        #expect(throws: IntegrityError.checksumMismatch(what: "recipient block")) { try RecipientBlock.decode(bytes) }
    }

    @Test func recipientsLengthIsCappedBeforeAllocation() {
        var w = ByteWriter()
        w.u32(FormatV1.maxRecipientsLength + 1)
        #expect(throws: IntegrityError.outOfRange(field: "recipients_length", value: UInt64(FormatV1.maxRecipientsLength) + 1, min: 85,
                                                  max: UInt64(FormatV1.maxRecipientsLength))) {
            try RecipientBlock.parseLength(w.bytes)
        }
    }

    /// Bytes between the header MAC and the checksum, with the length and checksum made to match:
    /// only the canonical-encoding rule (nothing trailing) refuses them.
    @Test func recipientBlockWithTrailingBytesIsRefused() throws {
        let block = RecipientBlock(recipients: [Recipient(type: 1, keyID: [UInt8](repeating: 5, count: 16),
                                                          wrappedKey: [UInt8](repeating: 6, count: 80))],
                                   headerMAC: [UInt8](repeating: 7, count: 32))
        var bytes = block.encoded()
        bytes.insert(contentsOf: [1, 2, 3], at: bytes.count - 32)
        var length = ByteWriter()
        length.u32(UInt32(bytes.count - 4))
        bytes.replaceSubrange(0..<4, with: length.bytes)
        bytes.replaceSubrange((bytes.count - 32)..., with: Sodium.blake2b(Array(bytes[0..<(bytes.count - 32)])))
        #expect(throws: IntegrityError.malformed(what: "recipient block (3 unexpected trailing bytes)")) { try RecipientBlock.decode(bytes) }
    }

    @Test func trailerTotalsRejectImpossibleCounts() {
        let totals = TrailerTotals(headerDigest: [UInt8](repeating: 0, count: 32), chunkCount: 5, manifestFirstChunk: 5,
                                   tarBytes: 1, manifestBytes: 1, entryCount: 1, contentBytes: 0, payloadBytes: 100)
        #expect(throws: IntegrityError.self) { try TrailerTotals.decode(totals.encoded()) }
    }
}

@Suite struct ManifestEncodingTests {
    let entries = [
        ManifestEntry(kind: .directory, path: "crm", mode: 0o755, mtime: 1, mtimeNanoseconds: 2, size: 0,
                      contentHash: ManifestEntry.zeroHash, linkTarget: ""),
        ManifestEntry(kind: .file, path: "crm/ü.csv", mode: 0o640, mtime: -5, mtimeNanoseconds: 999_999_999, size: 12,
                      contentHash: [UInt8](repeating: 0xAB, count: 32), linkTarget: ""),
        ManifestEntry(kind: .symlink, path: "crm/l", mode: 0o777, mtime: 3, mtimeNanoseconds: 0, size: 0,
                      contentHash: ManifestEntry.zeroHash, linkTarget: "ü.csv"),
    ]

    @Test func decoderAcceptsAnySplitOfTheStream() throws {
        var w = ByteWriter()
        w.raw(FormatV1.manifestMagic)
        for e in entries { e.encode(into: &w, version: 1) }
        var decoder = ManifestDecoder()
        var decoded: [ManifestEntry] = []
        for byte in w.bytes {
            decoder.feed([byte])
            while let e = try decoder.next() { decoded.append(e) }
        }
        try decoder.expectEnd()
        #expect(decoded == entries)
    }

    @Test func oversizedEntryLengthIsRefusedBeforeBuffering() {
        var w = ByteWriter()
        w.raw(FormatV1.manifestMagic)
        w.u32(UInt32.max)
        var decoder = ManifestDecoder()
        decoder.feed(w.bytes)
        #expect(throws: IntegrityError.outOfRange(field: "manifest entry_length", value: UInt64(UInt32.max),
                                                  min: UInt64(ManifestEntry.fixedSize), max: UInt64(ManifestEntry.maxEncodedSize))) {
            _ = try decoder.next()
        }
    }

    @Test func modeWithSetuidBitIsRefused() {
        var w = ByteWriter()
        var bad = entries[1]
        bad.mode = 0o4755
        bad.encode(into: &w, version: 1)
        #expect(throws: IntegrityError.malformed(what: "manifest entry (mode 4755)")) { try ManifestEntry.decode(Array(w.bytes[4...]), version: 1) }
    }
}

/// Version 2 manifest entries (FORMAT.md §8): every field and record round-trips, and every rule one
/// entry can break is refused for its reason.
@Suite struct ManifestV2EncodingTests {
    func richEntry() -> ManifestEntry {
        var e = ManifestEntry(kind: .file, path: "crm/tickets/T-1.json", mode: 0o4750, mtime: -473_385_600, mtimeNanoseconds: 500_000_000,
                              size: 1000, contentHash: [UInt8](repeating: 9, count: 32), linkTarget: "")
        e.uid = 1000
        e.gid = 100
        e.userName = "ada"
        e.groupName = "users"
        // In record order: by name length, then name.
        e.xattrs = [ExtendedAttribute(name: Array("user.z".utf8), value: [0, 1, 2]),
                    ExtendedAttribute(name: Array("user.origin".utf8), value: Array("crm".utf8))]
        e.accessACL = [ACLEntry(tag: .userObj, permissions: 7), ACLEntry(tag: .user, permissions: 4, id: 1001, name: "grace"),
                       ACLEntry(tag: .groupObj, permissions: 4), ACLEntry(tag: .mask, permissions: 5), ACLEntry(tag: .other, permissions: 0)]
        e.flags = [.changedWhileRead, .shrank]
        e.readSize = 600
        e.tarOffset = 512 * 7
        return e
    }

    func encoded(_ e: ManifestEntry) -> [UInt8] {
        var w = ByteWriter()
        e.encode(into: &w, version: 2)
        return Array(w.bytes[4...])
    }

    func expectRefused(_ e: ManifestEntry, _ what: String, sourceLocation: SourceLocation = #_sourceLocation) {
        #expect(throws: IntegrityError.malformed(what: what), sourceLocation: sourceLocation) { try ManifestEntry.decode(encoded(e), version: 2) }
    }

    @Test func everyFieldAndRecordRoundTrips() throws {
        let e = richEntry()
        let decoded = try ManifestEntry.decode(encoded(e), version: 2)
        #expect(decoded == e)
        // Records are in canonical order whatever order the attributes were given in.
        var shuffled = e
        shuffled.xattrs.reverse()
        #expect(encoded(shuffled) == encoded(e))
    }

    @Test func recordsOutOfOrderOrUnknownAreRefused() throws {
        let bytes = encoded(richEntry())
        // Swap the first two records (user_name, group_name): find them after the fixed part and names.
        let fixed = ManifestEntry.fixedSizeV2 - 2 + "crm/tickets/T-1.json".utf8.count
        var r = ByteReader(Array(bytes[fixed...]), what: "test")
        let count = try r.u16()
        #expect(count == 6)
        let first = 1 + 4 + 3, second = 1 + 4 + 5  // "ada", "users"
        let start = fixed + 2
        let swapped = Array(bytes[..<start]) + Array(bytes[(start + first)..<(start + first + second)])
            + Array(bytes[start..<(start + first)]) + Array(bytes[(start + first + second)...])
        #expect(throws: IntegrityError.malformed(what: "manifest entry (records out of order or repeated)")) {
            try ManifestEntry.decode(swapped, version: 2)
        }
        // An unknown critical record (tag 0x40) is refused; an unknown optional one (0xC0) is skipped.
        for (tag, accepted) in [(UInt8(0x40), false), (UInt8(0xC0), true)] {
            var w = ByteWriter()
            var plain = richEntry()
            plain.xattrs = []; plain.accessACL = []; plain.userName = nil; plain.groupName = nil; plain.flags = []; plain.readSize = nil
            plain.encode(into: &w, version: 2)
            var body = Array(w.bytes[4...])
            body[body.count - 2] = 1  // record_count = 1 (it was 0), then the record
            body += [tag, 1, 0, 0, 0, 42]
            if accepted {
                #expect(try ManifestEntry.decode(body, version: 2) == plain)
            } else {
                #expect(throws: IntegrityError.malformed(what: "manifest entry (unknown critical record 0x40)")) { try ManifestEntry.decode(body, version: 2) }
            }
        }
    }

    @Test func theEntryRulesAreEnforced() {
        var e = richEntry()
        e.accessACL.removeAll { $0.tag == .mask }
        expectRefused(e, "manifest entry 'crm/tickets/T-1.json' (an ACL without its owner, group and other entries, or with a mask exactly when it has no named entry)")
        e = richEntry()
        e.mode = 0o4770
        expectRefused(e, "manifest entry 'crm/tickets/T-1.json' (an access ACL that disagrees with the mode)")
        e = richEntry()
        e.readSize = nil
        expectRefused(e, "manifest entry 'crm/tickets/T-1.json' (flag shrank and read_size disagree)")
        e = richEntry()
        e.readSize = 1000
        expectRefused(e, "manifest entry 'crm/tickets/T-1.json' (read_size)")
        var dir = ManifestEntry.directory("crm")
        dir.flags = .changedWhileRead
        expectRefused(dir, "manifest entry 'crm' (flags on a directory)")
        dir = ManifestEntry.directory("crm")
        dir.xattrs = [ExtendedAttribute(name: Array("user.a".utf8), value: [1]), ExtendedAttribute(name: Array("user.a".utf8), value: [2])]
        expectRefused(dir, "manifest entry 'crm' (xattr name repeated)")
        var deleted = ManifestEntry(kind: .deleted, path: "crm/gone", mode: 0o644, mtime: 0, mtimeNanoseconds: 0, size: 0,
                                    contentHash: ManifestEntry.zeroHash, linkTarget: "")
        expectRefused(deleted, "manifest entry 'crm/gone' (a deleted entry with metadata)")
        deleted.mode = 0
        #expect(throws: Never.self) { try ManifestEntry.decode(encoded(deleted), version: 2) }
    }
}
