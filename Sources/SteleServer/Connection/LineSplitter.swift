import Glibc
import NIOCore

/// Splits a connection's byte stream into request lines, with a hard cap on line length.
///
/// Lines are handed over as slices of the buffer the socket was read into; only a line that spans
/// two reads is copied. Hand-written because NIO's `LineBasedFrameDecoder` has no limit: capped from
/// outside (`ByteToMessageHandler`), it fails the whole connection on an oversized line, where
/// Stele answers `line_too_long` for that line and keeps the connection usable.
struct LineSplitter {
    /// What the stream holds next.
    enum Piece {
        /// A complete line without its newline (or a trailing carriage return).
        case line(ByteBuffer)
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
        let base = buffer.readerIndex
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
                    let end = newline > start && bytes[newline - 1] == 0x0D ? newline - 1 : newline
                    handle(.line(buffer.getSlice(at: base + start, length: end - start)!))
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
            handle(.line(Self.line(partial)))
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
        handle(.line(Self.line(partial)))
        // Keeps a small buffer for the next spanning line; drops one grown for a long line.
        partial.removeAll(keepingCapacity: partial.capacity <= 4096)
    }

    private static func newline(in bytes: UnsafeRawBufferPointer, from start: Int) -> Int? {
        // memchr: vectorized in glibc, several times faster than a byte loop over long reads.
        guard start < bytes.count, let found = memchr(bytes.baseAddress! + start, 0x0A, bytes.count - start) else { return nil }
        return UnsafeRawPointer(found) - bytes.baseAddress!
    }

    /// A copied line, without a trailing carriage return (CRLF line endings are tolerated).
    private static func line(_ bytes: [UInt8]) -> ByteBuffer {
        ByteBuffer(bytes: bytes.last == 0x0D ? bytes.dropLast() : bytes[...])
    }
}
