import Foundation
import Testing
@testable import ColdArchive

/// `audit --html FILE`: one self-contained page for an auditor's working papers. The page is rendered by
/// headless Chromium (Debian's `chromium`) and its rendered text read back from the printed PDF
/// (`pdftotext`, Debian's poppler-utils): what a reader sees, not the markup.
@Suite struct AuditHTMLTests {
    static let chromium = "/usr/bin/chromium"
    static let pdftotext = "/usr/bin/pdftotext"

    /// The page as Chromium renders it, as text with every run of white space made one space.
    static func renderedText(of page: String, in scratch: Scratch, screenshot: String? = nil) throws -> String {
        try #require(FileManager.default.isExecutableFile(atPath: chromium), "Debian's chromium is needed (.ci/run and make deps install it)")
        try #require(FileManager.default.isExecutableFile(atPath: pdftotext), "Debian's poppler-utils is needed (pdftotext)")
        let pdf = scratch.sub("page.pdf")
        var arguments = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--user-data-dir=\(scratch.sub("chromium-profile"))",
                         "--no-pdf-header-footer", "--print-to-pdf=\(pdf)", URL(fileURLWithPath: page).absoluteString]
        let printed = try CLI.run(arguments, executable: chromium)
        #expect(printed.status == 0, "\(printed.stderr)")
        if let screenshot {
            arguments.removeAll { $0.hasPrefix("--print-to-pdf") || $0.hasPrefix("--no-pdf") }
            arguments.insert(contentsOf: ["--screenshot=\(screenshot)", "--window-size=1100,1500", "--hide-scrollbars"], at: arguments.count - 1)
            _ = try CLI.run(arguments, executable: chromium)
        }
        let text = try CLI.run(["-raw", pdf, "-"], executable: pdftotext)  // in drawing order, which is the page's
        #expect(text.status == 0, "\(text.stderr)")
        return text.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
    }

    @Test func theReportRendersTheVerdictEveryPeriodAndEveryFinding() throws {
        let v = try CLIVault(months: ["2026-05", "2026-06", "2026-07", "2026-09"])
        let (scratch, keyring, vault) = (v.scratch, v.keyring, v.vault)
        let explained = try CLI.run(["vault", "explain", "--vault", vault, "--series", "crm", "--period", "2026-08",
                                     "--reason", "CRM migration <weekend> & freeze; ticket CHG-1234", "--keyring", keyring])
        #expect(explained.status == 0, "\(explained.stderr)")
        // Three findings: a damaged archive, a missing month, a stray file whose name is markup.
        let june = v.archive("2026-06", 2)
        let file = try ArchiveFile(path: june)
        try flipBit(june, at: file.footer.payloadOffset + 50)
        try TreeBuilder.write("\(vault)/series/crm/<b>export.csv", "id,name\n1,Ada\n")
        let page = scratch.sub("papers/audit 2026-10.html")
        try FileManager.default.createDirectory(atPath: scratch.sub("papers"), withIntermediateDirectories: true)
        let audit = try CLI.run(["audit", "--vault", vault, "--trust", "\(keyring)/signing.pub", "--to", "2026-10", "--html", page])
        #expect(audit.status == 1, "\(audit.stdout)\(audit.stderr)")
        #expect(audit.stdout.contains("FAILED: 3 findings"))

        let html = try String(contentsOfFile: page, encoding: .utf8)
        // Self-contained: nothing fetched from anywhere, no script.
        for outside in ["<script", "src=", "href=", "@import", "url("] { #expect(!html.contains(outside), "\(outside)") }
        #expect(html.contains("&lt;b&gt;export.csv") && !html.contains("<b>export"))

        let text = try Self.renderedText(of: page, in: scratch, screenshot: ProcessInfo.processInfo.environment["AUDIT_SCREENSHOT"])
        #expect(text.contains("FAILED: 3 findings"), "\(text)")
        for (period, status) in [("2026-05", "ok"), ("2026-06", "FAILED"), ("2026-07", "ok"), ("2026-08", "explained"),
                                 ("2026-09", "ok"), ("2026-10", "MISSING")] {
            #expect(text.contains("\(period) \(status)"), "\(period) \(status)")
        }
        #expect(text.contains("2026-08: CRM migration <weekend> & freeze; ticket CHG-1234"))
        let report = try JSONSerialization.jsonObject(with: Data(try CLI.run(["audit", "--vault", vault, "--trust", "\(keyring)/signing.pub",
                                                                               "--to", "2026-10", "--json"]).stdout.utf8)) as? [String: Any]
        let findings = try #require(report?["findings"] as? [[String: Any]])
        #expect(findings.count == 3)
        for finding in findings {
            let kind = try #require(finding["kind"] as? String), reason = try #require(finding["reason"] as? String)
            let place = ["series", "period", "file"].compactMap { finding[$0] as? String }.joined(separator: " ")
            #expect(text.contains("\(kind) \(place) \(reason)"), "\(kind) \(place) \(reason)")
        }
        #expect(Set(findings.compactMap { $0["kind"] as? String }) == ["damaged", "missing-period", "stray"])
        // The command that repeats the check (without --html), and the stock tools'.
        // (A long line may wrap after a hyphen of the path: compared without spaces.)
        let squeezed = text.replacingOccurrences(of: " ", with: "")
        #expect(squeezed.contains("coldarchiveaudit--vault\(vault)--trust\(keyring)/signing.pub--to2026-10"))
        #expect(text.contains("minisign -Vm"))
        #expect(text.contains("Made by \(ArchiveCreator.creatorName) audit"))
        // Relative paths on the command line are absolute on the page, which outlives the directory.
        let relative = try CLI.run(["audit", "--vault", "vault", "--trust=keys/signing.pub", "--to", "2026-10", "--html", "papers/relative.html"],
                                   in: scratch.path)
        #expect(relative.status == 1)
        let page2 = try String(contentsOfFile: scratch.sub("papers/relative.html"), encoding: .utf8)
        #expect(page2.contains("coldarchive audit --vault \(AuditHTML.e(vault)) --trust=\(AuditHTML.e(keyring))/signing.pub --to 2026-10"))
        let fingerprint = try SigningPublicKey(contentsOf: "\(keyring)/signing.pub").fingerprint
        #expect(text.contains(fingerprint))

        // A page that cannot be written is an error, and no page is left.
        let unwritable = try CLI.run(["audit", "--vault", vault, "--trust", "\(keyring)/signing.pub", "--to", "2026-10",
                                      "--html", scratch.sub("no-such-dir/audit.html")])
        #expect(unwritable.status == 3, "\(unwritable.stderr)")
        #expect(unwritable.stderr.contains("no-such-dir/audit.html"))
    }

    @Test func aCleanVaultRendersPassed() throws {
        let series = try MonthlyVault(months: ["2025-01", "2025-02", "2025-03", "2025-04", "2025-05", "2025-06"])
        let page = series.scratch.sub("audit.html")
        try AuditHTML.write(try series.audit(), commandLine: "coldarchive audit --vault v --trust signing.pub", to: page)
        let text = try Self.renderedText(of: page, in: series.scratch)
        #expect(text.contains("PASSED: no finding"))
        #expect(text.contains("Findings None."))
        for month in 1...6 { #expect(text.contains("2025-0\(month) ok")) }
    }
}
