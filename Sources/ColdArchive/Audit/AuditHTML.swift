import Foundation

/// The audit report as one self-contained HTML page (no script, no external asset: inline CSS only), for
/// an auditor's working papers: the verdict, what was checked, a timeline of each series with every period
/// coloured by its status, the findings, the signers' fingerprints, and the commands that repeat the check
/// with coldarchive and with stock tools (docs/AUDIT.md). Every text from the vault is HTML-escaped, and
/// names with control characters are shown escaped as in the terminal report.
public enum AuditHTML {
    /// The page for `report`. `commandLine` is the coldarchive command that repeats this audit, shown
    /// first among the ways to reproduce it.
    public static func render(_ report: AuditReport, commandLine: String) -> String {
        let r = report
        var h: [String] = []
        let verdict = r.passed ? "PASSED: no finding" : "FAILED: \(r.findings.count) finding\(r.findings.count == 1 ? "" : "s")"
        h.append("<!DOCTYPE html>")
        h.append("<html lang=\"en\"><head><meta charset=\"utf-8\">")
        h.append("<title>coldarchive audit — \(e(r.vault)) — \(e(verdict))</title>")
        h.append("<style>\(style)</style></head><body>")
        h.append("<h1>Audit of a coldarchive vault</h1>")
        h.append("<p class=\"verdict \(r.passed ? "pass" : "fail")\">\(e(verdict))</p>")

        h.append("<h2>What was checked</h2><table class=\"facts\">")
        func fact(_ name: String, _ value: String) { h.append("<tr><th>\(e(name))</th><td>\(value)</td></tr>") }
        fact("vault", "<code>\(e(r.vault))</code>" + (r.vaultID.map { " (id <code>\(e($0))</code>)" } ?? ""))
        fact("checked at", e(r.checkedAt))
        fact("depth", r.quick
             ? "quick: signatures, chains, calendar and journal; chunk hashes <strong>not</strong> checked"
             : "full: signatures, every chunk hash (\(r.bytesHashed) bytes), chains, calendar and journal")
        fact("archives", "\(r.archives) in \(r.series.count) series; journal: \(r.journalRecords) record\(r.journalRecords == 1 ? "" : "s")")
        fact("trusted signing keys", r.trustedSigners.map { "<code>\(e($0))</code>" }.joined(separator: "<br>"))
        fact("archives signed by", r.signers.isEmpty ? "—" : r.signers.map { "<code>\(e($0))</code>" }.joined(separator: "<br>"))
        if r.timestamped > 0 {
            fact("RFC 3161 time-stamps", "\(r.timestamped) of \(r.archives) archives" + (r.timestampSignaturesChecked
                ? ", each signed by the time-stamping authority (checked against its CA)" : "; the authority's signatures <strong>not</strong> checked (no <code>--tsa-ca</code>)"))
        }
        if !r.revokedSigners.isEmpty {
            fact("revoked signing keys", r.revokedSigners.map {
                "<code>\(e($0.fingerprint))</code> since \(e($0.since)): \(e(shown($0.reason))) (<code>\(e(shown($0.file)))</code>)"
            }.joined(separator: "<br>"))
        }
        h.append("</table>")

        h.append("<h2>Series</h2>")
        h.append("<p class=\"legend\">" + [AuditPeriod.Status.ok, .failed, .missing, .explained]
            .map { "<span class=\"cell \($0.rawValue)\">\(label($0))</span>" }.joined(separator: " ") + "</p>")
        for s in r.series {
            let sequences = s.firstSequence.map { "sequences \($0)–\(s.lastSequence ?? $0)" } ?? "no archive"
            h.append("<h3>\(e(s.series)) <small>(\(e(s.schedule)); \(s.archives) archive\(s.archives == 1 ? "" : "s"), \(sequences))</small></h3>")
            h.append("<div class=\"timeline\">")
            for p in s.periods {
                let detail = p.explanation.map { "explained: \(shown($0))" }
                    ?? p.files.map { shown(($0 as NSString).lastPathComponent) }.joined(separator: ", ")
                h.append("<div class=\"cell \(p.status.rawValue)\" title=\"\(e(detail))\"><b>\(e(p.period))</b><span>\(label(p.status))</span></div>")
            }
            h.append("</div>")
            let explained = s.periods.filter { $0.explanation != nil }
            if !explained.isEmpty {
                h.append("<ul class=\"explained\">")
                for p in explained { h.append("<li><b>\(e(p.period))</b>: \(e(shown(p.explanation ?? "")))</li>") }
                h.append("</ul>")
            }
        }

        h.append("<h2>Findings</h2>")
        if r.findings.isEmpty {
            h.append("<p>None.</p>")
        } else {
            h.append("<ol class=\"findings\">")
            for f in r.findings {
                let place = [f.series, f.period, f.file].compactMap { $0 }.map(shown).joined(separator: " ")
                h.append("<li><p class=\"kind\">\(e(f.kind.rawValue))<span class=\"place\">\(e(place))</span></p><p>\(e(shown(f.reason)))</p></li>")
            }
            h.append("</ol>")
        }

        h.append("<h2>Reproduce this check</h2>")
        h.append("<p>With coldarchive (needs no secret key, writes nothing to the vault; exit status 0 means no finding):</p>")
        h.append("<pre>\(e(commandLine))</pre>")
        h.append("<p>With stock tools and docs/FORMAT.md (docs/AUDIT.md, “Without coldarchive”): each archive’s minisign "
                 + "sidecar with Debian’s <code>minisign</code> and the site key in minisign’s format (<code>keys export-public</code> writes "
                 + "<code>minisign.pub</code>); every signature and chunk hash, and the journal, with the independent reader written from FORMAT.md:</p>")
        h.append("<pre>\(e(stockCommands(r.vault)))</pre>")
        h.append("<p class=\"foot\">Made by \(e(ArchiveCreator.creatorName)) audit. This page proves nothing by itself: it is what the commands above print.</p>")
        h.append("</body></html>")
        return h.joined(separator: "\n") + "\n"
    }

    /// Writes the page to `path` atomically (mode 0644): a killed or failed write leaves no page that
    /// looks complete. Throws `SystemError` when the file cannot be written.
    public static func write(_ report: AuditReport, commandLine: String, to path: String) throws {
        do {
            try FileSystem.writeAtomically(Array(render(report, commandLine: commandLine).utf8), to: path, mode: 0o644)
        } catch let error as SystemError {
            // Named by the page asked for, not the temporary file beside it.
            throw SystemError(operation: "write the HTML report", path: path, errno: error.errno)
        }
    }

    static func stockCommands(_ vault: String) -> String {
        let v = shellQuoted(vault)
        return """
        for f in \(v)/series/*/*.car; do minisign -Vm "$f" -p minisign.pub || echo "FAILED: $f"; done
        for f in \(v)/series/*/*.car; do python3 decode.py --verify "$f" --trust signing.pub || echo "FAILED: $f"; done
        python3 decode.py --journal \(v)/journal.log --trust signing.pub
        ls \(v)/series/*/    # SERIES.PERIOD.SEQUENCE.car: the calendar
        """
    }

    /// A word for each status, shown in every cell so that the page reads the same without colour.
    static func label(_ status: AuditPeriod.Status) -> String {
        switch status {
        case .ok: "ok"
        case .failed: "FAILED"
        case .missing: "MISSING"
        case .explained: "explained"
        }
    }

    /// Single-quoted for a POSIX shell, unless it needs no quoting.
    public static func shellQuoted(_ word: String) -> String {
        let plain = word.unicodeScalars.allSatisfy { CharacterSet.alphanumerics.contains($0) || "-_./=:,+@%".unicodeScalars.contains($0) }
        return plain && !word.isEmpty ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }

    private static func shown(_ text: String) -> String { DisplayName.escaped(text) }

    /// HTML-escaped text (element content and attribute values).
    static func e(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for c in text.unicodeScalars {
            switch c {
            case "&": out += "&amp;"
            case "<": out += "&lt;"
            case ">": out += "&gt;"
            case "\"": out += "&quot;"
            case "'": out += "&#39;"
            default: out.unicodeScalars.append(c)
            }
        }
        return out
    }

    private static let style = """
    body{font:15px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:2em auto;max-width:60em;padding:0 1em;color:#1f2328}
    h1{font-size:1.6em;margin-bottom:.3em}h2{margin-top:1.6em;border-bottom:1px solid #d0d7de;padding-bottom:.2em}
    h3 small{font-weight:normal;color:#57606a}
    .verdict{font-size:1.5em;font-weight:bold;padding:.5em .8em;border-radius:6px;color:#fff}
    .pass{background:#1a7f37}.fail{background:#cf222e}
    table.facts th{text-align:left;padding:.2em 1em .2em 0;vertical-align:top;white-space:nowrap;color:#57606a;font-weight:normal}
    code,pre{font-family:"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:.9em}
    pre{background:#f6f8fa;padding:.8em;white-space:pre-wrap;overflow-wrap:anywhere;border-radius:6px}
    .timeline{display:flex;flex-wrap:wrap;gap:4px}
    .cell{display:inline-block;min-width:6.2em;padding:.25em .4em;border-radius:4px;font-size:.85em;text-align:center}
    .cell b{display:block}.cell span{display:block;font-size:.85em}
    .ok{background:#dafbe1;border:1px solid #1a7f37}
    .failed{background:#cf222e;color:#fff;border:1px solid #a40e26}
    .missing{background:#fff;color:#a40e26;border:2px dashed #cf222e}
    .explained{background:#ddf4ff;border:1px solid #0969da}
    ul.explained{background:none;border:none}
    .legend .cell{min-width:0}
    ol.findings li{margin-bottom:.6em}ol.findings p{margin:.1em 0}
    .kind{font-weight:bold;color:#a40e26}.place{font-weight:normal;color:#1f2328;margin-left:.8em;font-family:"DejaVu Sans Mono",monospace}
    .foot{color:#57606a;font-size:.85em;margin-top:2em}
    """
}
