/// Walks the tar stream's 512-byte blocks beside libarchive and refuses every header type the format
/// does not carry (FORMAT.md §10): libarchive itself applies a global pax header (`g`) or a GNU long
/// name (`L`, `K`) silently, so a reader that trusted it alone would accept what the spec forbids.
/// Allowed: regular file (`0`, and NUL as old tars write it), hardlink (`1`), symlink (`2`), directory
/// (`5`), and a pax extended header (`x`) directly before one of those; devices and FIFOs (`3`, `4`,
/// `6`) pass here to be refused, each with its own reason, by the entry check. Fed the stream in order, in
/// pieces of any size; it stops looking at the end-of-archive marker (what follows is checked as zeros
/// elsewhere). Memory: one header block and one pax header (at most `maxPaxBytes`).
struct TarStructureCheck {
    static let maxPaxBytes = 16 << 20

    private var header = [UInt8]()
    private var skip: UInt64 = 0
    /// The pax header being collected (its data), when one is.
    private var pax: [UInt8]?
    private var paxRemaining = 0
    /// A pax `size` record for the next entry.
    private var paxSize: UInt64?
    private var afterPax = false
    private var zeroBlocks = 0
    private(set) var ended = false
    private var offset: UInt64 = 0

    init() { header.reserveCapacity(512) }

    mutating func feed(_ bytes: UnsafeRawBufferPointer) throws {
        var i = 0
        while i < bytes.count && !ended {
            if paxRemaining > 0 {
                let n = min(paxRemaining, bytes.count - i)
                pax!.append(contentsOf: bytes[i..<i + n])
                paxRemaining -= n
                i += n
                if paxRemaining == 0 { try finishPax() }
                continue
            }
            if skip > 0 {
                let n = Int(min(skip, UInt64(bytes.count - i)))
                skip -= UInt64(n)
                i += n
                offset += UInt64(n)
                continue
            }
            let n = min(512 - header.count, bytes.count - i)
            header.append(contentsOf: bytes[i..<i + n])
            i += n
            if header.count == 512 {
                try block()
                header.removeAll(keepingCapacity: true)
            }
        }
    }

    private func refuse(_ what: String) -> IntegrityError {
        .tarStream(reason: "\(what) at byte \(offset) of the tar stream; the format carries only files, directories, symlinks, hardlinks and their pax headers (FORMAT.md §10)")
    }

    private mutating func block() throws {
        defer { offset += 512 }
        if header.allSatisfy({ $0 == 0 }) {
            guard !afterPax else { throw refuse("a pax header followed by the end-of-archive marker") }
            zeroBlocks += 1
            if zeroBlocks == 2 { ended = true }
            return
        }
        guard zeroBlocks == 0 else { throw refuse("an entry after a single zero block") }
        let type = header[156]
        let size = try octalSize()
        let padded = (size + 511) / 512 * 512
        switch type {
        case UInt8(ascii: "x"):
            guard !afterPax else { throw refuse("two pax headers in a row") }
            guard size <= UInt64(Self.maxPaxBytes) else { throw refuse("a pax header of \(size) bytes") }
            afterPax = true
            pax = []
            paxRemaining = Int(size)
            // The padding after the pax data is skipped once the data is collected.
            skip = padded - size
            if size == 0 { try finishPax() }
        case UInt8(ascii: "0"), 0, UInt8(ascii: "1"), UInt8(ascii: "2"), UInt8(ascii: "5"):
            let dataSize = paxSize ?? size
            paxSize = nil
            afterPax = false
            // Hardlinks, symlinks and directories carry no data (a size there is refused by the manifest check).
            skip = type == UInt8(ascii: "0") || type == 0 ? (dataSize + 511) / 512 * 512 : 0
        case UInt8(ascii: "3"), UInt8(ascii: "4"), UInt8(ascii: "6"):
            // Devices and FIFOs: libarchive reports them as what they are, and the entry check refuses
            // each with its own reason (UnsafeReason.deviceNode, .fifo).
            paxSize = nil
            afterPax = false
            skip = 0
        case UInt8(ascii: "g"): throw refuse("a global pax header")
        case UInt8(ascii: "L"), UInt8(ascii: "K"): throw refuse("a GNU long-name header")
        default: throw refuse("an entry of type '\(String(UnicodeScalar(type)))'")
        }
    }

    /// The ustar size field: octal digits, or GNU base-256 (first byte 0x80, then a big-endian number),
    /// which libarchive writes for sizes of 8 GiB and more beside the pax `size` record.
    private func octalSize() throws -> UInt64 {
        if header[124] == 0x80 {
            guard header[125..<128].allSatisfy({ $0 == 0 }) else { throw refuse("a size beyond 2^64 bytes") }
            return header[128..<136].reduce(0) { $0 << 8 | UInt64($1) }
        }
        var value: UInt64 = 0
        var digits = 0
        for b in header[124..<136] {
            if b == 0 || b == 0x20 { if digits > 0 { break } else { continue } }
            guard (0x30...0x37).contains(b), digits < 12 else { throw refuse("a size field that is not octal") }
            value = value * 8 + UInt64(b - 0x30)
            digits += 1
        }
        return value
    }

    /// Reads the pax records for a `size` that overrides the next header's.
    private mutating func finishPax() throws {
        guard let data = pax else { return }
        pax = nil
        offset += UInt64(data.count)
        var i = 0
        while i < data.count {
            guard let space = data[i...].firstIndex(of: 0x20), let length = Int(String(decoding: data[i..<space], as: UTF8.self)),
                  length > space - i, i + length <= data.count, data[i + length - 1] == 0x0A else {
                throw refuse("a malformed pax record")
            }
            let record = data[(space + 1)..<(i + length - 1)]
            if record.starts(with: Array("size=".utf8)) {
                guard let size = UInt64(String(decoding: record.dropFirst(5), as: UTF8.self)) else { throw refuse("a pax size that is not a number") }
                paxSize = size
            }
            i += length
        }
    }
}
