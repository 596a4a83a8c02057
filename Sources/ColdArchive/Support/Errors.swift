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
    case manifestMismatch(path: String, reason: String)
    case unsafeEntry(path: String, reason: String)
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
            return "archive is signed by key \(fingerprint), not by the trusted key \(trusted)"
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

/// A file-system call failed.
public struct SystemError: ColdArchiveError, Equatable {
    public let operation: String
    public let path: String
    public let errno: Int32

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
