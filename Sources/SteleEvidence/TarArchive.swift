/// POSIX ustar archives of regular files: what a bundle's `.tar` holds. Hand-written: no package
/// in the mirror reads or writes tar, and a bundle needs only regular files with short names.
public enum TarArchive {
    /// An archive of `files` (name → bytes), in name order, each mode 0644, mtime `modified`.
    public static func archive(_ files: [String: [UInt8]], modified: Int64) throws(EvidenceError) -> [UInt8] {
        var out: [UInt8] = []
        for name in files.keys.sorted() {
            let bytes = files[name]!
            guard name.utf8.count <= 100 else { throw EvidenceError(.notABundle, "the file name \(name) is longer than ustar's 100 bytes") }
            var header = [UInt8](repeating: 0, count: 512)
            func put(_ text: String, at offset: Int) { for (i, b) in text.utf8.enumerated() { header[offset + i] = b } }
            func octal(_ value: Int64, width: Int) -> String {
                let digits = String(value, radix: 8)
                return String(repeating: "0", count: max(0, width - 1 - digits.count)) + digits
            }
            put(name, at: 0)
            put(octal(0o644, width: 8), at: 100)
            put(octal(0, width: 8), at: 108)
            put(octal(0, width: 8), at: 116)
            put(octal(Int64(bytes.count), width: 12), at: 124)
            put(octal(modified, width: 12), at: 136)
            put("        ", at: 148)
            header[156] = UInt8(ascii: "0")
            put("ustar", at: 257)
            put("00", at: 263)
            let sum = header.reduce(0) { $0 + Int64($1) }
            put(octal(sum, width: 7), at: 148)
            header[155] = UInt8(ascii: " ")
            out += header
            out += bytes
            out += [UInt8](repeating: 0, count: (512 - bytes.count % 512) % 512)
        }
        out += [UInt8](repeating: 0, count: 1024)
        return out
    }

    /// The regular files of a ustar (or GNU/pax-free POSIX) archive; refuses other entry types,
    /// names with `..` or a leading `/`, bad checksums and truncated data.
    public static func files(in archive: [UInt8]) throws(EvidenceError) -> [String: [UInt8]] {
        var files: [String: [UInt8]] = [:]
        var offset = 0
        while offset + 512 <= archive.count {
            let header = archive[offset..<offset + 512]
            if header.allSatisfy({ $0 == 0 }) { return files }
            func field(_ start: Int, _ length: Int) -> String {
                let bytes = header[(offset + start)..<(offset + start + length)].prefix { $0 != 0 }
                return String(decoding: bytes, as: UTF8.self)
            }
            // An octal field: digits, padded with spaces or NULs on either side.
            func number(_ start: Int, _ length: Int) -> Int? {
                var value = 0
                var digits = 0
                for byte in header[(offset + start)..<(offset + start + length)] {
                    if byte >= 0x30 && byte <= 0x37 {
                        value = value * 8 + Int(byte - 0x30)
                        digits += 1
                    } else if byte == 0x20 || byte == 0 {
                        if digits > 0 { break }
                    } else {
                        return nil
                    }
                }
                return digits > 0 ? value : nil
            }
            var sum = 0
            for (i, b) in header.enumerated() { sum += (148..<156).contains(i) ? 32 : Int(b) }
            guard number(148, 8) == sum else {
                throw EvidenceError(.notABundle, offset == 0 ? "not a bundle: neither a directory nor a tar archive" : "the archive has a damaged header at byte \(offset)")
            }
            let prefix = field(345, 155)
            let name = prefix.isEmpty ? field(0, 100) : prefix + "/" + field(0, 100)
            let type = header[offset + 156]
            guard let size = number(124, 12) else { throw EvidenceError(.notABundle, "the archive entry \(name) has no size") }
            let dataStart = offset + 512
            guard dataStart + size <= archive.count else { throw EvidenceError(.notABundle, "the archive is truncated in \(name)") }
            switch type {
            case UInt8(ascii: "0"), 0:
                guard !name.hasPrefix("/"), !name.split(separator: "/").contains("..") else {
                    throw EvidenceError(.notABundle, "the archive entry \(name) escapes the bundle")
                }
                let clean = name.hasPrefix("./") ? String(name.dropFirst(2)) : name
                files[clean] = Array(archive[dataStart..<dataStart + size])
            case UInt8(ascii: "5"):
                break  // directories: their files carry their paths
            default:
                throw EvidenceError(.notABundle, "the archive entry \(name) is not a regular file or directory")
            }
            offset = dataStart + (size + 511) / 512 * 512
        }
        throw EvidenceError(.notABundle, "the archive ends without its end-of-archive blocks")
    }
}
