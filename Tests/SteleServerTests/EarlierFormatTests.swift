import Foundation
import SteleTestSupport
import Testing

/// `Tests/Fixtures/store-fa11775`: a store and journal written by the daemon at commit fa11775 (the
/// last before the one-writer rework), killed with SIGKILL while its journal held 16 acknowledged
/// entries the store had not committed (26 entries in all, origin `fixture/main-fa11775`).
@Suite("A store and journal written by an earlier version")
struct EarlierFormatTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/store-fa11775").path

    @Test("open, recover the journaled entries, verify, and continue the chain under the current code")
    func earlierStoreRecoversAndContinues() throws {
        let root = TemporaryDirectory("stele-daemon")
        let data = root.appending("data")
        try FileManager.default.createDirectory(atPath: data, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        for name in ["data.mdb", "journal"] {
            try FileManager.default.copyItem(atPath: Self.fixture + "/" + name, toPath: data + "/" + name)
        }
        let verify = try SteleBinary.run(["verify", "--data", data])
        #expect(verify.status == 0, "\(verify.output)")
        #expect(verify.output.contains("OK: 26 entries, root QTY76FICgGGYrSkZni0+oVslVKhFOF3pSfLKV2CQ84I="), "\(verify.output)")
        let last = try SteleBinary.run(["query", "--data", data, "--subject", "user:7"])
        #expect(last.output.contains("account.locked"), "\(last.output)")

        // The fixture's signing key is not kept (keys are never committed): the chain continues
        // through the store's writer directly.
        let answer = try SteleBinary.run(
            ["ingest", "--data", data], input: #"{"id":"next","kind":"login.succeeded","actor":"user:1","subject":"user:1"}"# + "\n")
        #expect(answer.output.contains(#""seq":26"#), "\(answer.output)")
        let after = try SteleBinary.run(["verify", "--data", data])
        #expect(after.status == 0 && after.output.contains("OK: 27 entries"), "\(after.output)")
    }
}
