import ColdArchive

/// The index of a parity sidecar (`NAME.car.parity`, docs/FORMAT.md §21): what the parity protects,
/// its geometry, a BLAKE2b-128 hash of every slice of the archive and of the parity, and an Ed25519
/// signature. The sidecar holds it twice, before and after the parity data.
///
/// Geometry: the archive file is cut into `columnCount` columns of `columnLength` bytes (the last one
/// shorter, read as zero-padded), each of `slicesPerColumn` slices of `sliceSize` bytes. Column i is in
/// stripe `i mod stripeCount`, at position `i div stripeCount`; each stripe of k columns has
/// `parityCount` parity columns of `columnLength` bytes, Reed–Solomon over GF(2^8) (`ReedSolomon`).
/// Group g of a stripe is slice g of each of its columns and of its parity columns: a group is
/// recovered when at most `parityCount` of its slices are damaged.
public struct ParityIndex: Sendable, Equatable {
    static let magic = Array("CAPARIT1".utf8)
    static let tailMagic = Array("CAPARTL1".utf8)
    static let version: UInt16 = 1
    static let fixedSize = 112
    static let hashSize = 16
    static let signatureSize = 64
    static let tailSize = 16
    static let signatureContext = Array("coldarchive/v1/parity-signature".utf8)
    static let minSliceSize = 4096
    static let maxSliceSize = 1 << 20
    static let maxColumnLength: UInt64 = 1 << 30

    /// `archive_digest` (FORMAT.md §9) of the archive the parity was made for.
    public var archiveDigest: [UInt8]
    /// Bytes of the archive file the parity covers (all of it).
    public var archiveSize: UInt64
    public var sliceSize: Int
    public var parityCount: Int
    public var columnLength: UInt64
    public var columnCount: Int
    public var stripeCount: Int
    /// The Ed25519 public key that signed the index.
    public var signer: [UInt8]
    /// BLAKE2b-128 of each slice of the archive file, `dataSliceCount` × 16 bytes.
    var dataHashes: [UInt8]
    /// BLAKE2b-128 of each parity slice, stripe by stripe, parity column by column, slice by slice.
    var parityHashes: [UInt8]
    var signature: [UInt8]

    public var slicesPerColumn: Int { Int(columnLength / UInt64(sliceSize)) }
    public var dataSliceCount: Int { Int((archiveSize + UInt64(sliceSize) - 1) / UInt64(sliceSize)) }
    public var paritySliceCount: Int { stripeCount * parityCount * slicesPerColumn }
    public var indexLength: Int { Self.fixedSize + Self.hashSize * (dataSliceCount + paritySliceCount) + Self.signatureSize }
    public var parityBytes: UInt64 { UInt64(paritySliceCount) * UInt64(sliceSize) }
    /// The sidecar's length: the index, the parity data, the index again, the tail.
    public var sidecarSize: UInt64 { UInt64(2 * indexLength) + parityBytes + UInt64(Self.tailSize) }

    /// Columns in stripe `t`: those with index ≡ t (mod stripeCount).
    public func columns(inStripe t: Int) -> Int { (columnCount - t + stripeCount - 1) / stripeCount }
    /// The largest stripe's column count (stripe 0's).
    public var largestStripe: Int { columns(inStripe: 0) }
    /// Where parity slice g of parity column r of stripe t lies in the sidecar.
    func parityOffset(stripe t: Int, row r: Int, slice g: Int) -> UInt64 {
        UInt64(indexLength) + (UInt64((t * parityCount + r) * slicesPerColumn + g)) * UInt64(sliceSize)
    }
    func dataHash(_ slice: Int) -> ArraySlice<UInt8> { dataHashes[(slice * Self.hashSize)..<((slice + 1) * Self.hashSize)] }
    func parityHash(stripe t: Int, row r: Int, slice g: Int) -> ArraySlice<UInt8> {
        let i = (t * parityCount + r) * slicesPerColumn + g
        return parityHashes[(i * Self.hashSize)..<((i + 1) * Self.hashSize)]
    }

    /// Checks every rule of FORMAT.md §21 on the fixed fields, before anything is allocated from them.
    func checkGeometry() throws {
        func bad(_ what: String) -> ParityError { .malformed(what) }
        guard sliceSize >= Self.minSliceSize, sliceSize <= Self.maxSliceSize, sliceSize & (sliceSize - 1) == 0 else {
            throw bad("slice_size \(sliceSize) is not a power of two from 4096 to 1048576")
        }
        guard columnLength >= UInt64(sliceSize), columnLength <= Self.maxColumnLength, columnLength % UInt64(sliceSize) == 0 else {
            throw bad("column_length \(columnLength) is not a multiple of slice_size up to 2^30")
        }
        guard archiveSize >= 1, archiveSize <= 1 << 52 else { throw bad("archive_size \(archiveSize) is out of range") }
        guard UInt64(columnCount) == (archiveSize + columnLength - 1) / columnLength else {
            throw bad("column_count \(columnCount) is not ⌈archive_size / column_length⌉")
        }
        guard stripeCount >= 1, stripeCount <= columnCount else { throw bad("stripe_count \(stripeCount) is not from 1 to column_count") }
        guard parityCount >= 1, largestStripe + parityCount <= ReedSolomon.maxRows else {
            throw bad("a stripe of \(largestStripe) columns with \(parityCount) parity columns exceeds 255 rows")
        }
    }

    /// The signed part: everything before the signature.
    func encodedUnsigned() -> [UInt8] {
        var w = [UInt8]()
        w.reserveCapacity(indexLength)
        w += Self.magic
        w += le(UInt64(Self.version), 2) + le(0, 2) + le(0, 4)
        w += archiveDigest
        w += le(archiveSize, 8)
        w += le(UInt64(sliceSize), 4) + le(UInt64(parityCount), 4)
        w += le(columnLength, 8)
        w += le(UInt64(columnCount), 4) + le(UInt64(stripeCount), 4)
        w += signer
        w += dataHashes
        w += parityHashes
        return w
    }

    func signedMessage(_ unsigned: [UInt8]) -> [UInt8] {
        Self.signatureContext + Sodium.blake2b(unsigned, outputBytes: 32)
    }

    func encoded() -> [UInt8] { encodedUnsigned() + signature }

    func tail() -> [UInt8] { Self.tailMagic + le(UInt64(indexLength), 8) }

    /// Parses an index from `bytes` (exactly one index), checking its geometry and that the hash
    /// lists have the lengths it implies; the signature is checked by `checkSignature`.
    static func decode(_ bytes: [UInt8]) throws -> ParityIndex {
        guard bytes.count >= fixedSize + signatureSize else { throw ParityError.malformed("the index is only \(bytes.count) bytes long") }
        var index = try geometry(of: Array(bytes[0..<fixedSize]))
        guard bytes.count == index.indexLength else {
            throw ParityError.malformed("the index is \(bytes.count) bytes long, its geometry says \(index.indexLength)")
        }
        let dataEnd = fixedSize + hashSize * index.dataSliceCount
        let parityEnd = dataEnd + hashSize * index.paritySliceCount
        index.dataHashes = Array(bytes[fixedSize..<dataEnd])
        index.parityHashes = Array(bytes[dataEnd..<parityEnd])
        index.signature = Array(bytes[parityEnd...])
        return index
    }

    /// Checks the signature and that its key is one of `trusted`; returns the signer.
    func checkSignature(trusting trusted: [SigningPublicKey]) throws -> SigningPublicKey {
        guard let key = trusted.first(where: { $0.bytes == signer }) else {
            throw ParityError.untrustedSigner(fingerprint: Sodium.blake2b(signer, outputBytes: 16).hex)
        }
        guard Sodium.verify(signature: signature, message: signedMessage(encodedUnsigned()), publicKey: signer) else {
            throw ParityError.badSignature
        }
        return key
    }

    /// Reads the index of the sidecar `file`: the first copy, or the second (found by the tail) when
    /// the first is damaged. Both must parse; the one whose signature verifies is taken.
    static func read(from file: OpenFile, trusting trusted: [SigningPublicKey]) throws -> ParityIndex {
        let size = try file.size()
        guard size >= UInt64(fixedSize) else { throw ParityError.malformed("the file is only \(size) bytes long") }
        var problems: [Error] = []
        func attempt(at offset: UInt64, length: Int) -> ParityIndex? {
            do {
                guard offset + UInt64(length) <= size else { throw ParityError.malformed("the index runs past the end of the file") }
                let index = try decode(try file.readExactly(length, at: offset, what: "parity index"))
                guard index.sidecarSize == size else {
                    throw ParityError.malformed("the file is \(size) bytes long, its index says \(index.sidecarSize)")
                }
                _ = try index.checkSignature(trusting: trusted)
                return index
            } catch {
                problems.append(error)
                return nil
            }
        }
        // The first copy: its length follows from its fixed fields.
        let head = try file.readExactly(fixedSize, at: 0, what: "parity index")
        do {
            if let index = attempt(at: 0, length: try geometry(of: head).indexLength) { return index }
        } catch {
            problems.append(error)
        }
        // The second copy, found from the tail.
        if size >= UInt64(tailSize) {
            let tail = try file.readExactly(tailSize, at: size - UInt64(tailSize), what: "parity tail")
            let length = readLE(tail, 8, 8)
            if Array(tail[0..<8]) == tailMagic, length <= size, length >= UInt64(fixedSize + signatureSize),
               let index = attempt(at: size - UInt64(tailSize) - length, length: Int(length)) {
                return index
            }
        }
        for problem in problems {
            switch problem as? ParityError {
            case .untrustedSigner?, .unsupportedVersion?: throw problem
            default: continue
            }
        }
        if problems.count == 1 { throw problems[0] }
        throw ParityError.bothIndexesDamaged(problems.map { "\($0)" })
    }

    /// The fixed fields alone (to learn the index length), geometry checked; the hash lists and the
    /// signature left empty.
    private static func geometry(of head: [UInt8]) throws -> ParityIndex {
        guard Array(head[0..<8]) == magic else { throw ParityError.notParity }
        let version = UInt16(readLE(head, 8, 2))
        guard version == Self.version else { throw ParityError.unsupportedVersion(Int(version)) }
        guard readLE(head, 10, 2) == 0, readLE(head, 12, 4) == 0 else { throw ParityError.malformed("the flags or reserved bytes are not zero") }
        var index = ParityIndex(archiveDigest: Array(head[16..<48]), archiveSize: readLE(head, 48, 8),
                                sliceSize: Int(readLE(head, 56, 4)), parityCount: Int(readLE(head, 60, 4)),
                                columnLength: readLE(head, 64, 8), columnCount: Int(readLE(head, 72, 4)),
                                stripeCount: Int(readLE(head, 76, 4)), signer: Array(head[80..<112]),
                                dataHashes: [], parityHashes: [], signature: [])
        try index.checkGeometry()
        return index
    }
}

/// What went wrong with a parity sidecar, or with a repair from it.
public enum ParityError: ColdArchiveError, Equatable {
    case notParity
    case unsupportedVersion(Int)
    case malformed(String)
    case badSignature
    case untrustedSigner(fingerprint: String)
    case bothIndexesDamaged([String])
    case otherArchive(expected: String, found: String)
    case staleParity(String)
    case beyondBudget(String)

    public var kind: FailureKind {
        switch self {
        case .otherArchive, .staleParity: return .usage
        default: return .integrity
        }
    }

    public var description: String {
        switch self {
        case .notParity:
            return "not a coldarchive parity file: it does not start with the parity magic bytes"
        case .unsupportedVersion(let v):
            return "parity file version \(v) is not supported by this coldarchive (it reads version 1); use a newer coldarchive or docs/FORMAT.md §21"
        case .malformed(let what):
            return "parity file is damaged: \(what)"
        case .badSignature:
            return "parity file signature is invalid: its index was altered or forged"
        case .untrustedSigner(let fingerprint):
            return "parity file is signed by key \(fingerprint), which is not a trusted key; give the site's signing public key with --trust"
        case .bothIndexesDamaged(let problems):
            return "parity file is damaged: neither copy of its index is usable (\(problems.joined(separator: "; ")))"
        case .otherArchive(let expected, let found):
            return "the parity file was made for archive digest \(expected.prefix(16))…, not for this archive (\(found.prefix(16))…)"
        case .staleParity(let why):
            return "the parity file does not fit this file any more: \(why)"
        case .beyondBudget(let what):
            return "the damage is beyond what the parity can recover: \(what)"
        }
    }
}

func le(_ value: UInt64, _ bytes: Int) -> [UInt8] { (0..<bytes).map { UInt8(truncatingIfNeeded: value >> (8 * UInt64($0))) } }

func readLE(_ bytes: [UInt8], _ offset: Int, _ count: Int) -> UInt64 {
    var v: UInt64 = 0
    for i in (0..<count).reversed() { v = v << 8 | UInt64(bytes[offset + i]) }
    return v
}
