/// An instant with microsecond precision, printed as RFC 3339 in UTC with exactly six fraction
/// digits (`2026-11-22T02:24:31.123456Z`), the only form Stele writes.
public struct Timestamp: Hashable, Sendable, Comparable, CustomStringConvertible {
    /// Microseconds since 1970-01-01T00:00:00Z.
    public var microseconds: Int64

    /// The instant `microseconds` after the Unix epoch.
    public init(microseconds: Int64) {
        self.microseconds = microseconds
    }

    /// The earliest instant Stele can print (year 0000 is excluded; RFC 3339 years are 0001–9999).
    public static let minimum = Timestamp(microseconds: -62_135_596_800_000_000)
    /// The latest instant Stele can print.
    public static let maximum = Timestamp(microseconds: 253_402_300_799_999_999)

    public static func < (lhs: Timestamp, rhs: Timestamp) -> Bool { lhs.microseconds < rhs.microseconds }

    /// The instant `delta` microseconds later.
    public func adding(microseconds delta: Int64) -> Timestamp {
        Timestamp(microseconds: microseconds + delta)
    }

    /// The RFC 3339 text.
    public var description: String { String(decoding: rfc3339Bytes, as: UTF8.self) }

    /// The RFC 3339 text as UTF-8 bytes (27 bytes).
    public var rfc3339Bytes: [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(27)
        write(to: &out)
        return out
    }

    /// Appends the RFC 3339 text to `out`.
    public func write(to out: inout [UInt8]) {
        // Filled on the stack and appended in one copy.
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: Self.textLength) { text in
            fill(text)
            out.append(contentsOf: UnsafeBufferPointer(text))
        }
    }

    /// Writes the RFC 3339 text.
    func write(to out: inout ByteWriter) {
        // Straight into the writer's memory, which its caller sized for the text.
        fill(UnsafeMutableBufferPointer(start: out.cursor, count: Self.textLength))
        out.cursor += Self.textLength
    }

    /// Bytes in the RFC 3339 text: `YYYY-MM-DDTHH:MM:SS.ffffffZ`.
    static let textLength = 27

    private func fill(_ text: UnsafeMutableBufferPointer<UInt8>) {
        let (days, remainder) = floorDivide(microseconds, 86_400_000_000)
        let (year, month, day) = Self.civil(fromDays: days)
        let seconds = remainder / 1_000_000
        Self.digits(year, text, 0, 4); text[4] = UInt8(ascii: "-")
        Self.digits(month, text, 5, 2); text[7] = UInt8(ascii: "-")
        Self.digits(day, text, 8, 2); text[10] = UInt8(ascii: "T")
        Self.digits(seconds / 3600, text, 11, 2); text[13] = UInt8(ascii: ":")
        Self.digits(seconds / 60 % 60, text, 14, 2); text[16] = UInt8(ascii: ":")
        Self.digits(seconds % 60, text, 17, 2); text[19] = UInt8(ascii: ".")
        Self.digits(remainder % 1_000_000, text, 20, 6); text[26] = UInt8(ascii: "Z")
    }

    private static func digits(_ value: Int64, _ text: UnsafeMutableBufferPointer<UInt8>, _ start: Int, _ width: Int) {
        // Right to left; dividing by the constant 10 compiles to a multiply.
        var v = UInt64(value)
        for i in stride(from: start + width - 1, through: start, by: -1) {
            text[i] = UInt8(ascii: "0") &+ UInt8(truncatingIfNeeded: v % 10)
            v /= 10
        }
    }

    /// Parses any RFC 3339 `date-time` (§5.6): `T` or `t` separator, `Z`/`z` or a numeric offset,
    /// 0 to 9 fraction digits. Digits past the sixth must be zero (Stele never rounds a time).
    /// Leap seconds (`:60`) are refused. Returns nil if `text` is not such a string.
    public init?(rfc3339 text: String) {
        let b = Array(text.utf8)
        guard b.count >= 20 else { return nil }
        func number(_ start: Int, _ count: Int) -> Int64? {
            guard start + count <= b.count else { return nil }
            var v: Int64 = 0
            for i in start..<start + count {
                guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) else { return nil }
                v = v * 10 + Int64(b[i] - UInt8(ascii: "0"))
            }
            return v
        }
        guard let year = number(0, 4), b[4] == UInt8(ascii: "-"), let month = number(5, 2),
            b[7] == UInt8(ascii: "-"), let day = number(8, 2), b[10] == UInt8(ascii: "T") || b[10] == UInt8(ascii: "t"),
            let hour = number(11, 2), b[13] == UInt8(ascii: ":"), let minute = number(14, 2),
            b[16] == UInt8(ascii: ":"), let second = number(17, 2)
        else { return nil }
        guard year >= 1, (1...12).contains(month), day >= 1, day <= Self.daysIn(month: month, year: year),
            hour <= 23, minute <= 59, second <= 59
        else { return nil }
        var i = 19
        var micros: Int64 = 0
        if i < b.count, b[i] == UInt8(ascii: ".") {
            i += 1
            let start = i
            while i < b.count, (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(b[i]) {
                let digit = Int64(b[i] - UInt8(ascii: "0"))
                if i - start < 6 { micros = micros * 10 + digit } else if digit != 0 { return nil }
                i += 1
            }
            let count = i - start
            guard count >= 1, count <= 9 else { return nil }
            for _ in count..<max(count, 6) { micros *= 10 }
        }
        guard i < b.count else { return nil }
        var offsetMinutes: Int64 = 0
        switch b[i] {
        case UInt8(ascii: "Z"), UInt8(ascii: "z"):
            i += 1
        case UInt8(ascii: "+"), UInt8(ascii: "-"):
            guard let oh = number(i + 1, 2), i + 3 < b.count, b[i + 3] == UInt8(ascii: ":"),
                let om = number(i + 4, 2), oh <= 23, om <= 59
            else { return nil }
            offsetMinutes = (oh * 60 + om) * (b[i] == UInt8(ascii: "+") ? 1 : -1)
            i += 6
        default:
            return nil
        }
        guard i == b.count else { return nil }
        let days = Self.days(fromCivil: year, month, day)
        let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offsetMinutes * 60
        self.microseconds = seconds * 1_000_000 + micros
    }

    /// Days since 1970-01-01 of a proleptic Gregorian date (era-based civil calendar arithmetic).
    static func days(fromCivil year: Int64, _ month: Int64, _ day: Int64) -> Int64 {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let shiftedMonth = month > 2 ? month - 3 : month + 9
        let dayOfYear = (153 * shiftedMonth + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// The proleptic Gregorian date `days` after 1970-01-01.
    static func civil(fromDays days: Int64) -> (Int64, Int64, Int64) {
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let shiftedMonth = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * shiftedMonth + 2) / 5 + 1
        let month = shiftedMonth < 10 ? shiftedMonth + 3 : shiftedMonth - 9
        return (yearOfEra + era * 400 + (month <= 2 ? 1 : 0), month, day)
    }

    static func daysIn(month: Int64, year: Int64) -> Int64 {
        switch month {
        case 2: return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }
}

private func floorDivide(_ a: Int64, _ b: Int64) -> (Int64, Int64) {
    let q = a / b
    let r = a % b
    return r < 0 ? (q - 1, r + b) : (q, r)
}

#if canImport(Glibc)
import Glibc
#endif

extension Timestamp {
    /// The system's real-time clock, truncated to microseconds.
    public static func now() -> Timestamp {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Timestamp(microseconds: Int64(spec.tv_sec) * 1_000_000 + Int64(spec.tv_nsec) / 1000)
    }
}
