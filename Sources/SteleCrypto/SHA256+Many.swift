import CSteleSHA256x8

extension SHA256 {
    /// Whether ``hash(each:into:)`` runs eight messages side by side on this CPU (AVX2).
    public static let hashesEightAtOnce = stele_sha256_x8_available() == 1

    /// The SHA-256 digest of each of several independent messages, written to `out` (32 bytes per
    /// message, in order; `out` must hold them all). On CPUs with AVX2, messages are hashed eight at
    /// a time in the lanes of vector registers; the digests are exactly those of hashing each alone.
    public func hash(each messages: UnsafeBufferPointer<UnsafeRawBufferPointer>, into out: UnsafeMutableRawBufferPointer) {
        precondition(out.count >= messages.count * SHA256Digest.byteCount, "the output buffer is too small")
        var start = 0
        while start < messages.count {
            let count = min(8, messages.count - start)
            // Fewer than three messages are cheaper one at a time than in a mostly idle vector.
            if count < 3 || !Self.hashesEightAtOnce || !hashEight(messages, start, count, out) {
                for i in start..<start + count {
                    hash(messages[i]).withUnsafeBytes {
                        UnsafeMutableRawBufferPointer(rebasing: out[32 * i..<32 * (i + 1)]).copyMemory(from: $0)
                    }
                }
            }
            start += count
        }
    }

    private func hashEight(
        _ messages: UnsafeBufferPointer<UnsafeRawBufferPointer>, _ start: Int, _ count: Int, _ out: UnsafeMutableRawBufferPointer
    ) -> Bool {
        withUnsafeTemporaryAllocation(of: UnsafePointer<UInt8>?.self, capacity: 8) { pointers in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: 8) { lengths in
                // An empty message may have no base address; any valid pointer serves, as nothing is read.
                let empty = UnsafeRawPointer(out.baseAddress!).assumingMemoryBound(to: UInt8.self)
                for i in 0..<count {
                    let message = messages[start + i]
                    pointers[i] = message.baseAddress.map { $0.assumingMemoryBound(to: UInt8.self) } ?? empty
                    lengths[i] = message.count
                }
                let target = out.baseAddress!.advanced(by: 32 * start).assumingMemoryBound(to: UInt8.self)
                return stele_sha256_x8(pointers.baseAddress!, lengths.baseAddress!, Int32(count), target) == 0
            }
        }
    }
}
