/// Why the client could not talk to the daemon.
public struct ClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure it was, for a program to act on.
    public enum Kind: Hashable, Sendable {
        /// The socket could not be reached, or a send or read failed.
        case io
        /// The daemon closed the connection without reading every request sent on it (it stopped,
        /// or dropped the connection). Every reply it wrote has been received before this error;
        /// the requests after the last of them were not taken and may be retried with the same ids.
        case closedWithRequestsUnread
    }

    /// What kind of failure it was.
    public let kind: Kind
    /// What went wrong, naming the socket.
    public let message: String

    init(_ message: String, kind: Kind = .io) {
        self.kind = kind
        self.message = message
    }

    public var description: String { message }
}
