/// Why the client could not talk to the daemon.
///
/// Compare by ``code``.
public struct ClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What kind of failure it was, for a program to act on. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// The socket could not be reached, or a send or read failed.
        public static let io = Code(name: "io")
        /// The daemon closed the connection without reading every request sent on it (it stopped,
        /// or dropped the connection). Every reply it wrote has been received before this error;
        /// the requests after the last of them were not taken and may be retried with the same ids.
        public static let closedWithRequestsUnread = Code(name: "closed_with_requests_unread")
    }

    /// What kind of failure it was.
    public let code: Code
    /// What went wrong, naming the socket.
    public let message: String

    init(_ message: String, code: Code = .io) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: ClientError, rhs: ClientError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
