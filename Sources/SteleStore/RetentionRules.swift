import SteleCore
import SteleCrypto
import SteleLMDB

/// What the ledger's own entries add to the headers' deadlines (`Specs/retention.md`): deadlines
/// set or moved by `ledger.retention`, and the legal holds in force (`ledger.hold` not followed by
/// its `ledger.hold_released`). Read from one snapshot before each batch.
struct RetentionRules {
    /// A legal hold: the entries about one subject (of one kind, if given) are kept, until `until`
    /// if given, or until released.
    struct Hold {
        let seq: UInt64
        let subject: KeyedHash
        let kind: String?
        let until: Timestamp?

        func covers(subject hash: KeyedHash?, kind: String, at time: Timestamp) -> Bool {
            hash == subject && (self.kind.map { $0 == kind } ?? true) && (until.map { time < $0 } ?? true)
        }
    }

    /// Deadlines set by `ledger.retention`, by seq (a later entry replaces an earlier one).
    var deadlines: [UInt64: Timestamp] = [:]
    /// Holds placed and not released, by the seq of their `ledger.hold`.
    var holds: [UInt64: Hold] = [:]

    /// The deadline of entry `seq` whose header says `retainUntil`.
    func deadline(_ seq: UInt64, retainUntil: Timestamp?) -> Timestamp? {
        deadlines[seq] ?? retainUntil
    }

    /// The first hold in force at `time` covering an entry about `subject` of `kind`.
    func hold(covering subject: KeyedHash?, kind: String, at time: Timestamp) -> Hold? {
        guard let subject else { return nil }
        // Asked once per pruned entry: no sort, the first in log order among those that cover it.
        return holds.values.filter { $0.covers(subject: subject, kind: kind, at: time) }.min { $0.seq < $1.seq }
    }

    /// The holds in force at `time`, ascending.
    func holdsInForce(at time: Timestamp) -> [UInt64] {
        holds.values.filter { $0.until.map { time < $0 } ?? true }.map(\.seq).sorted()
    }
}

extension Ledger {
    /// The retention rules recorded in `txn`'s snapshot.
    func retentionRules(_ txn: Transaction) throws -> RetentionRules {
        var rules = RetentionRules()
        let size = try head(txn).size
        var events: [StoredEntry] = []
        for kind in ["ledger.retention", "ledger.hold", "ledger.hold_released"] {
            try forEachEntry(ofKind: kind, txn: txn, size: size) { events.append($0) }
        }
        for entry in events.sorted(by: { $0.seq < $1.seq }) {
            let fields = entry.body.fields.compactMapValues(\.value)
            switch entry.header.kind {
            case "ledger.retention":
                guard let until = fields["until"]?.stringValue.flatMap(Timestamp.init(rfc3339:)), let seqs = fields["seqs"].flatMap(SeqSet.seqs) else {
                    throw LedgerError(.corrupt, "the ledger.retention entry \(entry.seq) lacks its seqs or deadline")
                }
                for seq in seqs { rules.deadlines[seq] = until }
            case "ledger.hold":
                guard let hex = fields["subject_hash"]?.stringValue, let hash = KeyedHash(hex: hex) else {
                    throw LedgerError(.corrupt, "the ledger.hold entry \(entry.seq) lacks its subject hash")
                }
                rules.holds[entry.seq] = RetentionRules.Hold(
                    seq: entry.seq, subject: hash, kind: fields["kind"]?.stringValue,
                    until: fields["until"]?.stringValue.flatMap(Timestamp.init(rfc3339:)))
            default:
                if let hold = fields["hold"]?.integerValue { rules.holds[UInt64(hold)] = nil }
            }
        }
        return rules
    }

    /// The rules as recorded now.
    func retentionRules() throws -> RetentionRules {
        try read { try retentionRules($0) }
    }
}

extension KeyedHash {
    /// 32 lowercase hex digits.
    var hex: String {
        withUnsafeBytes { raw in raw.map { String($0, radix: 16).count == 1 ? "0" + String($0, radix: 16) : String($0, radix: 16) }.joined() }
    }

    /// Reads 32 hex digits.
    init?(hex: String) {
        let bytes = Array(hex.utf8)
        guard bytes.count == 32 else { return nil }
        var out: [UInt8] = []
        for i in stride(from: 0, to: 32, by: 2) {
            guard let byte = UInt8(String(decoding: bytes[i..<i + 2], as: UTF8.self), radix: 16) else { return nil }
            out.append(byte)
        }
        guard let hash = out.withUnsafeBytes({ KeyedHash(bytes: $0) }) else { return nil }
        self = hash
    }
}
