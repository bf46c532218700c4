import Foundation
import Glibc
@testable import SteleStore
import SteleTestSupport
import Testing

/// A writer that releases written pages leaves the store file's older pages out of the page cache
/// (`Specs/store.md`, "Processes"); nothing it stores changes.
@Suite("Written store pages leave the page cache")
struct PageCacheReleaseTests {
    /// False where temporary files live in memory (tmpfs): there a page cannot leave the cache.
    static let onDisk: Bool = {
        let path = TemporaryDirectory().path
        let mounts = (try? String(contentsOfFile: "/proc/mounts", encoding: .utf8)) ?? ""
        // The mount holding the path: the longest mount point it lies under.
        var best: (point: String, type: String) = ("", "")
        for line in mounts.split(separator: "\n") {
            let fields = line.split(separator: " ").map(String.init)
            guard fields.count > 2 else { continue }
            let point = fields[1]
            let holds = point == "/" || path.hasPrefix(point + "/")
            if holds && point.count > best.point.count { best = (point, fields[2]) }
        }
        return best.type != "tmpfs" && best.type != "ramfs" && !best.type.isEmpty
    }()

    /// The fraction of the first `bytes` of the file at `path` that is in the page cache.
    static func cached(_ path: String, bytes: Int) throws -> Double {
        let fd = open(path, O_RDONLY)
        try #require(fd >= 0)
        defer { close(fd) }
        let map = try #require(mmap(nil, bytes, PROT_READ, MAP_SHARED, fd, 0))
        try #require(map != MAP_FAILED)
        defer { munmap(map, bytes) }
        let pages = (bytes + 4095) / 4096
        var vector = [UInt8](repeating: 0, count: pages)
        try #require(mincore(map, bytes, &vector) == 0)
        return Double(vector.filter { $0 & 1 == 1 }.count) / Double(pages)
    }

    /// A store of 8,000 logins (about 8 MB) appended in batches of 1,000 with a 1 MiB cached tail.
    static func store(releasing: Bool) throws -> (TemporaryDirectory, used: Int) {
        let dir = TemporaryDirectory()
        var options = Ledger.Options()
        options.createWithOrigin = "stele.test/log"
        options.releasesWrittenPages = releasing
        options.cachedTail = 1 << 20
        let ledger = try Ledger(path: dir.path, options: options)
        let writer = try LedgerWriter(ledger: ledger)
        for batch in 0..<8 { _ = try writer.append((0..<1000).map { Fixture.login(batch * 1000 + $0) }) }
        try writer.close()
        return (dir, ledger.usedBytes)
    }

    @Test("pages written far behind the end of the store leave the cache, or stay when the writer keeps them; the store verifies either way", .enabled(if: onDisk))
    func writtenPagesAreReleased() throws {
        let (released, used) = try Self.store(releasing: true)
        let (kept, _) = try Self.store(releasing: false)
        #expect(used > 6 << 20)
        // The first half of the file lies well behind the 1 MiB tail.
        let releasedShare = try Self.cached(released.appending("data.mdb"), bytes: used / 2)
        let keptShare = try Self.cached(kept.appending("data.mdb"), bytes: used / 2)
        #expect(releasedShare < 0.5, "\(releasedShare)")
        #expect(keptShare > 0.9, "\(keptShare)")
        #expect(try Fixture.readOnly(released).verifyIntegrity().isSound)
        #expect(try Fixture.readOnly(released).size == 8000)
    }
}
