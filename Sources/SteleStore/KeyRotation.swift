public import SteleCore
import SteleLMDB

/// The keys that signed a log, from a pinned key through the log's `ledger.key_rotated` entries
/// (`Specs/checkpoint.md`, "Key rotation"). A rotation at seq *r* counts only when it names the key
/// then in force as `previous_key` and the log holds a checkpoint of size *r* + 1, covering it,
/// signed by that key: only the holder of the old key can hand over to a new one. Checkpoints of
/// sizes up to *r* + 1 are the old key's, later ones the new key's.
public struct SigningKeys: Sendable {
    /// The pinned key.
    public let first: NoteVerifierKey
    /// Accepted rotations: from sizes above `after`, `key` signs.
    public private(set) var rotations: [(after: UInt64, key: NoteVerifierKey)] = []

    public init(first: NoteVerifierKey) {
        self.first = first
    }

    /// The key that must sign a checkpoint of `size` entries.
    public func key(forSize size: UInt64) -> NoteVerifierKey {
        rotations.last { $0.after < size }?.key ?? first
    }

    /// The key in force after every accepted rotation.
    public var current: NoteVerifierKey { rotations.last?.key ?? first }

    mutating func accept(rotationAt seq: UInt64, to key: NoteVerifierKey) {
        rotations.append((seq + 1, key))
    }
}

/// A `ledger.key_rotated` entry as recorded.
public struct KeyRotationEntry: Sendable {
    public let seq: UInt64
    public let previous: NoteVerifierKey?
    public let next: NoteVerifierKey?
}

extension Ledger {
    /// The log's key rotations, in order, as recorded (not yet checked).
    public func keyRotations() throws -> [KeyRotationEntry] {
        try read { txn in try keyRotations(txn: txn, size: try head(txn).size) }
    }

    func keyRotations(txn: Transaction, size: UInt64) throws -> [KeyRotationEntry] {
        var rotations: [KeyRotationEntry] = []
        try forEachEntry(ofKind: "ledger.key_rotated", txn: txn, size: size) { entry in
            let key = { (name: String) in entry.body.fields[name]?.value?.stringValue.flatMap { try? NoteVerifierKey(parsing: $0) } }
            rotations.append(KeyRotationEntry(seq: entry.seq, previous: key("previous_key"), next: key("key")))
        }
        return rotations
    }

    /// The keys of this log from `pinned`, following each rotation the key in force signed over;
    /// a rotation that key did not sign over is a finding, and rotations after it are not followed.
    /// A key the log rotated to may be pinned too: its checkpoints cover the rotation entries before
    /// it, so the chain starts from the first rotation's previous key and must reach the pinned one.
    func signingKeys(from pinned: NoteVerifierKey, txn: Transaction, size: UInt64) throws -> (SigningKeys, [LedgerError]) {
        let rotations = try keyRotations(txn: txn, size: size)
        let pinnedLater = rotations.contains { $0.next == pinned } && rotations.first?.previous != pinned
        var keys = SigningKeys(first: pinnedLater ? (rotations.first?.previous ?? pinned) : pinned)
        for rotation in rotations {
            let current = keys.current
            guard let next = rotation.next, rotation.previous == current else {
                return (keys, [LedgerError(.badSignature, "the key rotation at entry \(rotation.seq) does not hand over from the key in force (\(current)): a forged rotation", seq: rotation.seq, expected: "previous_key \(current)", found: rotation.previous.map { "\($0)" } ?? "none")])
            }
            let note = try txn.get(databases.checkpoints, key: LedgerKeys.u64(rotation.seq + 1)).flatMap { try? SignedNote(parsing: $0) }
            guard let note, (try? note.verify(trusting: [current])) != nil else {
                return (keys, [LedgerError(.badSignature, "the key rotation at entry \(rotation.seq) is not covered by a checkpoint of size \(rotation.seq + 1) signed by the key it replaces (\(current)): a forged rotation", seq: rotation.seq, expected: "a checkpoint of size \(rotation.seq + 1) signed by \(current)", found: note == nil ? "none" : "one signed by another key")])
            }
            keys.accept(rotationAt: rotation.seq, to: next)
        }
        if pinnedLater && !keys.rotations.contains(where: { $0.key == pinned }) {
            return (keys, [LedgerError(.badSignature, "the pinned key \(pinned) is named by a rotation the chain of keys never reaches")])
        }
        return (keys, [])
    }
}

extension LedgerWriter {
    /// Hands the log over from `old` to the key `next`: appends `ledger.key_rotated` naming both,
    /// then signs with `old` and stores the checkpoint covering it. The caller installs the new key
    /// for every later checkpoint. Refused when `old` is not the key the log's rotations end with.
    /// - Returns: the rotation's seq and the checkpoint note.
    public func rotateKey(from old: NoteSigner, to next: NoteVerifierKey, reason: String, operatorName: String) throws -> (seq: UInt64, checkpoint: SignedNote) {
        let last = try ledger.keyRotations().last
        if let last, last.next != old.verifierKey {
            throw LedgerError(.invalidEvent, "the log's key was rotated to \(last.next.map { "\($0)" } ?? "an unreadable key") at entry \(last.seq); \(old.verifierKey) is not that key")
        }
        guard next != old.verifierKey else { throw LedgerError(.invalidEvent, "the new key is the old key") }
        if last == nil, let newest = try ledger.latestCheckpoint(), let note = try? SignedNote(parsing: Array(newest.utf8)),
            (try? note.verify(trusting: [old.verifierKey])) == nil
        {
            throw LedgerError(.signingKey, "\(old.verifierKey) did not sign this log's newest checkpoint: give the key the log signs with")
        }
        let seq = try perform { context in
            try context.append(Event.ledger("ledger.key_rotated", actor: operatorName, attributes: ["previous_key": .string("\(old.verifierKey)"), "key": .string("\(next)"), "reason": .string(reason)])).seq
        }
        let root = try ledger.rootHash(size: seq + 1)
        let note = try Checkpoint(origin: ledger.origin, size: seq + 1, rootHash: root).signed(by: old)
        try ledger.storeCheckpoint(note)
        return (seq, note)
    }
}
