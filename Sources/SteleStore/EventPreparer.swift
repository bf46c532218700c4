public import SteleCore
import SteleCrypto

/// An event with everything computed that does not depend on the chain head: the sealed body
/// (salts drawn, field digests, commitment) and the keyed hashes for the indexes. Preparing is the
/// expensive, parallelizable part of an append; committing prepared events is the serialized part.
///
/// A reference type: prepared events are queued, batched and handed between threads, and copying a
/// reference costs one retain where copying the event's many strings would cost one each.
///
/// It keeps of the event only what committing needs: the decoded event (its attribute tree and
/// strings) is freed on the thread that prepared it, while its memory is still in that core's
/// cache, rather than on whichever thread frees the batch. A retried id is compared with the
/// original entry through the sealed body record (``Ledger/sameEvent(_:_:)``).
public final class PreparedEvent: Sendable {
    /// The event's kind, as in the header.
    let kind: String
    /// The authenticated source, as in the header.
    let source: String
    /// The client's idempotency key, if given.
    let id: String?
    /// How long after `ts` the body is kept, in microseconds (nil: not fixed at append time).
    let retention: Int64?
    let bodyBytes: [UInt8]
    let commitment: SHA256Digest
    let idempotencyKey: KeyedHash?
    let subjectHash: KeyedHash?
    let actorHash: KeyedHash?
    let kindHash: KeyedHash
    /// The header text but for its chain position.
    let headerTemplate: EntryHeaderTemplate

    /// Bytes the entry's body takes in the store (and in the journal).
    public var bodySize: Int { bodyBytes.count }

    init(
        event: Event, bodyBytes: [UInt8], commitment: SHA256Digest, idempotencyKey: KeyedHash?,
        subjectHash: KeyedHash?, actorHash: KeyedHash?, kindHash: KeyedHash, sha: SHA256
    ) {
        self.headerTemplate = EntryHeaderTemplate(
            kind: event.kind, retentionClass: event.retentionClass, source: event.source, bodyCommitment: commitment, using: sha)
        self.kind = event.kind
        self.source = event.source
        self.id = event.id
        self.retention = event.retention
        self.bodyBytes = bodyBytes
        self.commitment = commitment
        self.idempotencyKey = idempotencyKey
        self.subjectHash = subjectHash
        self.actorHash = actorHash
        self.kindHash = kindHash
    }
}

/// Prepares events for one ledger. Owns its hashing context, salt pool and kind cache: use it
/// from one thread at a time (it may be handed between threads).
public final class EventPreparer: @unchecked Sendable {
    private let indexKey: SHA256Digest
    private let sha = SHA256()
    private let randomness = SecureRandomPool()
    /// Keyed hashes of the kinds seen: a few dozen names, so the table stays small and every lookup
    /// after the first hits. Subjects and actors are hashed anew each time: a table of recent users
    /// was slower than the hash it saved (one SHA-256 block), even when most lookups hit
    /// (`StoreBenchmark --requests`, 8 alternating runs: prepare 4.62 µs at best without it against
    /// 5.35 µs with it, faster without in 7 of 8), and it held megabytes per connection.
    private var kinds: [String: KeyedHash] = [:]

    init(indexKey: SHA256Digest) {
        self.indexKey = indexKey
    }

    /// Seals the event's body and computes its index keys.
    /// - Throws: ``LedgerError`` `invalidEvent` for an invalid field name, or an attribute named like a
    ///   reserved field (`actor`, `subject`, `id`, `occurred`).
    public func prepare(_ event: Event) throws -> PreparedEvent {
        let sealed: EntryBody.Sealed
        do {
            sealed = try EntryBody.seal(fields: event.bodyFields, using: sha, randomness: randomness)
        } catch let error as EntryFormatError {
            throw LedgerError(.invalidEvent, error.message)
        }
        return PreparedEvent(
            event: event,
            bodyBytes: sealed.record,
            commitment: sealed.commitment,
            idempotencyKey: event.id.map {
                LedgerKeys.idempotencyHash(indexKey: indexKey, source: event.source, id: $0, sha: sha)
            },
            subjectHash: event.subject.map { LedgerKeys.identifierHash(indexKey: indexKey, role: "subject", identifier: $0, sha: sha) },
            actorHash: event.actor.map { LedgerKeys.identifierHash(indexKey: indexKey, role: "actor", identifier: $0, sha: sha) },
            kindHash: kindHash(event.kind),
            sha: sha)
    }

    private func kindHash(_ kind: String) -> KeyedHash {
        if let hit = kinds[kind] { return hit }
        // Only custom kinds from the config add to the built-in catalogue; the bound is a safeguard.
        if kinds.count >= 4096 { kinds.removeAll(keepingCapacity: true) }
        let hash = LedgerKeys.identifierHash(indexKey: indexKey, role: "kind", identifier: kind, sha: sha)
        kinds[kind] = hash
        return hash
    }
}

extension Ledger {
    /// A preparer bound to this ledger's index key, for one thread at a time.
    public func makePreparer() -> EventPreparer {
        EventPreparer(indexKey: indexKey)
    }
}
