import Foundation

/// Hands a walk that runs on a thread of its own to the thread that writes the tar stream, in
/// blocks: a pooled 1 MiB buffer of file content plus the list of what it holds (entries, the start
/// of a file, ranges of content), so the two threads meet once per block, not once per file.
///
/// With many small files (a CRM's tickets) the walk — `getdents`, `openat`, `fstat`, `read`,
/// `close` for each — and libarchive's header for each file were both on one thread, which was
/// then the whole create's bottleneck while the sealing workers idled; now they run side by side.
/// At most `blockCount` blocks exist, so memory stays bounded; the walking side blocks while all
/// are in use. A failure on either side stops the other.
final class WalkBlocks: WalkOutput, @unchecked Sendable {
    enum Record: ContentRecord {
        case entry(ManifestEntry)
        case beginFile(ManifestEntry)
        case data(Range<Int>)
        case endFile(ManifestEntry.Flags, UInt64?, [UInt8]?)

        var dataRange: Range<Int>? {
            if case .data(let range) = self { return range }
            return nil
        }
    }

    final class Block {
        let buffer: ByteBuffer
        var records: [Record] = []
        init(capacity: Int) { buffer = ByteBuffer(capacity: capacity) }
    }

    static let blockBytes = 1 << 20
    static let blockCount = 4
    /// A block is sent once it lists this many records, so a block of empty files stays small.
    static let recordsPerBlock = 2048
    /// A block with less room than this is sent rather than filled in small reads.
    static let minimumSpace = 64 << 10

    struct Cancelled: Error {}

    private let condition = NSCondition()
    private var free: [Block]
    private var ready: [Block] = []
    private var finished = false
    private var failure: Error?
    private var cancelled = false
    // The walking side's block being filled.
    private var current: Block?

    init() {
        free = (0..<Self.blockCount).map { _ in Block(capacity: Self.blockBytes) }
    }

    // MARK: the walking side (WalkOutput)

    func entry(_ entry: ManifestEntry) throws {
        try add(.entry(entry))
    }

    func beginFile(_ entry: ManifestEntry) throws {
        try add(.beginFile(entry))
    }

    func endFile(flags: ManifestEntry.Flags, readSize: UInt64?, contentHash: [UInt8]?) throws {
        try add(.endFile(flags, readSize, contentHash))
    }

    func space() throws -> UnsafeMutableRawBufferPointer {
        if let block = current, block.buffer.capacity - block.buffer.count < Self.minimumSpace { send() }
        let buffer = try currentBlock().buffer
        return UnsafeMutableRawBufferPointer(rebasing: buffer.storage[buffer.count...])
    }

    func commit(_ count: Int) throws {
        guard count > 0, let block = current else { return }
        let start = block.buffer.count
        block.buffer.count += count
        block.records.appendContent(start..<start + count)
    }

    /// The walk is complete: what is left goes to the writing side, which then sees the end.
    func finish() {
        send()
        condition.lock()
        finished = true
        condition.broadcast()
        condition.unlock()
    }

    /// The walk failed: the writing side throws `error` after the blocks walked before it.
    func fail(_ error: Error) {
        send()
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }

    private func add(_ record: Record) throws {
        let block = try currentBlock()
        block.records.append(record)
        if block.records.count >= Self.recordsPerBlock { send() }
    }

    private func currentBlock() throws -> Block {
        if let current { return current }
        condition.lock()
        defer { condition.unlock() }
        while free.isEmpty && !cancelled { condition.wait() }
        if cancelled { throw Cancelled() }
        let block = free.removeLast()
        current = block
        return block
    }

    private func send() {
        guard let block = current else { return }
        current = nil
        condition.lock()
        ready.append(block)
        condition.broadcast()
        condition.unlock()
    }

    // MARK: the writing side

    /// The next block in walk order, nil after the last; throws the walk's failure.
    func next() throws -> Block? {
        condition.lock()
        defer { condition.unlock() }
        while ready.isEmpty && !finished && failure == nil { condition.wait() }
        // Blocks walked before a failure go first, so errors come in walk order.
        if !ready.isEmpty { return ready.removeFirst() }
        if let failure { throw failure }
        return nil
    }

    /// A block already sent, without waiting; nil when none is ready (for a walk and its writing
    /// driven by one thread).
    func nextReady() throws -> Block? {
        condition.lock()
        defer { condition.unlock() }
        if !ready.isEmpty { return ready.removeFirst() }
        if let failure { throw failure }
        return nil
    }

    /// A block the writing side is done with.
    func recycle(_ block: Block) {
        block.records.removeAll(keepingCapacity: true)
        block.buffer.count = 0
        condition.lock()
        free.append(block)
        condition.broadcast()
        condition.unlock()
    }

    /// The writing side gives up: the walk stops at its next block.
    func cancel() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        condition.unlock()
    }
}

extension SourceWalker {
    /// What a walk found besides the entries themselves.
    struct Outcome {
        var warnings: [SourceWarning] = []
        var entryCount: UInt64 = 0
        var contentBytes: UInt64 = 0
    }

    /// Walks `sources` (archive name, path on disk; in canonical order) on a thread of its own while
    /// the calling thread writes what it finds to `content`. Returns when both are done.
    static func walkInBackground(_ sources: [(name: String, path: String)], into content: ArchiveCreator.ContentWriter,
                                 ownFiles: [FileIdentity: String] = [:], exclude: ExcludeRules = ExcludeRules(patterns: []),
                                 oneFileSystem: Bool = false, changes: ChangeTracker? = nil) throws -> Outcome {
        /// What the walking thread reports back, guarded by `condition`.
        final class Shared: @unchecked Sendable {
            let condition = NSCondition()
            var running = true
            var outcome = Outcome()
        }
        let blocks = WalkBlocks()
        let shared = Shared()
        let excluded = content.ownFiles.merging(ownFiles) { first, _ in first }
        let thread = Thread {
            let walker = SourceWalker(output: blocks)
            walker.ownFiles = excluded
            walker.exclude = exclude
            walker.oneFileSystem = oneFileSystem
            walker.changes = changes
            do {
                for source in sources { try walker.add(source: source.path, as: source.name) }
                try walker.finishSources()
                blocks.finish()
            } catch {
                blocks.fail(error)
            }
            shared.condition.lock()
            shared.outcome = Outcome(warnings: walker.warnings, entryCount: walker.entryCount, contentBytes: walker.contentBytes)
            shared.running = false
            shared.condition.broadcast()
            shared.condition.unlock()
        }
        thread.name = "coldarchive-walker"
        thread.start()
        func waitForTheWalk() -> Outcome {
            shared.condition.lock()
            defer { shared.condition.unlock() }
            while shared.running { shared.condition.wait() }
            return shared.outcome
        }
        // Whatever happens here, the walk is stopped and waited for: it holds open files.
        defer {
            blocks.cancel()
            _ = waitForTheWalk()
        }
        let writer = DirectWalkOutput(content: content)
        while let block = try blocks.next() {
            try writer.apply(block)
            blocks.recycle(block)
        }
        return waitForTheWalk()
    }
}
