import Glibc
import NIOCore

/// Splits a connection's byte stream into request lines, with a hard cap on line length.
///
/// Lines are handed over in place, in the buffer the socket was read into; only a line that spans
/// two reads is copied. NIO's `ByteToMessageHandler` would pass each line on as a message of its
/// own (a boxed value, a hop through the pipeline and a dynamic cast per line: about a tenth of the
/// event loops' time at full load), and its `LineBasedFrameDecoder` has no limit: capped from
/// outside, it fails the whole connection on an oversized line, where Stele answers
/// `line_too_long` for that line and keeps the connection usable.
struct LineSplitter {
    /// What the stream holds next.
    enum Piece {
        /// A complete line without its newline (or a trailing carriage return). The bytes are
        /// valid only while the handler runs.
        case line(UnsafeRawBufferPointer)
        /// A line longer than the limit; its bytes were discarded.
        case oversized
    }

    /// The longest line accepted, in bytes, carriage return included.
    let maximumLength: Int
    /// The start of a line whose newline has not arrived yet (at most `maximumLength` bytes).
    private var partial: [UInt8] = []
    /// The current line exceeded the limit: its bytes are skipped up to its newline.
    private var discarding = false

    /// A splitter refusing lines longer than `maximumLength` bytes.
    init(maximumLength: Int) {
        self.maximumLength = maximumLength
    }

    /// True while part of a line has been received without its newline.
    var hasPartialLine: Bool { discarding || !partial.isEmpty }

    /// Hands every line completed by `buffer` to `handle`, in order, and keeps the rest.
    mutating func split(_ buffer: ByteBuffer, _ handle: (Piece) -> Void) {
        buffer.withUnsafeReadableBytes { bytes in
            var start = 0
            if hasPartialLine {
                guard let newline = Self.newline(in: bytes, from: 0) else {
                    keep(UnsafeRawBufferPointer(rebasing: bytes[...]))
                    return
                }
                complete(with: UnsafeRawBufferPointer(rebasing: bytes[..<newline]), handle)
                start = newline + 1
            }
            while start < bytes.count, let newline = Self.newline(in: bytes, from: start) {
                let length = newline - start
                if length > maximumLength {
                    handle(.oversized)
                } else {
                    handle(.line(Self.trimmingReturn(UnsafeRawBufferPointer(rebasing: bytes[start..<newline]))))
                }
                start = newline + 1
            }
            if start < bytes.count { keep(UnsafeRawBufferPointer(rebasing: bytes[start...])) }
        }
    }

    /// At the end of the stream: hands over a final line that has no newline, if any.
    mutating func finish(_ handle: (Piece) -> Void) {
        guard hasPartialLine else { return }
        if discarding {
            discarding = false
            handle(.oversized)
        } else {
            partial.withUnsafeBytes { handle(.line(Self.trimmingReturn($0))) }
            partial.removeAll()
        }
    }

    /// Keeps the start of a line, or starts discarding it once it is too long.
    private mutating func keep(_ bytes: UnsafeRawBufferPointer) {
        guard !discarding else { return }
        if partial.count + bytes.count > maximumLength {
            discarding = true
            partial.removeAll()
        } else {
            partial.append(contentsOf: bytes)
        }
    }

    /// Ends the line begun in an earlier read with `tail`, the bytes before its newline.
    private mutating func complete(with tail: UnsafeRawBufferPointer, _ handle: (Piece) -> Void) {
        if discarding || partial.count + tail.count > maximumLength {
            discarding = false
            partial.removeAll()
            handle(.oversized)
            return
        }
        partial.append(contentsOf: tail)
        partial.withUnsafeBytes { handle(.line(Self.trimmingReturn($0))) }
        // Keeps a small buffer for the next spanning line; drops one grown for a long line.
        partial.removeAll(keepingCapacity: partial.capacity <= 4096)
    }

    private static func newline(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        // memchr: vectorized in glibc, several times faster than a byte loop over long reads.
        guard start < bytes.count, let found = memchr(bytes.baseAddress! + start, 0x0A, bytes.count - start) else { return nil }
        return UnsafeRawPointer(found) - bytes.baseAddress!
    }

    /// Tolerates CRLF line endings.
    private static func trimmingReturn(_ line: UnsafeRawBufferPointer) -> UnsafeRawBufferPointer {
        guard let last = line.last, last == 0x0D else { return line }
        return UnsafeRawBufferPointer(rebasing: line.dropLast())
    }
}
