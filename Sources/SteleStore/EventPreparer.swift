public import SteleCore
import SteleCrypto

/// An event with everything computed that does not depend on the chain head: the sealed body
/// (salts drawn, field digests, commitment) and the keyed hashes for the indexes. Preparing is the
/// expensive, parallelizable part of an append; committing prepared events is the serialized part.
public struct PreparedEvent: Sendable {
    let event: Event
    let bodyBytes: [UInt8]
    let commitment: SHA256Digest
    let idempotencyKey: IdempotencyIndex.Key?
    let subjectPrefix: [UInt8]?
    let actorPrefix: [UInt8]?
    let kindHash: [UInt8]
}

/// Prepares events for one ledger. Owns its hashing context, salt pool and identifier cache, so
/// each thread that prepares events should own one; not thread-safe.
public final class EventPreparer {
    private let indexKey: [UInt8]
    private let sha = SHA256()
    private let randomness = SecureRandomPool()
    /// Keyed hashes of recently seen identifiers, per role: the same users recur, so most events skip two hashes.
    private var prefixes: [String: [String: [UInt8]]] = ["subject": [:], "actor": [:], "kind": [:]]

    init(indexKey: [UInt8]) {
        self.indexKey = indexKey
    }

    /// Seals the event's body and computes its index keys.
    /// - Throws: ``LedgerError`` `invalidEvent` for an invalid field name.
    public func prepare(_ event: Event) throws -> PreparedEvent {
        let sealed: EntryBody.Sealed
        do {
            // Attributes named like a reserved field would be shadowed; the protocol refuses them earlier.
            guard !event.attributes.keys.contains(where: { ["actor", "subject", "id", "occurred"].contains($0) }) else {
                throw LedgerError(.invalidEvent, "attributes may not be named actor, subject, id or occurred")
            }
            sealed = try EntryBody.seal(fields: event.bodyFields, using: sha, randomness: randomness)
        } catch let error as EntryFormatError {
            throw LedgerError(.invalidEvent, error.message)
        }
        return PreparedEvent(
            event: event,
            bodyBytes: sealed.record,
            commitment: sealed.commitment,
            idempotencyKey: event.id.map {
                IdempotencyIndex.Key(LedgerKeys.idempotencyKey(indexKey: indexKey, source: event.source, id: $0, sha: sha))
            },
            subjectPrefix: event.subject.map { prefix(role: "subject", $0) },
            actorPrefix: event.actor.map { prefix(role: "actor", $0) },
            kindHash: prefix(role: "kind", event.kind))
    }

    private func prefix(role: String, _ identifier: String) -> [UInt8] {
        if let cached = prefixes[role]?[identifier] { return cached }
        if prefixes[role]!.count >= 65_536 { prefixes[role]!.removeAll(keepingCapacity: true) }
        let prefix = LedgerKeys.identifierPrefix(indexKey: indexKey, role: role, identifier: identifier, sha: sha)
        prefixes[role]![identifier] = prefix
        return prefix
    }
}
