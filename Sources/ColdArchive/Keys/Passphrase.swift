import Foundation

/// A passphrase that protects secret key files, held in memory that is zeroed after use.
public final class Passphrase: Sendable {
    let secret: SecretBytes

    /// Takes the bytes of a passphrase; an empty passphrase is refused.
    public init(bytes: inout [UInt8]) throws {
        defer { bytes.withUnsafeMutableBytes { Sodium.memzero($0) } }
        guard !bytes.isEmpty else { throw KeyError.emptyPassphrase }
        secret = bytes.withUnsafeBytes { SecretBytes(copying: $0) }
    }

    /// Passphrases shorter than this get a warning where they are chosen: one passphrase guards every
    /// archive of a decade (NIST SP 800-63B asks at least 8 characters of any user-chosen secret; a
    /// custodian's should be a long phrase).
    public static let recommendedMinimumBytes = 12

    /// Its length in bytes (UTF-8), to warn about short ones; the bytes themselves stay inside.
    public var length: Int { secret.count }

    /// The first line of a file (a trailing newline is not part of the passphrase). A file that others
    /// can read or write is refused, as ssh refuses such a private key: the passphrase is a secret.
    public static func fromFile(_ path: String) throws -> Passphrase {
        var st = stat()
        if stat(path, &st) == 0 && UInt32(st.st_mode) & 0o077 != 0 {
            throw KeyError.insecurePassphraseFile(path: path, mode: UInt32(st.st_mode) & 0o777)
        }
        var bytes = try FileSystem.readSmallFile(path, limit: 4096)
        if let newline = bytes.firstIndex(of: 0x0A) {
            var rest = Array(bytes[newline...])
            rest.withUnsafeMutableBytes { Sodium.memzero($0) }
            bytes.removeSubrange(newline...)
        }
        if bytes.last == 0x0D { bytes.removeLast() }
        return try Passphrase(bytes: &bytes)
    }

    /// `$COLDARCHIVE_PASSPHRASE`, if set and not empty.
    public static func fromEnvironment() throws -> Passphrase? {
        guard let value = ProcessInfo.processInfo.environment["COLDARCHIVE_PASSPHRASE"], !value.isEmpty else { return nil }
        var bytes = Array(value.utf8)
        return try Passphrase(bytes: &bytes)
    }
}

/// Where a keyring gets the passphrase when it first needs one: asked once, then remembered for the
/// life of the keyring object.
public final class PassphraseSource {
    private let obtain: () throws -> Passphrase?
    private var cached: Passphrase?

    /// `obtain` returns nil when no passphrase is available (then protected keys cannot be opened).
    public init(_ obtain: @escaping () throws -> Passphrase?) {
        self.obtain = obtain
    }

    public static var none: PassphraseSource { PassphraseSource { nil } }

    public static func fixed(_ passphrase: Passphrase) -> PassphraseSource { PassphraseSource { passphrase } }

    func passphrase() throws -> Passphrase? {
        if let cached { return cached }
        cached = try obtain()
        return cached
    }
}
