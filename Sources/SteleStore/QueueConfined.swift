import Dispatch

/// A value touched only on one serial dispatch queue, which every access asserts. The queue
/// orders the accesses, so the value needs no lock; this is what makes it safe to share the box.
final class QueueConfined<Value>: @unchecked Sendable {
    private let queue: DispatchQueue
    private var value: Value

    init(_ value: Value, on queue: DispatchQueue) {
        self.value = value
        self.queue = queue
    }

    /// Runs `body` on the value. Call on the queue.
    func withValue<R>(_ body: (inout Value) throws -> R) rethrows -> R {
        dispatchPrecondition(condition: .onQueue(queue))
        return try body(&value)
    }
}
