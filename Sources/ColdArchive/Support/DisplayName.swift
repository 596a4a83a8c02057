/// The escaped form in which names (and other text from an archive or a source) are shown on a terminal
/// or in a text listing, so that no name can forge a line, move the cursor or hide what follows: the
/// quoting GNU tar and `ls -b` use. A backslash becomes `\\`; newline, carriage return, tab, bell,
/// backspace, form feed and vertical tab become `\n \r \t \a \b \f \v`; every other control character
/// (C0, DEL, C1) and every bidirectional-override or -isolate character (U+202A–U+202E, U+2066–U+2069)
/// becomes the octal escapes of its UTF-8 bytes (`\033`, `\342\200\256`). Everything else is shown as
/// it is. The form is unambiguous: a reader can recover the exact name from it.
public enum DisplayName {
    public static func escaped(_ text: String) -> String {
        var out = ""
        out.reserveCapacity(text.utf8.count)
        for scalar in text.unicodeScalars {
            switch scalar.value {
            case 0x5C: out += "\\\\"
            case 0x0A: out += "\\n"
            case 0x0D: out += "\\r"
            case 0x09: out += "\\t"
            case 0x07: out += "\\a"
            case 0x08: out += "\\b"
            case 0x0C: out += "\\f"
            case 0x0B: out += "\\v"
            case (NameCodec.escapeBase + 0x80)...(NameCodec.escapeBase + 0xFF):
                // A byte that is not part of valid UTF-8 (NameCodec), shown as GNU tar and ls -b show it.
                let hex = String(scalar.value - NameCodec.escapeBase, radix: 16)
                out += "\\x" + (hex.count == 1 ? "0" : "") + hex
            case 0x00..<0x20, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069:
                for byte in String(scalar).utf8 {
                    let octal = String(byte, radix: 8)
                    out += "\\" + String(repeating: "0", count: 3 - octal.count) + octal
                }
            default: out.unicodeScalars.append(scalar)
            }
        }
        return out
    }
}
