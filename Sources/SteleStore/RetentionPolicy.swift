public import SteleCore
import SteleCrypto

/// The retention policy in force (`Specs/retention.md`): how long each class's bodies are kept,
/// and what an account's erasure does to them. Recorded in the ledger (`ledger.policy`) so every
/// decision can be checked against it.
public struct RetentionPolicy: Sendable, Hashable {
    /// What erasing an account does to its entries of a class.
    public enum ErasureRule: String, Sendable {
        /// Every field is redacted now, but another person's `actor`.
        case erase
        /// Kept until the entry's own deadline, because the law requires it (billing, rights requests).
        case keep
        /// Kept for ``RetentionPolicy/consentProofDays`` after the erasure, to prove the consent given.
        case proof
    }

    /// Days after `ts` each class is kept; nil while the deadline depends on later events.
    public let classes: [String: Int?]
    /// The rule per class; classes not named are erased.
    public let onErasure: [String: ErasureRule]
    /// How long consent entries are kept after their subject's erasure.
    public let consentProofDays: Int
    /// Classes kept their days after the subject's newest entry of the class, not each entry's own
    /// `ts`: billing records, 7 years after the account's last transaction.
    public let fromLastEntry: Set<String>

    public static let defaultErasureRules: [String: ErasureRule] = [
        "security": .erase, "audit": .erase, "contact": .erase, "rights": .keep, "billing": .keep, "consent": .proof, "ledger": .keep,
    ]

    /// The policy a catalogue's retention classes give, with the default erasure rules.
    public init(catalogue: EventCatalogue, consentProofDays: Int = 1095) {
        self.init(classes: catalogue.classes.mapValues(\.days), consentProofDays: consentProofDays)
    }

    public init(
        classes: [String: Int?], onErasure: [String: ErasureRule] = RetentionPolicy.defaultErasureRules, consentProofDays: Int = 1095,
        fromLastEntry: Set<String> = ["billing"]
    ) {
        self.classes = classes
        self.onErasure = onErasure
        self.consentProofDays = consentProofDays
        self.fromLastEntry = fromLastEntry
    }

    /// Microseconds each class in ``fromLastEntry`` is kept after the subject's newest entry of it.
    var keptAfterLastEntry: [String: Int64] {
        Dictionary(uniqueKeysWithValues: fromLastEntry.compactMap { name in classes[name].flatMap { $0 }.map { (name, Int64($0) * 86_400_000_000) } })
    }

    /// The rule for `retentionClass` (`ledger` is always kept).
    public func erasureRule(for retentionClass: String) -> ErasureRule {
        retentionClass == "ledger" ? .keep : onErasure[retentionClass] ?? .erase
    }

    /// `{"classes":{name: days | null, …},"consent_proof_days":n,"from_last_entry":[name, …],"on_erasure":{name: rule, …}}`,
    /// the form `ledger.policy` records.
    public var json: JSONValue {
        .object([
            "classes": .object(classes.mapValues { $0.map { .integer(Int64($0)) } ?? .null }),
            "on_erasure": .object(onErasure.mapValues { .string($0.rawValue) }),
            "consent_proof_days": .integer(Int64(consentProofDays)),
            "from_last_entry": .array(fromLastEntry.sorted().map(JSONValue.string)),
        ])
    }

    /// Hex SHA-256 of the canonical JSON: what receipts cite.
    public var digest: String {
        SHA256.hash(json.canonicalBytes).hex
    }

    /// Reads the recorded form; nil when it is not one.
    public init?(json: JSONValue) {
        guard let members = json["classes"]?.objectValue, let rules = json["on_erasure"]?.objectValue,
            let proof = json["consent_proof_days"]?.integerValue, proof >= 0,
            let fromLast = json["from_last_entry"]?.arrayValue?.compactMap(\.stringValue)
        else { return nil }
        var classes: [String: Int?] = [:]
        for (name, days) in members {
            if days.isNull { classes[name] = .some(nil); continue }
            guard let d = days.integerValue, d > 0, d <= 1_000_000 else { return nil }
            classes[name] = Int(d)
        }
        var onErasure: [String: ErasureRule] = [:]
        for (name, rule) in rules {
            guard let r = rule.stringValue.flatMap(ErasureRule.init(rawValue:)) else { return nil }
            onErasure[name] = r
        }
        self.init(classes: classes, onErasure: onErasure, consentProofDays: Int(proof), fromLastEntry: Set(fromLast))
    }
}
