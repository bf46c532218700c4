import SteleCore
import SteleCrypto
import SteleEvidence
import Testing

@Suite("bundle formats: tlog-proof, ustar, queries")
struct BundleFormatTests {
    @Test("a tlog-proof prints in the C2SP layout and parses back; malformed ones are refused with the reason")
    func tlogProof() throws {
        let hashes = [SHA256.hash(Array("a".utf8)), SHA256.hash(Array("b".utf8))]
        let note = "log.example/a\n5\n\(Base64.encode(SHA256.hash([]).bytes))\n\n\u{2014} log.example/a AAAA\n"
        let proof = TlogProof(extra: Array("{\"seq\":3}".utf8), index: 3, proof: hashes, checkpoint: note)
        let lines = proof.text.split(separator: "\n", omittingEmptySubsequences: false)
        #expect(lines[0] == "c2sp.org/tlog-proof@v1" && lines[1] == "extra eyJzZXEiOjN9" && lines[2] == "index 3" && lines[5] == "")
        #expect(try TlogProof(parsing: proof.text) == proof)
        let bare = TlogProof(extra: nil, index: 0, proof: [], checkpoint: note)
        #expect(bare.text.hasPrefix("c2sp.org/tlog-proof@v1\nindex 0\n\n"))
        #expect(try TlogProof(parsing: bare.text) == bare)
        for bad in ["c2sp.org/tlog-proof@v2\nindex 0\n\n", "c2sp.org/tlog-proof@v1\nindex 01\n\n", "c2sp.org/tlog-proof@v1\nindex 1\nnot-base64\n\n"] {
            #expect(throws: NoteError.self) { try TlogProof(parsing: bad + note) }
        }
    }

    @Test("a ustar archive of bundle files reads back byte for byte; damaged or escaping archives are refused")
    func tar() throws {
        let files: [String: [UInt8]] = ["manifest.json": Array("{}\n".utf8), "proofs/12.tlog-proof": Array(repeating: 7, count: 1000), "empty": []]
        let archive = try TarArchive.archive(files, modified: 1_800_000_000)
        #expect(archive.count % 512 == 0)
        #expect(try TarArchive.files(in: archive) == files)
        var damaged = archive
        damaged[10] ^= 1
        #expect(throws: EvidenceError.self) { try TarArchive.files(in: damaged) }
        #expect(throws: EvidenceError.self) { try TarArchive.files(in: Array(archive.prefix(700))) }
        let escaping = try TarArchive.archive(["../outside": [1]], modified: 0)
        #expect(throws: EvidenceError.self) { try TarArchive.files(in: escaping) }
    }

    @Test("queries match kinds by name and prefix, times by range, and withhold other people's fields unless staff are included")
    func query() throws {
        let query = BundleQuery(subject: "user:1", kinds: ["consent.*", "login.succeeded"], since: Timestamp(microseconds: 10), until: Timestamp(microseconds: 20))
        #expect(query.matches(kind: "consent.granted") && query.matches(kind: "login.succeeded") && !query.matches(kind: "login.failed"))
        #expect(query.matches(time: Timestamp(microseconds: 10)) && !query.matches(time: Timestamp(microseconds: 20)))
        let body = try EntryBody(values: ["actor": .string("staff:7"), "subject": .string("user:1"), "given_by": .string("user:1")])
        #expect(query.withheldFields(body) == ["actor"])
        var staff = query
        staff.includeStaff = true
        #expect(staff.withheldFields(body).isEmpty)
        #expect(BundleQuery(json: query.json) == query)
    }
}
