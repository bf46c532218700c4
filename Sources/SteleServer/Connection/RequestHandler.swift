import Logging
import NIOCore
import SteleConsent
import SteleCore
import SteleCrypto
import SteleProtocol
import SteleStore

/// Decodes each request line and answers it: `ping`, `stats` and `checkpoint` at once; appends by
/// handing them to the writer, one submission per read burst, and replying when their batch is
/// durable; `consent` from the store once it holds every append acknowledged before the question. Replies go out as ``SlotReply`` messages, which ``ReplyOrderingHandler`` writes in order.
final class RequestHandler: ChannelInboundHandler {
    typealias InboundIn = NumberedRequests
    typealias OutboundOut = SlotReply

    /// An append handed to the writer: its slot, what its reply needs, and when its line was read
    /// (monotonic nanoseconds).
    private struct PendingAppend {
        let slot: UInt64
        let id: String?
        let wantsReceipt: Bool
        let received: UInt64
        /// An `account.erased`: once durable, the retention thread carries it out.
        let erasesAccount: Bool
    }

    private let shared: DaemonContext
    private let preparer: EventPreparer
    private var peer: PeerRule?
    /// Carries the writer's outcomes to this connection's event loop; nil until authenticated.
    private var mailbox: LoopMailbox?
    /// Appends decoded in this read burst, for the writer.
    private var pendingEvents: [PreparedEvent] = []
    private var pendingAppends: [PendingAppend] = []
    /// The acknowledgement latencies of one completion, recorded together.
    private var ackMicroseconds: [Int64] = []
    /// The channel has closed: outcomes still arriving are dropped.
    private var closed = false

    init(shared: DaemonContext) {
        self.shared = shared
        self.preparer = shared.ledger.makePreparer()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let authenticated = event as? AuthenticatedPeer {
            peer = authenticated.rule
            mailbox = shared.mailboxes.mailbox(for: context.eventLoop)
        } else if event is ChannelShouldQuiesceEvent || (event as? ChannelEvent) == .inputClosed {
            submitPending(context: context)
            context.flush()
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard let peer else { return }
        let requests = unwrapInboundIn(data)
        let received = NIODeadline.now().uptimeNanoseconds
        for (offset, line) in requests.lines.enumerated() {
            handle(line, slot: requests.firstSlot + UInt64(offset), peer: peer, received: received, context: context)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        submitPending(context: context)
        context.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        closed = true
        context.fireChannelInactive()
    }

    /// Answers one request line: at once, or once its append is durable.
    private func handle(_ line: RequestLine, slot: UInt64, peer: PeerRule, received: UInt64, context: ChannelHandlerContext) {
        let bytes: ByteBuffer
        switch line {
        case .oversized:
            let limit = shared.configuration.limits.maximumLineLength
            return fail(slot, id: nil, ProtocolError(.lineTooLong, "request line exceeds \(limit) bytes"), context)
        case .timedOut:
            let limit = shared.configuration.lineDeadlineSeconds
            return fail(slot, id: nil, ProtocolError(.lineTimeout, "a request line did not arrive in full within \(limit) s; closing"), context)
        case .line(let line):
            bytes = line
        }
        let (request, id) = bytes.withUnsafeReadableBytes { shared.decoder.decode(line: $0, source: peer.source) }
        switch consume request {  // consumed: the event is moved out of it, not copied
        case .failure(let error):
            fail(slot, id: id, error, context)
        case .success(.ping):
            reply(slot, ["ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, "op": .string("ping")], context)
        case .success(.stats):
            let size = (try? shared.ledger.size) ?? 0
            var stats = shared.stats.snapshot(writer: shared.writer.statistics, treeSize: size)
            if let verifier = shared.verifier { stats["background_verify"] = verifier.snapshot }
            reply(slot, ["ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, "stats": .object(stats)], context)
        case .success(.checkpoint):
            if let note = try? shared.ledger.latestCheckpoint() {
                reply(slot, ["ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, "checkpoint": .string(note)], context)
            } else {
                fail(slot, id: id, ProtocolError(.noCheckpointYet, "no checkpoint has been signed yet"), context)
            }
        case .success(.consent(let subject, let purpose)):
            guard peer.mayAskConsent(purpose) else {
                return fail(slot, id: id, ProtocolError(.forbiddenPurpose, "source \(peer.source) may not ask about consent to \(purpose)"), context)
            }
            answerConsent(subject: subject, purpose: purpose, slot: slot, id: id, context: context)
        case .success(.prune(let order)):
            guard peer.isOperator else { return refuseOperator(peer, slot: slot, id: id, context: context) }
            runPrune(order, peer: peer, slot: slot, id: id, context: context)
        case .success(.erase(let subject, let request, let reason)):
            guard peer.isOperator else { return refuseOperator(peer, slot: slot, id: id, context: context) }
            let order = EraseRequest(subject: subject, request: request, reason: reason, operatorName: "uid:\(peer.uid)")
            let deliver = operatorReply(slot: slot, id: id, member: "erase", context: context)
            shared.retention.erase(order) { deliver($0.map(\.json)) }
        case .success(.placeHold(let subject, let kind, let until, let request, let reason)):
            guard peer.isOperator else { return refuseOperator(peer, slot: slot, id: id, context: context) }
            let deliver = operatorReply(slot: slot, id: id, member: "hold", context: context)
            shared.retention.placeHold(subject: subject, kind: kind, until: until, request: request, reason: reason, operatorName: "uid:\(peer.uid)") {
                deliver($0.map { .integer(Int64($0)) })
            }
        case .success(.consistency(let from, let to)):
            do {
                let proof = try shared.ledger.consistencyProof(from: from, to: to)
                reply(slot, [
                    "ok": .bool(true), "id": id.map(JSONValue.string) ?? .null,
                    "consistency": .object([
                        "from": .integer(Int64(from)), "to": .integer(Int64(proof.newSize)), "old_root": .string(Base64.encode(proof.oldRoot.bytes)),
                        "new_root": .string(Base64.encode(proof.newRoot.bytes)), "proof": .array(proof.proof.map { .string(Base64.encode($0.bytes)) }),
                    ]),
                ], context)
            } catch {
                fail(slot, id: id, ProtocolError(.invalidField, (error as? LedgerError)?.message ?? "\(error)"), context)
            }
        case .success(.accessed(let command, let query, let reason, let disclosed)):
            guard peer.isOperator else { return refuseOperator(peer, slot: slot, id: id, context: context) }
            let deliver = operatorReply(slot: slot, id: id, member: "accessed", context: context)
            let access = AccessRecord(command: command, query: query, reason: reason, disclosed: disclosed)
            shared.retention.recordAccess(access, operatorUID: peer.uid) { deliver($0.map { .integer(Int64($0)) }) }
        case .success(.compact(let request, let reason)):
            guard peer.isOperator else { return refuseOperator(peer, slot: slot, id: id, context: context) }
            let deliver = operatorReply(slot: slot, id: id, member: "compact", context: context)
            shared.retention.compact(request: request, reason: reason, operatorName: "uid:\(peer.uid)") { deliver($0.map(\.json)) }
        case .success(.releaseHold(let hold, let request, let reason)):
            guard peer.isOperator else { return refuseOperator(peer, slot: slot, id: id, context: context) }
            let deliver = operatorReply(slot: slot, id: id, member: "released", context: context)
            shared.retention.releaseHold(hold, request: request, reason: reason, operatorName: "uid:\(peer.uid)") { deliver($0.map { .integer(Int64($0)) }) }
        case .success(.append(let event, let wantsReceipt)):
            guard peer.allows(event.kind) else {
                return fail(slot, id: id, ProtocolError(.forbiddenKind, "source \(peer.source) may not append \(event.kind)"), context)
            }
            guard shared.limiter.admit(peer.source) else {
                let rate = Int(shared.configuration.ratePerSource)
                return fail(slot, id: id, ProtocolError(.rateLimited, "source \(peer.source) exceeds \(rate) appends per second"), context)
            }
            let prepared: PreparedEvent
            do { prepared = try preparer.prepare(event) } catch {
                return fail(slot, id: id, ProtocolError(.invalidField, "\(error)"), context)
            }
            pendingEvents.append(prepared)
            pendingAppends.append(PendingAppend(
                slot: slot, id: id, wantsReceipt: wantsReceipt, received: received, erasesAccount: event.kind == "account.erased"))
        }
    }

    /// Hands the appends of this read burst to the writer, as one submission; their outcomes come
    /// back through this event loop's mailbox.
    private func submitPending(context: ChannelHandlerContext) {
        guard !pendingEvents.isEmpty, let mailbox else { return }
        let appends = pendingAppends
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        shared.writer.submit(pendingEvents) { results in
            mailbox.post {
                let (handler, context) = bound.value
                handler.complete(appends, results, context: context)
            }
        }
        pendingEvents.removeAll(keepingCapacity: true)
        pendingAppends.removeAll(keepingCapacity: true)
    }

    /// Replies to appends whose batch is durable (or failed). On this connection's event loop.
    private func complete(_ appends: [PendingAppend], _ results: ArraySlice<Result<Receipt, LedgerError>>, context: ChannelHandlerContext) {
        guard !closed else { return }
        let now = NIODeadline.now().uptimeNanoseconds
        for (append, result) in zip(appends, results) {
            ackMicroseconds.append(Int64((now &- append.received) / 1000))
            switch result {
            case .success(let receipt):
                let bytes = Reply.okBytes(id: append.id, receipt: receipt, includeHeader: append.wantsReceipt)
                context.write(wrapOutboundOut(SlotReply(slot: append.slot, bytes: bytes)), promise: nil)
            case .failure(let error) where error.code == .idempotencyConflict:
                fail(append.slot, id: append.id, ProtocolError(.idempotencyConflict, error.message), context)
            case .failure(let error) where error.code == .storageFull:
                fail(append.slot, id: append.id, ProtocolError(.storageFull, error.message), context)
            case .failure(let error):
                fail(append.slot, id: append.id, ProtocolError(.unavailable, error.message), context)
            }
        }
        if zip(appends, results).contains(where: { $0.erasesAccount && (try? $1.get())?.duplicate == false }) { shared.retention.erasePending() }
        shared.stats.recordAcks(ackMicroseconds)
        ackMicroseconds.removeAll(keepingCapacity: true)
        context.flush()
    }

    /// Answers a consent question from the store as it stands once every append acknowledged before
    /// the question is in it (read-your-writes): at once when it already is, else from this event
    /// loop after the store's next commit.
    private func answerConsent(subject: String, purpose: String, slot: UInt64, id: String?, context: ChannelHandlerContext) {
        // Appends read before this question in the same burst are acknowledged only later: they
        // are not "before" it, but submitting them first keeps the order a client sees.
        submitPending(context: context)
        let answer: @Sendable () -> JSONValue = { [shared] in
            do {
                let answer = try shared.ledger.withCurrentConsent(subject: subject) { state, notices in
                    try shared.configuration.consent.answer(state, purpose: purpose, at: Timestamp.now(), notices: notices)
                }
                return .object(["ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, "consent": answer.json])
            } catch {
                let message = (error as? LedgerError)?.message ?? "\(error)"
                return .string(message)
            }
        }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        guard let mailbox else { return }
        let loop = context.eventLoop
        shared.writer.whenAcknowledgedVisible {
            let reply = answer()
            // At once when the store already held everything (still on this loop); else from the store queue.
            if loop.inEventLoop {
                let (handler, context) = bound.value
                handler.deliverConsent(reply, slot: slot, id: id, context: context, flush: false)
            } else {
                mailbox.post {
                    let (handler, context) = bound.value
                    handler.deliverConsent(reply, slot: slot, id: id, context: context, flush: true)
                }
            }
        }
    }

    private func refuseOperator(_ peer: PeerRule, slot: UInt64, id: String?, context: ChannelHandlerContext) {
        fail(slot, id: id, ProtocolError(.notOperator, "source \(peer.source) is not an operator (its peer rule lacks \"operator\": true)"), context)
    }

    /// A function that replies to an operator operation, from any thread, through this event
    /// loop's mailbox: `{"ok":true,"id":…,member: value}`, or its error.
    private func operatorReply(slot: UInt64, id: String?, member: String, context: ChannelHandlerContext) -> @Sendable (Result<JSONValue, LedgerError>) -> Void {
        guard let mailbox else { return { _ in } }
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        return { result in
            mailbox.post {
                let (handler, context) = bound.value
                guard !handler.closed else { return }
                switch result {
                case .success(let value):
                    handler.reply(slot, ["ok": .bool(true), "id": id.map(JSONValue.string) ?? .null, member: value], context)
                case .failure(let error) where error.code == .futureTime:
                    handler.fail(slot, id: id, ProtocolError(.futureTime, error.message), context)
                case .failure(let error) where error.code == .outOfRange || error.code == .invalidEvent:
                    handler.fail(slot, id: id, ProtocolError(.invalidField, error.message), context)
                case .failure(let error):
                    handler.fail(slot, id: id, ProtocolError(.unavailable, error.message), context)
                }
                context.flush()
            }
        }
    }

    /// Hands an operator's prune to the retention runner; its report comes back through this
    /// event loop's mailbox when the last batch has committed.
    private func runPrune(_ order: PruneOrder, peer: PeerRule, slot: UInt64, id: String?, context: ChannelHandlerContext) {
        var request = PruneRequest(cutoff: order.now ?? .now(), operatorName: "uid:\(peer.uid)", request: order.request, reason: order.reason)
        request.dryRun = order.dryRun
        let deliver = operatorReply(slot: slot, id: id, member: "prune", context: context)
        shared.retention.prune(request) { deliver($0.map(\.json)) }
    }

    private func deliverConsent(_ reply: JSONValue, slot: UInt64, id: String?, context: ChannelHandlerContext, flush: Bool) {
        guard !closed else { return }
        if case .string(let message) = reply {
            fail(slot, id: id, ProtocolError(.unavailable, "the consent state could not be read: \(message)"), context)
        } else {
            context.write(wrapOutboundOut(SlotReply(slot: slot, bytes: reply.canonicalBytes)), promise: nil)
        }
        if flush { context.flush() }
    }

    private func reply(_ slot: UInt64, _ object: [String: JSONValue], _ context: ChannelHandlerContext) {
        context.write(wrapOutboundOut(SlotReply(slot: slot, bytes: JSONValue.object(object).canonicalBytes)), promise: nil)
    }

    private func fail(_ slot: UInt64, id: String?, _ error: ProtocolError, _ context: ChannelHandlerContext) {
        shared.stats.recordError(error.code.description)
        context.write(wrapOutboundOut(SlotReply(slot: slot, bytes: Array(Reply.error(id: id, error).utf8))), promise: nil)
    }
}
