import NIOCore
import Testing

@testable import SteleServer

@Suite("LineSplitter: request lines from a byte stream, however it is cut into reads")
struct LineSplitterTests {
    /// What the splitter handed over: each line's text, or nil for an oversized line.
    private static func split(_ reads: [String], maximumLength: Int = 16, finish: Bool = false) -> [String?] {
        var splitter = LineSplitter(maximumLength: maximumLength)
        var pieces: [String?] = []
        let collect = { (piece: LineSplitter.Piece) in
            switch piece {
            case .line(let bytes): pieces.append(String(buffer: bytes))
            case .oversized: pieces.append(nil)
            }
        }
        for read in reads { splitter.split(ByteBuffer(string: read), collect) }
        if finish { splitter.finish(collect) }
        return pieces
    }

    @Test("every cut of a stream into two reads yields the same lines")
    func linesSurviveEveryCut() {
        let stream = "{\"a\":1}\n\n{\"op\":\"ping\"}\r\nxyz\n"
        let whole = Self.split([stream])
        #expect(whole == ["{\"a\":1}", "", "{\"op\":\"ping\"}", "xyz"])
        for cut in 0...stream.utf8.count {
            let bytes = Array(stream.utf8)
            let reads = [String(decoding: bytes[..<cut], as: UTF8.self), String(decoding: bytes[cut...], as: UTF8.self)]
            #expect(Self.split(reads) == whole, "cut at \(cut)")
        }
    }

    @Test("a line longer than the limit is reported once and skipped up to its newline, in one read or many")
    func oversizedLineIsSkipped() {
        let long = String(repeating: "x", count: 40)
        #expect(Self.split(["a\n\(long)\nb\n"]) == ["a", nil, "b"])
        #expect(Self.split(["a\n" + long.prefix(10), String(long.dropFirst(10)), "\nb\n"]) == ["a", nil, "b"])
        #expect(Self.split([String(long.prefix(15)), String(long.dropFirst(15)) + "\nb\n"]) == [nil, "b"])
        // Exactly at the limit is accepted; one byte more is not.
        #expect(Self.split([String(repeating: "y", count: 16) + "\n", String(repeating: "z", count: 17) + "\n"])
            == [String(repeating: "y", count: 16), nil])
    }

    @Test("at the end of the stream a final line without a newline is still a request, and an oversized one is reported")
    func finalLineWithoutNewline() {
        #expect(Self.split(["a\nlast"], finish: true) == ["a", "last"])
        #expect(Self.split(["a\nlast"], finish: false) == ["a"])
        #expect(Self.split(["a\n" + String(repeating: "x", count: 40)], finish: true) == ["a", nil])
        #expect(Self.split(["a\n"], finish: true) == ["a"])
    }
}
