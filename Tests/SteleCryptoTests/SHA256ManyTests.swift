import Foundation
import SteleCrypto
import Testing

@Suite("SHA-256 of many messages at once")
struct SHA256ManyTests {
    /// Digests from `hash(each:into:sideBySide:)` for `messages`.
    static func many(_ messages: [[UInt8]], sideBySide: Bool) -> [SHA256Digest] {
        let sha = SHA256()
        var out = [UInt8](repeating: 0, count: 32 * messages.count)
        var buffers: [UnsafeRawBufferPointer] = []
        let storage = messages.map { message -> UnsafeMutableRawBufferPointer in
            let buffer = UnsafeMutableRawBufferPointer.allocate(byteCount: max(1, message.count), alignment: 1)
            buffer.copyBytes(from: message)
            return buffer
        }
        defer { storage.forEach { $0.deallocate() } }
        for (buffer, message) in zip(storage, messages) { buffers.append(UnsafeRawBufferPointer(rebasing: buffer[0..<message.count])) }
        buffers.withUnsafeBufferPointer { list in out.withUnsafeMutableBytes { sha.hash(each: list, into: $0, sideBySide: sideBySide) } }
        return (0..<messages.count).map { SHA256Digest(bytes: out[32 * $0..<32 * ($0 + 1)])! }
    }

    @Test("every padding boundary and group size gives libcrypto's digests, side by side or one at a time", arguments: [true, false])
    func matchesOneAtATime(sideBySide: Bool) {
        var generator = SystemRandomNumberGenerator()
        let boundaries = [0, 1, 3, 31, 32, 54, 55, 56, 57, 63, 64, 65, 118, 119, 120, 121, 127, 128, 129, 191, 192, 200, 447, 448, 1000]
        for groupSize in 1...19 {
            let messages = (0..<groupSize).map { i -> [UInt8] in
                let length = i % 2 == 0 ? boundaries[(i * 7 + groupSize) % boundaries.count] : Int.random(in: 0...300, using: &generator)
                return (0..<length).map { _ in UInt8.random(in: 0...255, using: &generator) }
            }
            let expected = messages.map { SHA256.hash($0) }
            #expect(Self.many(messages, sideBySide: sideBySide) == expected, "group of \(groupSize)")
        }
        for length in boundaries {
            let messages = (0..<8).map { lane in [UInt8](repeating: UInt8(lane), count: length) }
            #expect(Self.many(messages, sideBySide: sideBySide) == messages.map { SHA256.hash($0) }, "eight messages of \(length) bytes")
        }
    }

    @Test("side by side is chosen exactly on x86 CPUs with AVX2 and without the SHA extensions (per /proc/cpuinfo)")
    func chosenByCPU() throws {
        let info = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        guard let flags = info.split(separator: "\n").first(where: { $0.hasPrefix("flags") }) else { return }  // not x86
        let names = Set(flags.split(separator: " ").map(String.init))
        #expect(SHA256.cpuHasSHAExtensions == names.contains("sha_ni"))
        #expect(SHA256.hashesEightAtOnce == (names.contains("avx2") && !names.contains("sha_ni")))
    }

    @Test("the FIPS 180-4 one-block and two-block examples, side by side")
    func publishedExamples() {
        let abc = Array("abc".utf8)
        let twoBlocks = Array("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq".utf8)
        let digests = Self.many([abc, twoBlocks, abc, [], twoBlocks], sideBySide: true)
        #expect(digests[0].description == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
        #expect(digests[1].description == "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1")
        #expect(digests[3].description == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")
        #expect(digests[4] == digests[1])
    }
}
