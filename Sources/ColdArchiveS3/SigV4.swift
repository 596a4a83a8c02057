import Foundation
import ColdArchive

/// AWS Signature Version 4 for S3, header-based (AWS docs: "Authenticating Requests: Using the
/// Authorization Header", sigv4-header-based-auth): a canonical request, a string to sign, a key derived
/// from the secret by date, region and service, and the `Authorization` header.
struct SigV4 {
    let credentials: S3Credentials
    let region: String
    let service = "s3"

    /// Signs a request: returns the headers to send (the given ones, `host`, `x-amz-date`,
    /// `x-amz-content-sha256`, the session token when there is one, and `authorization`).
    /// `path` is already URI-encoded; `query` pairs are raw and encoded here.
    func sign(method: String, host: String, path: String, query: [(String, String)], headers: [(String, String)],
              payloadHash: String, date: Date) -> [(String, String)] {
        let (amzDate, day) = Self.timestamps(date)
        var all = headers.map { ($0.0.lowercased(), $0.1.trimmingCharacters(in: .whitespaces)) }
        all.append(("host", host))
        all.append(("x-amz-date", amzDate))
        all.append(("x-amz-content-sha256", payloadHash))
        if let token = credentials.sessionToken { all.append(("x-amz-security-token", token)) }
        all.sort { $0.0 < $1.0 }
        let signedHeaders = all.map(\.0).joined(separator: ";")
        let canonical = [
            method,
            path,
            Self.canonicalQuery(query),
            all.map { "\($0.0):\($0.1)\n" }.joined(),
            signedHeaders,
            payloadHash,
        ].joined(separator: "\n")
        let scope = "\(day)/\(region)/\(service)/aws4_request"
        let toSign = "AWS4-HMAC-SHA256\n\(amzDate)\n\(scope)\n\(Sodium.sha256(Array(canonical.utf8)).hex)"
        var key = Sodium.hmacSHA256(key: Array("AWS4\(credentials.secretAccessKey)".utf8), Array(day.utf8))
        for part in [region, service, "aws4_request"] { key = Sodium.hmacSHA256(key: key, Array(part.utf8)) }
        let signature = Sodium.hmacSHA256(key: key, Array(toSign.utf8)).hex
        all.append(("authorization", "AWS4-HMAC-SHA256 Credential=\(credentials.accessKeyID)/\(scope), SignedHeaders=\(signedHeaders), Signature=\(signature)"))
        return all
    }

    static func timestamps(_ date: Date) -> (amzDate: String, day: String) {
        var calendar = Calendar(identifier: .gregorian)
        calendar.timeZone = TimeZone(identifier: "UTC")!
        let c = calendar.dateComponents([.year, .month, .day, .hour, .minute, .second], from: date)
        let day = String(format: "%04d%02d%02d", c.year!, c.month!, c.day!)
        return (day + String(format: "T%02d%02d%02dZ", c.hour!, c.minute!, c.second!), day)
    }

    /// RFC 3986 unreserved characters stay; every other byte is %XX (upper case), '/' too unless `path`.
    static func encode(_ text: String, path: Bool = false) -> String {
        var out = ""
        for byte in text.utf8 {
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                 UInt8(ascii: "-"), UInt8(ascii: "_"), UInt8(ascii: "."), UInt8(ascii: "~"):
                out.append(Character(UnicodeScalar(byte)))
            case UInt8(ascii: "/") where path:
                out.append("/")
            default:
                out += String(format: "%%%02X", byte)
            }
        }
        return out
    }

    static func canonicalQuery(_ query: [(String, String)]) -> String {
        let encoded: [(String, String)] = query.map { (encode($0.0), encode($0.1)) }
        let sorted = encoded.sorted { (a: (String, String), b: (String, String)) -> Bool in a.0 == b.0 ? a.1 < b.1 : a.0 < b.0 }
        return sorted.map { (pair: (String, String)) -> String in pair.0 + "=" + pair.1 }.joined(separator: "&")
    }
}

/// An access key, as the AWS tools find it: `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY` /
/// `AWS_SESSION_TOKEN`, else the profile (`AWS_PROFILE`, default "default") of the shared credentials file
/// (`AWS_SHARED_CREDENTIALS_FILE`, default ~/.aws/credentials).
public struct S3Credentials: Sendable {
    public var accessKeyID: String
    public var secretAccessKey: String
    public var sessionToken: String?

    public init(accessKeyID: String, secretAccessKey: String, sessionToken: String? = nil) {
        self.accessKeyID = accessKeyID
        self.secretAccessKey = secretAccessKey
        self.sessionToken = sessionToken
    }

    public static func fromEnvironment(_ environment: [String: String] = ProcessInfo.processInfo.environment) throws -> S3Credentials {
        if let id = environment["AWS_ACCESS_KEY_ID"], let secret = environment["AWS_SECRET_ACCESS_KEY"], !id.isEmpty, !secret.isEmpty {
            return S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: environment["AWS_SESSION_TOKEN"])
        }
        let file = environment["AWS_SHARED_CREDENTIALS_FILE"] ?? "\(environment["HOME"] ?? NSHomeDirectory())/.aws/credentials"
        let profile = environment["AWS_PROFILE"] ?? "default"
        guard let text = try? String(contentsOfFile: file, encoding: .utf8) else {
            throw S3Error.noCredentials("set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, or write profile '\(profile)' to \(file)")
        }
        var section: String?
        var values: [String: String] = [:]
        for raw in text.split(whereSeparator: \.isNewline) {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("#") || line.hasPrefix(";") || line.isEmpty { continue }
            if line.hasPrefix("["), line.hasSuffix("]") { section = String(line.dropFirst().dropLast()).trimmingCharacters(in: .whitespaces); continue }
            guard section == profile, let eq = line.firstIndex(of: "=") else { continue }
            values[line[..<eq].trimmingCharacters(in: .whitespaces).lowercased()] = line[line.index(after: eq)...].trimmingCharacters(in: .whitespaces)
        }
        guard let id = values["aws_access_key_id"], let secret = values["aws_secret_access_key"] else {
            throw S3Error.noCredentials("profile '\(profile)' of \(file) has no aws_access_key_id and aws_secret_access_key")
        }
        return S3Credentials(accessKeyID: id, secretAccessKey: secret, sessionToken: values["aws_session_token"])
    }
}
