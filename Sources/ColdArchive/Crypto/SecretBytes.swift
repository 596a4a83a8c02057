/// Secret key material in memory that is zeroed (with `sodium_memzero`) when the last reference goes.
/// Its bytes are never copied into `Array`s or `String`s by this library; it is immutable once filled,
/// which is why it may be shared between the pipeline's threads.
public final class SecretBytes: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer

    /// The number of secret bytes.
    public var count: Int { storage.count }

    init(count: Int) {
        precondition(count > 0, "a secret has at least one byte")
        storage = UnsafeMutableRawBufferPointer.allocate(byteCount: count, alignment: 16)
        storage.initializeMemory(as: UInt8.self, repeating: 0)
    }

    /// Copies `bytes` into a new secret; the caller remains responsible for zeroing its own copy.
    convenience init(copying bytes: UnsafeRawBufferPointer) {
        self.init(count: bytes.count)
        storage.copyMemory(from: bytes)
    }

    /// A fresh secret of `count` random bytes.
    static func random(count: Int) -> SecretBytes {
        let secret = SecretBytes(count: count)
        Sodium.fillRandom(secret)
        return secret
    }

    deinit {
        Sodium.memzero(storage)
        storage.deallocate()
    }

    func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(storage))
    }

    func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(storage)
    }
}
