import AsyncHTTPClient
import Foundation
#if canImport(FoundationXML)
import FoundationXML
#endif
import NIOCore
import NIOHTTP1
import ColdArchive

/// `s3://BUCKET/PREFIX`: where copies go in an object store.
public struct S3Location: Sendable, Equatable, CustomStringConvertible {
    public var bucket: String
    /// The key prefix, without a leading or trailing '/'; may be empty.
    public var prefix: String

    public init(bucket: String, prefix: String) {
        self.bucket = bucket
        self.prefix = prefix.trimmingCharacters(in: CharacterSet(charactersIn: "/"))
    }

    /// Parses `s3://bucket[/prefix]`; nil for anything else.
    public init?(url: String) {
        guard url.hasPrefix("s3://") else { return nil }
        let rest = url.dropFirst(5)
        let bucket = rest.prefix { $0 != "/" }
        guard !bucket.isEmpty else { return nil }
        self.init(bucket: String(bucket), prefix: String(rest.dropFirst(bucket.count)))
    }

    public func key(_ relative: String) -> String { prefix.isEmpty ? relative : "\(prefix)/\(relative)" }
    public func url(_ key: String) -> String { "s3://\(bucket)/\(key)" }
    public var description: String { prefix.isEmpty ? "s3://\(bucket)" : "s3://\(bucket)/\(prefix)" }
}

/// What went wrong talking to an object store.
public enum S3Error: ColdArchiveError, Equatable {
    case noCredentials(String)
    case badEndpoint(String)
    /// The store answered with an S3 error (its code, message and HTTP status).
    case service(operation: String, status: Int, code: String, message: String)
    /// The object is in an archive tier and must be restored before it can be read.
    case archived(key: String, storageClass: String)
    /// Gave up after retries: the last error.
    case unavailable(operation: String, attempts: Int, last: String)
    case notACopy(String)
    case lockNotEnforced(String)

    public var kind: FailureKind {
        switch self {
        case .noCredentials, .badEndpoint: return .usage
        case .notACopy, .lockNotEnforced: return .integrity
        default: return .other
        }
    }

    public var description: String {
        switch self {
        case .noCredentials(let what): return "no S3 credentials: \(what)"
        case .badEndpoint(let what): return "the S3 endpoint \(what)"
        case .service(let operation, let status, let code, let message):
            return "\(operation) failed: HTTP \(status) \(code)\(message.isEmpty ? "" : ": \(message)")"
        case .archived(let key, let storageClass):
            return "'\(key)' is in the \(storageClass) storage class and must be restored before it can be read: `aws s3api restore-object --bucket BUCKET --key \(key) --restore-request Days=7`, wait until `head-object` shows ongoing-request=\"false\", then run this again"
        case .unavailable(let operation, let attempts, let last):
            return "\(operation) did not succeed after \(attempts) attempts (last: \(last)); nothing that counts as a copy was left. Run it again later: a multipart push resumes where it stopped"
        case .notACopy(let why): return "not a copy: \(why)"
        case .lockNotEnforced(let why): return "Object Lock is NOT enforced: \(why)"
        }
    }
}

/// A minimal S3 client over async-http-client: the operations coldarchive needs (AWS S3 API Reference:
/// PutObject, CreateMultipartUpload, UploadPart, CompleteMultipartUpload, ListParts,
/// ListMultipartUploads, AbortMultipartUpload, HeadObject, GetObject, GetObjectRetention,
/// GetObjectLegalHold, PutObjectRetention, DeleteObject, GetObjectLockConfiguration, CreateBucket),
/// path-style addressing, Signature V4 with signed payloads, and retries with exponential backoff and
/// jitter on connection failures, timeouts, HTTP 500, 502, 503 (SlowDown) and 504.
public final class S3Client: @unchecked Sendable {
    let http: HTTPClient
    let scheme: String
    let host: String
    let port: Int
    let signer: SigV4
    /// Attempts per request (the first included).
    public var attempts = 6
    /// The first backoff, doubled per attempt (with up to as much again of jitter).
    public var backoff: TimeAmount = .milliseconds(200)
    /// The time one request may take before it is abandoned and retried.
    public var requestTimeout: TimeAmount = .seconds(60)

    /// `endpoint` like `http://127.0.0.1:8333` (default: `AWS_ENDPOINT_URL_S3`, else `AWS_ENDPOINT_URL`,
    /// else `https://s3.REGION.amazonaws.com`); `region` default `AWS_REGION`, else
    /// `AWS_DEFAULT_REGION`, else us-east-1.
    public init(endpoint: String? = nil, region: String? = nil, credentials: S3Credentials? = nil,
                environment: [String: String] = ProcessInfo.processInfo.environment) throws {
        let region = region ?? environment["AWS_REGION"] ?? environment["AWS_DEFAULT_REGION"] ?? "us-east-1"
        let endpoint = endpoint ?? environment["AWS_ENDPOINT_URL_S3"] ?? environment["AWS_ENDPOINT_URL"] ?? "https://s3.\(region).amazonaws.com"
        guard let url = URLComponents(string: endpoint), let scheme = url.scheme, ["http", "https"].contains(scheme), let host = url.host, !host.isEmpty else {
            throw S3Error.badEndpoint("'\(endpoint)' is not an http:// or https:// URL")
        }
        self.scheme = scheme
        self.host = host
        self.port = url.port ?? (scheme == "https" ? 443 : 80)
        signer = SigV4(credentials: try credentials ?? S3Credentials.fromEnvironment(environment), region: region)
        var configuration = HTTPClient.Configuration()
        configuration.timeout = .init(connect: .seconds(10), read: .seconds(60))
        configuration.decompression = .disabled
        http = HTTPClient(eventLoopGroupProvider: .singleton, configuration: configuration)
    }

    deinit { try? http.syncShutdown() }

    var hostHeader: String { (scheme == "http" && port == 80) || (scheme == "https" && port == 443) ? host : "\(host):\(port)" }

    struct Response {
        var status: Int
        var headers: HTTPHeaders
        var body: [UInt8]
        func header(_ name: String) -> String? { headers.first(name: name) }
    }

    /// One S3 request, retried as the class says; throws `S3Error.service` for an S3 error answer that
    /// is not worth retrying (`accept` lists the statuses that are not errors).
    func send(_ operation: String, method: HTTPMethod, bucket: String, key: String? = nil, query: [(String, String)] = [],
              headers: [(String, String)] = [], body: [UInt8] = [], bodySHA256: [UInt8]? = nil, accept: Set<Int> = [200],
              maxBody: Int = 1 << 26) async throws -> Response {
        var path = "/" + SigV4.encode(bucket)
        if let key { path += "/" + SigV4.encode(key, path: true) }
        let queryString = SigV4.canonicalQuery(query)
        let url = "\(scheme)://\(hostHeader)\(path)\(queryString.isEmpty ? "" : "?\(queryString)")"
        let payloadHash = (bodySHA256 ?? Sodium.sha256(body)).hex
        var last = ""
        for attempt in 1...attempts {
            if attempt > 1 {
                let base = backoff.nanoseconds << Int64(min(attempt - 2, 6))
                try await Task.sleep(nanoseconds: UInt64(base + Int64.random(in: 0...base)))
            }
            var request = HTTPClientRequest(url: url)
            request.method = method
            for (name, value) in signer.sign(method: method.rawValue, host: hostHeader, path: path, query: query, headers: headers,
                                             payloadHash: payloadHash, date: Date()) where name != "host" {
                request.headers.add(name: name, value: value)
            }
            if !body.isEmpty || method == .PUT || method == .POST {
                request.body = .bytes(NIOCore.ByteBuffer(bytes: body))
            }
            do {
                let response = try await http.execute(request, timeout: requestTimeout)
                let collected = try await response.body.collect(upTo: maxBody)
                let bytes = Array(collected.readableBytesView)
                let status = Int(response.status.code)
                if accept.contains(status) { return Response(status: status, headers: response.headers, body: bytes) }
                let (code, message) = Self.errorCode(bytes)
                if [500, 502, 503, 504].contains(status) {
                    last = "HTTP \(status) \(code)"
                    continue
                }
                if code == "InvalidObjectState", let key {
                    throw S3Error.archived(key: key, storageClass: response.headers.first(name: "x-amz-storage-class") ?? "archive")
                }
                throw S3Error.service(operation: operation, status: status, code: code.isEmpty ? "\(response.status.reasonPhrase)" : code, message: message)
            } catch let error as S3Error {
                throw error
            } catch is CancellationError {
                throw CancellationError()
            } catch {
                last = "\(error)"
            }
        }
        throw S3Error.unavailable(operation: operation, attempts: attempts, last: last)
    }

    /// The `<Code>` and `<Message>` of an S3 error document.
    static func errorCode(_ body: [UInt8]) -> (String, String) {
        let doc = XMLFields(body)
        return (doc.first("Code") ?? "", doc.first("Message") ?? "")
    }

    // MARK: objects

    /// Headers that set Object Lock, legal hold and storage class on a new object.
    public struct WriteSettings: Sendable, Equatable {
        public var lockMode: String?
        public var retainUntil: Date?
        public var legalHold = false
        public var storageClass: String?
        public init(lockMode: String? = nil, retainUntil: Date? = nil, legalHold: Bool = false, storageClass: String? = nil) {
            (self.lockMode, self.retainUntil, self.legalHold, self.storageClass) = (lockMode, retainUntil, legalHold, storageClass)
        }

        var headers: [(String, String)] {
            var out: [(String, String)] = []
            if let lockMode, let retainUntil {
                out.append(("x-amz-object-lock-mode", lockMode))
                out.append(("x-amz-object-lock-retain-until-date", S3Client.iso8601(retainUntil)))
            }
            if legalHold { out.append(("x-amz-object-lock-legal-hold", "ON")) }
            if let storageClass { out.append(("x-amz-storage-class", storageClass)) }
            return out
        }
    }

    static func iso8601(_ date: Date) -> String {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime]
        return f.string(from: date)
    }

    static func parseDate(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        f.formatOptions = [.withInternetDateTime, .withFractionalSeconds]
        if let d = f.date(from: text) { return d }
        f.formatOptions = [.withInternetDateTime]
        return f.date(from: text)
    }

    static func base64(_ bytes: [UInt8]) -> String { Data(bytes).base64EncodedString() }

    /// PutObject with its SHA-256 checksum; returns the version id (nil on an unversioned bucket).
    public func putObject(bucket: String, key: String, body: [UInt8], settings: WriteSettings = WriteSettings()) async throws -> String? {
        let sha = Sodium.sha256(body)
        let response = try await send("PutObject", method: .PUT, bucket: bucket, key: key,
                                      headers: [("x-amz-checksum-sha256", Self.base64(sha))] + settings.headers, body: body, bodySHA256: sha)
        return response.header("x-amz-version-id")
    }

    public func createMultipartUpload(bucket: String, key: String, settings: WriteSettings) async throws -> String {
        let response = try await send("CreateMultipartUpload", method: .POST, bucket: bucket, key: key, query: [("uploads", "")],
                                      headers: [("x-amz-checksum-algorithm", "SHA256")] + settings.headers)
        guard let id = XMLFields(response.body).first("UploadId") else {
            throw S3Error.service(operation: "CreateMultipartUpload", status: response.status, code: "NoUploadId", message: "the answer has no UploadId")
        }
        return id
    }

    /// UploadPart with its SHA-256 checksum (base64 of `sha256`); returns the part's ETag.
    public func uploadPart(bucket: String, key: String, uploadID: String, number: Int, body: [UInt8], sha256: [UInt8]) async throws -> String {
        let response = try await send("UploadPart", method: .PUT, bucket: bucket, key: key,
                                      query: [("partNumber", "\(number)"), ("uploadId", uploadID)],
                                      headers: [("x-amz-checksum-sha256", Self.base64(sha256))], body: body, bodySHA256: sha256)
        return response.header("etag") ?? ""
    }

    public struct Part: Sendable, Equatable {
        public var number: Int
        public var etag: String
        public var size: UInt64
        /// Base64 SHA-256, when the store reports it.
        public var checksum: String?
    }

    /// CompleteMultipartUpload; returns the version id.
    public func completeMultipartUpload(bucket: String, key: String, uploadID: String, parts: [Part]) async throws -> String? {
        var xml = "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
        for part in parts.sorted(by: { $0.number < $1.number }) {
            xml += "<Part><PartNumber>\(part.number)</PartNumber><ETag>\(Self.escape(part.etag))</ETag>"
            if let checksum = part.checksum { xml += "<ChecksumSHA256>\(checksum)</ChecksumSHA256>" }
            xml += "</Part>"
        }
        xml += "</CompleteMultipartUpload>"
        let response = try await send("CompleteMultipartUpload", method: .POST, bucket: bucket, key: key, query: [("uploadId", uploadID)],
                                      body: Array(xml.utf8))
        // S3 may answer 200 with an error document in the body.
        let (code, message) = Self.errorCode(response.body)
        if !code.isEmpty { throw S3Error.service(operation: "CompleteMultipartUpload", status: response.status, code: code, message: message) }
        return response.header("x-amz-version-id")
    }

    public func abortMultipartUpload(bucket: String, key: String, uploadID: String) async throws {
        _ = try await send("AbortMultipartUpload", method: .DELETE, bucket: bucket, key: key, query: [("uploadId", uploadID)], accept: [200, 204, 404])
    }

    /// Unfinished multipart uploads of exactly `key`: (upload id, initiated).
    public func listMultipartUploads(bucket: String, key: String) async throws -> [(id: String, initiated: Date?)] {
        let response = try await send("ListMultipartUploads", method: .GET, bucket: bucket, query: [("uploads", ""), ("prefix", key)])
        return XMLFields(response.body).records("Upload").filter { $0["Key"] == key }.compactMap { upload in
            upload["UploadId"].map { ($0, upload["Initiated"].flatMap(Self.parseDate)) }
        }
    }

    public func listParts(bucket: String, key: String, uploadID: String) async throws -> [Part] {
        var parts: [Part] = []
        var marker = "0"
        while true {
            let response = try await send("ListParts", method: .GET, bucket: bucket, key: key,
                                          query: [("uploadId", uploadID), ("part-number-marker", marker), ("max-parts", "1000")])
            let doc = XMLFields(response.body)
            for part in doc.records("Part") {
                guard let n = part["PartNumber"].flatMap(Int.init), let etag = part["ETag"] else { continue }
                parts.append(Part(number: n, etag: etag, size: part["Size"].flatMap(UInt64.init) ?? 0, checksum: part["ChecksumSHA256"]))
            }
            guard doc.first("IsTruncated") == "true", let next = doc.first("NextPartNumberMarker") else { return parts }
            marker = next
        }
    }

    public struct ObjectInfo: Sendable, Equatable {
        public var size: UInt64
        public var versionID: String?
        public var storageClass: String?
        public var lockMode: String?
        public var retainUntil: Date?
        public var legalHold: Bool
    }

    /// HeadObject; nil when there is no such object (or version).
    public func headObject(bucket: String, key: String, versionID: String? = nil) async throws -> ObjectInfo? {
        let response = try await send("HeadObject", method: .HEAD, bucket: bucket, key: key, query: versionID.map { [("versionId", $0)] } ?? [],
                                      accept: [200, 404])
        guard response.status == 200 else { return nil }
        return ObjectInfo(size: response.header("content-length").flatMap(UInt64.init) ?? 0, versionID: response.header("x-amz-version-id"),
                          storageClass: response.header("x-amz-storage-class"), lockMode: response.header("x-amz-object-lock-mode"),
                          retainUntil: response.header("x-amz-object-lock-retain-until-date").flatMap(Self.parseDate),
                          legalHold: response.header("x-amz-object-lock-legal-hold") == "ON")
    }

    /// GetObject of bytes [range) of a version; throws `S3Error.archived` for an object in an archive tier.
    public func getObject(bucket: String, key: String, versionID: String?, range: Range<UInt64>) async throws -> [UInt8] {
        let response = try await send("GetObject", method: .GET, bucket: bucket, key: key, query: versionID.map { [("versionId", $0)] } ?? [],
                                      headers: [("range", "bytes=\(range.lowerBound)-\(range.upperBound - 1)")], accept: [200, 206],
                                      maxBody: max(Int(range.count) + 1, 1 << 16))   // an error document may be longer than the range
        guard response.body.count == Int(range.count) else {
            throw S3Error.notACopy("GetObject of bytes \(range.lowerBound)–\(range.upperBound - 1) of '\(key)' returned \(response.body.count) bytes")
        }
        return response.body
    }

    /// GetObjectRetention of a version: (mode, retain-until), nil when it has none (S3 answers 400
    /// InvalidRequest on a bucket without Object Lock, 404 for a version without retention).
    public func objectRetention(bucket: String, key: String, versionID: String?) async throws -> (mode: String, until: Date?)? {
        let response = try await send("GetObjectRetention", method: .GET, bucket: bucket, key: key,
                                      query: [("retention", "")] + (versionID.map { [("versionId", $0)] } ?? []), accept: [200, 400, 404])
        let doc = XMLFields(response.body)
        guard response.status == 200, let mode = doc.first("Mode") else { return nil }
        return (mode, doc.first("RetainUntilDate").flatMap(Self.parseDate))
    }

    /// PutObjectRetention of a version (extending a lock; COMPLIANCE retention can be lengthened, never shortened).
    public func putObjectRetention(bucket: String, key: String, versionID: String?, mode: String, until: Date) async throws {
        let xml = "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Mode>\(mode)</Mode><RetainUntilDate>\(Self.iso8601(until))</RetainUntilDate></Retention>"
        _ = try await send("PutObjectRetention", method: .PUT, bucket: bucket, key: key,
                           query: [("retention", "")] + (versionID.map { [("versionId", $0)] } ?? []),
                           headers: [("x-amz-checksum-sha256", Self.base64(Sodium.sha256(Array(xml.utf8))))], body: Array(xml.utf8))
    }

    public func objectLegalHold(bucket: String, key: String, versionID: String?) async throws -> Bool {
        let response = try await send("GetObjectLegalHold", method: .GET, bucket: bucket, key: key,
                                      query: [("legal-hold", "")] + (versionID.map { [("versionId", $0)] } ?? []), accept: [200, 400, 404])
        return response.status == 200 && XMLFields(response.body).first("Status") == "ON"
    }

    /// DeleteObject of one version: the HTTP status (204 deleted; 403 refused by a lock), and the code.
    public func deleteObject(bucket: String, key: String, versionID: String?) async throws -> (status: Int, code: String) {
        let response = try await send("DeleteObject", method: .DELETE, bucket: bucket, key: key, query: versionID.map { [("versionId", $0)] } ?? [],
                                      accept: [200, 204, 400, 403, 405])
        return (response.status, Self.errorCode(response.body).0)
    }

    /// GetObjectLockConfiguration: whether the bucket has Object Lock enabled.
    public func objectLockEnabled(bucket: String) async throws -> Bool {
        let response = try await send("GetObjectLockConfiguration", method: .GET, bucket: bucket, query: [("object-lock", "")],
                                      accept: [200, 404, 400])
        return response.status == 200 && XMLFields(response.body).first("ObjectLockEnabled") == "Enabled"
    }

    /// CreateBucket (with Object Lock enabled, which also enables versioning); an existing bucket of ours is fine.
    public func createBucket(_ bucket: String, objectLock: Bool) async throws {
        _ = try await send("CreateBucket", method: .PUT, bucket: bucket, headers: objectLock ? [("x-amz-bucket-object-lock-enabled", "true")] : [],
                           accept: [200, 409])
    }

    static func escape(_ text: String) -> String {
        text.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;")
            .replacingOccurrences(of: ">", with: "&gt;").replacingOccurrences(of: "\"", with: "&quot;")
    }
}

/// The text of elements in an S3 XML answer: the first of a name, or each record (element with
/// children) of a name as a dictionary of its children's text.
struct XMLFields {
    private var flat: [(String, String)] = []
    private var recordsByName: [String: [[String: String]]] = [:]

    init(_ body: [UInt8]) {
        guard !body.isEmpty else { return }
        let delegate = Collector()
        let parser = XMLParser(data: Data(body))
        parser.delegate = delegate
        parser.parse()
        flat = delegate.flat
        recordsByName = delegate.records
    }

    func first(_ name: String) -> String? { flat.first { $0.0 == name }?.1 }
    func records(_ name: String) -> [[String: String]] { recordsByName[name] ?? [] }

    private final class Collector: NSObject, XMLParserDelegate {
        var flat: [(String, String)] = []
        var records: [String: [[String: String]]] = [:]
        private var stack: [(name: String, text: String, children: [String: String])] = []

        func parser(_ parser: XMLParser, didStartElement name: String, namespaceURI: String?, qualifiedName: String?, attributes: [String: String] = [:]) {
            stack.append((name, "", [:]))
        }

        func parser(_ parser: XMLParser, foundCharacters string: String) {
            if !stack.isEmpty { stack[stack.count - 1].text += string }
        }

        func parser(_ parser: XMLParser, didEndElement name: String, namespaceURI: String?, qualifiedName: String?) {
            guard let element = stack.popLast() else { return }
            if element.children.isEmpty {
                let text = element.text.trimmingCharacters(in: .whitespacesAndNewlines)
                flat.append((name, text))
                if !stack.isEmpty { stack[stack.count - 1].children[name] = text }
            } else {
                records[name, default: []].append(element.children)
            }
        }
    }
}
