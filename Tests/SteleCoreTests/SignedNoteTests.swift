import SteleCore
import SteleCrypto
import SteleTestSupport
import Testing

@Suite("C2SP signed notes and tlog checkpoints")
struct SignedNoteTests {
    static var vectors: [String: Any] { try! Vectors.load("signed-note.json") }
    static var checkpoint: [String: Any] { try! Vectors.load("checkpoint.json") }

    @Test("the published PeterNeumann note is reproduced byte for byte and verifies")
    func goNoteVector() throws {
        let v = Self.vectors
        let signer = try NoteSigner(parsing: v["signer_key"] as! String)
        #expect(signer.verifierKey.description == v["verifier_key"] as! String)
        let note = try SignedNote(text: v["text"] as! String, signatures: [signer.sign(v["text"] as! String)])
        #expect(note.serialized == v["note"] as! String)
        let key = try NoteVerifierKey(parsing: v["verifier_key"] as! String)
        let parsed = try SignedNote(parsing: Array((v["note"] as! String).utf8))
        #expect(parsed.text == v["text"] as! String)
        #expect(try parsed.verify(trusting: [key]) == [key])
    }

    @Test("an altered text fails with invalidSignature; an unknown key leaves the note unverified")
    func tampering() throws {
        let v = Self.vectors
        let key = try NoteVerifierKey(parsing: v["verifier_key"] as! String)
        let altered = String((v["note"] as! String).map { $0 == "y" ? "Y" : $0 })
        let note = try SignedNote(parsing: Array(altered.utf8))
        let invalid = #expect(throws: NoteError.self) { try note.verify(trusting: [key]) }
        #expect(invalid?.code == .invalidSignature)
        let stranger = try NoteVerifierKey(name: "Other", publicKey: Ed25519PrivateKey().publicKey)
        let original = try SignedNote(parsing: Array((v["note"] as! String).utf8))
        let unverified = #expect(throws: NoteError.self) { try original.verify(trusting: [stranger]) }
        #expect(unverified?.code == .unverified)
    }

    @Test("malformed notes are refused", arguments: (try! Vectors.load("signed-note.json"))["malformed_notes"] as! [String])
    func malformedNotes(text: String) {
        #expect(throws: NoteError.self) { try SignedNote(parsing: Array(text.utf8)) }
    }

    @Test("malformed verifier keys are refused", arguments: (try! Vectors.load("signed-note.json"))["malformed_keys"] as! [String])
    func malformedKeys(text: String) {
        #expect(throws: NoteError.self) { try NoteVerifierKey(parsing: text) }
    }

    @Test("a checkpoint signed here equals the independently generated one and opens with its key")
    func checkpointVector() throws {
        let v = Self.checkpoint
        let key = try Ed25519PrivateKey(seed: hexBytes(v["seed_hex"] as! String))
        let signer = try NoteSigner(name: v["origin"] as! String, privateKey: key)
        #expect(signer.verifierKey.description == v["verifier_key"] as! String)
        let checkpoint = try Checkpoint(
            origin: v["origin"] as! String, size: 8,
            rootHash: SHA256Digest(bytes: hexBytes(v["root_hex"] as! String))!)
        #expect(checkpoint.text == v["checkpoint_text"] as! String)
        #expect(try checkpoint.signed(by: signer).serialized == v["signed_note"] as! String)
        let verifier = try NoteVerifierKey(parsing: v["verifier_key"] as! String)
        let opened = try Checkpoint.open(
            Array((v["signed_note"] as! String).utf8), trusting: [verifier], origin: (v["origin"] as! String))
        #expect(opened == checkpoint)
        #expect(throws: NoteError.self) {
            try Checkpoint.open(Array((v["signed_note"] as! String).utf8), trusting: [verifier], origin: "other")
        }
    }

    @Test("a note with extra signatures from unknown keys still verifies with the trusted one")
    func cosignatures() throws {
        let ours = try NoteSigner(name: "log.example", privateKey: Ed25519PrivateKey())
        let witness = try NoteSigner(name: "witness.example", privateKey: Ed25519PrivateKey())
        let text = "log.example\n3\n\(Base64.encode([UInt8](repeating: 7, count: 32)))\n"
        let note = try SignedNote(text: text, signatures: [ours.sign(text), witness.sign(text)])
        let parsed = try SignedNote(parsing: Array(note.serialized.utf8))
        #expect(parsed.signatures.count == 2)
        #expect(try parsed.verify(trusting: [ours.verifierKey]) == [ours.verifierKey])
        #expect(try parsed.verify(trusting: [ours.verifierKey, witness.verifierKey]).count == 2)
    }

    @Test("malformed checkpoint bodies are refused", arguments: [
        "", "origin\n", "origin\n8\n", "origin\n08\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
        "origin\n-1\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n", "origin\n8\nAAAA\n",
        "origin\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=", "\n8\nXcnaeacGWamtVZy3Ad7ZoqudgjqtL0lgz+Nw7/RgQyg=\n",
    ])
    func malformedCheckpoints(text: String) {
        #expect(throws: NoteError.self) { try Checkpoint(parsing: text) }
    }
}
