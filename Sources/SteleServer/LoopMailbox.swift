import NIOConcurrencyHelpers
import NIOCore

/// Hands work from the writer's queue to one event loop: everything posted before the loop gets to
/// it runs in one task, so a batch answering many connections on one loop costs that loop one
/// wake-up, not one per connection.
final class LoopMailbox: Sendable {
    let eventLoop: any EventLoop
    private let posted = NIOLockedValueBox<[@Sendable () -> Void]>([])

    init(eventLoop: any EventLoop) {
        self.eventLoop = eventLoop
    }

    /// Runs `work` on the event loop, soon.
    func post(_ work: @escaping @Sendable () -> Void) {
        let first = posted.withLockedValue { queue in
            queue.append(work)
            return queue.count == 1
        }
        if first { eventLoop.execute { self.deliver() } }
    }

    private func deliver() {
        let work = posted.withLockedValue { queue in
            defer { queue.removeAll(keepingCapacity: true) }
            return queue
        }
        for item in work { item() }
    }
}

/// One mailbox per event loop of a group.
struct LoopMailboxes: Sendable {
    private let mailboxes: [(loop: ObjectIdentifier, mailbox: LoopMailbox)]

    init(group: any EventLoopGroup) {
        mailboxes = group.makeIterator().map { (ObjectIdentifier($0), LoopMailbox(eventLoop: $0)) }
    }

    /// The mailbox of `eventLoop`, which must belong to the group.
    func mailbox(for eventLoop: any EventLoop) -> LoopMailbox {
        mailboxes.first { $0.loop == ObjectIdentifier(eventLoop) }!.mailbox
    }
}
