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

    /// Full chunks, oldest first, then `tail`, the newest and only partly filled one (appends go
    /// straight to it, as fast as to an `Array`). The first `head` elements of the first chunk (of
    /// `tail` when there is no full chunk) have been removed.
    private var chunks: [[Element]] = []
    private var tail: [Element] = []
    private var head = 0
    /// An emptied chunk kept for the next one needed: a queue that moves at a steady rate then
    /// reuses the same memory instead of asking for fresh pages (on a virtual machine, each first
    /// touch of a page can cost a fault in the host).
    private var spare: [Element] = []
    /// The number of elements held.
    @_spi(Benchmarks) public private(set) var count = 0

    /// An empty queue.
    @_spi(Benchmarks) public init() {}

    /// The oldest element.
    @_spi(Benchmarks) public var first: Element? {
        count == 0 ? nil : chunks.isEmpty ? tail[head] : chunks[0][head]
    }

    /// The element `offset` places after the oldest one (0 is the oldest).
    subscript(offset: Int) -> Element {
        precondition(offset >= 0 && offset < count, "queue offset \(offset) out of 0..<\(count)")
        let position = head + offset
        let chunk = position >> Self.chunkShift
        return chunk < chunks.count ? chunks[chunk][position & (Self.chunkSize - 1)] : tail[position - chunks.count << Self.chunkShift]
    }

    /// Adds `element` after the newest one.
    @_spi(Benchmarks) public mutating func append(_ element: Element) {
        if tail.capacity == 0 { tail.reserveCapacity(Self.chunkSize) }
        tail.append(element)
        count += 1
        if tail.count == Self.chunkSize { sealTail() }
    }

    /// Adds `elements` in order after the newest one.
    mutating func append(contentsOf elements: [Element]) {
        var index = 0
        while index < elements.count {
            if tail.capacity == 0 { tail.reserveCapacity(Self.chunkSize) }
            let n = min(elements.count - index, Self.chunkSize - tail.count)
            tail.append(contentsOf: elements[index..<index + n])
            count += n
            index += n
            if tail.count == Self.chunkSize { sealTail() }
        }
    }

    /// Moves the full `tail` to `chunks`; the spare becomes the tail.
    private mutating func sealTail() {
        var full = spare
        spare = []
        swap(&full, &tail)
        chunks.append(full)
    }

    /// Removes the `k` oldest elements.
    @_spi(Benchmarks) public mutating func removeFirst(_ k: Int) {
        if uncount(k) { return }
        head += k
        while head >= Self.chunkSize && !chunks.isEmpty {
            var chunk: [Element] = []
            swap(&chunk, &chunks[0])
            chunks.removeFirst()
            recycle(chunk)
            head -= Self.chunkSize
        }
    }

    /// Removes the `k` newest elements.
    mutating func removeLast(_ k: Int) {
        if uncount(k) { return }
        var left = k
        while left > 0 {
            if tail.isEmpty { tail = chunks.removeLast() }
            let n = min(left, tail.count)
            tail.removeLast(n)
            left -= n
        }
    }

    /// Takes `k` elements off the count; true if none are left (then all is emptied).
    private mutating func uncount(_ k: Int) -> Bool {
        precondition(k >= 0 && k <= count, "cannot remove \(k) of \(count) queued elements")
        count -= k
        guard count == 0 else { return false }
        chunks.removeAll()
        tail.removeAll(keepingCapacity: true)
        head = 0
        return true
    }

    /// Keeps `chunk`'s memory as the spare (its elements released).
    private mutating func recycle(_ chunk: consuming [Element]) {
        chunk.removeAll(keepingCapacity: true)
        spare = chunk
    }
}
