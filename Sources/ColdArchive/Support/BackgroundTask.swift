import Foundation

/// Runs one throwing closure on a thread of its own while the caller does something else; `wait()`
/// returns its result (or its error). Used where two checks that read the same archive file
/// independently (with `pread`, no shared cursor) can overlap.
final class BackgroundTask<Value>: @unchecked Sendable {
    private let condition = NSCondition()
    private var result: Result<Value, Error>?

    /// The closure, handed to the thread once. Unchecked: what it captures must be safe to use from two
    /// threads at once (an `ArchiveFile` is: immutable once open, read with `pread`).
    private struct Body: @unchecked Sendable { let run: () throws -> Value }

    init(name: String, _ body: @escaping () throws -> Value) {
        let work = Body(run: body)
        let thread = Thread { [self] in
            let outcome = Result { try work.run() }
            condition.lock()
            result = outcome
            condition.broadcast()
            condition.unlock()
        }
        thread.name = name
        thread.start()
    }

    /// Blocks until the closure has returned or thrown.
    func wait() -> Result<Value, Error> {
        condition.lock()
        defer { condition.unlock() }
        while result == nil { condition.wait() }
        return result!
    }
}
