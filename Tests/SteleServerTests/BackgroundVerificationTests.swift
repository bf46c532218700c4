import Foundation
import SteleClient
import SteleTestSupport
import Testing

@Suite("stele serve: background verification")
struct BackgroundVerificationTests {
    @Test("an entry altered on disk under a running daemon is found by its scheduled re-verification, in stats and in its log")
    func tamperedEntryFound() throws {
        let daemon = try DaemonProcess(config: #"{"verify_interval_seconds": 1, "verify_cpu_percent": 50}"#)
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<20 {
            let ip = n == 7 ? "198.51.100.77" : "203.0.113.7"
            _ = try connection.request(#"{"id":"v\#(n)","kind":"login.succeeded","actor":"user:1","subject":"user:1","attrs":{"ip":"\#(ip)"}}"#)
        }
        func verification() throws -> [String: Any] {
            let stats = try #require(try reply(connection.request(#"{"op":"stats"}"#))["stats"] as? [String: Any])
            return try #require(stats["background_verify"] as? [String: Any])
        }
        // A first check finds the store sound.
        for _ in 0..<100 where (try verification()["runs"] as? Int ?? 0) < 1 { usleep(50_000) }
        #expect(try verification()["sound"] as? Bool == true)

        // One body value changed in the store file itself, as someone with write access could:
        // every copy of it, since LMDB keeps superseded versions of a page in free pages.
        let path = daemon.data + "/data.mdb"
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        let copies = bytes.ranges(of: Data("198.51.100.77".utf8))
        try #require(!copies.isEmpty)
        let handle = try #require(FileHandle(forUpdatingAtPath: path))
        for copy in copies {
            try handle.seek(toOffset: UInt64(copy.upperBound - 1))
            try handle.write(contentsOf: Data("8".utf8))
        }
        try handle.close()

        let runs = try verification()["runs"] as? Int ?? 0
        for _ in 0..<600 where (try verification()["runs"] as? Int ?? 0) < runs + 2 { usleep(50_000) }
        let found = try verification()
        #expect(found["sound"] as? Bool == false, "\(found)")
        let problems = (found["problems"] as? [String] ?? []).joined(separator: "\n")
        #expect(problems.contains("entry 8"), "\(problems)")
        #expect(daemon.stop() == 0)
        #expect(daemon.log.contains("background verification found a problem"), "\(daemon.log)")
    }
}
