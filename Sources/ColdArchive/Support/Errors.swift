/// What a failure means to a caller, and the process exit code that stands for it.
public enum FailureKind: Int32, Sendable {
    /// The archive is damaged, truncated, forged, signed by an untrusted key, or holds unsafe content.
    case integrity = 1
    /// The command line was wrong.
    case usage = 2
    /// Anything else: I/O, a missing key, a target that is not empty.
    case other = 3
}

/// Every error this library throws conforms, so a caller can map it to an exit code and a message.
public protocol ColdArchiveError: Error, CustomStringConvertible, Sendable {
    var kind: FailureKind { get }
}

/// The archive did not pass a check: it is damaged, truncated, forged, or carries unsafe content.
public enum IntegrityError: ColdArchiveError, Equatable {
    case notAnArchive(reason: String)
    case unsupportedVersion(Int)
    case unsupportedSuite(Int)
    case unknownCriticalField(tag: Int)
    case malformed(what: String)
    case truncated(what: String)
    case truncatedFile(reason: String)
    case outOfRange(field: String, value: UInt64, min: UInt64, max: UInt64)
    case inconsistent(what: String)
    case checksumMismatch(what: String)
    case chunkHashMismatch(index: UInt64, offset: UInt64)
    case chunkAuthenticationFailed(index: UInt64, offset: UInt64)
    case chunkDecompressionFailed(index: UInt64, reason: String)
    case badSignature
    case untrustedSigner(fingerprint: String, trusted: String)
    case headerMACMismatch
    case manifestMismatch(path: String, reason: ManifestMismatch)
    case unsafeEntry(path: String, reason: UnsafeReason)
    case tarStream(reason: String)

    public var kind: FailureKind { .integrity }

    public var description: String {
        switch self {
        case .notAnArchive(let reason):
            return "not a coldarchive file: \(reason)"
        case .unsupportedVersion(let v):
            return "archive format version \(v) is not supported by this coldarchive (it reads version 1); use a newer coldarchive or docs/FORMAT.md"
        case .unsupportedSuite(let s):
            return "archive uses cipher suite \(s), which this coldarchive does not know; use a newer coldarchive"
        case .unknownCriticalField(let tag):
            return "archive header has critical field 0x\(String(tag, radix: 16)) that this coldarchive does not understand; use a newer coldarchive"
        case .malformed(let what):
            return "archive is damaged: \(what) is malformed"
        case .truncated(let what):
            return "archive is truncated: \(what) ends early"
        case .truncatedFile(let reason):
            return "archive is truncated: \(reason)"
        case .outOfRange(let field, let value, let min, let max):
            return "archive is damaged: \(field) is \(value), outside the allowed \(min)…\(max)"
        case .inconsistent(let what):
            return "archive is damaged: \(what)"
        case .checksumMismatch(let what):
            return "archive is damaged: the checksum of the \(what) does not match"
        case .chunkHashMismatch(let index, let offset):
            return "archive is damaged: chunk \(index) at byte \(offset) does not match its recorded hash"
        case .chunkAuthenticationFailed(let index, let offset):
            return "archive is damaged: chunk \(index) at byte \(offset) failed authentication"
        case .chunkDecompressionFailed(let index, let reason):
            return "archive is damaged: chunk \(index) does not decompress (\(reason))"
        case .badSignature:
            return "archive signature is invalid: the archive was altered or forged"
        case .untrustedSigner(let fingerprint, let trusted):
            return "archive is signed by key \(fingerprint), which is not a trusted key (\(trusted)); if the site has rotated its signing key, trust its first signing key and follow the rotations with --chain KEYRING/signing-chain (a chain is followed forward only, from the key trusted to the keys it handed over to)"
        case .headerMACMismatch:
            return "archive header failed authentication: the header or its recipient block was altered"
        case .manifestMismatch(let path, let reason):
            return "archive content does not match its manifest at '\(path)': \(reason)"
        case .unsafeEntry(let path, let reason):
            return "archive holds an unsafe entry '\(path)': \(reason); nothing was written"
        case .tarStream(let reason):
            return "archive content is not a valid tar stream: \(reason)"
        }
    }
}

/// Why an entry is refused as unsafe to restore: one case per rule of docs/SECURITY.md ("What each
/// check stops"), so a test can assert which rule refused an input, not merely that one did.
public enum UnsafeReason: Equatable, Sendable, CustomStringConvertible {
    // Path rules (FORMAT.md §9): relative, no '..', '.' or empty components, bounded lengths, no NUL.
    case emptyName
    case nameTooLong
    case absolutePath
    case nulByte
    case emptyOrDotComponent
    case dotDotComponent
    case componentTooLong
    case nameNotUTF8
    // Manifest order (checked before anything is written).
    case outOfOrderOrRepeated
    case parentNotBefore
    case hardlinkForward
    // Entry types and bits.
    case privilegeBits
    case symlinkEscapes(target: String)
    case deviceNode
    case fifo
    case socket
    case unknownType(UInt32)
    case negativeSize
    case encryptedEntry
    case reservedName(prefix: String)
    // Extraction (the last line of defence, inside the staging directory).
    case pathThroughSymlink
    case appearsTwice
    case hardlinkNotToRestoredFile
    case contentForNonFile

    public var description: String {
        switch self {
        case .emptyName: "the name is empty"
        case .nameTooLong: "the name is longer than \(FormatV1.maxPathBytes) bytes"
        case .absolutePath: "absolute paths are never restored"
        case .nulByte: "the name contains a NUL byte"
        case .emptyOrDotComponent: "the name has an empty or '.' component"
        case .dotDotComponent: "'..' components could write outside the target"
        case .componentTooLong: "a component is longer than \(PathRules.maxComponentBytes) bytes"
        case .nameNotUTF8: "its name is not valid UTF-8"
        case .outOfOrderOrRepeated: "it is out of order or appears twice"
        case .parentNotBefore: "its parent directory is not in the archive before it"
        case .hardlinkForward: "a hardlink must point at a file earlier in the archive"
        case .privilegeBits: "setuid, setgid or sticky bits are never restored"
        case .symlinkEscapes(let target): "its symlink target '\(target)' points outside the target"
        case .deviceNode: "device nodes are never restored"
        case .fifo: "FIFOs are never restored"
        case .socket: "sockets are never restored"
        case .unknownType(let type): "unknown entry type \(String(type, radix: 8))"
        case .negativeSize: "negative size"
        case .encryptedEntry: "it is encrypted; export it without a password"
        case .reservedName(let prefix): "names starting with '\(prefix)' are reserved for restore's staging directory"
        case .pathThroughSymlink: "a component of its path is a symlink or not a directory"
        case .appearsTwice: "it appears twice in the archive or replaces an entry restored before it"
        case .hardlinkNotToRestoredFile: "a hardlink may only point at a regular file restored earlier from the same archive"
        case .contentForNonFile: "content for an entry that is not a regular file"
        }
    }
}

/// How a tar entry and the manifest entry at the same position disagree (FORMAT.md §10: they must
/// agree field by field), one case per compared field.
public enum ManifestMismatch: Equatable, Sendable, CustomStringConvertible {
    case path(manifest: String)
    case kind(tar: ManifestEntry.Kind, manifest: ManifestEntry.Kind)
    case mode(tar: UInt32, manifest: UInt16)
    case modificationTime
    case size(tar: UInt64, manifest: UInt64)
    case linkTarget
    case notInManifest
    case notInTarStream
    case moreContent(manifestSize: UInt64)
    case contentSize(found: UInt64, manifest: UInt64)
    case contentHash
    case owner
    case extendedAttributes
    case acl
    case tarOffset(tar: UInt64, manifest: UInt64)
    case directoryWithoutSlash
    case sparseMap
    case hardlinkMetadata

    public var description: String {
        switch self {
        case .path(let manifest): "the manifest has '\(manifest)' at this position"
        case .kind(let tar, let manifest): "it is a \(tar.name) in the tar stream, a \(manifest.name) in the manifest"
        case .mode(let tar, let manifest): "mode \(String(tar, radix: 8)) differs from the manifest's \(String(manifest, radix: 8))"
        case .modificationTime: "its modification time differs from the manifest's"
        case .size(let tar, let manifest): "size \(tar) differs from the manifest's \(manifest)"
        case .linkTarget: "its link target differs from the manifest's"
        case .notInManifest: "the tar stream has an entry the manifest does not list"
        case .notInTarStream: "the manifest lists an entry the tar stream does not hold"
        case .moreContent(let size): "more content than the manifest's \(size) bytes"
        case .contentSize(let found, let manifest): "\(found) content bytes, the manifest says \(manifest)"
        case .contentHash: "its content does not match the manifest's BLAKE2b-256"
        case .owner: "its owner (uid, gid or names) differs from the manifest's"
        case .extendedAttributes: "its extended attributes differ from the manifest's"
        case .acl: "its ACL differs from the manifest's"
        case .tarOffset(let tar, let manifest): "it starts at byte \(tar) of the tar stream, the manifest says \(manifest)"
        case .directoryWithoutSlash: "it is a directory whose tar name does not end in '/'"
        case .sparseMap: "its sparse map differs from the manifest's"
        case .hardlinkMetadata: "a hardlink whose mode, owner, times or attributes differ from the file it links to"
        }
    }
}

/// A file-system call failed.
public struct SystemError: ColdArchiveError, Equatable {
    public let operation: String
    public let path: String
    public let errno: Int32

    package init(operation: String, path: String, errno: Int32) {
        self.operation = operation
        self.path = path
        self.errno = errno
    }

    public var kind: FailureKind { .other }

    public var description: String {
        "\(operation) '\(path)' failed: \(String(cString: strerror(errno)))"
    }
}

/// A request this library refuses before doing anything, e.g. a non-empty restore target.
public struct OperationError: ColdArchiveError, Equatable {
    public let message: String
    public let kind: FailureKind

    public init(_ message: String, kind: FailureKind = .other) {
        self.message = message
        self.kind = kind
    }

    public var description: String { message }
}

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
