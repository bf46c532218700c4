public import SteleCore

/// A data subject's own records as one document (`Specs/dsar.md`): consent now and its history,
/// logins and security events, changes to their data, who accessed or received it and why, and
/// their rights requests. Staff are named by role, never by identity. Pure: JSON and HTML from
/// the entries given.
public struct SubjectAccessReport: Sendable {
    /// One of the subject's entries with its disclosed values.
    public struct Item: Sendable {
        public var seq: UInt64
        public var header: EntryHeader
        public var values: [String: JSONValue]
        public var redacted: [String]

        public init(seq: UInt64, header: EntryHeader, values: [String: JSONValue], redacted: [String]) {
            self.seq = seq
            self.header = header
            self.values = values
            self.redacted = redacted
        }
    }

    public enum Section: String, CaseIterable, Sendable {
        case consent, security, changes, access, rights, other

        var title: String {
            switch self {
            case .consent: "Consent history"
            case .security: "Logins and security events"
            case .changes: "Changes to your data"
            case .access: "Who accessed your data, for which purpose, and who received it"
            case .rights: "Your requests"
            case .other: "Other records"
            }
        }

        static func of(_ kind: String, class retentionClass: String) -> Section {
            if kind.hasPrefix("consent.") || kind == "subject.age_asserted" { return .consent }
            if kind == "data.changed" || kind.hasPrefix("account.") { return .changes }
            if ["data.accessed", "data.disclosed", "processing.performed", "admin.action"].contains(kind) { return .access }
            if kind.hasPrefix("rights.") { return .rights }
            if retentionClass == "security" { return .security }
            return .other
        }
    }

    public var subject: String
    public var request: String
    public var origin: String
    public var created: Timestamp
    /// Each purpose's answer now (`ConsentAnswer.json`).
    public var consentNow: [JSONValue]
    public var items: [Item]

    public init(subject: String, request: String, origin: String, created: Timestamp, consentNow: [JSONValue], items: [Item]) {
        self.subject = subject
        self.request = request
        self.origin = origin
        self.created = created
        self.consentNow = consentNow
        self.items = items
    }

    /// Who acted, as the subject may learn it: `you`, or a role (`Specs/dsar.md`, "Roles").
    public func role(_ actor: String) -> String {
        if actor == subject { return "you" }
        let prefix = actor.split(separator: ":", maxSplits: 1).first.map(String.init) ?? ""
        switch prefix {
        case "staff", "employee": return "staff member"
        case "admin": return "administrator"
        case "support": return "support agent"
        case "svc", "service", "system": return "automated system"
        case "uid": return "ledger operator"
        default: return "another party"
        }
    }

    /// An item as the document shows it: its values with `actor` and `given_by` as roles, without
    /// the subject's own identifier (the document is about them).
    func shown(_ item: Item) -> [String: JSONValue] {
        var values = item.values
        values["subject"] = nil
        values["id"] = nil
        for name in ["actor", "given_by"] {
            if let who = values[name]?.stringValue { values[name] = .string(role(who)) }
        }
        return values
    }

    public var json: JSONValue {
        var sections: [String: JSONValue] = [:]
        for section in Section.allCases {
            sections[section.rawValue] = .array(items.filter { Section.of($0.header.kind, class: $0.header.retentionClass) == section }.map { item in
                var members: [String: JSONValue] = [
                    "seq": .integer(Int64(item.seq)), "ts": .string(item.header.timestamp.description), "kind": .string(item.header.kind),
                    "values": .object(shown(item)),
                ]
                if !item.redacted.isEmpty { members["redacted"] = .array(item.redacted.map(JSONValue.string)) }
                return .object(members)
            })
        }
        return .object([
            "format": .string("stele-dsar/1"), "subject": .string(subject), "request": .string(request), "controller": .string(origin),
            "created": .string(created.description), "entries": .integer(Int64(items.count)),
            "consent_now": .array(consentNow), "sections": .object(sections),
        ])
    }

    /// A self-contained HTML page: no scripts, no external resources.
    public var html: String {
        func escape(_ text: String) -> String {
            var out = ""
            for c in text.unicodeScalars {
                switch c {
                case "&": out += "&amp;"
                case "<": out += "&lt;"
                case ">": out += "&gt;"
                case "\"": out += "&quot;"
                case "'": out += "&#39;"
                default: out.unicodeScalars.append(c)
                }
            }
            return out
        }
        func text(_ value: JSONValue) -> String {
            switch value {
            case .string(let s): s
            case .array(let a): a.map(text).joined(separator: ", ")
            default: value.canonicalText
            }
        }
        var page = """
            <!DOCTYPE html>
            <html lang="en"><head><meta charset="utf-8">
            <meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
            <title>Your records: \(escape(subject))</title>
            <style>
            body{font-family:system-ui,sans-serif;margin:2em auto;max-width:60em;color:#1a1a1a;line-height:1.4}
            h1{font-size:1.5em}h2{font-size:1.15em;margin-top:2em;border-bottom:1px solid #ccc}
            table{border-collapse:collapse;width:100%;font-size:.9em}th,td{text-align:left;padding:.3em .5em;border-bottom:1px solid #eee;vertical-align:top}
            th{background:#f4f4f4}.allowed{color:#1a7f37;font-weight:600}.denied{color:#b42318;font-weight:600}.muted{color:#666}
            </style></head><body>
            <h1>Your records held by \(escape(origin))</h1>
            <p class="muted">For \(escape(subject)), request \(escape(request)), prepared \(escape(created.description)). \(items.count) records.
            Staff are named by their role. Each record's number is its place in our tamper-evident log.</p>
            <h2>Your consent now</h2>
            <table><tr><th>Purpose</th><th>Allowed</th><th>Status</th><th>Since</th><th>Record</th></tr>

            """
        for answer in consentNow {
            let allowed = answer["allowed"] == .bool(true)
            page += "<tr><td>\(escape(answer["purpose"]?.stringValue ?? ""))</td>"
            page += "<td class=\"\(allowed ? "allowed" : "denied")\">\(allowed ? "yes" : "no")</td>"
            page += "<td>\(escape(answer["status"]?.stringValue ?? ""))</td><td>\(escape(answer["since"]?.stringValue ?? "—"))</td>"
            page += "<td>\(answer["seq"]?.integerValue.map { "#\($0)" } ?? "—")</td></tr>\n"
        }
        page += "</table>\n"
        for section in Section.allCases {
            let rows = items.filter { Section.of($0.header.kind, class: $0.header.retentionClass) == section }
            guard !rows.isEmpty || section == .consent || section == .access else { continue }
            page += "<h2>\(escape(section.title))</h2>\n"
            guard !rows.isEmpty else {
                page += "<p class=\"muted\">None.</p>\n"
                continue
            }
            page += "<table><tr><th>When</th><th>What</th><th>By</th><th>Details</th><th>Record</th></tr>\n"
            for item in rows {
                var values = shown(item)
                let by = values.removeValue(forKey: "actor").map(text) ?? "—"
                var details = values.keys.sorted().map { "\(escape($0)): \(escape(text(values[$0]!)))" }
                if !item.redacted.isEmpty { details.append("<span class=\"muted\">deleted on schedule: \(escape(item.redacted.joined(separator: ", ")))</span>") }
                page += "<tr><td>\(escape(item.header.timestamp.description))</td><td>\(escape(item.header.kind))</td><td>\(escape(by))</td>"
                page += "<td>\(details.joined(separator: "<br>"))</td><td>#\(item.seq)</td></tr>\n"
            }
            page += "</table>\n"
        }
        page += "</body></html>\n"
        return page
    }
}
