import ColdArchive
import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Prints `list` lines into a byte buffer written to stdout in 1 MiB pieces: one line per entry of a
/// manifest of hundreds of thousands, so nothing here allocates per entry on the common path (no date
/// formatter, no `String(format:)`, no encoder). The output is the same as building each line with
/// Foundation: `ListPrinterTests` compares the two.
struct ListPrinter {
    private var out: [UInt8] = []
    private static let hexDigits = Array("0123456789abcdef".utf8)

    init() { out.reserveCapacity(1 << 20) }

    mutating func flush() {
        var done = 0
        while done < out.count {
            let n = out.withUnsafeBytes { write(1, $0.baseAddress! + done, $0.count - done) }
            if n <= 0 { if errno == EINTR { continue } else { break } }
            done += n
        }
        out.removeAll(keepingCapacity: true)
    }

    private mutating func maybeFlush() { if out.count >= 1 << 20 { flush() } }

    // MARK: pieces

    private mutating func ascii(_ s: StaticString) {
        s.withUTF8Buffer { out.append(contentsOf: $0) }
    }

    private mutating func decimal<T: BinaryInteger>(_ value: T, width: Int = 0, pad: UInt8 = 0x20) {
        var digits: [UInt8] = []
        var v = value.magnitude
        repeat { digits.append(UInt8(truncatingIfNeeded: v % 10) + 0x30); v /= 10 } while v > 0
        if value < 0 { digits.append(0x2D) }
        if digits.count < width { out.append(contentsOf: repeatElement(pad, count: width - digits.count)) }
        out.append(contentsOf: digits.reversed())
    }

    private mutating func octal(_ value: UInt16, width: Int) {
        var digits: [UInt8] = []
        var v = value
        repeat { digits.append(UInt8(v & 7) + 0x30); v >>= 3 } while v > 0
        if digits.count < width { out.append(contentsOf: repeatElement(0x20, count: width - digits.count)) }
        out.append(contentsOf: digits.reversed())
    }

    private mutating func hex(_ bytes: [UInt8]) {
        for b in bytes { out.append(Self.hexDigits[Int(b >> 4)]); out.append(Self.hexDigits[Int(b & 15)]) }
    }

    /// `YYYY-MM-DDThh:mm:ss.nnnnnnnnnZ` in UTC, proleptic Gregorian (Howard Hinnant's civil_from_days).
    private mutating func time(_ seconds: Int64, _ nanoseconds: UInt32) {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let doe = z - era * 146_097
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100)
        let mp = (5 * doy + 2) / 153
        let day = doy - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yoe + era * 400 + (month <= 2 ? 1 : 0)
        decimal(year, width: 4, pad: 0x30); out.append(0x2D)
        decimal(month, width: 2, pad: 0x30); out.append(0x2D)
        decimal(day, width: 2, pad: 0x30); out.append(0x54)
        decimal(secondOfDay / 3600, width: 2, pad: 0x30); out.append(0x3A)
        decimal(secondOfDay / 60 % 60, width: 2, pad: 0x30); out.append(0x3A)
        decimal(secondOfDay % 60, width: 2, pad: 0x30); out.append(0x2E)
        decimal(nanoseconds, width: 9, pad: 0x30); out.append(0x5A)
    }

    /// A name as the text listing shows it (FORMAT.md §18): printable ASCII without a backslash as it
    /// is, anything else through DisplayName.
    private mutating func displayName(_ name: String) {
        var plain = true
        for b in name.utf8 where b < 0x20 || b > 0x7E || b == 0x5C { plain = false; break }
        if plain { out.append(contentsOf: name.utf8) } else { out.append(contentsOf: DisplayName.escaped(name).utf8) }
    }

    /// A JSON string (RFC 8259): `"` and `\` escaped, control characters as \n, \r, \t, \b, \f or \u00XX.
    private mutating func jsonString(_ s: String) {
        out.append(0x22)
        for b in s.utf8 {
            switch b {
            case 0x22: ascii("\\\"")
            case 0x5C: ascii("\\\\")
            case 0x0A: ascii("\\n")
            case 0x0D: ascii("\\r")
            case 0x09: ascii("\\t")
            case 0x08: ascii("\\b")
            case 0x0C: ascii("\\f")
            case 0..<0x20:
                ascii("\\u00"); out.append(Self.hexDigits[Int(b >> 4)]); out.append(Self.hexDigits[Int(b & 15)])
            default: out.append(b)
            }
        }
        out.append(0x22)
    }

    // MARK: lines

    /// `- 644        1234 2026-11-29T22:29:52.602743257Z <blake2b or 64 dashes> path[ -> target | => file]`
    mutating func text(_ entry: ManifestEntry) {
        switch entry.kind {
        case .file: out.append(0x2D)
        case .directory: out.append(0x64)
        case .symlink: out.append(0x6C)
        case .hardlink: out.append(0x68)
        case .deleted: out.append(0x3F)
        }
        out.append(0x20)
        octal(entry.mode, width: 4); out.append(0x20)
        decimal(entry.size, width: 12); out.append(0x20)
        time(entry.mtime, entry.mtimeNanoseconds); out.append(0x20)
        if entry.kind == .file { hex(entry.contentHash) } else { out.append(contentsOf: repeatElement(0x2D, count: 64)) }
        out.append(0x20)
        displayName(entry.path)
        if !entry.linkTarget.isEmpty {
            if entry.kind == .symlink { ascii(" -> ") } else { ascii(" => ") }
            displayName(entry.linkTarget)
        }
        out.append(0x0A)
        maybeFlush()
    }

    /// One JSON object per line, keys in sorted order (as `JSONEncoder` with `.sortedKeys` writes them).
    mutating func json(_ entry: ManifestEntry, version: Int) {
        var first = true
        func key(_ k: StaticString, _ p: inout ListPrinter) {
            if !first { p.out.append(0x2C) }
            first = false
            p.out.append(0x22); p.ascii(k); p.ascii("\":")
        }
        let v2 = version >= 2
        out.append(0x7B)
        if v2, let acl = ListCommand.aclText(entry.accessACL) { key("acl", &self); jsonString(acl) }
        if entry.kind == .file { key("blake2b", &self); out.append(0x22); hex(entry.contentHash); out.append(0x22) }
        if v2 && entry.flags.contains(.changedWhileRead) { key("changedWhileRead", &self); ascii("true") }
        if v2, let acl = ListCommand.aclText(entry.defaultACL) { key("defaultACL", &self); jsonString(acl) }
        if v2 { key("gid", &self); decimal(entry.gid) }
        if v2, let group = entry.groupName { key("group", &self); jsonString(group) }
        if !entry.linkTarget.isEmpty {
            if NameCodec.hasEscapes(entry.linkTarget) { key("linkHex", &self); jsonString(NameCodec.hex(entry.linkTarget)) } else { key("link", &self); jsonString(entry.linkTarget) }
        }
        key("mode", &self); out.append(0x22); octal(entry.mode, width: 0); out.append(0x22)
        key("mtime", &self); out.append(0x22); time(entry.mtime, entry.mtimeNanoseconds); out.append(0x22)
        if NameCodec.hasEscapes(entry.path) { key("pathHex", &self); jsonString(NameCodec.hex(entry.path)) } else { key("path", &self); jsonString(entry.path) }
        if v2, let readSize = entry.readSize { key("readSize", &self); decimal(readSize) }
        key("size", &self); decimal(entry.size)
        key("type", &self); jsonString(entry.kind.name)
        if v2 { key("uid", &self); decimal(entry.uid) }
        if v2, let user = entry.userName { key("user", &self); jsonString(user) }
        if v2 && !entry.xattrs.isEmpty {
            key("xattrs", &self)
            out.append(0x7B)
            for (i, x) in entry.xattrs.sorted(by: { $0.displayName.utf8.lexicographicallyPrecedes($1.displayName.utf8) }).enumerated() {
                if i > 0 { out.append(0x2C) }
                jsonString(x.displayName); out.append(0x3A); jsonString(Data(x.value).base64EncodedString())
            }
            out.append(0x7D)
        }
        out.append(0x7D); out.append(0x0A)
        maybeFlush()
    }
}
