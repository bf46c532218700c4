/// Why the daemon refused to start: a one-line message an operator can act on.
public struct DaemonError: Error, Sendable, CustomStringConvertible {
    /// What is wrong and what to do.
    public let message: String

    public init(_ message: String) {
        self.message = message
    }

    public var description: String { message }
}
