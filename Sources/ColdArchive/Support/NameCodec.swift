#if canImport(Glibc)
import Glibc
#endif
/// Names are bytes (FORMAT.md §8): a file system may hold a name that is not valid UTF-8 (Latin-1 from
/// an old Windows share). Swift's `String` cannot hold such bytes, so inside coldarchive a name is a
/// `String` in which every byte that is not part of valid UTF-8 (always 0x80…0xFF) is the private-use
/// scalar U+10FF00 + byte, and a genuine U+10FF80…U+10FFFF is written as its four UTF-8 bytes, each
/// escaped the same way. Only U+10FF80…U+10FFFF are escapes, so an escape never stands for an ASCII
/// byte: no string, however it was made, turns into a `/` or a NUL at a system call. The mapping is one-to-one: `bytes(decode(b)) == b` for every byte string, and a name that
/// is valid UTF-8 without those rare scalars is its own `String`. Names cross into bytes only where
/// they leave the program: system calls, the manifest, the tar stream, JSON (`path_hex`), and the
/// display form (`\xHH`).
public enum NameCodec {
    static let escapeBase: UInt32 = 0x10FF00
    /// The first UTF-8 byte of every escape scalar (U+10FF80…U+10FFFF is F4 8F BE 80…F4 8F BF BF).
    private static let escapeLead: UInt8 = 0xF4

    /// The name for these bytes.
    public static func decode<C: Collection>(_ bytes: C) -> String where C.Element == UInt8 {
        // The common case, a valid UTF-8 name without the escape lead byte, decided on the bytes (this
        // runs for every manifest entry a restore or list reads).
        let hasLead = bytes.withContiguousStorageIfAvailable { $0.contains(escapeLead) } ?? bytes.contains(escapeLead)
        if !hasLead, let plain = String(validating: bytes, as: UTF8.self) { return plain }
        let raw = Array(bytes)
        var out = String.UnicodeScalarView()
        var i = 0
        while i < raw.count {
            let lead = raw[i]
            let length = lead < 0x80 ? 1 : lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3 : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0
            if length > 0, i + length <= raw.count, let s = String(validating: raw[i..<i + length], as: UTF8.self),
               let scalar = s.unicodeScalars.first, !isEscape(scalar) {
                out.append(scalar)
                i += length
            } else if length > 0, i + length <= raw.count, String(validating: raw[i..<i + length], as: UTF8.self) != nil {
                // A genuine escape-range scalar: its four bytes, each escaped.
                for b in raw[i..<i + length] { out.append(Unicode.Scalar(escapeBase + UInt32(b))!) }
                i += length
            } else {
                out.append(Unicode.Scalar(escapeBase + UInt32(lead))!)
                i += 1
            }
        }
        return String(out)
    }

    /// The bytes this name stands for.
    public static func bytes(_ name: String) -> [UInt8] {
        guard hasEscapes(name) else { return Array(name.utf8) }
        var out: [UInt8] = []
        out.reserveCapacity(name.utf8.count)
        for scalar in name.unicodeScalars {
            if isEscape(scalar) { out.append(UInt8(scalar.value - escapeBase)) } else { out.append(contentsOf: String(scalar).utf8) }
        }
        return out
    }

    /// The name's bytes in lower-case hex (JSON's `pathHex` for a name that is not UTF-8).
    public static func hex(_ name: String) -> String { bytes(name).hex }

    /// Whether the name holds escaped bytes (so its `utf8` is not its bytes).
    public static func hasEscapes(_ name: String) -> Bool {
        // memchr on the contiguous UTF-8 (native strings are), the scalar walk only when the lead byte is there.
        let lead = name.utf8.withContiguousStorageIfAvailable { $0.isEmpty ? false : memchr($0.baseAddress!, Int32(escapeLead), $0.count) != nil }
            ?? name.utf8.contains(escapeLead)
        return lead && name.unicodeScalars.contains(where: isEscape)
    }

    static func isEscape(_ scalar: Unicode.Scalar) -> Bool { scalar.value >= escapeBase + 0x80 && scalar.value <= escapeBase + 0xFF }

    /// Runs `body` with the name as a NUL-terminated C string of its bytes (for system calls).
    static func withCString<T>(_ name: String, _ body: (UnsafePointer<CChar>) throws -> T) rethrows -> T {
        guard hasEscapes(name) else { return try name.withCString(body) }
        return try (bytes(name) + [0]).withUnsafeBufferPointer { p in
            try p.withMemoryRebound(to: CChar.self) { try body($0.baseAddress!) }
        }
    }
}
