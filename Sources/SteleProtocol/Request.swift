public import SteleCore

/// A decoded client request (`Specs/protocol.md`).
public enum Request: Sendable, Hashable {
    /// Append an event. `wantsReceipt` asks for the exact header text in the reply.
    case append(Event, wantsReceipt: Bool)
    /// Liveness check.
    case ping
    /// The latest signed checkpoint.
    case checkpoint
    /// Daemon statistics.
    case stats
    /// Whether processing `purpose` for `subject` is allowed now (`Specs/consent.md`).
    case consent(subject: String, purpose: String)
    /// An operator's prune (`Specs/retention.md`).
    case prune(PruneOrder)
    /// An operator's erasure of an account.
    case erase(subject: String, request: String, reason: String)
    /// An operator placing a legal hold on a subject's entries (of one kind, until a time).
    case placeHold(subject: String, kind: String?, until: Timestamp?, request: String, reason: String)
    /// An operator releasing the hold placed by entry `hold`.
    case releaseHold(hold: UInt64, request: String, reason: String)
    /// An operator's compaction of the store file and the journal.
    case compact(request: String, reason: String)
    /// An operator's record of a read of personal data (`ledger.accessed`), before it discloses it.
    case accessed(command: String, query: JSONValue, reason: String, disclosed: Int)
    /// The RFC 9162 consistency proof between two tree sizes (`to` nil: the committed log), for monitors.
    case consistency(from: UInt64, to: UInt64?)
}

/// What an operator's `prune` asks for.
public struct PruneOrder: Sendable, Hashable {
    /// The cutoff; nil for the daemon's clock.
    public let now: Timestamp?
    public let dryRun: Bool
    /// The request or ticket id.
    public let request: String
    public let reason: String
}

/// Decodes request lines into ``Request`` values, enforcing the catalogue and the limits.
public struct RequestDecoder: Sendable {
    /// The event kinds accepted.
    public var catalogue: EventCatalogue
    /// The bounds enforced.
    public var limits: RequestLimits

    /// A decoder for `catalogue` with `limits`.
    public init(catalogue: EventCatalogue = .builtIn, limits: RequestLimits = RequestLimits()) {
        self.catalogue = catalogue
        self.limits = limits
    }

    /// The client's `id` member, if the line is an object carrying a string id (for error replies).
    public static func clientID(in value: JSONValue?) -> String? {
        value?["id"]?.stringValue
    }

    /// Decodes one line (without its newline) from `source`.
    /// - Returns: the request and the client's id (echoed in replies).
    public func decode(line: some Collection<UInt8>, source: String) -> (request: Result<Request, ProtocolError>, id: String?) {
        Array(line).withUnsafeBytes { decode(line: $0, source: source) }
    }

    /// Decodes one line (without its newline) held in a buffer, from `source`.
    public func decode(line: UnsafeRawBufferPointer, source: String) -> (request: Result<Request, ProtocolError>, id: String?) {
        guard line.count <= limits.maximumLineLength else {
            return (.failure(ProtocolError(.lineTooLong, "request line exceeds \(limits.maximumLineLength) bytes")), nil)
        }
        var members = Members()
        do {
            let isObject = try JSONParser.parseMembers(line, maximumDepth: limits.maximumAttributeDepth + 2) { members.set($0, $1) }
            guard isObject else { return (.failure(ProtocolError(.notAnObject, "a request is a JSON object")), nil) }
        } catch {
            let code = error.code == .tooDeep ? ProtocolError.Code.tooLarge : ProtocolError.Code.malformedJSON
            return (.failure(ProtocolError(code, "request is not valid JSON: \(error)")), nil)
        }
        return (Result { () throws(ProtocolError) in try decode(members, source: source) }, members.id?.stringValue)
    }

    /// Decodes a parsed request from `source`.
    public func decode(_ value: JSONValue, source: String) throws(ProtocolError) -> Request {
        guard let object = value.objectValue else { throw ProtocolError(.notAnObject, "a request is a JSON object") }
        var members = Members()
        for (name, member) in object { members.set(name, member) }
        return try decode(members, source: source)
    }

    /// A request object's members, picked out by name (no dictionary per request).
    private struct Members {
        var op, id, kind, actor, subject, occurred, attrs, receipt, purpose: JSONValue?
        /// Members of operator requests.
        var now, dryRun, request, reason, until, hold: JSONValue?
        /// Members of a consistency request.
        var from, to: JSONValue?
        /// Members of an access record.
        var command, query, disclosed: JSONValue?

        /// Whether a member of another op than append is present (an append then refuses it).
        var hasOperatorMembers: Bool {
            purpose != nil || now != nil || dryRun != nil || request != nil || reason != nil || until != nil || hold != nil || from != nil || to != nil
                || command != nil || query != nil || disclosed != nil
        }

        var operatorMemberNames: [String] {
            [("purpose", purpose), ("now", now), ("dry_run", dryRun), ("request", request), ("reason", reason), ("until", until), ("hold", hold),
             ("from", from), ("to", to), ("command", command), ("query", query), ("disclosed", disclosed)]
                .compactMap { $0.1 == nil ? nil : $0.0 }
        }
        var unknown: [String] = []

        mutating func set(_ name: consuming String, _ value: consuming JSONValue) {
            // Dispatched on the name's length first: comparing unequal strings takes the standard
            // library's slow path, and a `switch` over the names would compare each in turn.
            switch name.utf8.count {
            case 2 where name == "op": op = value
            case 2 where name == "id": id = value
            case 4 where name == "kind": kind = value
            case 5 where name == "actor": actor = value
            case 5 where name == "attrs": attrs = value
            case 7 where name == "subject": subject = value
            case 7 where name == "receipt": receipt = value
            case 7 where name == "purpose": purpose = value
            case 3 where name == "now": now = value
            case 7 where name == "dry_run": dryRun = value
            case 7 where name == "request": request = value
            case 6 where name == "reason": reason = value
            case 5 where name == "until": until = value
            case 4 where name == "hold": hold = value
            case 4 where name == "from": from = value
            case 2 where name == "to": to = value
            case 8 where name == "occurred": occurred = value
            case 7 where name == "command": command = value
            case 5 where name == "query": query = value
            case 9 where name == "disclosed": disclosed = value
            default: unknown.append(name)
            }
        }
    }

    private func decode(_ members: Members, source: String) throws(ProtocolError) -> Request {
        let op: String
        switch members.op {
        case nil: op = "append"
        case .string(let s)?: op = s
        default: throw ProtocolError(.invalidField, "\"op\" must be a string")
        }
        switch op {
        case "append": return try decodeAppend(members, source: source)
        case "ping": return .ping
        case "checkpoint": return .checkpoint
        case "stats": return .stats
        case "consent": return try decodeConsent(members)
        case "prune": return try decodePrune(members)
        case "erase", "hold", "release_hold", "compact": return try decodeOperator(op, members)
        case "consistency": return try decodeConsistency(members)
        case "accessed": return try decodeAccessed(members)
        default: throw ProtocolError(.unknownOp, "unknown op \"\(op)\" (append, ping, checkpoint, stats, consent, consistency, prune, erase, hold, release_hold, compact, accessed)")
        }
    }

    /// `erase` (`subject`), `hold` (`subject`; optional `kind`, `until`), `release_hold` (`hold`) and
    /// `compact`, each with `request` and `reason`.
    private func decodeOperator(_ op: String, _ members: Members) throws(ProtocolError) -> Request {
        if members.actor != nil || members.attrs != nil || members.purpose != nil || members.occurred != nil || members.receipt != nil
            || members.now != nil || members.dryRun != nil || members.from != nil || members.to != nil
            || (op != "hold" && (members.kind != nil || members.until != nil))
            || (op != "release_hold" && members.hold != nil) || ((op == "release_hold" || op == "compact") && members.subject != nil)
        {
            throw ProtocolError(.invalidField, "\"\(op)\" takes only the members Specs/protocol.md lists for it")
        }
        if let extra = members.unknown.min() { throw ProtocolError(.invalidField, "unknown member \"\(extra)\"") }
        let request = try operatorText(members.request, "request")
        let reason = try operatorText(members.reason, "reason")
        if op == "compact" { return .compact(request: request, reason: reason) }
        if op == "release_hold" {
            guard let value = members.hold else { throw ProtocolError(.missingField, "\"hold\" (the seq of the ledger.hold entry) is required") }
            guard let hold = value.integerValue, hold >= 0 else { throw ProtocolError(.invalidField, "\"hold\" must be a seq") }
            return .releaseHold(hold: UInt64(hold), request: request, reason: reason)
        }
        guard members.subject != nil, let subject = try identifier(members.subject, "subject") else {
            throw ProtocolError(.missingField, "\"subject\" is required for \(op)")
        }
        if op == "erase" { return .erase(subject: subject, request: request, reason: reason) }
        var kind: String?
        if let value = members.kind {
            guard let name = value.stringValue, catalogue.kind(name) != nil else { throw ProtocolError(.unknownKind, "\"kind\" must name a kind of the catalogue") }
            kind = name
        }
        var until: Timestamp?
        if let value = members.until {
            guard let t = value.stringValue.flatMap(Timestamp.init(rfc3339:)) else { throw ProtocolError(.invalidField, "\"until\" must be an RFC 3339 time") }
            until = t
        }
        return .placeHold(subject: subject, kind: kind, until: until, request: request, reason: reason)
    }

    private func operatorText(_ value: JSONValue?, _ name: String) throws(ProtocolError) -> String {
        guard let value else { throw ProtocolError(.missingField, "\"\(name)\" is required: every operator action records it") }
        guard let s = value.stringValue, s.utf8.contains(where: { $0 > 0x20 }), s.utf8.count <= 1024 else {
            throw ProtocolError(.invalidField, "\"\(name)\" must be a non-empty string of at most 1024 bytes")
        }
        return s
    }

    /// `accessed`: `command`, `query` (an object), `reason` and `disclosed` (entries), nothing else.
    private func decodeAccessed(_ members: Members) throws(ProtocolError) -> Request {
        if members.kind != nil || members.actor != nil || members.subject != nil || members.attrs != nil || members.purpose != nil
            || members.occurred != nil || members.receipt != nil || members.now != nil || members.dryRun != nil || members.request != nil
            || members.until != nil || members.hold != nil || members.from != nil || members.to != nil
        {
            throw ProtocolError(.invalidField, "an access record has only \"op\", \"id\", \"command\", \"query\", \"reason\" and \"disclosed\"")
        }
        if let extra = members.unknown.min() { throw ProtocolError(.invalidField, "unknown member \"\(extra)\"") }
        let command = try operatorText(members.command, "command")
        guard let query = members.query else { throw ProtocolError(.missingField, "\"query\" (what was read) is required") }
        guard query.objectValue != nil else { throw ProtocolError(.invalidField, "\"query\" must be an object") }
        guard let value = members.disclosed else { throw ProtocolError(.missingField, "\"disclosed\" (the entries disclosed) is required") }
        guard let disclosed = value.integerValue, disclosed >= 0 else { throw ProtocolError(.invalidField, "\"disclosed\" must be a count") }
        return .accessed(command: command, query: query, reason: try operatorText(members.reason, "reason"), disclosed: Int(disclosed))
    }

    private func decodeConsistency(_ members: Members) throws(ProtocolError) -> Request {
        if members.purpose != nil || members.now != nil || members.dryRun != nil || members.request != nil || members.reason != nil
            || members.until != nil || members.hold != nil || members.kind != nil || members.actor != nil || members.subject != nil
            || members.attrs != nil || members.occurred != nil || members.receipt != nil
        {
            throw ProtocolError(.invalidField, "a consistency request has only \"op\", \"id\", \"from\" and \"to\"")
        }
        if let extra = members.unknown.min() { throw ProtocolError(.invalidField, "unknown member \"\(extra)\"") }
        guard let value = members.from else { throw ProtocolError(.missingField, "\"from\" (the older tree size) is required") }
        guard let from = value.integerValue, from >= 0 else { throw ProtocolError(.invalidField, "\"from\" must be a tree size") }
        var to: UInt64?
        if let value = members.to {
            guard let size = value.integerValue, size >= from else { throw ProtocolError(.invalidField, "\"to\" must be a tree size not below \"from\"") }
            to = UInt64(size)
        }
        return .consistency(from: UInt64(from), to: to)
    }

    private func decodePrune(_ members: Members) throws(ProtocolError) -> Request {
        if members.kind != nil || members.actor != nil || members.subject != nil || members.attrs != nil || members.purpose != nil
            || members.until != nil || members.hold != nil || members.from != nil || members.to != nil
        {
            throw ProtocolError(.invalidField, "a prune has only \"op\", \"id\", \"now\", \"dry_run\", \"request\" and \"reason\"")
        }
        if let extra = members.unknown.min() { throw ProtocolError(.invalidField, "unknown member \"\(extra)\"") }
        var now: Timestamp?
        if let value = members.now {
            guard let t = value.stringValue.flatMap(Timestamp.init(rfc3339:)) else { throw ProtocolError(.invalidField, "\"now\" must be an RFC 3339 time") }
            now = t
        }
        var dryRun = false
        if let value = members.dryRun {
            guard let flag = value.boolValue else { throw ProtocolError(.invalidField, "\"dry_run\" must be true or false") }
            dryRun = flag
        }
        return .prune(PruneOrder(now: now, dryRun: dryRun, request: try operatorText(members.request, "request"), reason: try operatorText(members.reason, "reason")))
    }

    private func decodeConsent(_ members: Members) throws(ProtocolError) -> Request {
        if members.kind != nil || members.actor != nil || members.attrs != nil || members.occurred != nil || members.receipt != nil
            || members.from != nil || members.to != nil || members.now != nil || members.hold != nil || members.until != nil
        {
            throw ProtocolError(.invalidField, "a consent question has only \"op\", \"id\", \"subject\" and \"purpose\"")
        }
        if let extra = members.unknown.min() { throw ProtocolError(.invalidField, "unknown member \"\(extra)\"") }
        guard members.subject != nil else { throw ProtocolError(.missingField, "\"subject\" is required for a consent question") }
        guard let subject = try identifier(members.subject, "subject") else { throw ProtocolError(.missingField, "\"subject\" is required") }
        guard let value = members.purpose else { throw ProtocolError(.missingField, "\"purpose\" is required for a consent question") }
        guard let purpose = value.stringValue, !purpose.isEmpty else { throw ProtocolError(.invalidField, "\"purpose\" must be a non-empty string") }
        if let purposes = catalogue.purposes, !purposes.contains(purpose) {
            throw ProtocolError(.unknownPurpose, "purpose \"\(purpose)\" is not configured (consent.purposes: \(purposes.sorted().joined(separator: ", ")))")
        }
        return .consent(subject: subject, purpose: purpose)
    }

    private func decodeAppend(_ members: Members, source: String) throws(ProtocolError) -> Request {
        if let extra = members.hasOperatorMembers ? (members.unknown + members.operatorMemberNames).min() : members.unknown.min() {
            throw ProtocolError(.invalidField, "unknown member \"\(extra)\" (attributes go inside \"attrs\")")
        }
        guard let kindValue = members.kind else { throw ProtocolError(.missingField, "\"kind\" is required") }
        guard let kindName = kindValue.stringValue else { throw ProtocolError(.invalidField, "\"kind\" must be a string") }
        if kindName.hasPrefix("ledger.") {
            throw ProtocolError(.forbiddenKind, "\"\(kindName)\": ledger.* kinds are written by Stele only")
        }
        guard let kind = catalogue.kind(kindName) else {
            throw ProtocolError(.unknownKind, "unknown kind \"\(kindName)\"")
        }
        let id = try identifier(members.id, "id")
        let actor = try identifier(members.actor, "actor")
        let subject = try identifier(members.subject, "subject")
        var occurred: Timestamp?
        if let value = members.occurred {
            guard let text = value.stringValue, let time = Timestamp(rfc3339: text) else {
                throw ProtocolError(.invalidField, "\"occurred\" must be an RFC 3339 time, to the microsecond at most (fraction digits past the sixth must be 0: a time is never rounded)")
            }
            occurred = time
        }
        var wantsReceipt = false
        if let value = members.receipt {
            guard let flag = value.boolValue else { throw ProtocolError(.invalidField, "\"receipt\" must be true or false") }
            wantsReceipt = flag
        }
        var attributes: [String: JSONValue] = [:]
        if let value = members.attrs {
            guard let members = value.objectValue else { throw ProtocolError(.invalidField, "\"attrs\" must be an object") }
            attributes = members
        }
        try checkSize(attributes)
        for name in attributes.keys {
            if Self.isReservedFieldName(name) {
                throw ProtocolError(.invalidField, "attribute \"\(name)\" is reserved; send it as a top-level member")
            }
            do { try EntryBody.validate(name: name) } catch {
                throw ProtocolError(.invalidField, "attribute name \"\(name)\": use 1-64 of a-z 0-9 _ . starting with a letter")
            }
        }
        if let (attribute, reason) = catalogue.problem(with: attributes, for: kind) {
            let type = kind.required[attribute] ?? kind.optional[attribute]
            let code: ProtocolError.Code =
                if attributes[attribute] == nil && kind.required[attribute] != nil { .missingField }
                else if let value = attributes[attribute], let type, catalogue.unknownPurpose(in: value, type) != nil { .unknownPurpose }
                else { .invalidField }
            throw ProtocolError(code, "attribute \"\(attribute)\" \(reason)")
        }
        if kind.requiresSubject && subject == nil {
            throw ProtocolError(.missingField, "\"subject\" is required for \(kind.name): whose data the event concerns")
        }
        if kind.requiresActor && actor == nil {
            throw ProtocolError(.missingField, "\"actor\" is required for \(kind.name): who acted")
        }
        let event = Event(
            kind: kind.name, retentionClass: kind.retentionClass, retention: catalogue.retentionMicroseconds(for: kind),
            source: source, actor: actor, subject: subject, id: id, occurred: occurred, attributes: attributes)
        return .append(event, wantsReceipt: wantsReceipt)
    }

    /// The body fields a request gives as top-level members, never as attributes.
    private static func isReservedFieldName(_ name: String) -> Bool {
        switch name.utf8.count {  // see `Members.set`
        case 2: name == "id"
        case 5: name == "actor"
        case 7: name == "subject"
        case 8: name == "occurred"
        default: false
        }
    }

    private func identifier(_ member: JSONValue?, _ name: String) throws(ProtocolError) -> String? {
        guard let value = member else { return nil }
        guard let text = value.stringValue else {
            throw ProtocolError(.invalidIdentifier, "\"\(name)\" must be a string")
        }
        // Over the contiguous bytes: iterating the UTF-8 view one index at a time cost several times more.
        // The closure captures the bound, not `self`: capturing `self` would copy the decoder, one
        // retain and release of each catalogue table per identifier.
        let maximum = limits.maximumIdentifierLength
        let printable = { (bytes: UnsafeBufferPointer<UInt8>) in
            (1...maximum).contains(bytes.count) && bytes.allSatisfy { (0x21...0x7E).contains($0) }
        }
        guard text.utf8.withContiguousStorageIfAvailable(printable) ?? Array(text.utf8).withUnsafeBufferPointer(printable) else {
            throw ProtocolError(
                ProtocolError.Code.invalidIdentifier,
                "\"\(name)\" must be 1-\(limits.maximumIdentifierLength) printable ASCII characters without spaces")
        }
        return text
    }

    private func checkSize(_ attributes: [String: JSONValue]) throws(ProtocolError) {
        let limits = self.limits  // what `walk` captures, instead of the whole decoder
        guard attributes.count <= limits.maximumAttributeCount else {
            throw ProtocolError(.tooLarge, "more than \(limits.maximumAttributeCount) attributes")
        }
        func walk(_ value: JSONValue, depth: Int) throws(ProtocolError) {
            guard depth <= limits.maximumAttributeDepth else {
                throw ProtocolError(.tooLarge, "attributes nest deeper than \(limits.maximumAttributeDepth) levels")
            }
            switch value {
            case .string(let s):
                guard s.utf8.count <= limits.maximumStringLength else {
                    throw ProtocolError(.tooLarge, "a string is longer than \(limits.maximumStringLength) bytes")
                }
            case .array(let elements): for element in elements { try walk(element, depth: depth + 1) }
            case .object(let members):
                for (key, member) in members {
                    try walk(.string(key), depth: depth)
                    try walk(member, depth: depth + 1)
                }
            default: break
            }
        }
        for value in attributes.values { try walk(value, depth: 0) }
    }
}
