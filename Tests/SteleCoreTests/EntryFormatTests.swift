import SteleCore
import SteleCrypto
import SteleTestSupport
import Testing

@Suite("Entry format: headers, salted body fields, redaction")
struct EntryFormatTests {
    static var entries: [[String: Any]] { try! Vectors.load("entries.json")["entries"] as! [[String: Any]] }

    static func body(_ vector: [String: Any], _ label: String) throws -> EntryBody {
        try EntryBody(parsing: Array(((vector["bodies"] as! [String: String])[label]!).utf8))
    }

    @Test("headers parse and re-serialize byte for byte; leaf hashes and chain match the independent vectors")
    func headersAndLeaves() throws {
        let hasher = MerkleHasher()
        var prev = SHA256Digest.zero
        for vector in Self.entries {
            let text = Array((vector["header"] as! String).utf8)
            let header = try EntryHeader(parsing: text)
            #expect(header.canonicalBytes == text)
            #expect(header.prev == prev)
            let leaf = hasher.leafHash(text)
            #expect(Base64.encode(leaf.bytes) == vector["leaf_hash_b64"] as! String)
            prev = leaf
        }
    }

    @Test("full, partly redacted and fully redacted bodies all match the header's commitment")
    func commitmentsSurviveRedaction() throws {
        let sha = SHA256()
        for vector in Self.entries {
            let header = try EntryHeader(parsing: Array((vector["header"] as! String).utf8))
            for label in ["full", "partly_redacted", "fully_redacted"] {
                let body = try Self.body(vector, label)
                #expect(body.commitment(using: sha) == header.bodyCommitment, "\(label)")
            }
            let full = try Self.body(vector, "full")
            for (name, expected) in vector["field_digests_b64"] as! [String: String] {
                #expect(Base64.encode(full.fields[name]!.digest(name: name, using: sha).bytes) == expected)
            }
        }
    }

    @Test("redacting in Swift yields exactly the vector's redacted body text")
    func redactionMatchesVectors() throws {
        let sha = SHA256()
        for vector in Self.entries {
            let full = try Self.body(vector, "full")
            for label in ["partly_redacted", "fully_redacted"] {
                let expected = try Self.body(vector, label)
                let redacted = full.redacting(expected.redactedNames, using: sha)
                let text = (vector["bodies"] as! [String: String])[label]!
                #expect(redacted.canonicalBytes == Array(text.utf8), "\(label)")
            }
            let fully = try Self.body(vector, "fully_redacted")
            #expect(fully.fields.isEmpty || fully.disclosedValues == nil)
        }
    }

    @Test("a changed value, salt or name no longer matches the commitment")
    func tamperingBreaksCommitment() throws {
        let sha = SHA256()
        let vector = Self.entries[1]
        let header = try EntryHeader(parsing: Array((vector["header"] as! String).utf8))
        let body = try Self.body(vector, "full")
        var changedValue = body
        changedValue.fields["purpose"] = try BodyField(salt: Array(repeating: 1, count: 16), value: .string("marketing_email"))
        #expect(changedValue.commitment(using: sha) != header.bodyCommitment)
        var renamed = body
        renamed.fields["purpose2"] = renamed.fields.removeValue(forKey: "purpose")
        #expect(renamed.commitment(using: sha) != header.bodyCommitment)
        var dropped = body
        dropped.fields.removeValue(forKey: "notice")
        #expect(dropped.commitment(using: sha) != header.bodyCommitment)
    }

    @Test("fresh bodies draw distinct random salts, so equal values do not give equal digests")
    func saltsHideValues() throws {
        let sha = SHA256()
        let a = try EntryBody(values: ["subject": .string("user:1")])
        let b = try EntryBody(values: ["subject": .string("user:1")])
        #expect(a.commitment(using: sha) != b.commitment(using: sha))
    }

    @Test("a sealed record parses back to its values, and its commitment is the parsed body's")
    func sealedRecordMatchesCommitment() throws {
        let sha = SHA256()
        let pool = SecureRandomPool()
        let values: [JSONValue] = [
            .string("user:1"), .string("quote \" backslash \\ tab \t ctl \u{1}"), .string("é-ünïcødé"), .string(""),
            .integer(-42), .bool(true), .null, .array([.string("a"), .integer(1)]),
            .object(["nested": .object(["k": .string("v")]), "b": .bool(false)]),
        ]
        for n in 1...40 {
            // Names of 1 to 64 bytes, so some are stored inline in the String and some are not.
            var fields: [EntryBody.PlainField] = []
            for f in 0..<(n % 9 + 1) {
                let name = "f\(f)" + String(repeating: "x", count: (n * 7 + f * 13) % 55) + "._\(n)"
                fields.append(EntryBody.PlainField(name: name, value: values[(n + f) % values.count]))
            }
            let sealed = try EntryBody.seal(fields: fields, using: sha, randomness: n % 2 == 0 ? pool : nil)
            let body = try EntryBody(parsing: sealed.record)
            #expect(body.commitment(using: sha) == sealed.commitment)
            #expect(body.canonicalBytes == sealed.record)
            #expect(body.disclosedValues == Dictionary(uniqueKeysWithValues: fields.map { ($0.name, $0.value) }))
        }
    }

    @Test("field names are 1-64 of a-z 0-9 _ . starting with a letter; anything else is refused")
    func fieldNames() {
        let long = String(repeating: "n", count: 64)
        for name in ["a", "a.b_c9", "z0", long, "user_agent", "x.y.z"] {
            #expect(throws: Never.self, "\(name)") { try EntryBody.validate(name: name) }
        }
        for name in ["", "A", "9a", "_a", ".a", "a-b", "a b", "é", "aé", "a\u{0}", long + "n", "Ab", "aB"] {
            #expect(throws: EntryFormatError.self, "\(name)") { try EntryBody.validate(name: name) }
        }
    }

    @Test("malformed headers are refused with typed errors", arguments: [
        "", "[]", "{}", #"{"v":2}"#,
        #"{"body":"AAAA","class":"security","kind":"k","prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","retain_until":null,"seq":0,"source":"web","ts":"2026-11-22T02:24:31.000001Z","v":1}"#,
        #"{"class":"security","body":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","kind":"k","prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","retain_until":null,"seq":0,"source":"web","ts":"2026-11-22T02:24:31.000001Z","v":1}"#,
        #"{"body":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","class":"security","kind":"k","prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","retain_until":null,"seq":-1,"source":"web","ts":"2026-11-22T02:24:31.000001Z","v":1}"#,
        #"{"body":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","class":"security","kind":"k","prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","retain_until":null,"seq":0,"source":"web","ts":"2026-11-22T02:24:31Z","v":1}"#,
        #"{"body":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","class":"security","extra":1,"kind":"k","prev":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","retain_until":null,"seq":0,"source":"web","ts":"2026-11-22T02:24:31.000001Z","v":1}"#,
    ])
    func malformedHeaders(text: String) {
        #expect(throws: EntryFormatError.self) { try EntryHeader(parsing: Array(text.utf8)) }
    }

    @Test("malformed bodies are refused with typed errors", arguments: [
        "", "[]", #"{"a":1}"#, #"{"a":{"salt":"AAAA","value":1}}"#, #"{"a":{"digest":"AAAA"}}"#,
        #"{"A":{"digest":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}}"#,
        #"{"a":{"digest":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=","value":1}}"#,
    ])
    func malformedBodies(text: String) {
        #expect(throws: EntryFormatError.self) { try EntryBody(parsing: Array(text.utf8)) }
    }

    @Test("a header built from a template is byte for byte the canonical header, and its leaf hash from the midstate the plain leaf hash")
    func templateMatchesCanonicalHeader() throws {
        // The independent vectors' headers (generated from the spec by Tools/vectors), then odd ones.
        var headers = try Self.entries.map { try EntryHeader(parsing: Array(($0["header"] as! String).utf8)) }
        var generator = SystemRandomNumberGenerator()
        let sha = SHA256()
        for n in 0..<200 {
            let odd = ["a", "consent.granted", "x\"y\\z", "tab\there", "\u{1}ctl", "é-ünïcødé", String(repeating: "k", count: 40)]
            headers.append(EntryHeader(
                seq: UInt64.random(in: 0...UInt64(JSONValue.maximumInteger), using: &generator), timestamp: Timestamp(microseconds: Int64.random(in: 0...4_000_000_000_000_000, using: &generator)),
                kind: odd[n % odd.count], retentionClass: odd[(n / 7) % odd.count], source: odd[(n / 3) % odd.count],
                retainUntil: n % 2 == 0 ? nil : Timestamp(microseconds: Int64(n) * 1_000_003),
                prev: SHA256.hash(Array("p\(n)".utf8)), bodyCommitment: SHA256.hash(Array("b\(n)".utf8))))
        }
        for header in headers {
            let template = EntryHeaderTemplate(
                kind: header.kind, retentionClass: header.retentionClass, source: header.source, bodyCommitment: header.bodyCommitment,
                using: sha)
            let built = template.bytes(prev: header.prev, seq: header.seq, timestamp: header.timestamp, retainUntil: header.retainUntil)
            #expect(built == header.canonicalBytes)
            #expect(template.leafHash(of: built, using: sha) == MerkleHasher().leafHash(header.canonicalBytes))
            #expect(try EntryHeader(parsing: built) == header)
        }
    }
}
