import NIOCore

/// The reply order of one connection, and when it may be read from: a value type, driven by
/// ``ReplyOrderingHandler``.
///
/// Replies leave in request order: each request line takes the next slot, a reply fills its slot,
/// and the filled slots at the head are written.
///
/// Backpressure: with `maximumInFlight` replies unwritten, or while the client is not reading its
/// replies (the channel is not writable), no read is asked for until half of them are written and
/// the channel is writable again.
///
/// Read coalescing: a client that pipelines (sends while replies are pending) is, after a read
/// burst of fewer than ``smallReadLines`` lines, not read again until that burst's replies are
/// written: requests that arrive meanwhile wait in the socket and are then read, decoded and
/// queued together, so a client that trickles requests costs one read and one wake-up per batch.
/// A client that waits for each reply is read as soon as it sends, and holding stops again when a
/// held read finds at most one line (holding saved nothing, and each hold costs two changes of the
/// socket's polling).
struct ReplyOrderingStateMachine {
    /// A burst with fewer lines than this is "small" (see above).
    static let smallReadLines = 64

    let maximumInFlight: Int
    /// Unwritten replies in request order: nil while the reply is pending.
    private var slots = CircularBuffer<[UInt8]?>()
    /// The slot number of `slots.first`.
    private var firstSlot: UInt64 = 0
    /// A read was asked for and held back.
    private var readPending = false
    private(set) var draining = false
    /// Lines of the read burst under way, and of the one before it.
    private var linesThisRead = 0
    private var linesLastRead = 0
    /// The client pipelines; a read is held for a batch; the burst is the first after a hold.
    private var coalescing = false
    private var heldForBatch = false
    private var burstAfterHold = false

    init(maximumInFlight: Int) {
        self.maximumInFlight = maximumInFlight
    }

    /// No reply is unwritten.
    var isIdle: Bool { slots.isEmpty }

    /// Draining, and every reply written: the connection may close.
    var isDrained: Bool { draining && slots.isEmpty }

    /// `count` request lines arrived; returns the slot of the first.
    mutating func linesReceived(_ count: Int) -> UInt64 {
        if linesThisRead == 0 {  // a read burst begins
            if !slots.isEmpty { coalescing = true }
            burstAfterHold = heldForBatch
            heldForBatch = false
        }
        linesThisRead += count
        let first = firstSlot + UInt64(slots.count)
        for _ in 0..<count { slots.append(nil) }
        return first
    }

    /// The read burst ended.
    mutating func readComplete() {
        if burstAfterHold && linesThisRead <= 1 { coalescing = false }
        burstAfterHold = false
        linesLastRead = linesThisRead
        linesThisRead = 0
    }

    /// The reply for `slot` is ready. A slot already written or never given is ignored.
    mutating func replyReady(slot: UInt64, bytes: [UInt8]) {
        guard slot >= firstSlot, slot - firstSlot < UInt64(slots.count) else { return }
        slots[slots.index(slots.startIndex, offsetBy: Int(slot - firstSlot))] = bytes
    }

    /// Takes the replies that are next in order, and calls `write` with each.
    mutating func takeReady(_ write: ([UInt8]) -> Void) {
        while let first = slots.first, let reply = first {
            write(reply)
            slots.removeFirst()
            firstSlot += 1
        }
    }

    /// The channel asks for a read: true to read now; false holds it until ``mayResume(writable:)``.
    mutating func readRequested(writable: Bool) -> Bool {
        guard draining || !mayRead(writable: writable) else { return true }
        readPending = true
        if holdsForBatch { heldForBatch = true }
        return false
    }

    /// True (once) when a held read may go ahead: half the replies are written, the client reads
    /// them, and no small burst waits for its batch.
    mutating func mayResume(writable: Bool) -> Bool {
        guard readPending, !draining, writable, slots.count <= maximumInFlight / 2, !holdsForBatch else { return false }
        readPending = false
        return true
    }

    /// Stop reading; the connection closes once every reply is written.
    mutating func startDraining() {
        draining = true
    }

    private func mayRead(writable: Bool) -> Bool {
        slots.count < maximumInFlight && writable && !holdsForBatch
    }

    private var holdsForBatch: Bool {
        coalescing && !slots.isEmpty && linesLastRead < Self.smallReadLines
    }
}
