#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A mutex with a condition variable, for the few places that wait (group commit). Held across
/// blocking file I/O where documented, never across an event-loop callback.
final class ConditionLock: @unchecked Sendable {
    private let mutex: UnsafeMutablePointer<pthread_mutex_t>
    private let condition: UnsafeMutablePointer<pthread_cond_t>

    init() {
        mutex = .allocate(capacity: 1)
        condition = .allocate(capacity: 1)
        let mutexStatus = pthread_mutex_init(mutex, nil)
        let conditionStatus = pthread_cond_init(condition, nil)
        precondition(mutexStatus == 0 && conditionStatus == 0, "pthread init failed")
    }

    deinit {
        pthread_cond_destroy(condition)
        pthread_mutex_destroy(mutex)
        condition.deallocate()
        mutex.deallocate()
    }

    func lock() {
        let status = pthread_mutex_lock(mutex)
        precondition(status == 0, "pthread_mutex_lock failed: \(status)")
    }

    func unlock() {
        let status = pthread_mutex_unlock(mutex)
        precondition(status == 0, "pthread_mutex_unlock failed: \(status)")
    }

    /// Waits for a broadcast; the lock must be held and is held again on return.
    func wait() {
        let status = pthread_cond_wait(condition, mutex)
        precondition(status == 0, "pthread_cond_wait failed: \(status)")
    }

    func broadcast() {
        pthread_cond_broadcast(condition)
    }

    func withLock<T>(_ body: () throws -> T) rethrows -> T {
        lock()
        defer { unlock() }
        return try body()
    }
}

/// Group commit: callers that need everything below some offset durable share fsyncs. While one caller
/// runs the flush, later callers wait; when it finishes, each one whose target it covered returns and
/// the first one still uncovered runs the next flush. A failed fsync is sticky: after it, the page cache
/// can no longer be trusted to hold the data, so every later call fails too and the log must be reopened
/// (which recovers from the files).
final class GroupCommit: @unchecked Sendable {
    private let lock = ConditionLock()
    /// Everything below this offset is durable. Invariant: never decreases, except by `reset`.
    private var durableOffset: Int64
    private var flushing = false
    private var failure: Error?
    /// Bumped by `reset`: a flush that started before a truncation must not vouch for offsets the
    /// truncation gave away and later appends reuse.
    private var generation = 0
    /// The offsets truncated to by the most recent resets, with the generation each started.
    private var resets: [(generation: Int, offset: Int64)] = []
    private static let resetsKept = 64

    init(durableOffset: Int64) {
        self.durableOffset = durableOffset
    }

    /// Returns once everything below `target` is durable. `flush` forces what was written so far and
    /// returns the offset it covered.
    ///
    /// A truncation below `target` while the caller waits means offsets it waits for are gone (and may
    /// be reused by later appends): with `lowerOnTruncation` the target comes down to the truncation
    /// point (a plain flush); otherwise the wait ends with `LogError.truncatedBeforeDurable`, so an
    /// append whose batch was removed is never acknowledged.
    func sync(upTo target: Int64, lowerOnTruncation: Bool = false, flush: () throws -> Int64) throws {
        lock.lock()
        defer { lock.unlock() }
        let entered = generation
        var target = target
        while durableOffset < target {
            if let failure { throw failure }
            if generation != entered {
                let since = resets.filter { $0.generation > entered }
                // Older resets were forgotten: assume the worst, the lowest offset possible.
                let complete = since.count == generation - entered
                let lowest = complete ? since.map(\.offset).min() ?? target : Int64.min
                if lowest < target {
                    guard lowerOnTruncation else {
                        throw LogError.truncatedBeforeDurable(offset: target - 1, truncatedTo: max(lowest, 0))
                    }
                    target = max(lowest, 0)
                    continue
                }
            }
            if flushing {
                lock.wait()
                continue
            }
            flushing = true
            let startedIn = generation
            lock.unlock()
            let outcome = Result { try flush() }
            lock.lock()
            flushing = false
            lock.broadcast()
            switch outcome {
            case .success(let covered):
                if startedIn == generation { durableOffset = max(durableOffset, covered) }
            case .failure(let error):
                failure = error
                throw error
            }
        }
    }

    /// After truncation the durable offset can go down.
    func reset(durableOffset: Int64) {
        lock.withLock {
            self.durableOffset = durableOffset
            generation += 1
            resets.append((generation, durableOffset))
            if resets.count > GroupCommit.resetsKept { resets.removeFirst() }
            // Waiters re-check their targets against the truncation.
            lock.broadcast()
        }
    }

    var durable: Int64 { lock.withLock { durableOffset } }

    /// Records an fsync failure that happened outside `sync` (sealing a segment at a roll): like a
    /// failed group flush it is sticky, so no append after it is acknowledged as durable.
    func fail(_ error: any Error) {
        lock.withLock {
            if failure == nil { failure = error }
            lock.broadcast()
        }
    }
    var failed: Error? { lock.withLock { failure } }
}
