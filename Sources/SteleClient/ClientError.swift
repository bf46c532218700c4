/// Why the client could not talk to the daemon.
public struct ClientError: Error, Hashable, Sendable, CustomStringConvertible {
    /// What went wrong, naming the socket.
    public let message: String

    init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
