public import SteleCore
public import Logging
import SteleCrypto
import Dispatch
import Synchronization

/// Signs the committed tree head and publishes it: the note goes into the store with the writer's
/// next commit, and into the checkpoint directory outside the store. Used on the writer's store
/// queue; the files are written on a queue of their own (`stele-checkpoint-files`).
public final class CheckpointPublisher: Sendable {
    private let signer: NoteSigner
    private let directory: CheckpointDirectory
    private let logger: Logger
    private let files = DispatchQueue(label: "stele-checkpoint-files")
    /// The size last signed, and how many were signed: the directory is pruned every
    /// ``checkpointsPerPrune`` (listing it each second would cost more than it saves).
    private let signed: Mutex<(size: UInt64, count: Int)>
    private static let checkpointsPerPrune = 100

    /// A publisher signing with `signer` into `directory`; `signedSize` is the newest checkpoint's size.
    public init(signer: NoteSigner, directory: CheckpointDirectory, signedSize: UInt64, logger: Logger) {
        self.signer = signer
        self.directory = directory
        self.logger = logger
        self.signed = Mutex((signedSize, 0))
    }

    /// Signs `head` if the log grew since the last checkpoint, starts writing its file, and returns
    /// the note for the store (nil if nothing grew or signing failed, which is logged).
    func signIfGrown(_ head: (size: UInt64, root: SHA256Digest), origin: String) -> SignedNote? {
        guard head.size > signed.withLock({ $0.size }) else { return nil }
        let note: SignedNote
        do {
            note = try Checkpoint(origin: origin, size: head.size, rootHash: head.root).signed(by: signer)
        } catch {
            logger.error("signing a checkpoint failed", metadata: ["error": "\(error)"])
            return nil
        }
        let count = signed.withLock { state in
            state = (head.size, state.count + 1)
            return state.count
        }
        let prune = count % Self.checkpointsPerPrune == 0
        files.async { [directory, logger] in
            do {
                try directory.write(note, size: head.size)
                if prune { try directory.prune() }
            } catch {
                logger.error("writing a checkpoint file failed", metadata: ["error": "\(error)"])
            }
        }
        return note
    }

    /// Starts writing the acknowledged mark (the writer's head) if it moved since the last one.
    func publishAcknowledged(_ head: (size: UInt64, leaf: SHA256Digest), origin: String) {
        let mark = CheckpointDirectory.AcknowledgedMark(origin: origin, size: head.size, leaf: head.leaf)
        let moved = published.withLock { last in
            defer { last = mark }
            return last != mark
        }
        guard moved else { return }
        files.async { [directory, logger] in
            do { try directory.writeAcknowledged(mark) } catch {
                logger.error("writing the acknowledged mark failed", metadata: ["error": "\(error)"])
            }
        }
    }

    private let published = Mutex<CheckpointDirectory.AcknowledgedMark?>(nil)

    /// Waits until every checkpoint file started so far is written.
    func waitForFiles() {
        files.sync {}
    }
}
