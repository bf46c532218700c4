public import Foundation

/// Loads the machine-readable vectors in `Specs/vectors/` and converts hex, for every test target.
public enum Vectors {
    /// The repository's `Specs/vectors` directory.
    public static let directory: URL = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Specs/vectors")

    /// The parsed JSON of `Specs/vectors/<name>` (Foundation's parser, independent of Stele's).
    public static func load(_ name: String) throws -> [String: Any] {
        let data = try Data(contentsOf: directory.appendingPathComponent(name))
        return try JSONSerialization.jsonObject(with: data) as! [String: Any]
    }
}

/// Hex decoding for vectors; traps on malformed input (vector files are trusted test data).
public func hexBytes(_ hex: String) -> [UInt8] {
    precondition(hex.count % 2 == 0, "odd-length hex")
    var out = [UInt8]()
    var index = hex.startIndex
    while index < hex.endIndex {
        let next = hex.index(index, offsetBy: 2)
        out.append(UInt8(hex[index..<next], radix: 16)!)
        index = next
    }
    return out
}

/// Lowercase hex encoding.
public func hexString(_ bytes: some Sequence<UInt8>) -> String {
    bytes.map { String(format: "%02x", $0) }.joined()
}
