import Foundation
import Testing
@testable import ColdArchive

/// A real RFC 3161 authority for a test: `Tests/Support/tsa.py` (`openssl ts -reply` behind HTTP on
/// 127.0.0.1, a port of its own), started here and stopped by pid when the test is done. It runs in the
/// background, not as a `Process` of this one: Foundation's reaping of child processes blocks on a
/// long-lived child, and every other command a test runs would wait for it.
final class LocalTSA {
    let url: String
    let directory: String
    var caFile: String { "\(directory)/ca.pem" }
    private let pid: pid_t

    init(in scratch: Scratch, name: String = "tsa") throws {
        directory = scratch.sub(name)
        let ready = scratch.sub("\(name).ready")
        // Tests/ColdArchiveTests/Vault/ → Tests/Support/tsa.py
        let tests = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        let script = tests.appendingPathComponent("Support/tsa.py").path
        let started = try CLI.run(["-c", "/usr/bin/python3 \"$0\" \"$1\" \"$2\" </dev/null >/dev/null 2>\"$1.log\" &", script, directory, ready],
                                  executable: "/bin/sh")
        #expect(started.status == 0)
        // It writes the file once it listens (generating its certificates first): wait for it, bounded.
        let deadline = Date().addingTimeInterval(30)
        while !FileManager.default.fileExists(atPath: ready) && Date() < deadline { usleep(20_000) }
        let lines = (try? String(contentsOfFile: ready, encoding: .utf8))?.split(separator: "\n").map(String.init) ?? []
        guard lines.count == 2, lines[0].hasPrefix("http://127.0.0.1:"), let pid = pid_t(lines[1]) else {
            throw OperationError("the local time-stamping authority did not start (needs python3 and openssl): \((try? String(contentsOfFile: directory + ".log", encoding: .utf8)) ?? "")")
        }
        url = lines[0]
        self.pid = pid
    }

    deinit { kill(pid, SIGKILL) }

    /// Stamps an archive through the protocol, with curl as the HTTP client: what `create --tsa` does.
    func stamp(_ archive: String) throws -> Timestamp.Token {
        let digest = try ArchiveFile(path: archive).summary.archiveDigest
        let (der, nonce) = try Timestamp.request(archiveDigestHex: digest)
        let query = archive + ".tsq"
        try Data(der).write(to: URL(fileURLWithPath: query))
        defer { try? FileManager.default.removeItem(atPath: query) }
        let reply = try CLI.run(["-s", "-f", "-H", "Content-Type: \(Timestamp.queryContentType)", "--data-binary", "@\(query)", "-o", archive + ".reply", url],
                                executable: "/usr/bin/curl")
        #expect(reply.status == 0, "\(reply.stderr)")
        defer { try? FileManager.default.removeItem(atPath: archive + ".reply") }
        let response = Array(try Data(contentsOf: URL(fileURLWithPath: archive + ".reply")))
        return try Timestamp.accept(response: response, archive: archive, archiveDigestHex: digest, nonce: nonce)
    }
}

/// RFC 3161 time-stamps of archives (FORMAT.md §5): `create --tsa` keeps the authority's token beside
/// the archive, stock `openssl ts -verify` accepts it, and `audit` checks what it stamps and (with
/// `--tsa-ca`) who signed it, and relies on its time where the header's `created` is only a claim.
@Suite struct TimestampTests {
    @Test func createStampsAndTheAuditAndOpenSSLCheckIt() throws {
        let v = try CLIVault(months: [])
        let tsa = try LocalTSA(in: v.scratch)
        try TreeBuilder.write(v.scratch.sub("crm/orders.csv"), "id\n1\n")
        let made = try CLI.run(["create", "--vault", v.vault, "--series", "crm", "--period", "2026-10", "--keyring", v.keyring,
                                "--tsa", tsa.url, v.scratch.sub("crm")])
        #expect(made.status == 0, "\(made.stderr)")
        let archive = v.archive("2026-10", 1)
        #expect(made.stdout.contains("time-stamped by \(tsa.url) at ") && made.stdout.contains(": \(archive).tsr"))
        // Stock OpenSSL, from FORMAT.md alone: the imprint is SHA-256 of the 32-byte archive digest.
        let digest = try ArchiveFile(path: archive).archiveDigest
        let stock = try CLI.run(["ts", "-verify", "-digest", Sodium.sha256(digest).hex, "-in", "\(archive).tsr", "-CAfile", tsa.caFile],
                                executable: "/usr/bin/openssl")
        #expect(stock.status == 0 && stock.stdout.contains("Verification: OK"), "\(stock.stdout)\(stock.stderr)")

        let audit = ["audit", "--vault", v.vault, "--trust", v.trust, "--to", "2026-10", "--json"]
        for (extra, checked) in [([String](), false), (["--tsa-ca", tsa.caFile], true)] {
            let result = try CLI.run(audit + extra)
            #expect(result.status == 0, "\(result.stdout)\(result.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect(json["timestamped"] as? Int == 1)
            #expect(json["timestamp_signatures_checked"] as? Bool == checked)
        }
        let text = try CLI.run(["audit", "--vault", v.vault, "--trust", v.trust, "--to", "2026-10", "--tsa-ca", tsa.caFile])
        #expect(text.stdout.contains("time-stamps  1 of 1 archive, each signed by the authority (--tsa-ca)"), "\(text.stdout)")
    }

    @Test func aTokenForAnotherArchiveOrFromAnotherAuthorityIsAFinding() throws {
        let v = try CLIVault(months: ["2026-09", "2026-10"])
        let tsa = try LocalTSA(in: v.scratch)
        let other = try LocalTSA(in: v.scratch, name: "other-tsa")
        let (september, october) = (v.archive("2026-09", 1), v.archive("2026-10", 2))
        _ = try tsa.stamp(september)
        _ = try other.stamp(october)
        var options = Auditor.Options()
        options.to = "2026-10"
        options.timestampSignature = Timestamp.openSSLSignatureCheck(caFile: tsa.caFile)
        let trusted = [try SigningPublicKey(contentsOf: v.trust)]
        let signedByOther = try Auditor.audit(vault: v.vault, trusting: trusted, options: options)
        #expect(signedByOther.findings.map(\.kind) == [.timestamp])
        #expect(signedByOther.findings.first?.period == "2026-10")
        #expect(signedByOther.findings.first?.reason.hasPrefix("crm.2026-10.000002.car.tsr: the authority's signature does not verify against --tsa-ca: ") == true)
        #expect(signedByOther.timestamped == 1)

        // A response is taken only for the request it answers: another nonce is a replay.
        let septemberDigest = try ArchiveFile(path: september).summary.archiveDigest
        #expect(throws: IntegrityError.malformed(what: "time-stamp response (its nonce is not the request's: a replayed or misrouted answer)")) {
            _ = try Timestamp.accept(response: Array(try Data(contentsOf: URL(fileURLWithPath: "\(september).tsr"))),
                                     archive: v.scratch.sub("replayed.car"), archiveDigestHex: septemberDigest, nonce: [1, 2, 3])
        }
        // September's token beside October: it stamps another archive's digest.
        try FileManager.default.removeItem(atPath: "\(october).tsr")
        try FileManager.default.copyItem(atPath: "\(september).tsr", toPath: "\(october).tsr")
        options.timestampSignature = nil
        let swapped = try Auditor.audit(vault: v.vault, trusting: trusted, options: options)
        #expect(swapped.findings == [AuditFinding(.timestamp, series: "crm", period: "2026-10", file: "series/crm/crm.2026-10.000002.car",
                                                  "crm.2026-10.000002.car.tsr: the token stamps another hash than this archive's digest: it belongs to another archive")])
        // And bytes that are not a response at all.
        try Data("not DER".utf8).write(to: URL(fileURLWithPath: "\(october).tsr"))
        let garbage = try Auditor.audit(vault: v.vault, trusting: trusted, options: options)
        #expect(garbage.findings.first?.reason.hasPrefix("crm.2026-10.000002.car.tsr: not a time-stamp response: ") == true)
    }

    /// The header's `created` is the writer's claim; a checked time-stamp is not. An archive whose header
    /// says it was made before a key's revocation but whose token is later is a finding, with the token's time.
    @Test func aRevocationGoesByTheTimeStampWhenThereIsOne() throws {
        let series = try MonthlyVault(months: ["2025-01", "2025-02"])     // headers say 2025-07-01
        let tsa = try LocalTSA(in: series.scratch)
        let token = try tsa.stamp(series.path("2025-02", 2))              // the authority says: now
        _ = try SigningKeyRevocation.make(since: Journal.parseRFC3339("2025-08-01T00:00:00Z")!, reason: "key stolen", signer: series.keys.signer)
            .save(inVault: series.vault.root, journalSigner: series.keys.signer, now: MonthlyVault.cut)
        var options = Auditor.Options()
        options.to = "2025-02"
        options.now = MonthlyVault.cut
        #expect(try Auditor.audit(vault: series.vault.root, trusting: series.trusted, options: options).passed)   // the token's time not relied on
        options.timestampSignature = Timestamp.openSSLSignatureCheck(caFile: tsa.caFile)
        let report = try Auditor.audit(vault: series.vault.root, trusting: series.trusted, options: options)
        #expect(report.findings.map(\.kind) == [.revoked])
        #expect(report.findings.first?.period == "2025-02")
        #expect(report.findings.first?.reason.hasSuffix("and time-stamped \(Journal.rfc3339(token.time)): it may not be the company's") == true)
    }

    @Test func anUnreachableAuthorityLeavesTheArchiveAndExitsFour() throws {
        let v = try CLIVault(months: [])
        let made = try CLI.run(["create", "--vault", v.vault, "--series", "crm", "--period", "2026-10", "--keyring", v.keyring,
                                "--tsa", "http://127.0.0.1:9/", v.scratch.sub("crm")])
        #expect(made.status == 4)
        #expect(made.stderr.contains("the archive is complete and valid, but it was not time-stamped: the time-stamping authority http://127.0.0.1:9/ did not answer"))
        #expect(FileManager.default.fileExists(atPath: v.archive("2026-10", 1)))
        #expect(!FileManager.default.fileExists(atPath: v.archive("2026-10", 1) + ".tsr"))
        #expect(made.stderr.contains("Stamp it later: coldarchive stamp --tsa http://127.0.0.1:9/ \(v.archive("2026-10", 1))"))
        // Later, when the authority answers: stamped once, never again.
        let tsa = try LocalTSA(in: v.scratch)
        let stamped = try CLI.run(["stamp", "--tsa", tsa.url, v.archive("2026-10", 1)])
        #expect(stamped.status == 0 && stamped.stdout.contains("time-stamped by \(tsa.url)"), "\(stamped.stderr)")
        let again = try CLI.run(["stamp", "--tsa", tsa.url, v.archive("2026-10", 1)])
        #expect(again.status == 3 && again.stderr.contains("it is already time-stamped"))
        #expect(try CLI.run(["audit", "--vault", v.vault, "--trust", v.trust, "--to", "2026-10", "--tsa-ca", tsa.caFile]).status == 0)
        let bad = try CLI.run(["create", "--out", v.scratch.sub("a.car"), "--keyring", v.keyring, "--tsa", "ftp://x", v.scratch.sub("crm")])
        #expect(bad.status == 2 && bad.stderr.contains("is not an http:// or https:// URL"))
    }

    @Test func requestsAndTimesAreDERAsRFC3161Says() throws {
        let (der, nonce) = Timestamp.request(archiveDigest: [UInt8](repeating: 7, count: 32), nonce: [0x80, 1, 2, 3, 4, 5, 6, 7])
        #expect(nonce.first == 0)                                           // a positive INTEGER
        #expect(Array(der.prefix(2)) == [0x30, UInt8(der.count - 2)])
        #expect(der.suffix(3) == [0x01, 0x01, 0xFF])                        // certReq TRUE, last
        #expect(DER.generalizedTime("20261130050733Z") == Journal.parseRFC3339("2026-11-30T05:07:33Z"))
        #expect(DER.generalizedTime("20261130050733.25Z") == Journal.parseRFC3339("2026-11-30T05:07:33Z"))
        for bad in ["20261130050733", "2026113005073Z", "20261330050733Z", "20261130050733.Z"] { #expect(DER.generalizedTime(bad) == nil, "\(bad)") }
        #expect(throws: IntegrityError.self) { _ = try Timestamp.Token(response: [0x30, 0x05, 0x30, 0x03, 0x02, 0x01, 0x02]) }   // status 2: rejection
    }
}
