import ArgumentParser
import Foundation
import SteleConsent
import SteleCore
import SteleStore

/// `stele consent`: each subject's consent, now or at any past moment, and the consent audit
/// (`Specs/consent.md`). Read-only; safe beside a running daemon.
struct ConsentCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "consent", abstract: "Consent state, history, lists and the consent audit.",
        subcommands: [Show.self, History.self, List.self, Audit.self, Receipt.self])
}

/// `--config FILE`: the daemon's configuration, for its `consent` member (purposes, minimum ages, delays).
struct ConsentPolicyOptions: ParsableArguments {
    @Option(help: "The daemon's configuration file, for its consent purposes, minimum ages and delays (default: the embedded ones).")
    var config: String?

    func policy() throws -> ConsentPolicy {
        var policy = ConsentPolicy()
        guard let config else { return policy }
        guard let bytes = FileManager.default.contents(atPath: config) else { throw Failure.couldNotRun("cannot read the configuration file \(config)") }
        guard let value = try? JSONParser.parse([UInt8](bytes)) else { throw Failure.couldNotRun("the configuration \(config) is not valid JSON") }
        if let member = value["consent"] {
            do { try policy.apply(json: member) } catch { throw Failure.couldNotRun("bad configuration \(config): \(error.message)") }
        }
        return policy
    }
}

/// Parses a time option: RFC 3339, or a date (`2026-12-06`, its first instant in UTC).
func parseTime(_ text: String?, _ option: String) throws -> Timestamp? {
    guard let text else { return nil }
    let isDate = text.utf8.count == 10 && text.utf8.enumerated().allSatisfy { i, c in (i == 4 || i == 7) ? c == UInt8(ascii: "-") : (0x30...0x39).contains(c) }
    guard let time = Timestamp(rfc3339: isDate ? text + "T00:00:00Z" : text) else {
        throw Failure.couldNotRun("--\(option) \"\(text)\" is not an RFC 3339 time or a date (e.g. 2026-12-06T09:30:00Z or 2026-12-06)")
    }
    return time
}

extension ConsentCommand {
    struct Show: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Whether each purpose is allowed for a subject, now or at --at, and the entries that prove it.")

        @OptionGroup var dataOptions: DataOptions
        @OptionGroup var policyOptions: ConsentPolicyOptions
        @Argument(help: "The data subject.") var subject: String
        @Option(help: "Only this purpose.") var purpose: String?
        @Option(help: "The moment asked about (RFC 3339; default: now).") var at: String?
        @Flag(help: "Output one JSON object.") var json = false
        @OptionGroup var readReason: ReadReasonOptions

        func run() throws {
            let policy = try policyOptions.policy()
            if let purpose, policy.purposes[purpose] == nil {
                throw Failure.couldNotRun("unknown purpose \"\(purpose)\" (configured: \(policy.purposeNames.joined(separator: ", ")))")
            }
            let time = try parseTime(at, "at")
            let ledger = try dataOptions.openReadOnly()
            let (state, notices) = try Failure.map { () throws -> (SubjectConsent?, NoticeRegistry) in
                let state = try time.map { try ledger.consentState(subject: subject, at: $0) } ?? ledger.currentConsent(subject: subject).state
                return (state, try ledger.consentNotices())
            }
            let moment = time ?? Timestamp.now()
            let purposes = purpose.map { [$0] } ?? Array(Set(policy.purposeNames).union(state?.purposes.keys.map { $0 } ?? [])).sorted()
            let answers = purposes.map { policy.answer(state, purpose: $0, at: moment, notices: notices) }
            try readReason.record(
                "consent show", query: .object(["subject": .string(subject), "at": .string(moment.description)]), disclosed: answers.count,
                data: dataOptions.data)
            if json {
                var object: [String: JSONValue] = [
                    "subject": .string(subject), "at": .string(moment.description), "purposes": .array(answers.map(\.json)),
                ]
                if let age = state?.age {
                    object["age"] = .object(["band": .string(age.band), "jurisdiction": .string(age.jurisdiction), "seq": .integer(Int64(age.seq)), "minor": .bool(policy.isMinor(age))])
                }
                printLine(JSONValue.object(object).canonicalText)
            } else {
                printLine("\(subject) at \(moment)")
                for answer in answers {
                    let since = answer.since.map { " since \($0)" } ?? ""
                    let notice = answer.notice.map { " notice \($0)" } ?? ""
                    let proof = answer.seq.map { " (entry \($0))" } ?? ""
                    printLine("  \(answer.purpose): \(answer.allowed ? "ALLOWED" : "not allowed") \(answer.status.rawValue)\(since)\(notice)\(proof)")
                }
            }
        }
    }

    struct History: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every consent entry of a subject: grants, refusals, withdrawals, age, objections, restrictions, erasure.")

        @OptionGroup var dataOptions: DataOptions
        @OptionGroup var policyOptions: ConsentPolicyOptions
        @Argument(help: "The data subject.") var subject: String
        @Flag(help: "Output NDJSON, one entry per line.") var json = false
        @OptionGroup var readReason: ReadReasonOptions

        func run() throws {
            let policy = try policyOptions.policy()
            let ledger = try dataOptions.openReadOnly()
            let entries = try Failure.map { try ledger.consentHistory(subject: subject) }
            try readReason.record("consent history", query: .object(["subject": .string(subject)]), disclosed: entries.count, data: dataOptions.data)
            for entry in entries {
                let values = entry.body.fields.compactMapValues(\.value)
                let event = ConsentEvent(seq: entry.seq, timestamp: entry.header.timestamp, kind: ConsentEvent.Kind(rawValue: entry.header.kind) ?? .granted, fields: values)
                var object: [String: JSONValue] = [
                    "seq": .integer(Int64(entry.seq)), "ts": .string(entry.header.timestamp.description), "kind": .string(entry.header.kind),
                    "source": .string(entry.header.source), "backfilled": .bool(event.isBackfilled(lag: policy.backfillLag)),
                ]
                for name in ["purpose", "notice", "method", "given_by", "channel", "expires", "evidence", "jurisdiction", "gpc", "band", "right", "request", "outcome", "occurred"] {
                    if let value = values[name] { object[name] = value }
                }
                let redacted = entry.body.redactedNames
                if !redacted.isEmpty { object["redacted"] = .array(redacted.map(JSONValue.string)) }
                if json {
                    printLine(JSONValue.object(object).canonicalText)
                } else {
                    let detail = ["purpose", "notice", "method", "given_by", "band", "right", "request"].compactMap { name in
                        object[name].map { "\(name)=\($0.stringValue ?? $0.canonicalText)" }
                    }
                    printLine("\(entry.seq)  \(entry.header.timestamp)  \(entry.header.kind)  \(detail.joined(separator: " "))\(object["backfilled"] == .bool(true) ? "  BACKFILLED" : "")")
                }
            }
        }
    }

    struct List: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Every subject whose consent to a purpose is valid now or at --at (streamed).")

        @OptionGroup var dataOptions: DataOptions
        @OptionGroup var policyOptions: ConsentPolicyOptions
        @Option(help: "The purpose.") var purpose: String
        @Option(help: "The moment asked about (RFC 3339; default: now).") var at: String?
        @Flag(help: "Output NDJSON: subject, since, notice and the proving seq.") var json = false

        func run() throws {
            let policy = try policyOptions.policy()
            guard policy.purposes[purpose] != nil else {
                throw Failure.couldNotRun("unknown purpose \"\(purpose)\" (configured: \(policy.purposeNames.joined(separator: ", ")))")
            }
            let time = try parseTime(at, "at")
            let ledger = try dataOptions.openReadOnly()
            let moment = time ?? Timestamp.now()
            let notices = try Failure.map { try ledger.consentNotices() }
            let output = BufferedOutput()
            let visit: (SubjectConsent) throws -> Bool = { state in
                let answer = policy.answer(state, purpose: purpose, at: moment, notices: notices)
                guard answer.allowed else { return true }
                if json {
                    output.line(JSONValue.object([
                        "subject": .string(state.subject), "since": answer.since.map { .string($0.description) } ?? .null,
                        "notice": answer.notice.map(JSONValue.string) ?? .null, "seq": answer.seq.map { .integer(Int64($0)) } ?? .null,
                    ]).canonicalText)
                } else {
                    output.line(state.subject)
                }
                return true
            }
            try Failure.map {
                if let time { try ledger.forEachConsentState(at: time, visit) } else { try ledger.forEachConsentState(visit) }
            }
            output.flush()
        }
    }

    struct Audit: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Find processing without valid consent and other consent violations (exit 0 none, 1 found, 2 could not run).")

        @OptionGroup var dataOptions: DataOptions
        @OptionGroup var policyOptions: ConsentPolicyOptions
        @Option(help: "Report findings about entries from this time (RFC 3339, inclusive).") var since: String?
        @Option(help: "Report findings about entries before this time (RFC 3339, exclusive).") var until: String?
        @Flag(help: "Output NDJSON, one finding per line.") var json = false

        func run() throws {
            let policy = try policyOptions.policy()
            var audit = ConsentAudit(policy: policy, since: try parseTime(since, "since"), until: try parseTime(until, "until"))
            let ledger = try dataOptions.openReadOnly()
            try Failure.map { try ledger.forEachConsentAuditEvent { audit.add($0) } }
            let findings = audit.finish(now: Timestamp.now())
            for finding in findings {
                if json {
                    printLine(finding.json.canonicalText)
                } else {
                    let status = finding.status.map { " (\($0.rawValue))" } ?? ""
                    printLine("\(finding.kind.rawValue)\(status): entry \(finding.seq) at \(finding.timestamp), subject \(finding.subject), purpose \(finding.purpose); evidence \(finding.evidence.map(String.init).joined(separator: ", "))")
                }
            }
            if !json { printLine(findings.isEmpty ? "OK: no consent finding" : "\(findings.count) finding(s)") }
            if !findings.isEmpty { throw ExitCode(1) }
        }
    }
}

/// Standard output written in 64 KiB blocks: a list of 100,000 subjects is 100,000 lines.
final class BufferedOutput {
    private var buffer: [UInt8] = []

    func line(_ text: String) {
        buffer.append(contentsOf: text.utf8)
        buffer.append(0x0A)
        if buffer.count >= 1 << 16 { flush() }
    }

    func flush() {
        guard !buffer.isEmpty else { return }
        FileHandle.standardOutput.write(Data(buffer))
        buffer.removeAll(keepingCapacity: true)
    }
}
