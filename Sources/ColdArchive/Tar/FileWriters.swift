import Foundation

/// A directory the extractor opened (without following links), shared by the files that are
/// created in it; the descriptor is closed when the last of them is done with it.
final class DirectoryHandle: @unchecked Sendable {
    let fd: Int32

    init(fd: Int32) { self.fd = fd }

    deinit { close(fd) }
}

/// Creates, fills and closes restored regular files on a few threads of their own, so that the
/// kernel's work for each file (creating it, copying its bytes in, setting its mode and times) and
/// the check of its content hash overlap with the thread that parses the tar stream. Restoring is
/// mostly system-call time; one thread doing it all was the whole restore's bottleneck.
///
/// The parsing thread fills batches: a pooled buffer holding the content of up to `filesPerBatch`
/// files (or a piece of one large file) and the list of what to do with it. Each batch goes to one
/// lane (a thread with its own queue); the pieces of one file always go to the same lane, in order,
/// so every file is written by one thread from start to end.
///
/// A directory belongs to one lane while that lane has many files to create in it queued: no two lanes
/// create many files in one directory at once. Creating a file takes its directory's lock, and two lanes
/// creating side by side in one directory spent much of their system time spinning on it (issue 17's
/// profile: 17 % of a 600 000-file restore on ext4, 40 % after a mass deletion). Batches hold many small
/// files, and a lane's queue several batches, so the parsing thread runs a directory or more ahead and
/// the other lanes get the directories that follow. A batch that creates only a few files (large
/// files: its time is copying bytes, not taking the directory's lock) goes to whichever lane is free,
/// so two lanes still write two large files of one directory side by side (a directory of 1 729
/// attachments, 516 MB, restored on one lane took the 1 GB restore from 1.28× to 0.89× `tar -x`). Memory is bounded by the batches in flight
/// (`lanes × (queueDepth + 1) + 1` buffers); directory descriptors held by queued files by
/// `maxQueuedDirectories`. The first failure anywhere stops every lane and is thrown to the
/// parsing thread at its next call.
final class FileWriters: @unchecked Sendable {
    /// A regular file to create: `name` in `directory`, with the manifest's entry for its mode, times
    /// and (when checked) content hash.
    struct FileStart {
        let entry: ManifestEntry
        let directory: DirectoryHandle
        let name: String
        /// The owner to set, resolved on the parsing thread; nil when owners are not set.
        let owner: (uid: UInt32, gid: UInt32)?
    }

    private enum Item: ContentRecord {
        case begin(FileStart)
        case data(Range<Int>)
        case end

        var dataRange: Range<Int>? {
            if case .data(let range) = self { return range }
            return nil
        }
    }

    private final class Batch {
        let buffer: ByteBuffer
        var items: [Item] = []
        var files = 0
        /// The distinct directories this batch's files go into (each holds a descriptor until written).
        var directories: [DirectoryHandle] = []
        var lastDirectory: DirectoryHandle? { directories.last }
        /// Whether it creates enough files to take its directories for one lane.
        var creating: Bool { files >= FileWriters.creatingBatchFiles }
        init(buffer: ByteBuffer) { self.buffer = buffer }
    }

    static let batchBytes = 1 << 20
    static let filesPerBatch = 256
    /// A file at least this large starts a batch of its own, so that it can go to any lane (rather than
    /// follow the end of the file before it) and two lanes copy two large files at once.
    static let largeFileBytes = UInt64(batchBytes / 4)
    /// A batch that creates at least this many files takes its directories for its lane (see above).
    static let creatingBatchFiles = 8
    /// A batch is sent once its files span this many directories.
    static let directoriesPerBatch = 4
    /// At most this many distinct directories have files queued at once (each holds a descriptor until
    /// its files are written): a tree of one file per directory restores under a small `ulimit -n`.
    static let maxQueuedDirectories = 12
    /// More lanes than this do not make a file system create files faster.
    static let maxLanes = 4
    static let queueDepth = 4
    /// A batch with less free space than this is sent off rather than filled in small pieces.
    static let minimumSpace = 64 << 10

    private let condition = NSCondition()
    private var queues: [[Batch]]
    /// Batches queued on or being written by each lane.
    private var load: [Int]
    /// How many batches in flight go into each directory (each holds its descriptor).
    private var queuedIn: [ObjectIdentifier: Int] = [:]
    /// The lane that owns a directory, and how many creating batches in flight it has there.
    private var owners: [ObjectIdentifier: (lane: Int, batches: Int)] = [:]
    /// Lanes creating many files in each directory at this moment, and the most there ever were.
    private var writing: [ObjectIdentifier: Int] = [:]
    private var peakWriting = 0
    /// The lanes that were sent a batch beginning with a large file.
    private var largeFileLanes = Set<Int>()
    private var running = 0
    private var queued = 0
    private var failure: Error?
    private var stopping = false
    private let pool: BufferPool
    private let checkContent: Bool
    private let rootPath: String
    private let applier: MetadataApplier

    // The parsing thread's side.
    private var current: Batch?
    private var currentLane = 0
    /// The directory of the file begun and not yet ended.
    private var openDirectory: DirectoryHandle?

    init(lanes requested: Int, checkContent: Bool, rootPath: String, applier: MetadataApplier) {
        self.applier = applier
        let lanes = min(max(1, requested), Self.maxLanes)
        self.checkContent = checkContent
        self.rootPath = rootPath
        queues = Array(repeating: [], count: lanes)
        load = Array(repeating: 0, count: lanes)
        pool = BufferPool(capacity: Self.batchBytes, keep: lanes * (Self.queueDepth + 1) + 1)
        running = lanes
        for lane in 0..<lanes {
            let thread = Thread { [self] in self.work(lane: lane) }
            thread.name = "coldarchive-writer-\(lane)"
            thread.start()
        }
    }

    // MARK: the parsing thread

    /// Starts a regular file; its content follows through `space`/`commit`, then `endFile`.
    func beginFile(_ start: FileStart) throws {
        try checkFailure()
        if let batch = current, batch.files >= Self.filesPerBatch || batch.buffer.capacity - batch.buffer.count < Self.minimumSpace
            || (batch.directories.count >= Self.directoriesPerBatch && batch.lastDirectory !== start.directory)
            || (start.entry.size >= Self.largeFileBytes && !batch.items.isEmpty) {
            try send()
        }
        let batch = try currentBatch()
        batch.items.append(.begin(start))
        batch.files += 1
        openDirectory = start.directory
        if batch.lastDirectory !== start.directory && !batch.directories.contains(where: { $0 === start.directory }) {
            batch.directories.append(start.directory)
        }
    }

    /// Room for the current file's next bytes, directly in the batch buffer (no extra copy).
    func space() throws -> UnsafeMutableRawBufferPointer {
        if let batch = current, batch.buffer.capacity - batch.buffer.count < Self.minimumSpace { try send() }
        let buffer = try currentBatch().buffer
        return UnsafeMutableRawBufferPointer(rebasing: buffer.storage[buffer.count...])
    }

    /// The first `count` bytes of the last `space()` now hold content.
    func commit(_ count: Int) {
        guard count > 0, let batch = current else { return }
        let start = batch.buffer.count
        batch.buffer.count += count
        batch.items.appendContent(start..<start + count)
    }

    func endFile() throws {
        try currentBatch().items.append(.end)
        openDirectory = nil
    }

    /// Waits until every file handed over so far is written and closed; throws the first failure.
    func drain() throws {
        if current != nil { try send() }
        condition.lock()
        defer { condition.unlock() }
        while queued > 0 && failure == nil { condition.wait() }
        if let failure { throw failure }
    }

    /// The most lanes that were ever creating many files in one directory at the same time (1 by design).
    var peakLanesPerDirectory: Int {
        condition.lock()
        defer { condition.unlock() }
        return peakWriting
    }

    /// How many lanes wrote large files (at least `largeFileBytes`): more than one whenever two or
    /// more such files were restored with two or more lanes.
    var lanesForLargeFiles: Int {
        condition.lock()
        defer { condition.unlock() }
        return largeFileLanes.count
    }

    /// Stops the lanes and waits for them to exit; what is still queued is dropped (its files are
    /// left unfinished in the staging directory, which the caller removes). Safe to call twice.
    func shutdown() {
        condition.lock()
        stopping = true
        condition.broadcast()
        while running > 0 { condition.wait() }
        condition.unlock()
        current = nil
    }

    private func checkFailure() throws {
        condition.lock()
        defer { condition.unlock() }
        if let failure { throw failure }
    }

    private func currentBatch() throws -> Batch {
        if let current { return current }
        let batch = Batch(buffer: pool.take())
        if let openDirectory { batch.directories.append(openDirectory) }
        current = batch
        return batch
    }

    /// Queues the current batch on a lane: the one that goes on with a file begun in an earlier batch;
    /// for a creating batch the lane that owns its directories; else the least busy one. Blocks while
    /// that lane is full, while a creating batch's directories are owned by two lanes (a directory the
    /// tree walk comes back to), and while too many directories have files queued.
    private func send() throws {
        guard let batch = current else { return }
        current = nil
        condition.lock()
        defer { condition.unlock() }
        var lane: Int
        // The rest of a file begun in an earlier batch goes where its beginning went.
        let continuing = continuesOpenFile(batch) ? currentLane : nil
        while true {
            if let failure { throw failure }
            var owning = batch.creating ? Set(batch.directories.compactMap { owners[ObjectIdentifier($0)]?.lane }) : []
            if let continuing { owning.insert(continuing) }
            let added = batch.directories.filter { queuedIn[ObjectIdentifier($0)] == nil }.count
            if owning.count <= 1 && (queuedIn.count + added <= Self.maxQueuedDirectories || queued == 0) {
                // The least loaded lane, the next one round the ring on a tie.
                let order = (1...queues.count).map { (currentLane + $0) % queues.count }
                lane = owning.first ?? order.min { load[$0] < load[$1] } ?? 0
                if queues[lane].count < Self.queueDepth { break }
            }
            condition.wait()
        }
        for directory in batch.directories {
            queuedIn[ObjectIdentifier(directory), default: 0] += 1
            if batch.creating { owners[ObjectIdentifier(directory), default: (lane, 0)].batches += 1 }
        }
        if case .begin(let start)? = batch.items.first, start.entry.size >= Self.largeFileBytes { largeFileLanes.insert(lane) }
        queues[lane].append(batch)
        load[lane] += 1
        queued += 1
        currentLane = lane
        condition.broadcast()
    }

    /// Whether a batch starts in the middle of a file begun in an earlier batch.
    private func continuesOpenFile(_ batch: Batch) -> Bool {
        if case .begin? = batch.items.first { return false }
        return !batch.items.isEmpty
    }

    // MARK: the lanes

    private struct OpenFile {
        let start: FileStart
        let fd: Int32
        /// Bytes of content written so far (for a sparse file, the logical position).
        var position: UInt64 = 0
    }

    private func work(lane: Int) {
        let hasher = checkContent ? Sodium.Blake2bState(outputBytes: 32) : nil
        var file: OpenFile?
        defer {
            if let file { close(file.fd) }
            condition.lock()
            running -= 1
            condition.broadcast()
            condition.unlock()
        }
        while true {
            condition.lock()
            while queues[lane].isEmpty && !stopping { condition.wait() }
            if stopping {
                condition.unlock()
                return
            }
            let batch = queues[lane].removeFirst()
            let healthy = failure == nil
            for directory in batch.directories where batch.creating {
                writing[ObjectIdentifier(directory), default: 0] += 1
                peakWriting = max(peakWriting, writing[ObjectIdentifier(directory)]!)
            }
            condition.unlock()
            if healthy {
                do {
                    try write(batch, file: &file, hasher: hasher)
                } catch {
                    condition.lock()
                    if failure == nil { failure = error }
                    condition.unlock()
                }
            }
            pool.give(batch.buffer)
            condition.lock()
            for directory in batch.directories {
                let key = ObjectIdentifier(directory)
                queuedIn[key] = queuedIn[key]! > 1 ? queuedIn[key]! - 1 : nil
                guard batch.creating else { continue }
                writing[key] = writing[key]! > 1 ? writing[key]! - 1 : nil
                if let owner = owners[key], owner.batches > 1 { owners[key] = (owner.lane, owner.batches - 1) } else { owners[key] = nil }
            }
            queued -= 1
            load[lane] -= 1
            condition.broadcast()
            condition.unlock()
        }
    }

    private func write(_ batch: Batch, file: inout OpenFile?, hasher: Sodium.Blake2bState?) throws {
        for item in batch.items {
            switch item {
            case .begin(let start):
                guard file == nil else { throw OperationError("internal error: a restored file was begun before the previous one ended") }
                let fd = NameCodec.withCString(start.name) { openat(start.directory.fd, $0, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, MetadataApplier.creationMode(for: start.entry)) }
                guard fd >= 0 else { throw failure("create file", start.entry.path) }
                file = OpenFile(start: start, fd: fd)
                hasher?.reset()
            case .data(let range):
                guard let open = file else { throw OperationError("internal error: restored content arrived outside a file") }
                let bytes = UnsafeRawBufferPointer(rebasing: batch.buffer.storage[range])
                hasher?.update(bytes)
                file?.position += UInt64(bytes.count)
                if let map = open.start.entry.sparseMap {
                    try SparseWriter.write(bytes, at: open.position, map: map, fd: open.fd, path: "\(rootPath)/\(open.start.entry.path)")
                    continue
                }
                var done = 0
                while done < bytes.count {
                    let n = Glibc.write(open.fd, bytes.baseAddress! + done, bytes.count - done)
                    if n < 0 {
                        if errno == EINTR { continue }
                        throw failure("write", open.start.entry.path)
                    }
                    done += n
                }
            case .end:
                guard let open = file else { throw OperationError("internal error: a restored file ended that was not begun") }
                file = nil
                defer { close(open.fd) }
                let entry = open.start.entry
                if let hasher, hasher.finalize() != entry.contentHash {
                    throw IntegrityError.manifestMismatch(path: entry.path, reason: .contentHash)
                }
                if open.start.entry.sparseMap != nil { try SparseWriter.finish(fd: open.fd, size: entry.size, path: "\(rootPath)/\(entry.path)") }
                // Always: the file was created writable, and the umask or a default ACL may have taken bits.
                try applier.apply(fd: open.fd, entry: entry, owner: open.start.owner, path: "\(rootPath)/\(entry.path)", created: true)
            }
        }
    }

    private func failure(_ operation: String, _ path: String) -> Error {
        SafeExtractor.failure(operation, path, rootPath: rootPath, errno: errno)
    }
}
