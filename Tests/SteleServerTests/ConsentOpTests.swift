import Foundation
import SteleClient
import SteleTestSupport
import Testing

/// The `consent` op (`Specs/protocol.md`, `Specs/consent.md`): answers from the store, reflecting
/// every append acknowledged before the question.
@Suite("stele serve: consent questions", .serialized)
struct ConsentOpTests {
    static func grant(_ subject: String, id: String) -> String {
        #"{"id":"\#(id)","kind":"consent.granted","subject":"\#(subject)","attrs":{"purpose":"marketing.email","notice":"n1","method":"checkbox"}}"#
    }

    static func question(_ subject: String, purpose: String = "marketing.email") -> String {
        #"{"op":"consent","id":"q","subject":"\#(subject)","purpose":"\#(purpose)"}"#
    }

    static func consent(_ line: String) throws -> [String: Any] {
        let object = try reply(line)
        return try #require(object["consent"] as? [String: Any], "\(line)")
    }

    @Test("a withdrawal acknowledged on one connection is seen by the very next question on another, with the store committing only every 10 minutes")
    func readYourWrites() throws {
        let daemon = try DaemonProcess(config: #"{"store_commit_interval_ms": 600000}"#)
        defer { daemon.stop() }
        let service = try SteleConnection(socketPath: daemon.socket)
        let mailer = try SteleConnection(socketPath: daemon.socket)
        _ = try service.request(#"{"kind":"notice.published","attrs":{"notice":"n1","sha256":"ab","purposes":["marketing.email"],"language":"en"}}"#)
        let granted = try reply(try service.request(Self.grant("user:1", id: "g1")))
        #expect(granted["ok"] as? Bool == true)
        let allowed = try Self.consent(try mailer.request(Self.question("user:1")))
        #expect(allowed["allowed"] as? Bool == true && allowed["status"] as? String == "granted")
        #expect(allowed["seq"] as? Int == granted["seq"] as? Int)
        for round in 0..<20 {
            let verb = round % 2 == 0 ? "withdrawn" : "granted"
            let attrs = verb == "withdrawn" ? #"{"purpose":"marketing.email","method":"link"}"# : #"{"purpose":"marketing.email","notice":"n1","method":"checkbox"}"#
            let ack = try reply(try service.request(#"{"kind":"consent.\#(verb)","subject":"user:1","attrs":\#(attrs)}"#))
            #expect(ack["ok"] as? Bool == true)
            let answer = try Self.consent(try mailer.request(Self.question("user:1")))
            #expect(answer["status"] as? String == verb, "round \(round)")
            #expect(answer["allowed"] as? Bool == (verb == "granted"))
            #expect(answer["seq"] as? Int == ack["seq"] as? Int)
        }
        let never = try Self.consent(try mailer.request(Self.question("user:2", purpose: "cookies.analytics")))
        #expect(never["allowed"] as? Bool == false && never["status"] as? String == "none" && never["seq"] is NSNull)
    }

    @Test("an unknown purpose is refused with unknown_purpose, in a question and in an event; a malformed question with its code")
    func unknownPurpose() throws {
        let daemon = try DaemonProcess()
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        #expect(try errorCode(try connection.request(Self.question("user:1", purpose: "marketing.sms"))) == "unknown_purpose")
        let event = #"{"kind":"consent.granted","subject":"user:1","attrs":{"purpose":"marketing.sms","notice":"n1","method":"checkbox"}}"#
        #expect(try errorCode(try connection.request(event)) == "unknown_purpose")
        #expect(try errorCode(try connection.request(#"{"op":"consent","purpose":"marketing.email"}"#)) == "missing_field")
        #expect(try errorCode(try connection.request(#"{"op":"consent","subject":"user:1"}"#)) == "missing_field")
        #expect(try errorCode(try connection.request(#"{"op":"consent","subject":"user 1","purpose":"marketing.email"}"#)) == "invalid_identifier")
        #expect(try errorCode(try connection.request(#"{"op":"consent","subject":"u","purpose":"marketing.email","kind":"x"}"#)) == "invalid_field")
        #expect(try errorCode(try connection.request(#"{"kind":"login.succeeded","purpose":"marketing.email"}"#)) == "invalid_field")
        #expect(daemon.stop() == 0)
        let query = try SteleBinary.run(["query", "--data", daemon.data])
        let appended = query.output.split(separator: "\n").filter { !$0.contains("ledger.started") && !$0.contains("ledger.stopped") }
        #expect(appended.isEmpty, "nothing but the daemon's start and stop was appended: \(query.output)")
    }

    @Test("configured purposes replace the defaults, and a peer without consent patterns may not ask")
    func configuredPurposesAndPeers() throws {
        let uid = getuid()
        let daemon = try DaemonProcess(config: """
            {"peers": [{"uid": \(uid), "source": "svc", "kinds": ["*"], "consent": ["cookies.*"]}],
             "consent": {"purposes": [{"name": "cookies.analytics", "description": "Analytics"}, {"name": "newsletter", "description": "News"}]}}
            """)
        defer { daemon.stop() }
        let connection = try SteleConnection(socketPath: daemon.socket)
        #expect(try errorCode(try connection.request(Self.question("user:1", purpose: "newsletter"))) == "forbidden_purpose")
        #expect(try errorCode(try connection.request(Self.question("user:1", purpose: "marketing.email"))) == "unknown_purpose")
        let answer = try Self.consent(try connection.request(Self.question("user:1", purpose: "cookies.analytics")))
        #expect(answer["status"] as? String == "none")
    }

    @Test("a bad consent configuration is refused at start with the member named")
    func badConfiguration() throws {
        let daemon = try DaemonProcess(config: #"{"consent": {"minimum_age": {"EU": 21}}}"#, wait: false)
        #expect(daemon.waitForExit() == 2)
        #expect(daemon.log.contains("minimum_age.EU"))
    }
}
