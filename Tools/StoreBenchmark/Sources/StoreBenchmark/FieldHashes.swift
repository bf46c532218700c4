// `--field-hashes N`: the salted body-field digests of one event (`SHA256.hash(each:into:)`), hashed
// side by side in AVX2 lanes against one at a time by libcrypto, for three and seven field-sized
// messages, N events each, in alternating rounds: which SteleCrypto should use on this CPU
// (`SHA256.hashesEightAtOnce` says which it does).
import SteleCrypto

enum FieldHashes {
    static func run(events: Int, rounds: Int) {
        // salt (16) ‖ name ‖ 0x00 ‖ canonical value, sized like the load generator's login fields.
        let lengths = [40, 45, 60, 110, 52, 48, 70]
        let storage = lengths.map { length in (0..<length).map { UInt8(truncatingIfNeeded: $0 &* 31 &+ length) } }
        let sha = SHA256()
        var out = [UInt8](repeating: 0, count: 32 * lengths.count)
        print("field digests: \(events) events, medians of \(rounds) alternating rounds (µs per event); SHA extensions: \(SHA256.cpuHasSHAExtensions), side by side chosen: \(SHA256.hashesEightAtOnce)")
        for count in [3, 7] {
            var sideBySide: [Double] = [], oneAtATime: [Double] = []
            withMessages(storage.prefix(count).map { $0 }) { messages in
                out.withUnsafeMutableBytes { digests in
                    for round in 0..<rounds {
                        for variant in (round % 2 == 0 ? [true, false] : [false, true]) {
                            let time = seconds { for _ in 0..<events { sha.hash(each: messages, into: digests, sideBySide: variant) } }
                            if variant { sideBySide.append(time) } else { oneAtATime.append(time) }
                        }
                    }
                }
            }
            let (a, b) = (median(sideBySide) / Double(events) * 1e6, median(oneAtATime) / Double(events) * 1e6)
            print(String(format: "  %d fields: side by side %.3f µs, one at a time %.3f µs; side by side / one at a time = %.2f", count, a, b, a / b))
        }
    }

    private static func withMessages(_ messages: [[UInt8]], _ body: (UnsafeBufferPointer<UnsafeRawBufferPointer>) -> Void) {
        let buffers = messages.map { message -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: message.count, alignment: 1)
            buffer.copyBytes(from: message)
            return buffer
        }
        defer { buffers.forEach { $0.deallocate() } }
        buffers.map { UnsafeRawBufferPointer($0) }.withUnsafeBufferPointer(body)
    }
}
