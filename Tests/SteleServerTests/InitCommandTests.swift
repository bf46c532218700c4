import Foundation
import SteleTestSupport
import Testing

/// `stele init` makes a log explicitly; `stele serve` never creates one (`docs/operations.md`).
@Suite("stele init: logs are created explicitly, once, with unique origins")
struct InitCommandTests {
    private func listing(_ root: TemporaryDirectory) -> [String] {
        (FileManager.default.enumerator(atPath: root.path)?.allObjects as? [String] ?? []).filter { !$0.hasPrefix("daemon-") }.sorted()
    }

    private func initialize(_ root: TemporaryDirectory, _ extra: [String] = []) throws -> (status: Int32, output: String) {
        try SteleBinary.run([
            "init", "--data", root.appending("data"), "--key", root.appending("key/signing.key"), "--checkpoints", root.appending("checkpoints"), "--json",
        ] + extra)
    }

    @Test("serve in a directory without a log refuses, says how to create one, and creates nothing: no key, no store, no checkpoint directory")
    func serveNeverCreates() throws {
        let root = TemporaryDirectory("stele-init")
        let before = listing(root)
        let daemon = try DaemonProcess(root: root, wait: false, initialize: false)
        #expect(daemon.waitForExit() == 2)
        #expect(daemon.log.contains("no log at") && daemon.log.contains("stele init"), "\(daemon.log)")
        #expect(listing(root) == before)
    }

    @Test("init creates the store, a private key and the checkpoint directory; a second init refuses the same data, key or checkpoints; origins given nowhere differ")
    func initOnce() throws {
        let root = TemporaryDirectory("stele-init")
        let created = try initialize(root)
        #expect(created.status == 0, "\(created.output)")
        let origin = try #require(try reply(created.output)["origin"] as? String)
        #expect(origin.hasPrefix("stele/") && origin.count > "stele/".count + 9)
        var info = stat()
        stat(root.appending("key/signing.key"), &info)
        #expect(info.st_mode & 0o777 == 0o600)
        stat(root.appending("data"), &info)
        #expect(info.st_mode & 0o777 == 0o700)
        // Each refusal names what is in the way and changes nothing.
        let before = listing(root)
        let again = try initialize(root)
        #expect(again.status == 2 && before == listing(root))
        let otherData = try SteleBinary.run(["init", "--data", root.appending("data2"), "--key", root.appending("key/signing.key"), "--checkpoints", root.appending("c2")])
        #expect(otherData.status == 2 && !FileManager.default.fileExists(atPath: root.appending("data2")))
        // The log serves, and a second log elsewhere gets another origin.
        let daemon = try DaemonProcess(root: root)
        #expect(daemon.stop() == 0)
        let second = TemporaryDirectory("stele-init")
        let other = try reply(try initialize(second).output)["origin"] as? String
        #expect(other != nil && other != origin)
        // serve --origin refuses a store of another log.
        let wrong = try SteleBinary.runKeepingErrors([
            "serve", "--data", second.appending("data"), "--key", second.appending("key/signing.key"), "--checkpoints", second.appending("checkpoints"),
            "--socket", second.appending("s.sock"), "--origin", origin,
        ])
        #expect(wrong.status == 2 && wrong.errors.contains("not \(origin)"), "\(wrong.errors)")
    }
}
