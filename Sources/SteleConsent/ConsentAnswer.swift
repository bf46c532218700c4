public import SteleCore

/// Whether processing for one purpose is allowed at one moment, why, and the entries that prove it
/// (`Specs/consent.md`, "Folding").
public struct ConsentAnswer: Sendable, Hashable {
    /// The state, evaluated at the moment asked about. Only `granted` allows processing.
    public enum Status: String, Sendable {
        /// A grant counts.
        case granted
        case refused
        case withdrawn
        /// Never asked about (or erased since).
        case none
        /// A grant whose `expires` has passed.
        case expired
        /// A grant under a notice superseded by a newer one, for a purpose that requires re-consent.
        case stale
        /// An objection stands (GDPR Art. 21(3)).
        case objected
        /// A restriction stands (GDPR Art. 18).
        case restricted
        /// The subject may be under the minimum age, and the grant was not given by a guardian.
        case minorWithoutGuardian = "minor_without_guardian"
    }

    public let purpose: String
    public let status: Status
    /// Since when the status holds (nil for `none`).
    public let since: Timestamp?
    /// The notice of the grant or refusal in force.
    public let notice: String?
    /// The entry that proves the status.
    public let seq: UInt64?
    /// Every entry the answer rests on, ascending (the grant, and what overrides it).
    public let evidence: [UInt64]

    public var allowed: Bool { status == .granted }

    public var json: JSONValue {
        .object([
            "purpose": .string(purpose), "allowed": .bool(allowed), "status": .string(status.rawValue),
            "since": since.map { .string($0.description) } ?? .null, "notice": notice.map(JSONValue.string) ?? .null,
            "seq": seq.map { .integer(Int64($0)) } ?? .null, "evidence": .array(evidence.map { .integer(Int64($0)) }),
        ])
    }
}

extension ConsentPolicy {
    /// The answer for `purpose` at `time`, from `state` folded over the subject's entries with
    /// `ts` ≤ `time`, and the notices published by then. The first that applies decides: a
    /// restriction, an objection, no consent event, a refusal or withdrawal; then for a grant,
    /// expiry, a superseding notice, and the subject's age.
    public func answer(_ state: SubjectConsent?, purpose: String, at time: Timestamp, notices: NoticeRegistry) -> ConsentAnswer {
        answer(state, purpose: purpose, at: time, notices: { notices })
    }

    /// ``answer(_:purpose:at:notices:)``, reading the notices only when the answer depends on them
    /// (a grant for a purpose that requires re-consent).
    public func answer(
        _ state: SubjectConsent?, purpose: String, at time: Timestamp, notices: () throws -> NoticeRegistry
    ) rethrows -> ConsentAnswer {
        let current = state?.purposes[purpose]
        let base = current.map { [$0.seq] } ?? []
        func answer(_ status: ConsentAnswer.Status, since: Timestamp?, seq: UInt64?, also: [UInt64] = []) -> ConsentAnswer {
            ConsentAnswer(
                purpose: purpose, status: status, since: since, notice: current?.notice, seq: seq, evidence: Array(Set(base + also)).sorted())
        }
        if let block = state?.blocks.first(where: { $0.right == .restriction }) {
            return answer(.restricted, since: block.timestamp, seq: block.seq, also: [block.seq])
        }
        if let block = state?.blocks.first(where: { $0.covers(purpose) }) {
            return answer(.objected, since: block.timestamp, seq: block.seq, also: [block.seq])
        }
        guard let current else { return answer(.none, since: nil, seq: nil) }
        switch current.decision {
        case .refused: return answer(.refused, since: current.timestamp, seq: current.seq)
        case .withdrawn: return answer(.withdrawn, since: current.timestamp, seq: current.seq)
        case .granted: break
        }
        if let expires = current.expires, expires <= time {
            return answer(.expired, since: expires, seq: current.seq)
        }
        if purposes[purpose]?.reconsentOnNewNotice == true,
            let newer = try notices().superseding(notice: current.notice ?? "", grantSeq: current.seq, purpose: purpose, at: time)
        {
            return answer(.stale, since: newer.timestamp, seq: newer.seq, also: [newer.seq])
        }
        if let age = state?.age, isMinor(age), current.givenBy != "guardian" {
            return answer(.minorWithoutGuardian, since: max(age.timestamp, current.timestamp), seq: age.seq, also: [age.seq])
        }
        return answer(.granted, since: current.timestamp, seq: current.seq)
    }
}
