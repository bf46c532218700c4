import SteleClient
import Testing

@Suite("stele serve: memory")
struct DaemonMemoryTests {
    @Test("the daemon's allocations go through jemalloc, and stats report how much memory they hold")
    func statsReportAllocatorMemory() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        for n in 0..<200 { _ = try connection.request(login("memory-\(n)")) }
        let stats = try reply(connection.request(#"{"op":"stats"}"#))["stats"] as! [String: Any]
        let memory = try #require(stats["memory"] as? [String: Any], "\(stats)")
        #expect((memory["allocator"] as? String)?.hasPrefix("jemalloc 5.") == true, "\(memory)")
        // Were glibc's malloc serving the process, jemalloc would count next to nothing allocated.
        let allocated = try #require(memory["allocated_bytes"] as? Int)
        let resident = try #require(memory["resident_bytes"] as? Int)
        #expect(allocated > 1 << 20, "\(memory)")
        #expect(resident >= allocated, "\(memory)")
    }
}
