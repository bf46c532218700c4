/// Why the daemon refused to start or stopped: a one-line message an operator can act on.
///
/// Compare by ``code``.
public struct DaemonError: Error, Hashable, Sendable, CustomStringConvertible {
    /// The kind of refusal. Open for new cases.
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        public var description: String { name }

        /// A start-up check failed: configuration, files, permissions, or the store's state.
        public static let refused = Code(name: "refused")
    }

    /// What kind of refusal this is.
    public let code: Code
    /// What is wrong and what to do.
    public let message: String

    public init(_ message: String, code: Code = .refused) {
        self.code = code
        self.message = message
    }

    public var description: String { message }

    public static func == (lhs: DaemonError, rhs: DaemonError) -> Bool { lhs.code == rhs.code }
    public func hash(into hasher: inout Hasher) { hasher.combine(code) }
}
