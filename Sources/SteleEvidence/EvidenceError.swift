/// Why a bundle could not be written or read at all (a finding about a readable bundle is a
/// ``BundleFinding``).
public struct EvidenceError: Error, Hashable, Sendable, CustomStringConvertible {
    public struct Code: Hashable, Sendable, CustomStringConvertible {
        let name: String
        /// The path is not a bundle directory or archive.
        public static let notABundle = Code(name: "not_a_bundle")
        /// The bundle cannot be made (nothing to export, no checkpoint covers the entries, no key).
        public static let cannotExport = Code(name: "cannot_export")
        public var description: String { name }
    }

    public let code: Code
    public let message: String

    public init(_ code: Code, _ message: String) {
        self.code = code
        self.message = message
    }

    public var description: String { message }
}
