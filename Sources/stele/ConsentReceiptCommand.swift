import ArgumentParser
import SteleConsent
import SteleCore
import SteleEvidence
import SteleStore

extension ConsentCommand {
    /// `stele consent receipt`: a small bundle the data subject keeps, proving the entries that
    /// decide one purpose's state at one moment (`Specs/evidence-bundle.md` §6).
    struct Receipt: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Write a consent receipt: the entries deciding a purpose at a moment, with proofs, checkpoint and key (exit 0 written, 2 could not run).")

        @OptionGroup var dataOptions: DataOptions
        @OptionGroup var policyOptions: ConsentPolicyOptions
        @OptionGroup var source: BundleSourceOptions
        @Argument(help: "The data subject.") var subject: String
        @Option(help: "The purpose.") var purpose: String
        @Option(help: "The moment (RFC 3339 or a date; default: now).") var at: String?
        @Option(help: "Why, recorded in the receipt and in the access log.") var reason: String
        @Option(help: "The receipt directory to create.") var out: String
        @Flag(help: "Also write OUT.tar.") var archive = false
        @Flag(help: "Output the summary as JSON.") var json = false

        func run() throws {
            let policy = try policyOptions.policy()
            guard policy.purposes[purpose] != nil else {
                throw Failure.couldNotRun("unknown purpose \"\(purpose)\" (configured: \(policy.purposeNames.joined(separator: ", ")))")
            }
            let moment = try parseTime(at, "at") ?? .now()
            let ledger = try dataOptions.openReadOnly()
            let (answer, record) = try Failure.map { () throws -> (ConsentAnswer, JSONValue) in
                let answer = policy.answer(try ledger.consentState(subject: subject, at: moment), purpose: purpose, at: moment, notices: try ledger.consentNotices())
                return (answer, try Self.record(answer, subject: subject, ledger: ledger, notices: try ledger.consentNotices()))
            }
            var state = answer.json.objectValue ?? [:]
            state["record"] = record
            let query = BundleQuery(subject: subject, purpose: purpose, at: moment)
            try source.write(
                type: .consentReceipt, query: query, reason: reason, out: out, archive: archive, json: json, dataOptions: dataOptions,
                consistentWith: nil, state: .object(state)
            ) { ledger, size, proofs in try ledger.consentReceiptRecords(query, treeSize: size, proofs: proofs) }
        }

        /// The ISO/IEC TS 27560 record of `answer` (`Specs/consent.md`, "ISO/IEC TS 27560").
        static func record(_ answer: ConsentAnswer, subject: String, ledger: Ledger, notices: NoticeRegistry) throws -> JSONValue {
            let statuses: [ConsentAnswer.Status: String] = [
                .granted: "ConsentGiven", .refused: "ConsentRefused", .withdrawn: "ConsentWithdrawn", .expired: "ConsentExpired",
                .none: "ConsentUnknown", .stale: "RenewedConsentGiven", .objected: "ConsentWithdrawn", .restricted: "ConsentWithdrawn",
                .minorWithoutGuardian: "ConsentInvalidated",
            ]
            var members: [String: JSONValue] = [
                "schema": .string("ISO/IEC TS 27560:2023 (W3C DPV terms)"), "dpv:hasDataController": .string(ledger.origin),
                "dpv:hasDataSubject": .string(subject), "dpv:hasPurpose": .string(answer.purpose),
                "dpv:hasConsentStatus": .string("dpv:" + (statuses[answer.status] ?? "ConsentUnknown")),
                "stele:status": .string(answer.status.rawValue),
            ]
            if let seq = answer.seq {
                let entry = try ledger.entry(seq)
                let values = entry.body.fields.compactMapValues(\.value)
                members["record_id"] = .string("\(ledger.origin)/\(seq)")
                members["dpv:isIndicatedAtTime"] = .string(entry.header.timestamp.description)
                members["dpv:isIndicatedBy"] = values["given_by"] ?? .string(subject)
                if let method = values["method"] { members["dpv:hasIndicationMethod"] = method }
                if let expires = values["expires"] { members["dpv:hasExpiryTime"] = expires }
                if let jurisdiction = values["jurisdiction"] { members["dpv:hasJurisdiction"] = jurisdiction }
            }
            if let id = answer.notice {
                var notice: [String: JSONValue] = ["id": .string(id)]
                if let published = notices.notice(id) {
                    notice["sha256"] = .string(published.sha256)
                    notice["seq"] = .integer(Int64(published.seq))
                }
                members["dpv:hasNotice"] = .object(notice)
            }
            return .object(members)
        }
    }
}
