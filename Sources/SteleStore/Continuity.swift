import SteleCore

/// What a daemon records about itself at start and clean stop (`Specs/events.md`): a
/// `ledger.started` not preceded by a `ledger.stopped` marks an unclean stop (`Specs/store.md`).
public struct DaemonIdentity: Sendable {
    /// The software version.
    public var version: String
    /// The verifier key of the key signing this daemon's checkpoints.
    public var verifierKey: String
    /// SHA-256 (hex) of the configuration file's bytes, or `embedded` when none was read.
    public var configurationDigest: String
    /// The daemon's process id.
    public var pid: Int32

    public init(version: String, verifierKey: String, configurationDigest: String, pid: Int32) {
        self.version = version
        self.verifierKey = verifierKey
        self.configurationDigest = configurationDigest
        self.pid = pid
    }

    var attributes: [String: JSONValue] {
        [
            "version": .string(version), "key": .string(verifierKey), "config_sha256": .string(configurationDigest),
            "pid": .integer(Int64(pid)),
        ]
    }
}

extension LedgerWriter {
    /// Appends `ledger.started` for `identity`; returns its seq.
    public func recordStarted(_ identity: DaemonIdentity) throws -> UInt64 {
        try perform { context in
            try context.append(Event.ledger("ledger.started", actor: "stele", attributes: identity.attributes)).seq
        }
    }

    /// Appends `ledger.stopped` for the daemon whose start is the entry `started`; returns its seq.
    public func recordStopped(_ identity: DaemonIdentity, started: UInt64) throws -> UInt64 {
        var attributes = identity.attributes
        attributes["started"] = .integer(Int64(started))
        return try perform { context in
            try context.append(Event.ledger("ledger.stopped", actor: "stele", attributes: attributes)).seq
        }
    }
}
