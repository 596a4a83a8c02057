internal import CIsal

/// Cauchy Reed–Solomon erasure coding over GF(2^8) through Intel ISA-L (`erasure_code.h`): the only
/// file that calls ISA-L. The field is GF(2^8) with the polynomial x^8+x^4+x^3+x^2+1 (0x11D); the
/// encoding matrix is ISA-L's `gf_gen_cauchy1_matrix`: the k×k identity over m Cauchy rows, row k+r,
/// column c holding the field inverse of (k+r) XOR c (docs/FORMAT.md §21). The code is bytewise: byte x
/// of parity row r is Σ_c A[k+r][c]·data_c[x], so any k of the k+m rows give back all k data rows.
struct ReedSolomon {
    /// Data rows (1 ≤ k) and parity rows (1 ≤ m), k + m ≤ 255.
    let k: Int
    let m: Int
    /// The (k+m)×k encoding matrix, row-major.
    private let matrix: [UInt8]
    /// ISA-L's expanded tables of the m parity rows (32·k·m bytes).
    private let parityTables: Tables

    static let maxRows = 255

    init(k: Int, m: Int) {
        precondition(k >= 1 && m >= 1 && k + m <= ReedSolomon.maxRows, "Reed–Solomon needs 1 ≤ k, 1 ≤ m, k + m ≤ 255")
        self.k = k
        self.m = m
        var a = [UInt8](repeating: 0, count: (k + m) * k)
        a.withUnsafeMutableBufferPointer { gf_gen_cauchy1_matrix($0.baseAddress, Int32(k + m), Int32(k)) }
        matrix = a
        parityTables = Tables(k: k, rows: Array(a[(k * k)...]))
    }

    /// The encoding matrix's coefficient at `row` (0 ..< k+m), `column` (0 ..< k).
    func coefficient(row: Int, column: Int) -> UInt8 { matrix[row * k + column] }

    /// ISA-L's expanded multiplication tables for some rows of coefficients, allocated once.
    fileprivate final class Tables: @unchecked Sendable {
        let pointer: UnsafeMutablePointer<UInt8>

        init(k: Int, rows: [UInt8]) {
            let count = rows.count / k
            pointer = .allocate(capacity: max(1, 32 * k * count))
            var coefficients = rows
            coefficients.withUnsafeMutableBufferPointer { ec_init_tables(Int32(k), Int32(count), $0.baseAddress, pointer) }
        }

        deinit { pointer.deallocate() }
    }

    /// Computes the m parity rows of `length` bytes from the k data rows (`data[c]` and `parity[r]`
    /// each hold at least `length` bytes).
    func encode(data: [UnsafeRawBufferPointer], parity: [UnsafeMutableRawBufferPointer], length: Int) {
        precondition(data.count == k && parity.count == m && data.allSatisfy { $0.count >= length } && parity.allSatisfy { $0.count >= length })
        Self.apply(tables: parityTables, k: k, rows: m, sources: data, outputs: parity, length: length)
    }

    /// A decoder for one pattern of lost rows: which k surviving rows it reads, and which lost data
    /// rows it rebuilds.
    struct Decoder {
        /// The k rows (0 ..< k+m) read, in this order.
        let sources: [Int]
        /// The data rows (0 ..< k) rebuilt, in this order.
        let rebuilt: [Int]
        fileprivate let tables: Tables?
    }

    /// The decoder that rebuilds the lost data rows of `lost` (rows 0 ..< k+m, parity rows included:
    /// those are only not read), or nil when more than m rows are lost.
    func decoder(lost: Set<Int>) -> Decoder? {
        guard lost.count <= m, lost.allSatisfy({ $0 >= 0 && $0 < k + m }) else { return nil }
        let sources = Array((0..<(k + m)).filter { !lost.contains($0) }.prefix(k))
        let rebuilt = lost.filter { $0 < k }.sorted()
        var chosen = [UInt8](repeating: 0, count: k * k)
        for (i, row) in sources.enumerated() {
            for c in 0..<k { chosen[i * k + c] = matrix[row * k + c] }
        }
        var inverse = [UInt8](repeating: 0, count: k * k)
        let rc = chosen.withUnsafeMutableBufferPointer { c in
            inverse.withUnsafeMutableBufferPointer { gf_invert_matrix(c.baseAddress, $0.baseAddress, Int32(k)) }
        }
        // Any k rows of a Cauchy-over-identity matrix are independent; a failure here is a bug.
        precondition(rc == 0, "ISA-L could not invert a Cauchy submatrix")
        // data_e = Σ_i inverse[e][i] · source_i
        var rows = [UInt8]()
        for e in rebuilt { rows += inverse[(e * k)..<(e * k + k)] }
        return Decoder(sources: sources, rebuilt: rebuilt, tables: rebuilt.isEmpty ? nil : Tables(k: k, rows: rows))
    }

    /// Rebuilds `decoder.rebuilt` rows (into `outputs`, in that order) from `decoder.sources` rows
    /// (`sources`, in that order), `length` bytes each.
    func decode(_ decoder: Decoder, sources: [UnsafeRawBufferPointer], outputs: [UnsafeMutableRawBufferPointer], length: Int) {
        precondition(sources.count == k && outputs.count == decoder.rebuilt.count)
        guard let tables = decoder.tables, !outputs.isEmpty else { return }
        Self.apply(tables: tables, k: k, rows: outputs.count, sources: sources, outputs: outputs, length: length)
    }

    private static func apply(tables: Tables, k: Int, rows: Int, sources: [UnsafeRawBufferPointer],
                              outputs: [UnsafeMutableRawBufferPointer], length: Int) {
        guard length > 0 else { return }
        var sourcePointers: [UnsafeMutablePointer<UInt8>?] = sources.map { UnsafeMutablePointer(mutating: $0.baseAddress!.assumingMemoryBound(to: UInt8.self)) }
        var outputPointers: [UnsafeMutablePointer<UInt8>?] = outputs.map { $0.baseAddress!.assumingMemoryBound(to: UInt8.self) }
        sourcePointers.withUnsafeMutableBufferPointer { s in
            outputPointers.withUnsafeMutableBufferPointer { o in
                ec_encode_data(Int32(length), Int32(k), Int32(rows), tables.pointer, s.baseAddress, o.baseAddress)
            }
        }
    }
}
