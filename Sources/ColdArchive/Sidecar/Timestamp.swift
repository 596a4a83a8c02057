import Foundation

/// RFC 3161 time-stamps of archives (FORMAT.md §5, "Time-stamp sidecar"): `created` in an archive's header
/// is the writer's own claim; a token from a time-stamping authority (TSA) proves the archive existed at
/// the TSA's time. What is stamped is the archive digest (§9, which covers the signed header and chunk
/// table): the request's message imprint is SHA-256 over its 32 bytes, because TSAs take SHA-2. The TSA's
/// response is kept as it came, DER, in `ARCHIVE.tsr`, which stock OpenSSL checks:
/// `openssl ts -verify -digest $(SHA-256 of the digest, hex) -in ARCHIVE.tsr -CAfile TSA-CA.pem`.
///
/// This type builds requests and reads responses far enough to check that a token is for the archive
/// (status, message imprint, nonce) and to read its time. Whether the TSA really signed it (CMS
/// signature, certificate chain) is checked with OpenSSL (`audit --tsa-ca`).
public enum Timestamp {
    /// The sidecar's suffix: `NAME.car.tsr`.
    public static let suffix = ".tsr"
    /// The MIME types of RFC 3161 §3.4 (time-stamp protocol over HTTP).
    public static let queryContentType = "application/timestamp-query"
    public static let replyContentType = "application/timestamp-reply"

    static let sha256OID: [UInt8] = [0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01]       // 2.16.840.1.101.3.4.2.1
    static let signedDataOID: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x07, 0x02]   // 1.2.840.113549.1.7.2
    static let tstInfoOID: [UInt8] = [0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x01, 0x04]  // id-ct-TSTInfo

    /// The message imprint of an archive: SHA-256 of its 32-byte archive digest.
    public static func imprint(archiveDigest: [UInt8]) -> [UInt8] { Sodium.sha256(archiveDigest) }

    /// A DER `TimeStampReq` (RFC 3161 §2.4.1): version 1, the SHA-256 imprint of `archiveDigest`, `nonce`
    /// (8 random bytes when nil) and certReq TRUE (the TSA's certificate goes into the token).
    public static func request(archiveDigest: [UInt8], nonce: [UInt8]? = nil) -> (der: [UInt8], nonce: [UInt8]) {
        var nonce = nonce ?? Sodium.randomBytes(8)
        if let first = nonce.first, first & 0x80 != 0 { nonce.insert(0, at: 0) }   // a positive INTEGER
        let algorithm = DER.tlv(0x30, DER.tlv(0x06, sha256OID) + DER.tlv(0x05, []))
        let imprint = DER.tlv(0x30, algorithm + DER.tlv(0x04, imprint(archiveDigest: archiveDigest)))
        let body = DER.tlv(0x02, [1]) + imprint + DER.tlv(0x02, nonce) + DER.tlv(0x01, [0xFF])
        return (DER.tlv(0x30, body), nonce)
    }

    /// The request for the archive whose digest is `archiveDigestHex` (64 hex digits, as a summary gives it).
    /// Throws `OperationError` for anything else.
    public static func request(archiveDigestHex: String) throws -> (der: [UInt8], nonce: [UInt8]) {
        guard let digest = [UInt8](hex: archiveDigestHex), digest.count == 32 else {
            throw OperationError("'\(archiveDigestHex)' is not an archive digest (64 hex digits)")
        }
        return request(archiveDigest: digest)
    }

    /// Checks a TSA's response to `request(archiveDigestHex:)` (granted, for this digest, with this
    /// nonce) and keeps it, as it came, in `ARCHIVE.tsr` (atomically). Returns the token. Throws
    /// `IntegrityError` when the response is not a token for this archive and this request.
    public static func accept(response: [UInt8], archive path: String, archiveDigestHex: String, nonce: [UInt8]) throws -> Token {
        let token = try Token(response: response)
        if let problem = token.problem(archiveDigest: [UInt8](hex: archiveDigestHex) ?? []) {
            throw IntegrityError.malformed(what: "time-stamp response (\(problem))")
        }
        guard token.nonce == nonce else { throw IntegrityError.malformed(what: "time-stamp response (its nonce is not the request's: a replayed or misrouted answer)") }
        try FileSystem.writeAtomically(response, to: path + suffix, mode: 0o644)
        return token
    }

    /// The check of a token's signature by the authority: stock OpenSSL, `openssl ts -verify -digest
    /// IMPRINT -in ARCHIVE.tsr -CAfile CA` (CMS signature, the TSA certificate's chain to `caFile` and its
    /// timeStamping key usage, RFC 3161 §2.3). Returns nil when it prints "Verification: OK", else its
    /// last line of error, or why it could not run (OpenSSL is Debian's `openssl`).
    public static func openSSLSignatureCheck(caFile: String, openssl: String = "/usr/bin/openssl") -> @Sendable (String, String) -> String? {
        { tsr, imprintHex in
            let process = Process()
            process.executableURL = URL(fileURLWithPath: openssl)
            process.arguments = ["ts", "-verify", "-digest", imprintHex, "-in", tsr, "-CAfile", caFile]
            let output = Pipe()
            process.standardOutput = output
            process.standardError = output
            do { try process.run() } catch { return "cannot run \(openssl): \(error.localizedDescription)" }
            let text = String(decoding: output.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
            process.waitUntilExit()
            if process.terminationStatus == 0 && text.contains("Verification: OK") { return nil }
            let lines = text.split(separator: "\n").map(String.init).filter { !$0.hasPrefix("Using configuration") }
            return lines.last(where: { $0.contains("error") }) ?? lines.last ?? "openssl ts -verify failed (status \(process.terminationStatus))"
        }
    }

    /// What a token says, read from a DER `TimeStampResp` (RFC 3161 §2.4.2).
    public struct Token: Sendable, Equatable {
        /// The TSA's time (`genTime`), to the second.
        public let time: Date
        /// The stamped hash and its algorithm's OID (DER content bytes).
        public let imprint: [UInt8]
        public let hashAlgorithm: [UInt8]
        /// The nonce the request carried, as the TSA returned it (nil when none).
        public let nonce: [UInt8]?

        /// Parses a response. Throws `IntegrityError.malformed` for bytes that are not a granted
        /// response carrying a TSTInfo (with the TSA's status and text when it refused).
        public init(response der: [UInt8]) throws {
            func bad(_ what: String) -> IntegrityError { .malformed(what: "time-stamp response (\(what))") }
            var outer = DER.Reader(der)
            var top = try outer.sequence()
            var status = try top.sequence()
            let code = try status.integer()
            guard code == [0] || code == [1] else {
                let text = try? { () throws -> String in
                    var free = try status.sequence()
                    return String(decoding: try free.next(0x0C), as: UTF8.self)
                }()
                throw bad("the authority refused: status \(code.last ?? 0)\(text.map { ", \($0)" } ?? "")")
            }
            var contentInfo = try top.sequence()
            guard try contentInfo.next(0x06) == signedDataOID else { throw bad("not CMS signed data") }
            var explicit = try contentInfo.constructed(0xA0)
            var signedData = try explicit.sequence()
            _ = try signedData.integer()
            _ = try signedData.next(0x31)
            var encapsulated = try signedData.sequence()
            guard try encapsulated.next(0x06) == tstInfoOID else { throw bad("the signed content is not a TSTInfo") }
            var content = try encapsulated.constructed(0xA0)
            var infoBytes = DER.Reader(try content.next(0x04))
            var info = try infoBytes.sequence()
            _ = try info.integer()                         // version
            _ = try info.next(0x06)                        // policy
            var imprint = try info.sequence()
            var algorithm = try imprint.sequence()
            hashAlgorithm = try algorithm.next(0x06)
            self.imprint = try imprint.next(0x04)
            _ = try info.integer()                         // serialNumber
            let generalized = String(decoding: try info.next(0x18), as: UTF8.self)
            guard let time = DER.generalizedTime(generalized) else { throw bad("genTime '\(generalized)'") }
            self.time = time
            var nonce: [UInt8]?
            while !info.atEnd {
                let (tag, value) = try info.any()
                if tag == 0x02 { nonce = value; break }    // accuracy (0x30) and ordering (0x01) come before
            }
            self.nonce = nonce
        }

        /// nil when this token stamps `archiveDigest` (SHA-256 imprint); else what is wrong.
        public func problem(archiveDigest: [UInt8]) -> String? {
            guard hashAlgorithm == sha256OID else { return "the token's hash algorithm is not SHA-256" }
            guard imprint == Timestamp.imprint(archiveDigest: archiveDigest) else {
                return "the token stamps another hash than this archive's digest: it belongs to another archive"
            }
            return nil
        }
    }
}

/// Just enough DER (ITU-T X.690) for RFC 3161: definite lengths, one-byte tags.
enum DER {
    static func tlv(_ tag: UInt8, _ content: [UInt8]) -> [UInt8] {
        var out = [tag]
        if content.count < 0x80 {
            out.append(UInt8(content.count))
        } else {
            var length = content.count, bytes: [UInt8] = []
            while length > 0 { bytes.insert(UInt8(length & 0xFF), at: 0); length >>= 8 }
            out.append(0x80 | UInt8(bytes.count))
            out += bytes
        }
        return out + content
    }

    /// `YYYYMMDDhhmmss[.f…]Z` (X.690 §11.7: UTC, `Z`, no trailing zeros in the fraction); the fraction is dropped.
    static func generalizedTime(_ text: String) -> Date? {
        let b = Array(text.utf8)
        guard b.count >= 15, b.last == UInt8(ascii: "Z"), b[0..<14].allSatisfy({ (0x30...0x39).contains($0) }) else { return nil }
        if b.count > 15 { guard b[14] == UInt8(ascii: "."), b.count > 16, b[15..<(b.count - 1)].allSatisfy({ (0x30...0x39).contains($0) }) else { return nil } }
        func n(_ r: Range<Int>) -> Int { r.reduce(0) { $0 * 10 + Int(b[$1] - 0x30) } }
        var c = DateComponents()
        (c.year, c.month, c.day, c.hour, c.minute, c.second) = (n(0..<4), n(4..<6), n(6..<8), n(8..<10), n(10..<12), n(12..<14))
        guard (1...12).contains(c.month!), (1...31).contains(c.day!), c.hour! < 24, c.minute! < 60, c.second! < 61 else { return nil }
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        return calendar.date(from: c)
    }

    /// Reads TLVs from bytes; every length is checked against what is left.
    struct Reader {
        private let bytes: [UInt8]
        private var at = 0
        private let end: Int

        init(_ bytes: [UInt8]) {
            self.bytes = bytes
            end = bytes.count
        }

        var atEnd: Bool { at >= end }

        static func malformed() -> IntegrityError { .malformed(what: "time-stamp response (bad DER)") }

        mutating func any() throws -> (tag: UInt8, value: [UInt8]) {
            guard at + 2 <= end else { throw Self.malformed() }
            let tag = bytes[at]
            guard tag & 0x1F != 0x1F else { throw Self.malformed() }      // multi-byte tags: not in RFC 3161
            var length = Int(bytes[at + 1])
            at += 2
            if length & 0x80 != 0 {
                let count = length & 0x7F
                guard (1...4).contains(count), at + count <= end else { throw Self.malformed() }
                length = bytes[at..<(at + count)].reduce(0) { $0 << 8 | Int($1) }
                at += count
            }
            guard length <= end - at else { throw Self.malformed() }
            defer { at += length }
            return (tag, Array(bytes[at..<(at + length)]))
        }

        mutating func next(_ tag: UInt8) throws -> [UInt8] {
            let (found, value) = try any()
            guard found == tag else { throw Self.malformed() }
            return value
        }

        mutating func sequence() throws -> Reader { Reader(try next(0x30)) }
        mutating func constructed(_ tag: UInt8) throws -> Reader { Reader(try next(tag)) }
        mutating func integer() throws -> [UInt8] { try next(0x02) }
    }
}
