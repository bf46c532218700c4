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

    public let key: NoteVerifierKey
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
}
