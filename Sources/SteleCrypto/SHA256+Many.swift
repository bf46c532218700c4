import CSteleSHA256x8

extension SHA256 {
    /// Whether ``hash(each:into:)`` hashes eight messages side by side on this CPU: it has AVX2 and
    /// lacks the SHA extensions. With them, libcrypto hashes short messages one at a time faster
    /// (`StoreBenchmark --field-hashes` compares the two).
    public static let hashesEightAtOnce = stele_sha256_x8_available() == 1 && !cpuHasSHAExtensions

    /// Whether this CPU has the SHA extensions (x86 SHA-NI), which libcrypto uses for every hash.
    public static let cpuHasSHAExtensions = stele_cpu_has_sha_extensions() == 1

    /// The SHA-256 digest of each of several independent messages, written to `out` (32 bytes per
    /// message, in order; `out` must hold them all), by whichever of the two ways is faster on this
    /// CPU (``hashesEightAtOnce``). The digests are exactly those of hashing each alone.
    public func hash(each messages: UnsafeBufferPointer<UnsafeRawBufferPointer>, into out: UnsafeMutableRawBufferPointer) {
        hash(each: messages, into: out, sideBySide: Self.hashesEightAtOnce)
    }

    /// ``hash(each:into:)`` with the way chosen: `sideBySide` hashes eight messages at a time in the
    /// lanes of vector registers wherever the CPU has AVX2 (else one at a time), so that tests and
    /// benchmarks can run both ways on any machine.
    public func hash(each messages: UnsafeBufferPointer<UnsafeRawBufferPointer>, into out: UnsafeMutableRawBufferPointer, sideBySide: Bool) {
        precondition(out.count >= messages.count * SHA256Digest.byteCount, "the output buffer is too small")
        var start = 0
        while start < messages.count {
            let count = min(8, messages.count - start)
            // Fewer than three messages are cheaper one at a time than in a mostly idle vector.
            if count < 3 || !sideBySide || !hashEight(messages, start, count, out) {
                for i in start..<start + count { hash(messages[i], into: out.baseAddress! + 32 * i) }
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
