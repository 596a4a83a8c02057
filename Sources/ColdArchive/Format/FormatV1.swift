/// The constants of archive format version 1, named as in docs/FORMAT.md.
public enum FormatV1 {
    /// `magic`: "\x89CAR\r\n\x1a\n" — a non-ASCII first byte and line-ending bytes, so that text-mode
    /// transfers that would corrupt the file are detected at once.
    static let magic: [UInt8] = [0x89, 0x43, 0x41, 0x52, 0x0D, 0x0A, 0x1A, 0x0A]
    /// Version 1: what coldarchive 0.1 wrote; still read.
    static let formatVersion: UInt16 = 1
    /// Version 2 (FORMAT.md §17): what `create` writes now.
    static let version2: UInt16 = 2
    /// The versions this reader implements.
    static let readableVersions: ClosedRange<UInt16> = 1...2
    static let preludeSize = 16
    static let maxHeaderLength: UInt32 = 1 << 20
    static let maxRecipientsLength: UInt32 = 1 << 20
    static let maxRecipientCount = 4096

    /// `suite` 1: X25519 sealed boxes, BLAKE2b, XChaCha20-Poly1305-IETF, zstd, Ed25519, pax tar.
    static let suite: UInt16 = 1

    public static let defaultChunkRawSize: UInt32 = 4 << 20
    static let minChunkRawSize: UInt32 = 4 << 10
    static let maxChunkRawSize: UInt32 = 16 << 20

    static let trailerMagic: [UInt8] = Array("CATRAILR".utf8)
    static let trailerFixedSize = 96
    static let chunkRecordSize = 40
    static let signatureSize = 64
    /// A v1 archive holds at most 2^32 chunks (16 PiB at the largest chunk size).
    static let maxChunkCount: UInt64 = 1 << 32

    static let footerMagic: [UInt8] = Array("CAFOOTR1".utf8)
    public static let footerSize = 56

    static let manifestMagic: [UInt8] = Array("CAMANIF1".utf8)
    static let manifestMagicV2: [UInt8] = Array("CAMANIF2".utf8)
    static let maxDescriptionBytes = 1 << 20
    static let maxPathBytes = 4096
    static let maxLabelBytes = 4096
    static let maxSources = 1024

    /// Labels of the key schedule (`crypto_generichash` keyed with the file key).
    static let payloadKeyLabel: [UInt8] = Array("coldarchive/v1/payload-key".utf8)
    static let headerMACKeyLabel: [UInt8] = Array("coldarchive/v1/header-mac-key".utf8)
    /// Prefix of the message the site key signs: this label followed by `archive_digest`.
    static let signatureContext: [UInt8] = Array("coldarchive/v1/archive-signature".utf8)

    /// `section` values bound into each chunk's associated data.
    enum Section: UInt8, Sendable {
        case data = 0
        case manifest = 1
    }
}
