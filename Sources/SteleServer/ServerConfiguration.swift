public import SteleConsent
public import SteleCore
import SteleCrypto
public import SteleProtocol
public import SteleStore

/// Everything `stele serve` needs to run: paths, peers, limits. Loaded from `--config` (JSON, see
/// `Specs/protocol.md` §Configuration) over embedded defaults.
public struct ServerConfiguration: Sendable {
    /// The ledger's data directory.
    public var dataDirectory = "./stele-data"
    /// The socket path (default `<data>/stele.sock`).
    public var socketPath: String?
    /// The signing key file, outside the data directory.
    public var keyPath = "./stele-key/signing.key"
    /// The checkpoint directory, outside the data directory.
    public var checkpointDirectory = "./stele-checkpoints"
    /// The log's expected origin: the daemon refuses a store of another log.
    public var origin: String?
    /// Who may connect, and what each may append.
    public var peers: [PeerRule] = []
    /// Request limits.
    public var limits = RequestLimits()
    /// The event kinds accepted, naming only the purposes of ``consent``.
    public var catalogue = EventCatalogue.builtIn.naming(ConsentPolicy())
    /// The consent purposes, minimum ages and audit delays (`Specs/consent.md`).
    public var consent = ConsentPolicy()
    /// What erasure does to each class (`Specs/retention.md`); classes not named are erased.
    public var erasureRules = RetentionPolicy.defaultErasureRules
    /// Days consent entries are kept after their subject's erasure.
    public var consentProofDays = 1095

    /// The retention policy in force: the catalogue's classes with the erasure rules.
    public var retentionPolicy: RetentionPolicy {
        RetentionPolicy(classes: catalogue.classes.mapValues(\.days), onErasure: erasureRules, consentProofDays: consentProofDays)
    }
    /// Socket file permissions.
    public var socketMode: UInt32 = 0o660
    /// Most concurrent connections.
    public var maximumConnections = 256
    /// Most concurrent connections from one source (one peer rule), so no peer can take every slot.
    public var maximumConnectionsPerSource = 64
    /// Seconds between two background verifications of the whole store (0: none); the first runs
    /// after this, or five minutes, whichever is sooner.
    public var verifyIntervalSeconds: Int64 = 86_400
    /// Seconds between two scheduled prunes (`Specs/retention.md`; 0: none), the first one interval after the start.
    public var pruneIntervalSeconds: Int64 = 3_600
    /// The share of one core a background verification may take, in percent.
    public var verifyCPUPercent: Int64 = 10
    /// Seconds a request line may take to arrive once its first byte has: a peer trickling bytes
    /// cannot hold a connection slot.
    public var lineDeadlineSeconds: Int64 = 10
    /// Seconds a connection may stay silent with nothing in flight before it is closed.
    public var idleTimeoutSeconds: Int64 = 300
    /// Appends per second allowed per source (token bucket, burst = 2 seconds' worth); 0 = unlimited.
    public var ratePerSource: Double = 0
    /// Most events in one batch.
    public var maximumBatch = 8192
    /// Least time, in milliseconds, between two commits of journaled entries to the store (0: the
    /// next commit starts as soon as the last one ended; the store commits sooner when the journal
    /// is full). Acknowledged entries are durable in the
    /// journal meanwhile; readers see them once committed.
    public var storeCommitIntervalMilliseconds: Int64 = 10
    /// Requests one connection may have in flight before the daemon stops reading from it.
    public var maximumInFlightPerConnection = 4096
    /// Keep every store page the daemon writes in the page cache (the kernel's default). When false
    /// (the default), written pages more than 64 MiB behind the end of the store file are dropped
    /// from the cache once clean, unless someone has read them (`store.md`, "Processes").
    public var storeKeepsWrittenPages = false
    /// Checkpoint files kept in the checkpoint directory, the newest (0: every one). At most one
    /// checkpoint is signed per second, so the default keeps at least the last 2.7 hours' worth.
    public var checkpointFilesKept = 10_000
    /// Idempotency window in seconds.
    public var idempotencyWindowSeconds: Int64 = 86_400
    /// Most idempotency keys the writer keeps in memory (90–140 bytes each; `store.md`); past it the oldest
    /// are dropped before their window ends, and `stats` counts them.
    public var idempotencyMaximumKeys = LedgerWriter.Options.defaultIdempotencyMaximumKeys

    /// Embedded defaults.
    /// SHA-256 (hex) of the configuration file read last, or `embedded` (the daemon's
    /// `ledger.started` records it).
    public var configurationDigest = "embedded"

    public init() {}

    /// The socket path in effect.
    public var effectiveSocketPath: String { socketPath ?? dataDirectory + "/stele.sock" }
}

/// One authorized peer: a kernel uid (and optionally gid), the source name recorded in headers, and
/// the kinds it may append (`*`, an exact kind, or a prefix ending in `.*`).
public struct PeerRule: Sendable, Hashable {
    /// The peer's uid.
    public var uid: UInt32
    /// If set, the peer's gid must match too.
    public var gid: UInt32?
    /// The source name recorded in each header of this peer's events.
    public var source: String
    /// Kind patterns this peer may append.
    public var kinds: [String]
    /// Purpose patterns this peer may ask consent questions about (`op` `consent`).
    public var consent: [String]
    /// Whether this peer may run operator operations (`op` `prune`).
    public var isOperator: Bool

    /// A rule.
    public init(uid: UInt32, gid: UInt32? = nil, source: String, kinds: [String] = ["*"], consent: [String] = [], isOperator: Bool = false) {
        self.uid = uid
        self.gid = gid
        self.source = source
        self.kinds = kinds
        self.consent = consent
        self.isOperator = isOperator
    }

    /// True if this peer may append `kind`.
    public func allows(_ kind: String) -> Bool {
        Self.matches(kinds, kind)
    }

    /// True if this peer may ask about consent to `purpose`.
    public func mayAskConsent(_ purpose: String) -> Bool {
        Self.matches(consent, purpose)
    }

    /// `*`, the name itself, or a prefix pattern ending in `.*`.
    private static func matches(_ patterns: [String], _ name: String) -> Bool {
        patterns.contains { pattern in
            pattern == "*" || pattern == name || (pattern.hasSuffix(".*") && name.hasPrefix(pattern.dropLast(1)))
        }
    }
}

extension ServerConfiguration {
    /// Reads a JSON configuration file's members over these values.
    /// - Throws: a message naming the offending member.
    public mutating func apply(json text: [UInt8]) throws(ConfigurationError) {
        configurationDigest = SHA256.hash(text).hex
        let value: JSONValue
        do { value = try JSONParser.parse(text) } catch { throw ConfigurationError("the configuration is not valid JSON: \(error)") }
        guard let object = value.objectValue else { throw ConfigurationError("the configuration must be a JSON object") }
        let known: Set<String> = [
            "data", "socket", "key", "checkpoints", "origin", "peers", "socket_mode", "max_connections",
            "max_connections_per_source", "line_deadline_seconds", "verify_interval_seconds", "verify_cpu_percent",
            "idle_timeout_seconds", "rate_per_source", "max_batch", "store_commit_interval_ms", "max_in_flight_per_connection",
            "max_line_bytes", "max_attribute_depth", "max_attributes", "max_string_bytes", "kinds",
            "idempotency_window_seconds", "idempotency_max_keys", "checkpoint_files_kept", "store_keep_written_pages", "consent",
            "prune_interval_seconds", "retention",
        ]
        if let extra = object.keys.sorted().first(where: { !known.contains($0) }) {
            throw ConfigurationError("unknown configuration member \"\(extra)\"")
        }
        func string(_ name: String) throws(ConfigurationError) -> String? {
            guard let member = object[name] else { return nil }
            guard let s = member.stringValue, !s.isEmpty else { throw ConfigurationError("\"\(name)\" must be a non-empty string") }
            return s
        }
        func integer(_ name: String, _ range: ClosedRange<Int64>) throws(ConfigurationError) -> Int64? {
            guard let member = object[name] else { return nil }
            guard let i = member.integerValue, range.contains(i) else {
                throw ConfigurationError("\"\(name)\" must be an integer in \(range.lowerBound)...\(range.upperBound)")
            }
            return i
        }
        if let v = try string("data") { dataDirectory = v }
        if let v = try string("socket") { socketPath = v }
        if let v = try string("key") { keyPath = v }
        if let v = try string("checkpoints") { checkpointDirectory = v }
        if let v = try string("origin") { origin = v }
        if let v = try integer("socket_mode", 0...0o777) { socketMode = UInt32(v) }
        if let v = try integer("max_connections", 1...100_000) { maximumConnections = Int(v) }
        if let v = try integer("idle_timeout_seconds", 1...86_400) { idleTimeoutSeconds = v }
        if let v = try integer("max_connections_per_source", 1...100_000) { maximumConnectionsPerSource = Int(v) }
        if let v = try integer("line_deadline_seconds", 1...3_600) { lineDeadlineSeconds = v }
        if let v = try integer("verify_interval_seconds", 0...31_536_000) { verifyIntervalSeconds = v }
        if let v = try integer("verify_cpu_percent", 1...100) { verifyCPUPercent = v }
        if let v = try integer("prune_interval_seconds", 0...31_536_000) { pruneIntervalSeconds = v }
        if let v = try integer("rate_per_source", 0...10_000_000) { ratePerSource = Double(v) }
        if let v = try integer("max_batch", 1...100_000) { maximumBatch = Int(v) }
        if let v = try integer("store_commit_interval_ms", 0...600_000) { storeCommitIntervalMilliseconds = v }
        if let member = object["store_keep_written_pages"] {
            guard case .bool(let v) = member else { throw ConfigurationError("\"store_keep_written_pages\" must be true or false") }
            storeKeepsWrittenPages = v
        }
        if let v = try integer("max_in_flight_per_connection", 1...1_000_000) { maximumInFlightPerConnection = Int(v) }
        if let v = try integer("max_line_bytes", 256...16_777_216) { limits.maximumLineLength = Int(v) }
        if let v = try integer("max_attribute_depth", 1...64) { limits.maximumAttributeDepth = Int(v) }
        if let v = try integer("max_attributes", 1...4096) { limits.maximumAttributeCount = Int(v) }
        if let v = try integer("max_string_bytes", 1...16_777_216) { limits.maximumStringLength = Int(v) }
        if let v = try integer("idempotency_window_seconds", 1...31_536_000) { idempotencyWindowSeconds = v }
        if let v = try integer("checkpoint_files_kept", 0...1_000_000_000) { checkpointFilesKept = Int(v) }
        if let v = try integer("idempotency_max_keys", 1...10_000_000_000) { idempotencyMaximumKeys = Int(v) }
        if let peersValue = object["peers"] {
            guard let list = peersValue.arrayValue else { throw ConfigurationError("\"peers\" must be an array") }
            peers = try list.map { entry throws(ConfigurationError) in
                guard let uid = entry["uid"]?.integerValue, (0...Int64(UInt32.max)).contains(uid),
                    let source = entry["source"]?.stringValue, !source.isEmpty,
                    source.utf8.allSatisfy({ (0x21...0x7E).contains($0) })
                else { throw ConfigurationError("each peer needs \"uid\" (integer) and \"source\" (printable ASCII)") }
                func patterns(_ member: String, default: [String]) throws(ConfigurationError) -> [String] {
                    guard let k = entry[member] else { return `default` }
                    guard let names = k.arrayValue?.compactMap(\.stringValue), names.count == k.arrayValue?.count else {
                        throw ConfigurationError("peer \"\(member)\" must be an array of strings")
                    }
                    return names
                }
                let kinds = try patterns("kinds", default: ["*"])
                let consent = try patterns("consent", default: [])
                var gid: UInt32?
                if let g = entry["gid"] {
                    guard let value = g.integerValue, (0...Int64(UInt32.max)).contains(value) else {
                        throw ConfigurationError("peer \"gid\" must be an integer")
                    }
                    gid = UInt32(value)
                }
                var isOperator = false
                if let flag = entry["operator"] {
                    guard case .bool(let value) = flag else { throw ConfigurationError("peer \"operator\" must be true or false") }
                    isOperator = value
                }
                return PeerRule(uid: UInt32(uid), gid: gid, source: source, kinds: kinds, consent: consent, isOperator: isOperator)
            }
        }
        if let member = object["consent"] {
            do { try consent.apply(json: member) } catch { throw ConfigurationError(error.message) }
            catalogue = catalogue.naming(consent)
        }
        if let member = object["retention"] {
            try applyRetention(member)
        }
        if let kindsValue = object["kinds"] {
            guard let list = kindsValue.arrayValue else { throw ConfigurationError("\"kinds\" must be an array") }
            for entry in list {
                guard let name = entry["name"]?.stringValue, let cls = entry["class"]?.stringValue else {
                    throw ConfigurationError("each custom kind needs \"name\" and \"class\"")
                }
                guard !name.hasPrefix("ledger.") else { throw ConfigurationError("kind \"\(name)\": ledger.* is reserved") }
                guard catalogue.classes[cls] != nil || entry["retention_days"] != nil else {
                    throw ConfigurationError("kind \"\(name)\": unknown class \"\(cls)\" (give retention_days to declare it)")
                }
                if let days = entry["retention_days"] {
                    guard let d = days.integerValue, d > 0 else { throw ConfigurationError("\"retention_days\" must be a positive integer") }
                    catalogue.add(EventCatalogue.RetentionClass(cls, days: Int(d)))
                }
                func attributes(_ key: String) -> [String: EventCatalogue.AttributeType] {
                    Dictionary(uniqueKeysWithValues: (entry[key]?.arrayValue ?? []).compactMap(\.stringValue).map { ($0, EventCatalogue.AttributeType.any) })
                }
                catalogue.add(EventCatalogue.Kind(name, class: cls, required: attributes("required"), optional: attributes("optional")))
            }
        }
    }
}

/// A configuration that cannot be used.
public struct ConfigurationError: Error, Sendable, CustomStringConvertible {
    /// What is wrong.
    public let message: String
    init(_ message: String) { self.message = message }
    public var description: String { message }
}


extension ServerConfiguration {
    /// `retention`: `{"classes": {name: days | null}, "on_erasure": {name: "erase" | "keep" | "proof"},
    /// "consent_proof_days": n}`, every member optional (`Specs/retention.md`).
    mutating func applyRetention(_ member: JSONValue) throws(ConfigurationError) {
        guard let object = member.objectValue else { throw ConfigurationError("\"retention\" must be an object") }
        if let extra = object.keys.sorted().first(where: { !["classes", "on_erasure", "consent_proof_days"].contains($0) }) {
            throw ConfigurationError("unknown member \"retention.\(extra)\"")
        }
        if let classes = object["classes"] {
            guard let members = classes.objectValue else { throw ConfigurationError("\"retention.classes\" must be an object of class to days") }
            for (name, days) in members.sorted(by: { $0.key < $1.key }) {
                guard name != "ledger" else { throw ConfigurationError("\"retention.classes.ledger\": Stele's own entries are kept forever") }
                if days.isNull {
                    catalogue.add(EventCatalogue.RetentionClass(name, days: nil))
                } else {
                    guard let d = days.integerValue, (1...36_500).contains(d) else {
                        throw ConfigurationError("\"retention.classes.\(name)\" must be days from 1 to 36500, or null")
                    }
                    catalogue.add(EventCatalogue.RetentionClass(name, days: Int(d)))
                }
            }
        }
        if let rules = object["on_erasure"] {
            guard let members = rules.objectValue else { throw ConfigurationError("\"retention.on_erasure\" must be an object of class to rule") }
            for (name, rule) in members {
                guard let value = rule.stringValue.flatMap(RetentionPolicy.ErasureRule.init(rawValue:)) else {
                    throw ConfigurationError("\"retention.on_erasure.\(name)\" must be erase, keep or proof")
                }
                erasureRules[name] = value
            }
        }
        if let days = object["consent_proof_days"] {
            guard let d = days.integerValue, (0...36_500).contains(d) else {
                throw ConfigurationError("\"retention.consent_proof_days\" must be days from 0 to 36500")
            }
            consentProofDays = Int(d)
        }
    }
}
