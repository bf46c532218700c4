/// A first-in, first-out sequence stored in fixed-size chunks. Appending never moves what is
/// already held, and removing from the front frees whole chunks, so no single call costs more than
/// about one chunk's worth of work, however many elements the queue holds.
///
/// Hand-written because the writer keeps millions of recent idempotency keys in one: an `Array` (or
/// `Deque`) that doubles copies all of them at once, which stalled every acknowledgement for as long,
/// and removing from an array's front moves everything behind it.
@_spi(Benchmarks) public struct ChunkedQueue<Element> {
    private static var chunkShift: Int { 12 }
    private static var chunkSize: Int { 1 << chunkShift }

    /// The chunks; the first `head` elements of the first one have been removed.
    private var chunks: [[Element]] = []
    private var head = 0
    /// The number of elements held.
    @_spi(Benchmarks) public private(set) var count = 0

    /// An empty queue.
    @_spi(Benchmarks) public init() {}

    var isEmpty: Bool { count == 0 }

    /// The oldest element.
    @_spi(Benchmarks) public var first: Element? { count == 0 ? nil : chunks[0][head] }

    /// The element `offset` places after the oldest one (0 is the oldest).
    subscript(offset: Int) -> Element {
        precondition(offset >= 0 && offset < count, "queue offset \(offset) out of 0..<\(count)")
        let position = head + offset
        return chunks[position >> Self.chunkShift][position & (Self.chunkSize - 1)]
    }

    /// Adds `element` after the newest one.
    @_spi(Benchmarks) public mutating func append(_ element: Element) {
        if chunks.isEmpty || chunks[chunks.count - 1].count == Self.chunkSize {
            var chunk: [Element] = []
            chunk.reserveCapacity(Self.chunkSize)
            chunks.append(chunk)
        }
        chunks[chunks.count - 1].append(element)
        count += 1
    }

    /// Adds `elements` in order after the newest one.
    mutating func append(contentsOf elements: some Sequence<Element>) {
        for element in elements { append(element) }
    }

    /// Removes the `k` oldest elements.
    @_spi(Benchmarks) public mutating func removeFirst(_ k: Int) {
        if uncount(k) { return }
        head += k
        let emptied = head >> Self.chunkShift
        if emptied > 0 {
            chunks.removeFirst(emptied)
            head -= emptied << Self.chunkShift
        }
    }

    /// Removes the `k` newest elements.
    mutating func removeLast(_ k: Int) {
        if uncount(k) { return }
        var left = k
        while left > 0 {
            let last = chunks.count - 1
            let n = min(left, chunks[last].count)
            chunks[last].removeLast(n)
            if chunks[last].isEmpty { chunks.removeLast() }
            left -= n
        }
    }

    /// Takes `k` elements off the count; true if none are left (then every chunk is freed).
    private mutating func uncount(_ k: Int) -> Bool {
        precondition(k >= 0 && k <= count, "cannot remove \(k) of \(count) queued elements")
        count -= k
        guard count == 0 else { return false }
        chunks.removeAll()
        head = 0
        return true
    }
}
