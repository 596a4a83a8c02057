import ArgumentParser
import ColdArchive
import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif

/// Asks an RFC 3161 time-stamping authority over HTTP (RFC 3161 §3.4: POST of a DER `TimeStampReq` as
/// `application/timestamp-query`) to stamp a new archive's digest, and keeps the token beside the archive.
enum TimestampClient {
    struct Failure: Error, CustomStringConvertible {
        let description: String
    }

    /// The authority's URL from `--tsa`: http:// or https:// only (RFC 3161 §3.4); a usage error otherwise.
    static func authority(_ text: String) throws -> URL {
        guard let url = URL(string: text), ["http", "https"].contains(url.scheme ?? "") else {
            throw ValidationError("--tsa '\(text)' is not an http:// or https:// URL")
        }
        return url
    }

    /// What `create --tsa` and `stamp` print for a stamped archive.
    static func stampedLine(authority: String, time: Date, archive: String) -> String {
        "time-stamped by \(authority) at \(ISO8601DateFormatter().string(from: time)): \(archive)\(Timestamp.suffix)"
    }

    /// Stamps `archive` (its digest `digestHex`) at `authority`; returns the TSA's time.
    static func stamp(archive: String, digestHex: String, authority: URL, timeout: TimeInterval = 30) throws -> Date {
        let (der, nonce) = try Timestamp.request(archiveDigestHex: digestHex)
        var request = URLRequest(url: authority, timeoutInterval: timeout)
        request.httpMethod = "POST"
        request.setValue(Timestamp.queryContentType, forHTTPHeaderField: "Content-Type")
        request.httpBody = Data(der)
        final class Outcome: @unchecked Sendable {
            var data: Data?
            var status = 0
            var error: Error?
            let done = DispatchSemaphore(value: 0)
        }
        let outcome = Outcome()
        URLSession.shared.dataTask(with: request) { data, response, error in
            outcome.data = data
            outcome.status = (response as? HTTPURLResponse)?.statusCode ?? 0
            outcome.error = error
            outcome.done.signal()
        }.resume()
        outcome.done.wait()
        if let error = outcome.error {
            throw Failure(description: "the time-stamping authority \(authority) did not answer: \(error.localizedDescription)")
        }
        guard outcome.status == 200, let data = outcome.data else {
            throw Failure(description: "the time-stamping authority \(authority) answered HTTP \(outcome.status)")
        }
        return try Timestamp.accept(response: Array(data), archive: archive, archiveDigestHex: digestHex, nonce: nonce).time
    }
}
