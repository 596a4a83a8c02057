import Foundation

/// Runs a transform on a few worker threads over a stream of inputs and hands the outputs back in
/// input order to a single driving thread. At most `maxInFlight` items are submitted but not yet
/// consumed, so memory stays bounded however long the stream is; the first error anywhere cancels
/// every stage.
///
/// The driver either pushes (`submit` then `finish`, consuming outputs as they come) or pulls
/// (`next(refill:)`, producing inputs on demand), and calls `shutdown()` when done (the worker
/// threads hold the pipeline, so it cannot stop them from `deinit`). All mutable state is guarded
/// by `condition`; that lock is why the class may be shared with its worker threads.
final class OrderedPipeline<Input, Output>: @unchecked Sendable {
    private let condition = NSCondition()
    private var queue: [(sequence: Int, input: Input)] = []
    private var results: [Int: Output] = [:]
    private var submitted = 0
    private var delivered = 0
    private var closed = false
    private var failure: Error?
    private let maxInFlight: Int
    private var peak = 0

    /// The most inputs that were ever submitted but not yet consumed (never above `maxInFlight`).
    var peakInFlight: Int {
        condition.lock()
        defer { condition.unlock() }
        return peak
    }

    struct Cancelled: Error {}

    /// `makeTransform` runs once on each worker thread, so each worker owns its reusable state
    /// (a compression context, a scratch buffer).
    init(workers: Int, maxInFlight: Int, makeTransform: @escaping @Sendable () throws -> (Input) throws -> Output) {
        precondition(workers >= 1 && maxInFlight >= workers)
        self.maxInFlight = maxInFlight
        for n in 0..<workers {
            let thread = Thread { [self] in self.work(makeTransform) }
            thread.name = "coldarchive-worker-\(n)"
            thread.start()
        }
    }

    // MARK: pushing

    /// Queues one input. While the pipeline is full, hands finished outputs, in order, to `consume`.
    func submit(_ input: Input, consume: (Output) throws -> Void) throws {
        // Only the driver submits, so the room found here is still there when the input is queued.
        try consumeUntil({ submitted - delivered < maxInFlight }, consume)
        condition.lock()
        enqueueLocked(input)
        condition.unlock()
        while true {
            condition.lock()
            let ready = failure == nil ? takeLocked() : nil
            condition.unlock()
            guard let ready else { break }
            try consuming(ready, consume)
        }
    }

    /// Waits until every input submitted so far has been consumed, handing outputs to `consume` in
    /// order; more inputs may follow.
    func drain(consume: (Output) throws -> Void) throws {
        try consumeUntil({ delivered == submitted }, consume)
    }

    /// Hands finished outputs, in order, to `consume` until `done` (checked under the lock) holds.
    private func consumeUntil(_ done: () -> Bool, _ consume: (Output) throws -> Void) throws {
        while true {
            condition.lock()
            if let failure { condition.unlock(); throw failure }
            if done() { condition.unlock(); return }
            if let output = takeLocked() {
                condition.unlock()
                try consuming(output, consume)
                continue
            }
            condition.wait()
            condition.unlock()
        }
    }

    /// No more inputs: waits for every remaining output and hands each to `consume`, in order.
    func finish(consume: (Output) throws -> Void) throws {
        close()
        while let output = try next() { try consuming(output, consume) }
    }

    // MARK: pulling

    /// The next output in input order. First tops the pipeline up with inputs from `refill`
    /// (nil from it means the inputs are exhausted).
    func next(refill: () throws -> Input?) throws -> Output? {
        while true {
            condition.lock()
            let room = !closed && failure == nil && submitted - delivered < maxInFlight
            condition.unlock()
            guard room else { break }
            let input: Input?
            do { input = try refill() } catch { fail(error); throw error }
            guard let input else { close(); break }
            condition.lock()
            enqueueLocked(input)
            condition.unlock()
        }
        return try next()
    }

    // MARK: control

    /// Cancels every stage: the driver sees `error`, workers stop.
    func fail(_ error: Error) {
        condition.lock()
        if failure == nil { failure = error }
        condition.broadcast()
        condition.unlock()
    }

    /// Stops the workers, cancelling whatever is still queued. Safe to call more than once.
    func shutdown() {
        condition.lock()
        if !(closed && delivered == submitted) && failure == nil { failure = Cancelled() }
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    private func close() {
        condition.lock()
        closed = true
        condition.broadcast()
        condition.unlock()
    }

    private func next() throws -> Output? {
        condition.lock()
        defer { condition.unlock() }
        while true {
            if let failure { throw failure }
            if let output = takeLocked() { return output }
            if closed && delivered == submitted { return nil }
            condition.wait()
        }
    }

    private func consuming(_ output: Output, _ consume: (Output) throws -> Void) throws {
        do { try consume(output) } catch { fail(error); throw error }
    }

    private func enqueueLocked(_ input: Input) {
        queue.append((submitted, input))
        submitted += 1
        peak = max(peak, submitted - delivered)
        condition.broadcast()
    }

    private func takeLocked() -> Output? {
        guard let output = results.removeValue(forKey: delivered) else { return nil }
        delivered += 1
        condition.broadcast()
        return output
    }

    private func work(_ makeTransform: () throws -> (Input) throws -> Output) {
        let transform: (Input) throws -> Output
        do { transform = try makeTransform() } catch { fail(error); return }
        while true {
            condition.lock()
            while queue.isEmpty && !closed && failure == nil { condition.wait() }
            if failure != nil || queue.isEmpty {
                condition.unlock()
                return
            }
            // The queue never holds more than `maxInFlight` items, so removing from its front is cheap.
            let item = queue.removeFirst()
            condition.unlock()
            do {
                let output = try transform(item.input)
                condition.lock()
                results[item.sequence] = output
                condition.broadcast()
                condition.unlock()
            } catch {
                fail(error)
                return
            }
        }
    }
}
