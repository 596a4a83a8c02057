internal import CSodium

/// The only place that calls libsodium. Every function checks sizes at the boundary and
/// turns libsodium's status codes into `CryptoError`.
package enum Sodium {
    static let aeadKeyBytes = 32
    static let aeadNonceBytes = 24
    static let aeadTagBytes = 16
    static let boxPublicKeyBytes = 32
    static let boxSecretKeyBytes = 32
    static let sealedBoxOverhead = 48
    static let signPublicKeyBytes = 32
    static let signSecretKeyBytes = 64
    static let signatureBytes = 64

    /// `sodium_init`: safe to call many times; the first call picks the fastest implementations.
    static let initialized: Bool = {
        sodium_init() >= 0
    }()

    static func ensureInitialized() {
        precondition(initialized, "libsodium could not be initialised")
    }

    /// `randombytes_buf`.
    package static func randomBytes(_ count: Int) -> [UInt8] {
        ensureInitialized()
        var out = [UInt8](repeating: 0, count: count)
        out.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
        return out
    }

    static func fillRandom(_ secret: SecretBytes) {
        ensureInitialized()
        secret.withUnsafeMutableBytes { randombytes_buf($0.baseAddress!, $0.count) }
    }

    /// `sodium_memzero`: zeroing the compiler may not remove.
    static func memzero(_ buffer: UnsafeMutableRawBufferPointer) {
        if let base = buffer.baseAddress { sodium_memzero(base, buffer.count) }
    }

    /// `sodium_memcmp`: constant-time equality of two equal-length byte strings.
    static func constantTimeEqual(_ a: [UInt8], _ b: [UInt8]) -> Bool {
        guard a.count == b.count else { return false }
        return a.withUnsafeBytes { pa in
            b.withUnsafeBytes { pb in sodium_memcmp(pa.baseAddress!, pb.baseAddress!, pa.count) == 0 }
        }
    }

    // MARK: SHA-256

    /// `crypto_hash_sha256` (FIPS 180-4) in one call: for RFC 3161 message imprints, which time-stamping
    /// authorities take in SHA-2, not BLAKE2b, and for S3's payload hashes and checksums.
    package static func sha256(_ data: [UInt8]) -> [UInt8] {
        data.withUnsafeBytes { sha256($0) }
    }

    package static func sha256(_ data: UnsafeRawBufferPointer) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: Int(crypto_hash_sha256_BYTES))
        _ = out.withUnsafeMutableBufferPointer { o in
            crypto_hash_sha256(o.baseAddress!, data.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(data.count))
        }
        return out
    }

    /// HMAC-SHA-256 (RFC 2104) with a key of any length (`crypto_auth_hmacsha256_init` hashes a long
    /// one): what AWS Signature Version 4 derives its keys and signatures with.
    package static func hmacSHA256(key: [UInt8], _ message: [UInt8]) -> [UInt8] {
        var state = crypto_auth_hmacsha256_state()
        var out = [UInt8](repeating: 0, count: Int(crypto_auth_hmacsha256_BYTES))
        // An empty array may have no base address: pass a byte that is not read.
        _ = (key.isEmpty ? [0] : key).withUnsafeBufferPointer { crypto_auth_hmacsha256_init(&state, $0.baseAddress!, key.count) }
        _ = (message.isEmpty ? [0] : message).withUnsafeBufferPointer { crypto_auth_hmacsha256_update(&state, $0.baseAddress!, UInt64(message.count)) }
        _ = out.withUnsafeMutableBufferPointer { crypto_auth_hmacsha256_final(&state, $0.baseAddress!) }
        return out
    }

    // MARK: BLAKE2b

    /// `crypto_generichash` (BLAKE2b) in one call, optionally keyed.
    package static func blake2b(_ data: [UInt8], outputBytes: Int = 32, key: SecretBytes? = nil) -> [UInt8] {
        let hasher = Blake2bState(outputBytes: outputBytes, key: key)
        hasher.update(data)
        return hasher.finalize()
    }

    /// Incremental BLAKE2b (`crypto_generichash_init/update/final`). The state is allocated with the
    /// 64-byte alignment libsodium requires.
    package final class Blake2bState {
        private let state: UnsafeMutableRawPointer
        private let outputBytes: Int

        package init(outputBytes: Int, key: SecretBytes? = nil) {
            precondition(outputBytes >= 16 && outputBytes <= 64)
            Sodium.ensureInitialized()
            self.outputBytes = outputBytes
            state = UnsafeMutableRawPointer.allocate(byteCount: crypto_generichash_statebytes(), alignment: 64)
            let typed = OpaquePointer(state)
            let rc: Int32
            if let key {
                rc = key.withUnsafeBytes {
                    crypto_generichash_init(typed, $0.baseAddress?.assumingMemoryBound(to: UInt8.self), $0.count, outputBytes)
                }
            } else {
                rc = crypto_generichash_init(typed, nil, 0, outputBytes)
            }
            precondition(rc == 0, "crypto_generichash_init rejected its parameters")
        }

        deinit {
            sodium_memzero(state, crypto_generichash_statebytes())
            state.deallocate()
        }

        /// Starts over, unkeyed, for the next message (saves an allocation per file).
        package func reset() {
            precondition(crypto_generichash_init(OpaquePointer(state), nil, 0, outputBytes) == 0)
        }

        package func update(_ bytes: UnsafeRawBufferPointer) {
            guard bytes.count > 0, let base = bytes.baseAddress else { return }
            _ = crypto_generichash_update(OpaquePointer(state),
                                          base.assumingMemoryBound(to: UInt8.self), UInt64(bytes.count))
        }

        package func update(_ bytes: [UInt8]) {
            bytes.withUnsafeBytes { update($0) }
        }

        /// Finalizes into secret memory, for derived keys.
        func finalizeSecret() -> SecretBytes {
            let out = SecretBytes(count: outputBytes)
            _ = out.withUnsafeMutableBytes {
                crypto_generichash_final(OpaquePointer(state),
                                         $0.baseAddress!.assumingMemoryBound(to: UInt8.self), outputBytes)
            }
            return out
        }

        package func finalize() -> [UInt8] {
            var out = [UInt8](repeating: 0, count: outputBytes)
            _ = out.withUnsafeMutableBufferPointer {
                crypto_generichash_final(OpaquePointer(state), $0.baseAddress!, outputBytes)
            }
            return out
        }
    }

    // MARK: AEAD (XChaCha20-Poly1305-IETF)

    /// `crypto_aead_xchacha20poly1305_ietf_encrypt`: seals `plaintext` into `output`, which must hold
    /// `plaintext.count + 16` bytes. Returns the ciphertext length.
    static func aeadSeal(plaintext: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer,
                         additionalData: [UInt8], nonce: [UInt8], key: SecretBytes) -> Int {
        precondition(nonce.count == aeadNonceBytes && key.count == aeadKeyBytes)
        precondition(output.count >= plaintext.count + aeadTagBytes)
        var outLength: UInt64 = 0
        let rc = key.withUnsafeBytes { k in
            additionalData.withUnsafeBufferPointer { ad in
                nonce.withUnsafeBufferPointer { n in
                    crypto_aead_xchacha20poly1305_ietf_encrypt(
                        output.baseAddress!.assumingMemoryBound(to: UInt8.self), &outLength,
                        plaintext.baseAddress?.assumingMemoryBound(to: UInt8.self), UInt64(plaintext.count),
                        ad.baseAddress!, UInt64(ad.count), nil, n.baseAddress!,
                        k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        precondition(rc == 0, "crypto_aead_xchacha20poly1305_ietf_encrypt failed")
        return Int(outLength)
    }

    /// `crypto_aead_xchacha20poly1305_ietf_decrypt`: returns the plaintext length, or nil when the
    /// ciphertext, nonce, associated data or key do not authenticate.
    static func aeadOpen(ciphertext: UnsafeRawBufferPointer, output: UnsafeMutableRawBufferPointer,
                         additionalData: [UInt8], nonce: [UInt8], key: SecretBytes) -> Int? {
        precondition(nonce.count == aeadNonceBytes && key.count == aeadKeyBytes)
        guard ciphertext.count >= aeadTagBytes, output.count >= ciphertext.count - aeadTagBytes,
              let cbase = ciphertext.baseAddress else { return nil }
        var outLength: UInt64 = 0
        let rc = key.withUnsafeBytes { k in
            additionalData.withUnsafeBufferPointer { ad in
                nonce.withUnsafeBufferPointer { n in
                    crypto_aead_xchacha20poly1305_ietf_decrypt(
                        output.baseAddress?.assumingMemoryBound(to: UInt8.self), &outLength, nil,
                        cbase.assumingMemoryBound(to: UInt8.self), UInt64(ciphertext.count),
                        ad.baseAddress!, UInt64(ad.count), n.baseAddress!,
                        k.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return rc == 0 ? Int(outLength) : nil
    }

    // MARK: X25519 sealed boxes

    /// `crypto_box_keypair`.
    static func boxKeyPair() -> (publicKey: [UInt8], secretKey: SecretBytes) {
        ensureInitialized()
        var pk = [UInt8](repeating: 0, count: boxPublicKeyBytes)
        let sk = SecretBytes(count: boxSecretKeyBytes)
        sk.withUnsafeMutableBytes { s in
            _ = pk.withUnsafeMutableBufferPointer { crypto_box_keypair($0.baseAddress!, s.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        }
        return (pk, sk)
    }

    /// `crypto_scalarmult_base`: the X25519 public key of a secret key.
    static func boxPublicKey(of secretKey: SecretBytes) -> [UInt8]? {
        guard secretKey.count == boxSecretKeyBytes else { return nil }
        var pk = [UInt8](repeating: 0, count: boxPublicKeyBytes)
        let rc = secretKey.withUnsafeBytes { s in
            pk.withUnsafeMutableBufferPointer { crypto_scalarmult_base($0.baseAddress!, s.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        }
        return rc == 0 ? pk : nil
    }

    /// `crypto_box_seal`: anonymous encryption of a short secret to an X25519 public key.
    static func sealedBox(_ message: SecretBytes, to publicKey: [UInt8]) -> [UInt8] {
        precondition(publicKey.count == boxPublicKeyBytes)
        ensureInitialized()
        var out = [UInt8](repeating: 0, count: message.count + sealedBoxOverhead)
        let rc = message.withUnsafeBytes { m in
            publicKey.withUnsafeBufferPointer { pk in
                out.withUnsafeMutableBufferPointer {
                    crypto_box_seal($0.baseAddress!, m.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(m.count), pk.baseAddress!)
                }
            }
        }
        precondition(rc == 0, "crypto_box_seal failed")
        return out
    }

    /// `crypto_box_seal_open`: nil when the box was not sealed to this key pair or was altered.
    static func openSealedBox(_ box: [UInt8], publicKey: [UInt8], secretKey: SecretBytes) -> SecretBytes? {
        guard box.count > sealedBoxOverhead, publicKey.count == boxPublicKeyBytes,
              secretKey.count == boxSecretKeyBytes else { return nil }
        let out = SecretBytes(count: box.count - sealedBoxOverhead)
        let rc = out.withUnsafeMutableBytes { o in
            box.withUnsafeBufferPointer { c in
                publicKey.withUnsafeBufferPointer { pk in
                    secretKey.withUnsafeBytes { sk in
                        crypto_box_seal_open(o.baseAddress!.assumingMemoryBound(to: UInt8.self), c.baseAddress!, UInt64(c.count),
                                             pk.baseAddress!, sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                    }
                }
            }
        }
        return rc == 0 ? out : nil
    }

    // MARK: Ed25519

    /// `crypto_sign_keypair`.
    static func signKeyPair() -> (publicKey: [UInt8], secretKey: SecretBytes) {
        ensureInitialized()
        var pk = [UInt8](repeating: 0, count: signPublicKeyBytes)
        let sk = SecretBytes(count: signSecretKeyBytes)
        sk.withUnsafeMutableBytes { s in
            _ = pk.withUnsafeMutableBufferPointer { crypto_sign_keypair($0.baseAddress!, s.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        }
        return (pk, sk)
    }

    /// `crypto_sign_detached`.
    static func sign(_ message: [UInt8], secretKey: SecretBytes) -> [UInt8] {
        precondition(secretKey.count == signSecretKeyBytes)
        var sig = [UInt8](repeating: 0, count: signatureBytes)
        var sigLength: UInt64 = 0
        _ = secretKey.withUnsafeBytes { sk in
            message.withUnsafeBufferPointer { m in
                sig.withUnsafeMutableBufferPointer {
                    crypto_sign_detached($0.baseAddress!, &sigLength, m.baseAddress!, UInt64(m.count), sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        return sig
    }

    /// `crypto_sign_verify_detached`.
    package static func verify(signature: [UInt8], message: [UInt8], publicKey: [UInt8]) -> Bool {
        guard signature.count == signatureBytes, publicKey.count == signPublicKeyBytes else { return false }
        ensureInitialized()
        return signature.withUnsafeBufferPointer { s in
            message.withUnsafeBufferPointer { m in
                publicKey.withUnsafeBufferPointer { pk in
                    crypto_sign_verify_detached(s.baseAddress!, m.baseAddress!, UInt64(m.count), pk.baseAddress!) == 0
                }
            }
        }
    }

    /// The public key of an Ed25519 secret key, derived again from its seed
    /// (`crypto_sign_seed_keypair`), and nil unless it equals the public half stored in the secret key:
    /// a secret whose two halves disagree would sign archives that never verify.
    static func signPublicKey(of secretKey: SecretBytes) -> [UInt8]? {
        guard secretKey.count == signSecretKeyBytes else { return nil }
        var pk = [UInt8](repeating: 0, count: signPublicKeyBytes)
        let scratch = SecretBytes(count: signSecretKeyBytes)
        let rc = secretKey.withUnsafeBytes { sk in
            scratch.withUnsafeMutableBytes { out in
                pk.withUnsafeMutableBufferPointer {
                    crypto_sign_seed_keypair($0.baseAddress!, out.baseAddress!.assumingMemoryBound(to: UInt8.self),
                                             sk.baseAddress!.assumingMemoryBound(to: UInt8.self))
                }
            }
        }
        let stored = secretKey.withUnsafeBytes { Array($0[32..<64]) }
        return rc == 0 && stored == pk ? pk : nil
    }

    // MARK: Argon2id

    static let pwhashSaltBytes = 16
    /// libsodium's MODERATE limits (3 passes, 256 MiB): the least a key file may use.
    static let pwhashOpsModerate: UInt64 = 3
    static let pwhashMemModerate: UInt64 = 256 << 20
    /// libsodium's SENSITIVE limits (4 passes, 1 GiB): the most a key file may ask for, so a crafted
    /// file cannot make a reader spend unbounded memory or time.
    static let pwhashOpsSensitive: UInt64 = 4
    static let pwhashMemSensitive: UInt64 = 1 << 30

    /// `crypto_pwhash` with Argon2id 1.3: a 32-byte key from a passphrase; nil if libsodium refuses
    /// (out of memory, limits out of range).
    static func argon2id(passphrase: SecretBytes, salt: [UInt8], opsLimit: UInt64, memLimit: UInt64) -> SecretBytes? {
        guard salt.count == pwhashSaltBytes else { return nil }
        ensureInitialized()
        let key = SecretBytes(count: 32)
        let rc = key.withUnsafeMutableBytes { k in
            passphrase.withUnsafeBytes { p in
                salt.withUnsafeBufferPointer { s in
                    crypto_pwhash(k.baseAddress!.assumingMemoryBound(to: UInt8.self), UInt64(k.count),
                                  p.baseAddress!.assumingMemoryBound(to: CChar.self), UInt64(p.count), s.baseAddress!,
                                  opsLimit, Int(memLimit), crypto_pwhash_ALG_ARGON2ID13)
                }
            }
        }
        return rc == 0 ? key : nil
    }
}
