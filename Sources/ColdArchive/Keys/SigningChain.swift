import Foundation

/// "Key A hands over to key B": written by `keys rotate --signing`, signed by the key it replaces,
/// so an auditor who trusts the first key of a site can follow the chain to the current one.
///
///     coldarchive signing key rotation v1
///     previous: coldarchive-signing-ed25519 BASE64
///     next: coldarchive-signing-ed25519 BASE64
///     date: 2026-11-25T04:00:00Z
///     signature: BASE64
///
/// The signature is Ed25519 by `previous` over
/// `"coldarchive/v1/signing-key-rotation" || previous || next || i64le(date as Unix seconds)`.
public struct SigningKeyStatement: Sendable, Equatable {
    public let previous: SigningPublicKey
    public let next: SigningPublicKey
    public let date: Date
    let signature: [UInt8]

    static let context = Array("coldarchive/v1/signing-key-rotation".utf8)
    static let firstLine = "coldarchive signing key rotation v1"

    static func message(previous: SigningPublicKey, next: SigningPublicKey, seconds: Int64) -> [UInt8] {
        var w = ByteWriter()
        w.raw(context)
        w.raw(previous.bytes)
        w.raw(next.bytes)
        w.i64(seconds)
        return w.bytes
    }

    static func make(from old: SigningKey, to next: SigningPublicKey, date: Date) -> SigningKeyStatement {
        let seconds = Int64(date.timeIntervalSince1970.rounded(.down))
        let signature = old.sign(message(previous: old.publicKey, next: next, seconds: seconds))
        return SigningKeyStatement(previous: old.publicKey, next: next, date: Date(timeIntervalSince1970: TimeInterval(seconds)),
                                   signature: signature)
    }

    private init(previous: SigningPublicKey, next: SigningPublicKey, date: Date, signature: [UInt8]) {
        self.previous = previous
        self.next = next
        self.date = date
        self.signature = signature
    }

    func encoded() -> String {
        let tag = KeyFiles.Kind.signing.publicKeyTag
        return """
        \(Self.firstLine)
        previous: \(tag) \(Data(previous.bytes).base64EncodedString())
        next: \(tag) \(Data(next.bytes).base64EncodedString())
        date: \(ISO8601DateFormatter().string(from: date))
        signature: \(Data(signature).base64EncodedString())

        """
    }

    /// Parses a statement and checks its signature by `previous`.
    public init(text: String) throws {
        func bad(_ reason: String) -> IntegrityError { .malformed(what: "signing key statement (\(reason))") }
        let lines = text.split(whereSeparator: \.isNewline).map(String.init)
        guard lines.count == 5, lines[0] == Self.firstLine else { throw bad("expected 5 lines starting '\(Self.firstLine)'") }
        func value(_ line: String, _ name: String) throws -> String {
            guard line.hasPrefix("\(name): ") else { throw bad("expected '\(name):'") }
            return String(line.dropFirst(name.count + 2))
        }
        func key(_ line: String, _ name: String) throws -> SigningPublicKey {
            let parts = try value(line, name).split(separator: " ")
            guard parts.count == 2, parts[0] == KeyFiles.Kind.signing.publicKeyTag,
                  let data = Data(base64Encoded: String(parts[1])) else { throw bad("bad \(name) key") }
            return try SigningPublicKey(bytes: Array(data))
        }
        previous = try key(lines[1], "previous")
        next = try key(lines[2], "next")
        guard let date = ISO8601DateFormatter().date(from: try value(lines[3], "date")) else { throw bad("bad date") }
        self.date = date
        guard let signature = Data(base64Encoded: try value(lines[4], "signature")) else { throw bad("bad signature") }
        self.signature = Array(signature)
        let message = Self.message(previous: previous, next: next, seconds: Int64(date.timeIntervalSince1970))
        guard Sodium.verify(signature: self.signature, message: message, publicKey: previous.bytes) else {
            throw IntegrityError.badSignature
        }
    }

    /// The statements in `directory` (files `*.statement`), each with its file name, in name order.
    /// Throws `IntegrityError` for a statement that does not parse or whose signature does not verify.
    public static func load(from directory: String) throws -> [(file: String, statement: SigningKeyStatement)] {
        try FileSystem.directoryEntries(directory).filter { $0.hasSuffix(".statement") }.sorted().map { name in
            let bytes = try FileSystem.readSmallFile("\(directory)/\(name)", limit: 4096)
            return (name, try SigningKeyStatement(text: String(decoding: bytes, as: UTF8.self)))
        }
    }

    /// Starting from `trusted`, follows every statement in `directory` whose signer is already
    /// trusted, and returns all keys so reached (the starting key included).
    public static func follow(from trusted: SigningPublicKey, statementsIn directory: String) throws -> [SigningPublicKey] {
        follow(from: [trusted], statements: try load(from: directory).map(\.statement)).reached
    }

    /// Follows `statements` from `trusted`: a statement is followed when its `previous` key is already
    /// reached, except a statement dated at or after the revocation of its `previous` key
    /// (`revokedSince`, by fingerprint; docs/FORMAT.md §14): whoever holds a compromised key could
    /// otherwise hand trust to a key of their own. Returns the keys reached (`trusted` first) and the
    /// statements refused for that reason.
    public static func follow(from trusted: [SigningPublicKey], statements: [SigningKeyStatement],
                              revokedSince: [String: Date] = [:]) -> (reached: [SigningPublicKey], refused: [SigningKeyStatement]) {
        var reached = trusted
        var refused: [SigningKeyStatement] = []
        var grew = true
        while grew {
            grew = false
            for s in statements where reached.contains(s.previous) && !reached.contains(s.next) {
                if let since = revokedSince[s.previous.fingerprint], s.date >= since {
                    if !refused.contains(s) { refused.append(s) }
                    continue
                }
                reached.append(s.next)
                grew = true
            }
        }
        return (reached, refused)
    }
}
