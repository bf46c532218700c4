import SteleCore
import SteleServer
import SteleStore
import Testing

/// The configuration members of the retention and consent issues (`Specs/protocol.md`,
/// `Specs/retention.md`, `Specs/consent.md`): what they set, and what they refuse.
@Suite("Configuration: retention, consent, operators")
struct ConfigurationTests {
    func configuration(_ text: String) throws(ConfigurationError) -> ServerConfiguration {
        var configuration = ServerConfiguration()
        try configuration.apply(json: Array(text.utf8))
        return configuration
    }

    @Test("a HIPAA deployment keeps audit and security logs six years, and audit entries through erasure; the policy digest changes with it")
    func retentionOverrides() throws {
        let defaults = ServerConfiguration().retentionPolicy
        let hipaa = try configuration(#"{"retention": {"classes": {"audit": 2190, "security": 2190}, "on_erasure": {"audit": "keep"}, "consent_proof_days": 2000}}"#)
        #expect(hipaa.catalogue.classes["audit"]?.days == 2190)
        let kept: Int64? = hipaa.catalogue.retentionMicroseconds(for: hipaa.catalogue.kind("login.succeeded")!)
        #expect(kept == Int64(2190) * 86_400_000_000)
        #expect(hipaa.retentionPolicy.erasureRule(for: "audit") == .keep)
        #expect(hipaa.retentionPolicy.erasureRule(for: "security") == .erase)
        #expect(hipaa.retentionPolicy.consentProofDays == 2000)
        #expect(hipaa.retentionPolicy.digest != defaults.digest)
        #expect(RetentionPolicy(json: hipaa.retentionPolicy.json) == hipaa.retentionPolicy)
    }

    @Test("bad retention members are refused, each named")
    func retentionRefusals() {
        for (text, named) in [
            (#"{"retention": {"classes": {"ledger": 5}}}"#, "retention.classes.ledger"),
            (#"{"retention": {"classes": {"audit": 0}}}"#, "retention.classes.audit"),
            (#"{"retention": {"on_erasure": {"audit": "shred"}}}"#, "retention.on_erasure.audit"),
            (#"{"retention": {"consent_proof_days": -1}}"#, "retention.consent_proof_days"),
            (#"{"retention": {"keep_forever": true}}"#, "retention.keep_forever"),
            (#"{"peers": [{"uid": 1, "source": "a", "operator": "yes"}]}"#, "operator"),
        ] {
            #expect { _ = try configuration(text) } throws: { ($0 as? ConfigurationError)?.message.contains(named) == true }
        }
    }

    @Test("peers are operators and may ask consent questions only when their rule says so")
    func peerRules() throws {
        let peers = try configuration(#"{"peers": [{"uid": 1, "source": "web"}, {"uid": 2, "source": "ops", "kinds": [], "operator": true, "consent": ["marketing.*"]}]}"#).peers
        #expect(!peers[0].isOperator && !peers[0].mayAskConsent("marketing.email"))
        #expect(peers[1].isOperator && peers[1].mayAskConsent("marketing.email") && !peers[1].mayAskConsent("cookies.analytics"))
        #expect(!peers[1].allows("login.succeeded"))
    }
}
