import Foundation
import SteleTestSupport
import Testing

@Suite("stele verify exit codes")
struct VerifyCommandTests {
    @Test("0 for a sound store, 1 after tampering with the file, 2 when there is no store")
    func exitCodes() throws {
        let root = TemporaryDirectory("stele-verify")
        let data = root.appending("data")
        let input = (0..<20).map { i in
            #"{"id":"v\#(i)","kind":"consent.granted","subject":"user:\#(i)","attrs":{"purpose":"marketing.email","notice":"n1","method":"checkbox"}}"#
        }.joined(separator: "\n") + "\n"
        #expect(try SteleBinary.run(["ingest", "--data", data, "--origin", "stele.test/verify"], input: input).status == 0)
        let sound = try SteleBinary.run(["verify", "--data", data, "--json"])
        #expect(sound.status == 0)
        #expect(sound.output.contains(#""sound":true"#))
        #expect(sound.output.contains(#""tree_size":20"#))
        // Withdraw nothing, forge one purpose in place: the body no longer matches its commitment.
        let file = URL(fileURLWithPath: data + "/data.mdb")
        var bytes = try Data(contentsOf: file)
        let range = try #require(bytes.range(of: Data(#""value":"marketing.email""#.utf8)))
        bytes.replaceSubrange(range, with: Data(#""value":"marketing.emaiL""#.utf8))
        try bytes.write(to: file)
        let tampered = try SteleBinary.run(["verify", "--data", data])
        #expect(tampered.status == 1)
        #expect(tampered.output.contains("does not match the commitment"))
        #expect(try SteleBinary.run(["verify", "--data", root.appending("nothing-here")]).status == 2)
    }
}
