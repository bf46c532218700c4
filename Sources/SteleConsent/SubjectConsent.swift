public import SteleCore

/// What the entries of one subject establish about their consent (`Specs/consent.md`, "Folding"):
/// for each purpose the last grant, refusal or withdrawal, the newest age assertion, and the
/// objections and restrictions still standing. It holds facts only: expiry, stale notices and age
/// thresholds depend on the time asked about and on the configuration, so they are evaluated when
/// read (``ConsentPolicy/answer(_:purpose:at:notices:)``).
public struct SubjectConsent: Sendable, Hashable {
    /// What the last consent event of a purpose decided.
    public enum Decision: String, Sendable {
        case granted, refused, withdrawn
    }

    /// The last grant, refusal or withdrawal for one purpose.
    public struct PurposeState: Sendable, Hashable {
        public var decision: Decision
        public var seq: UInt64
        public var timestamp: Timestamp
        /// The notice cited (grants and refusals).
        public var notice: String?
        /// When a grant lapses.
        public var expires: Timestamp?
        /// `given_by.role` of a grant or refusal (nil: the subject).
        public var givenBy: String?
    }

    /// The newest `subject.age_asserted`.
    public struct Age: Sendable, Hashable {
        public var band: String
        public var jurisdiction: String
        public var seq: UInt64
        public var timestamp: Timestamp
    }

    /// An objection or restriction standing since `rights.requested`.
    public struct Block: Sendable, Hashable {
        public enum Right: String, Sendable { case objection, restriction }
        public var right: Right
        public var request: String
        /// The purpose objected to (nil: every `marketing.*` purpose; always nil for restrictions).
        public var purpose: String?
        public var seq: UInt64
        public var timestamp: Timestamp

        /// True when this block stops processing for `purpose`.
        public func covers(_ purpose: String) -> Bool {
            switch right {
            case .restriction: true
            case .objection: self.purpose.map { $0 == purpose } ?? purpose.hasPrefix("marketing.")
            }
        }
    }

    public let subject: String
    public var purposes: [String: PurposeState] = [:]
    public var age: Age?
    /// In seq order.
    public var blocks: [Block] = []

    public init(subject: String) {
        self.subject = subject
    }

    /// True when the entries establish nothing (never asked, or erased since).
    public var isEmpty: Bool { purposes.isEmpty && age == nil && blocks.isEmpty }

    /// Folds the next event of this subject (in seq order, which is `ts` order). Events whose
    /// needed fields are redacted or missing change nothing.
    public mutating func fold(_ event: ConsentEvent) {
        let f = event.fields
        switch event.kind {
        case .granted, .refused, .withdrawn:
            guard let purpose = event.purpose else { return }
            let decision: Decision = event.kind == .granted ? .granted : event.kind == .refused ? .refused : .withdrawn
            purposes[purpose] = PurposeState(
                decision: decision, seq: event.seq, timestamp: event.timestamp,
                notice: decision == .withdrawn ? nil : f["notice"]?.stringValue,
                expires: decision == .granted ? f["expires"]?.stringValue.flatMap(Timestamp.init(rfc3339:)) : nil,
                givenBy: decision == .withdrawn ? nil : f["given_by"]?["role"]?.stringValue)
        case .ageAsserted:
            guard let band = f["band"]?.stringValue, let jurisdiction = f["jurisdiction"]?.stringValue else { return }
            age = Age(band: band, jurisdiction: jurisdiction, seq: event.seq, timestamp: event.timestamp)
        case .rightsRequested:
            guard let request = f["request"]?.stringValue, let right = f["right"]?.stringValue.flatMap(Block.Right.init(rawValue:)) else { return }
            blocks.append(Block(
                right: right, request: request, purpose: right == .objection ? event.purpose : nil, seq: event.seq, timestamp: event.timestamp))
        case .rightsCompleted:
            // A completed restriction is lifted; an objection stands unless the subject withdrew it.
            guard let request = f["request"]?.stringValue else { return }
            let withdrawn = f["outcome"]?.stringValue == "withdrawn"
            blocks.removeAll { $0.request == request && ($0.right == .restriction || withdrawn) }
        case .erased:
            purposes = [:]
            age = nil
            blocks = []
        case .noticePublished, .processing, .enforced:
            break
        }
    }

    // MARK: Stored form

    /// The stored form: canonical JSON (`Specs/consent.md`, "Materialized state").
    public var json: JSONValue {
        var object: [String: JSONValue] = ["subject": .string(subject)]
        if !purposes.isEmpty {
            object["purposes"] = .object(purposes.mapValues { p in
                var o: [String: JSONValue] = ["decision": .string(p.decision.rawValue), "seq": .integer(Int64(p.seq)), "ts": .string(p.timestamp.description)]
                if let notice = p.notice { o["notice"] = .string(notice) }
                if let expires = p.expires { o["expires"] = .string(expires.description) }
                if let givenBy = p.givenBy { o["given_by"] = .string(givenBy) }
                return .object(o)
            })
        }
        if let age {
            object["age"] = .object([
                "band": .string(age.band), "jurisdiction": .string(age.jurisdiction), "seq": .integer(Int64(age.seq)), "ts": .string(age.timestamp.description),
            ])
        }
        if !blocks.isEmpty {
            object["blocks"] = .array(blocks.map { b in
                var o: [String: JSONValue] = [
                    "right": .string(b.right.rawValue), "request": .string(b.request), "seq": .integer(Int64(b.seq)), "ts": .string(b.timestamp.description),
                ]
                if let purpose = b.purpose { o["purpose"] = .string(purpose) }
                return .object(o)
            })
        }
        return .object(object)
    }

    /// Reads the stored form; nil when it is not one.
    public init?(json: JSONValue) {
        func time(_ value: JSONValue?) -> Timestamp? { value?.stringValue.flatMap(Timestamp.init(rfc3339:)) }
        func seq(_ value: JSONValue?) -> UInt64? { value?.integerValue.flatMap { $0 >= 0 ? UInt64($0) : nil } }
        guard let subject = json["subject"]?.stringValue else { return nil }
        self.subject = subject
        for (purpose, p) in json["purposes"]?.objectValue ?? [:] {
            guard let decision = p["decision"]?.stringValue.flatMap(Decision.init(rawValue:)), let s = seq(p["seq"]), let ts = time(p["ts"]) else { return nil }
            purposes[purpose] = PurposeState(
                decision: decision, seq: s, timestamp: ts, notice: p["notice"]?.stringValue, expires: time(p["expires"]), givenBy: p["given_by"]?.stringValue)
        }
        if let a = json["age"] {
            guard let band = a["band"]?.stringValue, let j = a["jurisdiction"]?.stringValue, let s = seq(a["seq"]), let ts = time(a["ts"]) else { return nil }
            age = Age(band: band, jurisdiction: j, seq: s, timestamp: ts)
        }
        for b in json["blocks"]?.arrayValue ?? [] {
            guard let right = b["right"]?.stringValue.flatMap(Block.Right.init(rawValue:)), let request = b["request"]?.stringValue,
                let s = seq(b["seq"]), let ts = time(b["ts"])
            else { return nil }
            blocks.append(Block(right: right, request: request, purpose: b["purpose"]?.stringValue, seq: s, timestamp: ts))
        }
    }
}
