import Dispatch
import Synchronization

/// Prepares a large batch in fixed-size chunks on two threads while the writer appends the chunks
/// already prepared, in order, inside its transaction.
///
/// A helper thread and the writer both claim chunks in order from one counter. The writer appends
/// chunk k as soon as it is ready; when it is not, the writer prepares the next unclaimed chunk itself
/// rather than wait, and waits only when every chunk is claimed. So both cores stay busy and the
/// batch costs about the larger of (all preparing + appending) / 2 and the appending alone.
final class PreparationPipeline: Sendable {
    private struct State {
        var nextClaim = 0
        var done: [Result<[PreparedEvent], any Error>?]
        var cancelled = false
    }

    private let events: [Event]
    private let chunkSize: Int
    /// The number of chunks, appended in index order.
    let chunkCount: Int
    private let state: Mutex<State>
    private let ready: [DispatchSemaphore]
    private let helperFinished = DispatchSemaphore(value: 0)

    init(events: [Event], chunkSize: Int) {
        self.events = events
        self.chunkSize = chunkSize
        self.chunkCount = (events.count + chunkSize - 1) / chunkSize
        self.state = Mutex(State(done: Array(repeating: nil, count: chunkCount)))
        self.ready = (0..<chunkCount).map { _ in DispatchSemaphore(value: 0) }
    }

    /// Starts the helper thread with its own preparer.
    func startHelper(_ preparer: EventPreparer) {
        DispatchQueue.global().async {
            while let chunk = self.claim() { self.prepare(chunk, with: preparer) }
            self.helperFinished.signal()
        }
    }

    /// Chunk `index`, prepared by whichever thread claimed it; the caller (the writer) prepares
    /// unclaimed chunks with `preparer` while it waits.
    /// - Throws: the first preparation error of that chunk (``LedgerError`` `invalidEvent`).
    func chunk(_ index: Int, preparer: EventPreparer) throws -> [PreparedEvent] {
        while true {
            // Chunks are kept until the batch ends: LMDB may abort and rerun the transaction (to grow
            // the map), which then appends the same prepared chunks again.
            let result = state.withLock { $0.done[index] }
            if let result { return try result.get() }
            if let other = claim() {
                prepare(other, with: preparer)
            } else {
                ready[index].wait()
            }
        }
    }

    /// Stops handing out chunks and waits until the helper has returned (so its preparer is free).
    func finish() {
        state.withLock { $0.cancelled = true }
        helperFinished.wait()
    }

    private func claim() -> Int? {
        state.withLock { state in
            guard !state.cancelled, state.nextClaim < chunkCount else { return nil }
            defer { state.nextClaim += 1 }
            return state.nextClaim
        }
    }

    private func prepare(_ index: Int, with preparer: EventPreparer) {
        let range = index * chunkSize..<min(events.count, (index + 1) * chunkSize)
        let result = Result<[PreparedEvent], any Error> { try events[range].map { try preparer.prepare($0) } }
        state.withLock { $0.done[index] = result }
        ready[index].signal()
    }
}
