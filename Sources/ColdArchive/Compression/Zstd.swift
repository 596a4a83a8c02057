internal import CZstd

/// A zstd failure, with the library's own message.
struct ZstdError: Error, CustomStringConvertible {
    let message: String
    var description: String { "zstd: \(message)" }

    /// Turns a zstd return code into a size, or throws with `ZSTD_getErrorName`.
    static func check(_ code: Int) throws -> Int {
        if ZSTD_isError(code) != 0 { throw ZstdError(message: String(cString: ZSTD_getErrorName(code))) }
        return code
    }
}

/// Compresses one chunk's worth of tar bytes into one independent zstd frame (`ZSTD_compress2`),
/// reusing its compression context from chunk to chunk. One encoder per worker thread.
final class ZstdFrameEncoder {
    private let context: OpaquePointer

    init(level: Int32) throws {
        guard let cctx = ZSTD_createCCtx() else { throw ZstdError(message: "out of memory creating a compression context") }
        context = cctx
        _ = try ZstdError.check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, level))
        _ = try ZstdError.check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1))
        _ = try ZstdError.check(ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 0))
    }

    deinit { ZSTD_freeCCtx(context) }

    /// `ZSTD_compressBound`: the most a frame of `size` input bytes can take.
    static func bound(_ size: Int) -> Int { ZSTD_compressBound(size) }

    static var levelRange: ClosedRange<Int32> { ZSTD_minCLevel()...ZSTD_maxCLevel() }

    /// Compresses `input` into `output` as one frame with its content size; returns the frame length.
    func compress(_ input: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer) throws -> Int {
        try ZstdError.check(ZSTD_compress2(context, output.baseAddress, output.count, input.baseAddress, input.count))
    }
}

/// Decompresses one chunk's zstd frame, refusing anything but a single frame whose declared content
/// size is exactly the size the signed trailer records; memory never exceeds that size.
final class ZstdFrameDecoder {
    private let context: OpaquePointer
    /// Largest window accepted: frames written by coldarchive never need more than 2^25 bytes.
    static let windowLogMax: Int32 = 25

    init() throws {
        guard let dctx = ZSTD_createDCtx() else { throw ZstdError(message: "out of memory creating a decompression context") }
        context = dctx
        _ = try ZstdError.check(ZSTD_DCtx_setParameter(dctx, ZSTD_d_windowLogMax, Self.windowLogMax))
    }

    deinit { ZSTD_freeDCtx(context) }

    /// The window a frame declares (RFC 8878 §3.1.1.1.2), or nil for a single-segment frame, whose
    /// window is its content size.
    static func windowSize(_ frame: UnsafeRawBufferPointer) -> UInt64? {
        guard frame.count >= 6, frame[4] & 0x20 == 0 else { return nil }
        let descriptor = frame[5]
        let windowLog = 10 + UInt64(descriptor >> 3)
        let base = UInt64(1) << windowLog
        return base + (base / 8) * UInt64(descriptor & 7)
    }

    func decompress(_ frame: UnsafeRawBufferPointer, into output: UnsafeMutableRawBufferPointer, expectedSize: Int) throws -> Int {
        guard expectedSize <= output.count else { throw ZstdError(message: "declared size \(expectedSize) exceeds the buffer") }
        let declared = ZSTD_getFrameContentSize(frame.baseAddress, frame.count)
        guard declared == UInt64(expectedSize) else {
            throw ZstdError(message: "frame declares \(declared > UInt64(Int64.max) ? "no valid" : String(declared)) content bytes, the trailer records \(expectedSize)")
        }
        // Single-shot decompression into a buffer of exactly the signed size needs no window buffer,
        // but a frame asking for more than coldarchive ever writes is refused all the same.
        if let window = Self.windowSize(frame), window > UInt64(1) << Self.windowLogMax {
            throw ZstdError(message: "frame asks for a \(window >> 20) MiB window, more than the \(1 << (Self.windowLogMax - 20)) MiB allowed")
        }
        let frameLength = try ZstdError.check(ZSTD_findFrameCompressedSize(frame.baseAddress, frame.count))
        guard frameLength == frame.count else { throw ZstdError(message: "chunk holds more than one frame") }
        let n = try ZstdError.check(ZSTD_decompressDCtx(context, output.baseAddress, expectedSize, frame.baseAddress, frame.count))
        guard n == expectedSize else { throw ZstdError(message: "frame decompressed to \(n) bytes, expected \(expectedSize)") }
        return n
    }
}
