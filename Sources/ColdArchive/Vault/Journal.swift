import Foundation

/// One record of a vault's journal (FORMAT.md §19): what happened to the vault, when, on which host,
/// signed by the site signing key and chained to the record before it.
public struct JournalRecord: Codable, Sendable, Equatable {
    public enum Event: String, Codable, Sendable {
        case vaultCreated = "vault-created"
        case seriesCreated = "series-created"
        case archiveAdded = "archive-added"
        /// A period with no archive, and why (a holiday freeze, a migration): the audit's calendar
        /// shows it as explained instead of missing.
        case periodExplained = "period-explained"
        case restore
        /// An archive was decrypted without being restored: listed, or checked with `verify --deep`.
        case decrypt
        /// An encryption key's secret half was destroyed (`keys retire --vault`): `key` is its id.
        case keyRetired = "key-retired"
        /// A signing key was revoked as compromised (`keys revoke-signing --vault`): `key` is its
        /// fingerprint, `file` the statement in `revocations/`. The audit requires the statement to stay.
        case signingKeyRevoked = "signing-key-revoked"
        /// An archive removed by `prune`: `file`, `archive_digest`, `series`, `sequence`, `period`, and
        /// in `reason` the retention rule it fell outside of. The audit shows its period as explained.
        case archivePruned = "archive-pruned"
        /// An archive's retention extended beyond its signed `retain_until` (never shortened): a later
        /// incremental or differential that depends on it is kept longer. `file`, `archive_digest`,
        /// `retain_until`, `reason`.
        case retentionExtended = "retention-extended"
        /// A verified copy of an archive was made (`push`): `file`, `archive_digest`, `target` (where the
        /// copy is: an absolute path), `recipients` (the key ids the copy's file key is wrapped to).
        /// `keys retire --vault` checks every copy recorded so before a key is destroyed.
        case copyMade = "copy-made"
        /// An event this version does not know (a later version wrote it): its signature and chain are
        /// checked like any other's, and it changes nothing else (FORMAT.md §19).
        case unknown

        public init(from decoder: Decoder) throws {
            self = Event(rawValue: try decoder.singleValueContainer().decode(String.self)) ?? .unknown
        }
    }

    /// 1 for the first record, then one more each line.
    public var n: UInt64
    /// BLAKE2b-256 (hex) of the previous line's bytes, newline excluded; 64 zeros for record 1.
    public var prev: String
    /// RFC 3339, UTC, to the second.
    public var time: String
    public var host: String
    /// Fingerprint of the signing key that signed this record.
    public var signer: String
    public var event: Event
    public var vault: String?
    public var series: String?
    public var schedule: String?
    public var timeZone: String?
    public var periodFromDate: String?
    public var sequence: UInt64?
    public var period: String?
    /// A vault-relative path.
    public var file: String?
    public var archiveDigest: String?
    public var bytes: UInt64?
    public var target: String?
    public var reason: String?
    /// For `decrypt`: what the archive was decrypted for, `list` or `verify-deep`.
    public var purpose: String?
    /// For `key-retired`, the key id; for `signing-key-revoked`, the revoked key's fingerprint.
    public var key: String?
    /// For `retention-extended`: RFC 3339, UTC, the new date before which the archive must not be removed.
    public var retainUntil: String?
    /// For `copy-made`: the key ids (hex) the copy's file key is wrapped to.
    public var recipients: [String]?

    enum CodingKeys: String, CodingKey {
        case n, prev, time, host, signer, event, vault, series, schedule, sequence, period, file, bytes, target, reason, purpose, key, recipients
        case timeZone = "time_zone"
        case periodFromDate = "period_from_date"
        case archiveDigest = "archive_digest"
        case retainUntil = "retain_until"
    }

    public init(event: Event) {
        self.n = 0
        self.prev = ""
        self.time = ""
        self.host = ""
        self.signer = ""
        self.event = event
    }
}

/// A vault's append-only journal, `VAULT/journal.log` (FORMAT.md §19): one line per record,
/// `RECORD_JSON TAB SIGNATURE_BASE64`, the signature Ed25519 over `"coldarchive journal v1\0" ||
/// RECORD_JSON`. Appends take an exclusive `flock` on the file, so concurrent commands never fork it.
public enum Journal {
    public static let fileName = "journal.log"
    static let signatureContext = Array("coldarchive journal v1".utf8) + [0]
    /// A line longer than this is not a record (a journal stays readable line by line).
    static let maxLineBytes = 64 << 10
    static let firstPrevious = String(repeating: "0", count: 64)

    /// One line as read back: its bytes and, when it parses and its signature holds for the key it
    /// names among `trusted`, the record; else why not.
    public struct Line: Sendable {
        public let number: Int
        public let bytes: [UInt8]
        /// The record, when the line is valid: signed by a trusted key and in its place in the chain.
        public let record: JournalRecord?
        public let problem: String?
        /// The record when its signature verifies, even if its place in the chain does not (the line before
        /// it was changed or removed): its content is genuine, which spares an audit the findings that would
        /// follow from ignoring it, while `problem` still reports the broken link.
        public let signed: JournalRecord?
    }

    /// Appends `record` (its `n`, `prev`, `time`, `host` and `signer` are filled in here) and syncs it
    /// to disk. Returns the record as written.
    @discardableResult
    public static func append(_ record: JournalRecord, to path: String, signer: SigningKey, now: Date = Date()) throws -> JournalRecord {
        let fd = NameCodec.withCString(path) { open($0, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644) }
        guard fd >= 0 else { throw SystemError(operation: "open", path: path, errno: errno) }
        defer { close(fd) }
        guard flock(fd, LOCK_EX) == 0 else { throw SystemError(operation: "lock", path: path, errno: errno) }
        // Released explicitly: a child forked meanwhile (by a program embedding this library) shares the
        // open file description until it execs, and close alone would leave the lock held until then.
        defer { _ = flock(fd, LOCK_UN) }
        var record = record
        let last = try lastLine(fd: fd, path: path)
        if let last, let previous = try? parse(last.bytes) {
            record.n = previous.record.n + 1
        } else if last != nil {
            throw OperationError("the last line of the vault journal '\(path)' is not a record (a torn write, or an edit); nothing was appended. Run 'coldarchive audit' and repair the journal from a copy", kind: .integrity)
        } else {
            record.n = 1
        }
        record.prev = last.map { Sodium.blake2b($0.bytes).hex } ?? firstPrevious
        record.time = rfc3339(now)
        record.host = ProcessInfo.processInfo.hostName
        record.signer = signer.publicKey.fingerprint
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let json = Array(try encoder.encode(record))
        let signature = signer.sign(signatureContext + json)
        var line = json + [0x09] + Array(Data(signature).base64EncodedString().utf8)
        guard line.count < maxLineBytes else { throw OperationError("a journal record would be \(line.count) bytes, more than \(maxLineBytes)") }
        line.append(0x0A)
        if last?.endsWithNewline == false { line.insert(0x0A, at: 0) }
        try line.withUnsafeBytes { buffer in
            var done = 0
            while done < buffer.count {
                let n = write(fd, buffer.baseAddress! + done, buffer.count - done)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { throw SystemError(operation: "append to", path: path, errno: errno) }
                done += n
            }
        }
        guard fsync(fd) == 0 else { throw SystemError(operation: "sync", path: path, errno: errno) }
        return record
    }

    /// Splits a line into its record and signature; throws when it is not one.
    static func parse(_ line: [UInt8]) throws -> (record: JournalRecord, json: [UInt8], signature: [UInt8]) {
        guard let tab = line.lastIndex(of: 0x09) else { throw OperationError("no signature", kind: .integrity) }
        let json = Array(line[..<tab])
        guard let signature = Data(base64Encoded: String(decoding: line[(tab + 1)...], as: UTF8.self)), signature.count == 64 else {
            throw OperationError("the signature is not 64 bytes of base64", kind: .integrity)
        }
        let record: JournalRecord
        do { record = try JSONDecoder().decode(JournalRecord.self, from: Data(json)) } catch {
            throw OperationError("the record is not the journal's JSON (\(error))", kind: .integrity)
        }
        return (record, json, Array(signature))
    }

    /// Reads every line of the journal at `path` (one at a time; memory stays bounded by the longest
    /// line) and checks each record's signature against `trusted`, its number and its link to the
    /// line before. `body` gets each line; problems are reported, not thrown.
    public static func read(_ path: String, trusting trusted: [SigningPublicKey], _ body: (Line) throws -> Void) throws {
        let keys = Dictionary(trusted.map { ($0.fingerprint, $0) }, uniquingKeysWith: { a, _ in a })
        let file = try OpenFile.forReading(path)
        let size = try file.size()
        var pending: [UInt8] = []
        var offset: UInt64 = 0
        var number = 0
        var previous: (bytes: [UInt8], n: UInt64)?
        func handle(_ bytes: [UInt8]) throws {
            number += 1
            var problem: String?
            var record: JournalRecord?
            var signatureVerifies = false
            do {
                let parsed = try parse(bytes)
                record = parsed.record
                if let key = keys[parsed.record.signer] {
                    if !Sodium.verify(signature: parsed.signature, message: signatureContext + parsed.json, publicKey: key.bytes) {
                        problem = "its signature does not verify: the record was changed, or forged"
                    } else {
                        signatureVerifies = true
                    }
                } else {
                    problem = "it is signed by \(parsed.record.signer), not by a trusted signing key"
                }
                let expectedN = (previous?.n ?? 0) + 1
                let expectedPrev = previous.map { Sodium.blake2b($0.bytes).hex } ?? firstPrevious
                if problem == nil && parsed.record.n != expectedN {
                    problem = "it is record \(parsed.record.n) where record \(expectedN) belongs: records were removed, added or reordered"
                } else if problem == nil && parsed.record.prev != expectedPrev {
                    problem = "its link to the line before does not match: the line before was changed, removed or inserted"
                }
                previous = (bytes, parsed.record.n)
            } catch {
                problem = "it is not a journal record: \(error)"
                previous = (bytes, previous?.n ?? 0)
            }
            try body(Line(number: number, bytes: bytes, record: problem == nil ? record : nil, problem: problem,
                          signed: signatureVerifies ? record : nil))
        }
        while offset < size {
            let n = Int(min(UInt64(64 << 10), size - offset))
            let block = try file.readExactly(n, at: offset, what: path)
            offset += UInt64(n)
            var start = 0
            for (i, byte) in block.enumerated() where byte == 0x0A {
                pending += block[start..<i]
                try handle(pending)
                pending = []
                start = i + 1
            }
            pending += block[start...]
            if pending.count > maxLineBytes {
                try handle(Array(pending.prefix(256)))
                return
            }
        }
        if !pending.isEmpty { try handle(pending) }
    }

    /// The last line of the open journal (without its newline), or nil when the file is empty.
    private static func lastLine(fd: Int32, path: String) throws -> (bytes: [UInt8], endsWithNewline: Bool)? {
        var st = stat()
        guard fstat(fd, &st) == 0 else { throw SystemError(operation: "stat", path: path, errno: errno) }
        let size = Int(st.st_size)
        guard size > 0 else { return nil }
        let count = min(size, maxLineBytes + 1)
        var tail = [UInt8](repeating: 0, count: count)
        let got = tail.withUnsafeMutableBytes { pread(fd, $0.baseAddress, count, off_t(size - count)) }
        guard got == count else { throw SystemError(operation: "read", path: path, errno: errno) }
        let endsWithNewline = tail.last == 0x0A
        if endsWithNewline { tail.removeLast() }
        let start = tail.lastIndex(of: 0x0A).map { $0 + 1 } ?? 0
        return (Array(tail[start...]), endsWithNewline)
    }

    static func rfc3339(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        return f.string(from: date)
    }

    /// The date of `YYYY-MM-DDThh:mm:ssZ` exactly (UTC, whole seconds, the form `rfc3339` writes); nil
    /// for any other text.
    static func parseRFC3339(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        f.timeZone = TimeZone(identifier: "UTC")
        guard let date = f.date(from: text), rfc3339(date) == text else { return nil }
        return date
    }
}
