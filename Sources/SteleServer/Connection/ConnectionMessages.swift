import NIOCore

/// Fired inbound by ``PeerAuthenticationHandler`` before `channelActive`, once the kernel's
/// credentials for the peer match a configured peer.
struct AuthenticatedPeer: Sendable {
    let rule: PeerRule
}

/// One line of a request stream: its bytes, or the mark of a line over the length limit.
enum RequestLine {
    case line(ByteBuffer)
    case oversized
    /// A line that did not arrive in full before the line deadline; the connection closes after it.
    case timedOut
}

/// The lines one read completed, in order (``LineFramingHandler``).
struct RequestLines {
    var lines: [RequestLine]
}

/// The same lines with the reply slot of the first one; the others follow in order
/// (``ReplyOrderingHandler``).
struct NumberedRequests {
    let firstSlot: UInt64
    let lines: [RequestLine]
}

/// The reply for one request, to be written in request order (``ReplyOrderingHandler``).
struct SlotReply {
    let slot: UInt64
    let bytes: [UInt8]
}
