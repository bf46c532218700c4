public import SteleCore

/// One thing the consent audit found (`Specs/consent.md`, "The audit").
public struct ConsentFinding: Sendable, Hashable {
    public enum Kind: String, Sendable, CaseIterable {
        case processingWithoutConsent = "processing_without_consent"
        case processingAfterExpiry = "processing_after_expiry"
        case processingAfterObjection = "processing_after_objection"
        case processingDuringRestriction = "processing_during_restriction"
        case staleNotice = "stale_notice"
        case minorWithoutGuardian = "minor_without_guardian"
        case unknownNotice = "unknown_notice"
        case withdrawalNotEnforced = "withdrawal_not_enforced"
    }

    public let kind: Kind
    public let subject: String
    public let purpose: String
    /// The entry found at fault (the processing, the grant, the withdrawal).
    public let seq: UInt64
    public let timestamp: Timestamp
    /// Every entry that proves the finding, ascending.
    public let evidence: [UInt64]
    /// The consent status that made processing unlawful, for processing findings.
    public let status: ConsentAnswer.Status?

    public var json: JSONValue {
        .object([
            "finding": .string(kind.rawValue), "subject": .string(subject), "purpose": .string(purpose), "seq": .integer(Int64(seq)),
            "ts": .string(timestamp.description), "evidence": .array(evidence.map { .integer(Int64($0)) }),
            "status": status.map { .string($0.rawValue) } ?? .null,
        ])
    }
}

/// The consent audit: fed every consent, notice, processing and enforcement entry in seq order, it
/// folds each subject's state as it stood at each entry and reports what the policy forbids.
/// Findings about entries outside `since..<until` are not reported (state before `since` still counts).
public struct ConsentAudit: Sendable {
    private let policy: ConsentPolicy
    private let since: Timestamp?
    private let until: Timestamp?
    private var subjects: [String: SubjectConsent] = [:]
    private var notices = NoticeRegistry()
    /// Withdrawals awaiting `consent.enforced`, by subject.
    private var awaiting: [String: [(purpose: String, seq: UInt64, timestamp: Timestamp)]] = [:]
    private var found: [ConsentFinding] = []

    public init(policy: ConsentPolicy, since: Timestamp? = nil, until: Timestamp? = nil) {
        self.policy = policy
        self.since = since
        self.until = until
    }

    private func inRange(_ time: Timestamp) -> Bool {
        (since.map { time >= $0 } ?? true) && (until.map { time < $0 } ?? true)
    }

    private mutating func report(
        _ kind: ConsentFinding.Kind, _ subject: String, _ purpose: String, _ event: ConsentEvent, evidence: [UInt64],
        status: ConsentAnswer.Status? = nil
    ) {
        guard inRange(event.timestamp) else { return }
        found.append(ConsentFinding(
            kind: kind, subject: subject, purpose: purpose, seq: event.seq, timestamp: event.timestamp,
            evidence: Array(Set(evidence + [event.seq])).sorted(), status: status))
    }

    /// Takes the next entry, in seq order.
    public mutating func add(_ event: ConsentEvent) {
        if event.kind == .noticePublished {
            if let notice = Notice(event) { notices.add(notice) }
            return
        }
        guard let subject = event.subject else { return }
        switch event.kind {
        case .processing:
            guard let purpose = event.purpose, policy.purposes[purpose] != nil else { return }
            let answer = policy.answer(subjects[subject], purpose: purpose, at: event.timestamp, notices: notices)
            let kind: ConsentFinding.Kind?
            switch answer.status {
            case .granted: kind = nil
            case .expired: kind = .processingAfterExpiry
            case .objected: kind = .processingAfterObjection
            case .restricted: kind = .processingDuringRestriction
            default: kind = .processingWithoutConsent
            }
            if let kind { report(kind, subject, purpose, event, evidence: answer.evidence, status: answer.status) }
        case .enforced:
            guard let purpose = event.purpose else { return }
            awaiting[subject]?.removeAll { $0.purpose == purpose && event.timestamp.microseconds - $0.timestamp.microseconds <= policy.enforcementDelay }
        case .granted:
            subjects[subject, default: SubjectConsent(subject: subject)].fold(event)
            guard let purpose = event.purpose, let state = subjects[subject] else { return }
            let notice = event.fields["notice"]?.stringValue ?? ""
            let published = notices.notice(notice)
            if published == nil {
                report(.unknownNotice, subject, purpose, event, evidence: [])
            } else if policy.purposes[purpose]?.reconsentOnNewNotice == true,
                let newer = notices.superseding(notice: notice, grantSeq: event.seq, purpose: purpose, at: event.timestamp)
            {
                report(.staleNotice, subject, purpose, event, evidence: [published!.seq, newer.seq])
            }
            if let age = state.age, policy.isMinor(age), event.fields["given_by"]?["role"]?.stringValue != "guardian" {
                report(.minorWithoutGuardian, subject, purpose, event, evidence: [age.seq])
            }
        case .withdrawn:
            subjects[subject, default: SubjectConsent(subject: subject)].fold(event)
            if let purpose = event.purpose { awaiting[subject, default: []].append((purpose, event.seq, event.timestamp)) }
        case .erased:
            subjects[subject] = nil
        default:
            subjects[subject, default: SubjectConsent(subject: subject)].fold(event)
        }
    }

    /// Every finding, in seq order: withdrawals still unenforced count once their delay has passed
    /// by `now`.
    public mutating func finish(now: Timestamp) -> [ConsentFinding] {
        for (subject, withdrawals) in awaiting {
            for w in withdrawals where now.microseconds - w.timestamp.microseconds > policy.enforcementDelay && inRange(w.timestamp) {
                found.append(ConsentFinding(
                    kind: .withdrawalNotEnforced, subject: subject, purpose: w.purpose, seq: w.seq, timestamp: w.timestamp, evidence: [w.seq], status: nil))
            }
        }
        awaiting = [:]
        return found.sorted { ($0.seq, $0.kind.rawValue) < ($1.seq, $1.kind.rawValue) }
    }
}
