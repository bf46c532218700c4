public import SteleCrypto

/// What a monitor of one log keeps and decides (`Specs/monitor.md`): the newest checkpoint it
/// verified, and for each newer view of the log whether it extends that one. A value: the caller
/// fetches notes and proofs and keeps the verified checkpoints.
public struct LogMonitor: Sendable {
    /// Why a view of the log is refused.
    public enum Refusal: Error, Sendable, Equatable, CustomStringConvertible {
        /// The note is not a checkpoint of the log, or not signed by its key.
        case unsigned(String)
        /// The log shows fewer entries than a checkpoint already verified.
        case rollback(from: UInt64, to: UInt64)
        /// The log shows another history: a different root at a verified size, or a newer
        /// checkpoint whose consistency proof from the verified one fails.
        case fork(String)

        public var description: String {
            switch self {
            case .unsigned(let why): "the log presents a checkpoint that does not verify: \(why)"
            case .rollback(let from, let to): "the log rolled back: it shows \(to) entries after a checkpoint of \(from) was verified"
            case .fork(let why): "the log presents an inconsistent view (a fork): \(why)"
            }
        }
    }

    /// The key in force: the pinned one, or the last one it handed over to (``follow(_:proof:)``).
    public private(set) var key: NoteVerifierKey
    /// The newest checkpoint verified so far, and its note.
    public private(set) var newest: (checkpoint: Checkpoint, note: SignedNote)?

    public init(key: NoteVerifierKey, newest: SignedNote? = nil) throws(Refusal) {
        self.key = key
        if let newest { self.newest = (try Self.checkpoint(newest, key: key), newest) }
    }

    /// The checkpoint a note carries, if it is the log's (origin = key name) and signed by its key.
    static func checkpoint(_ note: SignedNote, key: NoteVerifierKey) throws(Refusal) -> Checkpoint {
        do { try note.verify(trusting: [key]) } catch { throw .unsigned(error.message) }
        guard let checkpoint = try? Checkpoint(parsing: note.text) else { throw .unsigned("the note is not a checkpoint") }
        guard checkpoint.origin == key.name else { throw .unsigned("it is a checkpoint of \"\(checkpoint.origin)\", not of \"\(key.name)\"") }
        return checkpoint
    }

    /// Takes the log's current view: its newest checkpoint, and `proof`, which gives the
    /// consistency proof from the verified size to the new one (asked only when it grew).
    /// - Returns: the checkpoint, newly verified, or nil when it is the one already held.
    /// - Throws: ``Refusal`` when the view is unsigned, rolled back or inconsistent.
    public mutating func observe(_ note: SignedNote, proof: (UInt64, UInt64) throws -> [SHA256Digest]) throws -> Checkpoint? {
        let checkpoint = try Self.checkpoint(note, key: key)
        guard let held = newest?.checkpoint else {
            newest = (checkpoint, note)
            return checkpoint
        }
        if checkpoint.size < held.size { throw Refusal.rollback(from: held.size, to: checkpoint.size) }
        if checkpoint.size == held.size {
            guard checkpoint.rootHash == held.rootHash else {
                throw Refusal.fork("two roots at size \(held.size): \(Base64.encode(held.rootHash.bytes)) and \(Base64.encode(checkpoint.rootHash.bytes))")
            }
            return nil
        }
        let consistency = try proof(held.size, checkpoint.size)
        do {
            try MerkleVerifier().verifyConsistency(
                oldSize: held.size, oldRoot: held.rootHash, newSize: checkpoint.size, newRoot: checkpoint.rootHash, proof: consistency)
        } catch {
            throw Refusal.fork("the checkpoint of size \(checkpoint.size) does not extend the one of size \(held.size): \(error)")
        }
        newest = (checkpoint, note)
        return checkpoint
    }

    /// A `ledger.key_rotated` entry and what proves it to the holder of the key it replaces: the
    /// checkpoint of size seq + 1 that key signed, and the entry's inclusion proof in it.
    public struct KeyHandOver: Sendable {
        public var seq: UInt64
        public var header: [UInt8]
        public var body: EntryBody
        public var checkpoint: SignedNote
        public var inclusion: [SHA256Digest]

        public init(seq: UInt64, header: [UInt8], body: EntryBody, checkpoint: SignedNote, inclusion: [SHA256Digest]) {
            self.seq = seq
            self.header = header
            self.body = body
            self.checkpoint = checkpoint
            self.inclusion = inclusion
        }
    }

    /// Follows a key rotation (`Specs/checkpoint.md` §5): the checkpoint covering the entry must be
    /// signed by the key in force and extend the newest verified one, the entry must be its last
    /// leaf, and must hand over from the key in force. Then the new key is in force.
    /// - Throws: ``Refusal`` `unsigned` for a forged rotation, or as ``observe(_:proof:)`` does.
    public mutating func follow(_ handOver: KeyHandOver, proof: (UInt64, UInt64) throws -> [SHA256Digest]) throws {
        let sha = SHA256()
        guard let header = try? EntryHeader(parsing: handOver.header), header.seq == handOver.seq, header.kind == "ledger.key_rotated",
            handOver.body.commitment(using: sha) == header.bodyCommitment
        else { throw Refusal.unsigned("the key rotation at entry \(handOver.seq) is not a ledger.key_rotated entry whose body matches its header") }
        let values = handOver.body.fields.compactMapValues(\.value)
        guard values["previous_key"]?.stringValue == key.description else {
            throw Refusal.unsigned("the key rotation at entry \(handOver.seq) does not hand over from the key in force (\(key)): a forged rotation")
        }
        guard let next = values["key"]?.stringValue.flatMap({ try? NoteVerifierKey(parsing: $0) }), next.name == key.name else {
            throw Refusal.unsigned("the key rotation at entry \(handOver.seq) names no valid key of this log")
        }
        let covering = try Self.checkpoint(handOver.checkpoint, key: key)
        let leaf = MerkleHasher().leafHash(handOver.header)
        guard covering.size == handOver.seq + 1,
            (try? MerkleVerifier().verifyInclusion(leafHash: leaf, index: handOver.seq, size: covering.size, proof: handOver.inclusion, root: covering.rootHash)) != nil
        else { throw Refusal.unsigned("the key rotation at entry \(handOver.seq) is not the last entry of the checkpoint its old key signed") }
        if newest.map({ $0.checkpoint.size < covering.size }) ?? true {
            _ = try observe(handOver.checkpoint, proof: proof)
        }
        key = next
    }
}
