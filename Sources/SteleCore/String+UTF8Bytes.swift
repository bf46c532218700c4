extension String {
    /// Calls `body` with the string's UTF-8 bytes, valid only during the call.
    ///
    /// Unlike the standard library's mutating `withUTF8`, which needs a copy of the string (a
    /// retain and a release of its storage on every call), this reads a native string in place.
    @inlinable
    public func withUTF8Bytes<Result>(_ body: (UnsafeRawBufferPointer) throws -> Result) rethrows -> Result {
        if let result = try utf8.withContiguousStorageIfAvailable({ try body(UnsafeRawBufferPointer($0)) }) {
            return result
        }
        var copy = self  // a bridged or foreign string: made native first
        return try copy.withUTF8 { try body(UnsafeRawBufferPointer($0)) }
    }
}
