// tamper DRILL --data DIR [ARG]: one attack on a store's files (see Package.swift).
//   body-byte SEQ       flip a letter inside entry SEQ's first disclosed value
//   header-byte SEQ     change entry SEQ's source in its header text
//   delete SEQ          remove entry SEQ (header and body)
//   swap SEQ            exchange entries SEQ and SEQ+1
//   subtree POSITION    flip a bit of the stored Merkle hash at POSITION
//   drop-receipt        remove the newest ledger.pruned entry
//   consent-state       turn the first withdrawal in the consent state into a grant
//   truncate SIZE       cut the log to SIZE entries, consistently: head, tree and stored checkpoints
//   resign KEYFILE      re-sign every stored checkpoint with the Ed25519 PEM key in KEYFILE
import Foundation
import SteleCore
import SteleCrypto
import SteleLMDB

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("tamper: \(message)\n".utf8))
    exit(2)
}

let arguments = Array(CommandLine.arguments.dropFirst())
guard arguments.count >= 3, arguments[1] == "--data" else { fail("usage: tamper DRILL --data DIR [ARG]") }
let drill = arguments[0], data = arguments[2], argument = arguments.count > 3 ? arguments[3] : nil
func number(_ text: String?) -> UInt64 {
    guard let value = text.flatMap(UInt64.init) else { fail("\(drill) needs a number") }
    return value
}
func u64(_ value: UInt64) -> [UInt8] { withUnsafeBytes(of: value.bigEndian) { Array($0) } }
func key(_ seq: UInt64, _ tag: UInt8) -> [UInt8] { u64(seq) + [tag] }

let environment = try Environment(path: data, maxDatabases: 8, mapSize: 1 << 34)
// Databases are opened before the write transaction: opening one runs a transaction of its own.
let entries = try environment.openDatabase("entries", create: false)
let meta = try environment.openDatabase("meta", create: false)
let tree = try environment.openDatabase("tree", create: false)
let checkpoints = try environment.openDatabase("checkpoints", create: false)
let consent = try? environment.openDatabase("consent", create: false)

try environment.withWriteTransaction { txn in
    switch drill {
    case "body-byte":
        let seq = number(argument)
        guard var body = try txn.get(entries, key: key(seq, 2)) else { fail("no entry \(seq)") }
        let marker = Array(#""value":""#.utf8)
        guard let at = (0..<body.count - marker.count).first(where: { Array(body[$0..<$0 + marker.count]) == marker }) else { fail("entry \(seq) discloses no string") }
        body[at + marker.count + 1] ^= 0x01
        try txn.put(entries, key: key(seq, 2), value: body)
    case "header-byte":
        let seq = number(argument)
        guard let header = try txn.get(entries, key: key(seq, 1)) else { fail("no entry \(seq)") }
        let text = String(decoding: header, as: UTF8.self).replacingOccurrences(of: #""source":""#, with: #""source":"x"#)
        try txn.put(entries, key: key(seq, 1), value: Array(text.utf8))
    case "delete":
        let seq = number(argument)
        for tag: UInt8 in [1, 2] { _ = try txn.delete(entries, key: key(seq, tag)) }
    case "swap":
        let seq = number(argument)
        for tag: UInt8 in [1, 2] {
            guard let a = try txn.get(entries, key: key(seq, tag)), let b = try txn.get(entries, key: key(seq + 1, tag)) else { fail("no entries \(seq) and \(seq + 1)") }
            try txn.put(entries, key: key(seq, tag), value: b)
            try txn.put(entries, key: key(seq + 1, tag), value: a)
        }
    case "subtree":
        let position = number(argument)
        guard var hash = try txn.get(tree, key: u64(position)) else { fail("no stored hash at \(position)") }
        hash[0] ^= 0x80
        try txn.put(tree, key: u64(position), value: hash)
    case "drop-receipt":
        var newest: UInt64?
        try txn.withCursor(entries) { cursor in
            var record = try cursor.first()
            while let current = record {
                if current.key.count == 9, current.key[8] == 1, String(decoding: current.value, as: UTF8.self).contains(#""kind":"ledger.pruned""#) {
                    newest = current.key.prefix(8).reduce(0) { $0 << 8 | UInt64($1) }
                }
                record = try cursor.next()
            }
        }
        guard let seq = newest else { fail("the store has no ledger.pruned entry") }
        for tag: UInt8 in [1, 2, 3] { _ = try txn.delete(entries, key: key(seq, tag)) }
        print("removed the receipt at entry \(seq)")
    case "consent-state":
        guard let consent else { fail("the store has no consent state") }
        var target: ([UInt8], [UInt8])?
        try txn.withCursor(consent) { cursor in
            var record = try cursor.seek(atOrAfter: [UInt8(ascii: "s")])
            while let current = record, current.key.first == UInt8(ascii: "s"), target == nil {
                let text = String(decoding: current.value, as: UTF8.self)
                if text.contains(#""withdrawn""#) { target = (Array(current.key), Array(text.replacingOccurrences(of: #""withdrawn""#, with: #""granted""#).utf8)) }
                record = try cursor.next()
            }
        }
        guard let (k, v) = target else { fail("no withdrawal in the consent state") }
        try txn.put(consent, key: k, value: v)
    case "truncate":
        let size = number(argument)
        guard size > 0, let last = try txn.get(entries, key: key(size - 1, 1)) else { fail("the log has no entry \(size - 1)") }
        var seq = size
        while try txn.get(entries, key: key(seq, 1)) != nil {
            for tag: UInt8 in [1, 2, 3] { _ = try txn.delete(entries, key: key(seq, tag)) }
            seq += 1
        }
        var position = MerkleSubtrees.storedCount(leaves: size)
        while try txn.delete(tree, key: u64(position)) { position += 1 }
        var stored: [[UInt8]] = []
        try txn.withCursor(checkpoints) { cursor in
            var record = try cursor.seek(atOrAfter: u64(size + 1))
            while let current = record { stored.append(Array(current.key)); record = try cursor.next() }
        }
        for k in stored { _ = try txn.delete(checkpoints, key: k) }
        let header = try EntryHeader(parsing: last)
        let leaf = MerkleHasher().leafHash(last)
        let ts = u64(UInt64(bitPattern: header.timestamp.microseconds) ^ (1 << 63))
        try txn.put(meta, key: Array("head".utf8), value: u64(size) + leaf.bytes + ts)
        print("cut the log from \(seq) to \(size) entries")
    case "resign":
        guard let path = argument, let pem = FileManager.default.contents(atPath: path) else { fail("resign needs a PEM key file") }
        let privateKey = try Ed25519PrivateKey(pemRepresentation: String(decoding: pem, as: UTF8.self))
        var records: [([UInt8], [UInt8])] = []
        try txn.withCursor(checkpoints) { cursor in
            var record = try cursor.first()
            while let current = record { records.append((Array(current.key), Array(current.value))); record = try cursor.next() }
        }
        for (k, v) in records {
            let note = try SignedNote(parsing: v)
            let checkpoint = try Checkpoint(parsing: note.text)
            let resigned = try checkpoint.signed(by: NoteSigner(name: checkpoint.origin, privateKey: privateKey))
            try txn.put(checkpoints, key: k, value: Array(resigned.serialized.utf8))
        }
        print("re-signed \(records.count) stored checkpoints")
    default:
        fail("unknown drill \(drill)")
    }
}
