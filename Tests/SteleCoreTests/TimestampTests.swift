import SteleCore
import Testing

@Suite("RFC 3339 timestamps")
struct TimestampTests {
    @Test("known instants print with six fraction digits in UTC", arguments: [
        (Int64(0), "1970-01-01T00:00:00.000000Z"),
        (Int64(1), "1970-01-01T00:00:00.000001Z"),
        (Int64(-1), "1969-12-31T23:59:59.999999Z"),
        (Int64(951_782_400_000_000), "2000-02-29T00:00:00.000000Z"),
        (Int64(1_795_314_271_123_456), "2026-11-22T02:24:31.123456Z"),
        (Timestamp.maximum.microseconds, "9999-12-31T23:59:59.999999Z"),
        (Timestamp.minimum.microseconds, "0001-01-01T00:00:00.000000Z"),
    ])
    func formatting(micros: Int64, text: String) {
        #expect(Timestamp(microseconds: micros).description == text)
        #expect(Timestamp(rfc3339: text)?.microseconds == micros)
    }

    @Test("other RFC 3339 forms parse to the same instant", arguments: [
        ("2026-11-22T03:24:31.123456+01:00", "2026-11-22T02:24:31.123456Z"),
        ("2026-11-21T21:24:31-05:00", "2026-11-22T02:24:31.000000Z"),
        ("2026-11-22t02:24:31.5z", "2026-11-22T02:24:31.500000Z"),
        ("2026-11-22T02:24:31.123456000Z", "2026-11-22T02:24:31.123456Z"),
    ])
    func alternativeForms(input: String, canonical: String) {
        #expect(Timestamp(rfc3339: input)?.description == canonical)
    }

    @Test("invalid times are refused", arguments: [
        "", "2026-11-22", "2026-11-22T02:24:31", "2026-13-01T00:00:00Z", "2026-02-29T00:00:00Z",
        "2026-11-22T24:00:00Z", "2026-11-22T23:59:60Z", "2026-11-22T02:24:31.1234567Z", "2026-11-22T02:24:31.Z",
        "0000-01-01T00:00:00Z", "2026-11-22T02:24:31+1:00", "2026-11-22T02:24:31Z ", " 2026-11-22T02:24:31Z",
    ])
    func refusals(text: String) {
        #expect(Timestamp(rfc3339: text) == nil)
    }
}
