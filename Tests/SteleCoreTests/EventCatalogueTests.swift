import SteleCore
import Testing

@Suite("Event catalogue: the attributes each kind requires and allows")
struct EventCatalogueTests {
    typealias AttributeType = EventCatalogue.AttributeType

    static func valid(_ type: AttributeType) -> JSONValue {
        switch type {
        case .string: .string("x")
        case .timestamp: .string("2026-01-01T00:00:00Z")
        case .boolean: .bool(true)
        case .integer: .integer(1)
        case .stringList: .array([.string("a")])
        case .purpose: .string("marketing.email")
        case .purposeList: .array([.string("marketing.email")])
        case .oneOf(let options): .string(options[0])
        case .any: .object(["k": .string("v")])
        }
    }

    static func invalid(_ type: AttributeType) -> JSONValue? {
        switch type {
        case .string: .integer(1)
        case .timestamp: .string("yesterday")
        case .boolean: .string("true")
        case .integer: .string("1")
        case .stringList, .purposeList: .array([.integer(1)])
        case .purpose: .integer(1)
        case .oneOf: .string("none of the options")
        case .any: nil
        }
    }

    @Test("for every built-in kind: its attributes pass; a missing, unknown or mistyped one is named")
    func everyKindChecksEachAttribute() {
        let catalogue = EventCatalogue.builtIn
        #expect(catalogue.kinds.count > 20)
        for kind in catalogue.kinds.values {
            var full: [String: JSONValue] = [:]
            for (name, type) in kind.optional { full[name] = Self.valid(type) }
            for (name, type) in kind.required { full[name] = Self.valid(type) }
            #expect(catalogue.problem(with: full, for: kind) == nil, "\(kind.name)")
            let requiredOnly = full.filter { kind.required[$0.key] != nil }
            #expect(catalogue.problem(with: requiredOnly, for: kind) == nil, "\(kind.name)")

            for name in kind.required.keys {
                var missing = full
                missing[name] = nil
                let problem = catalogue.problem(with: missing, for: kind)
                #expect(problem?.attribute == name && problem?.reason == "is required for \(kind.name)", "\(kind.name) without \(name)")
            }
            var unknown = full
            unknown["zz_not_defined"] = .string("x")
            #expect(catalogue.problem(with: unknown, for: kind)?.attribute == "zz_not_defined", "\(kind.name)")
            for (name, type) in kind.required.merging(kind.optional, uniquingKeysWith: { required, _ in required }) {
                guard let wrong = Self.invalid(type) else { continue }
                var mistyped = full
                mistyped[name] = wrong
                #expect(catalogue.problem(with: mistyped, for: kind)?.attribute == name, "\(kind.name).\(name) = \(wrong)")
            }
        }
    }

    @Test("an attribute both required and optional is required, with the required type")
    func requiredWinsOverOptional() {
        let kind = EventCatalogue.Kind("custom.both", class: "audit", required: ["n": .integer], optional: ["n": .string, "note": .string])
        let catalogue = EventCatalogue(kinds: [kind], classes: [EventCatalogue.RetentionClass("audit", days: 365)])
        #expect(catalogue.problem(with: ["n": .integer(3)], for: kind) == nil)
        #expect(catalogue.problem(with: ["n": .string("3")], for: kind)?.attribute == "n")
        #expect(catalogue.problem(with: ["note": .string("x")], for: kind)?.attribute == "n")
    }

    @Test("kinds defined alike are equal, however their dictionaries were built")
    func equalDefinitionsAreEqual() {
        var grown: [String: EventCatalogue.AttributeType] = [:]
        for n in 0..<40 { grown["a\(n)"] = .string }
        for n in 8..<40 { grown["a\(n)"] = nil }
        var direct: [String: EventCatalogue.AttributeType] = [:]
        for n in (0..<8).reversed() { direct["a\(n)"] = .string }
        let a = EventCatalogue.Kind("custom.k", class: "audit", optional: grown)
        let b = EventCatalogue.Kind("custom.k", class: "audit", optional: direct)
        #expect(a == b)
        #expect(a.hashValue == b.hashValue)
    }

    @Test("subject is required for consent, age, rights, account, login, billing and data events; actor for administrative actions and data changes, accesses and disclosures")
    func requiredIdentifiers() throws {
        let catalogue = EventCatalogue.builtIn
        let subject = try ["consent.granted", "consent.refused", "consent.withdrawn", "consent.enforced", "subject.age_asserted", "rights.requested",
                           "rights.completed", "account.erased", "account.locked", "login.succeeded", "login.failed",
                           "billing.transaction", "data.changed", "data.accessed", "data.disclosed"]
            .map { try #require(catalogue.kind($0)) }
        let withoutSubject = subject.filter { !$0.requiresSubject }.map(\.name)
        #expect(withoutSubject.isEmpty, "\(withoutSubject)")
        let actor = try ["admin.action", "data.changed", "data.accessed", "data.disclosed"].map { try #require(catalogue.kind($0)) }
        let withoutActor = actor.filter { !$0.requiresActor }.map(\.name)
        #expect(withoutActor.isEmpty, "\(withoutActor)")
        // The others stay optional: a logout or a contact form need name nobody.
        for name in ["logout", "mfa.enabled", "contact.submitted", "notice.published", "processing.performed"] {
            let kind = try #require(catalogue.kind(name))
            #expect(!kind.requiresSubject && !kind.requiresActor, "\(name)")
        }
    }

    @Test("with purposes configured, an event naming another purpose is refused and the purpose is named")
    func unknownPurposeIsNamed() throws {
        var catalogue = EventCatalogue.builtIn
        catalogue.purposes = ["marketing.email"]
        let grant = try #require(catalogue.kind("consent.granted"))
        let good: [String: JSONValue] = ["purpose": .string("marketing.email"), "notice": .string("n1"), "method": .string("form")]
        #expect(catalogue.problem(with: good, for: grant) == nil)
        var bad = good
        bad["purpose"] = .string("marketing.sms")
        #expect(catalogue.problem(with: bad, for: grant)?.attribute == "purpose")
        #expect(catalogue.unknownPurpose(in: .string("marketing.sms"), .purpose) == "marketing.sms")
        let notice = try #require(catalogue.kind("notice.published"))
        let list: [String: JSONValue] = [
            "notice": .string("n1"), "sha256": .string("ab"), "language": .string("en"),
            "purposes": .array([.string("marketing.email"), .string("cookies.x")]),
        ]
        #expect(catalogue.problem(with: list, for: notice)?.reason.contains("cookies.x") == true)
        // Purposes of processing and access are not consent purposes: any name is accepted.
        let processing = try #require(catalogue.kind("processing.performed"))
        #expect(catalogue.problem(with: ["purpose": .string("billing")], for: processing) == nil)
    }
}
