import Logging
import NIOCore
import NIOEmbedded
import SteleProtocol
import SteleStore
import SteleTestSupport
import Testing

@testable import SteleServer

/// Counts the reads the pipeline asks the socket for (placed at the socket end).
private final class ReadCounter: ChannelOutboundHandler {
    typealias OutboundIn = Any
    var reads = 0
    func read(context: ChannelHandlerContext) {
        reads += 1
        context.read()
    }
}

/// Collects what reaches the end of the pipeline: messages and user events, in order.
private final class Collector<Message>: ChannelInboundHandler {
    typealias InboundIn = Message
    var messages: [Message] = []
    var events: [String] = []
    func channelRead(context: ChannelHandlerContext, data: NIOAny) { messages.append(unwrapInboundIn(data)) }
    func channelActive(context: ChannelHandlerContext) { events.append("active") }
    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if event is AuthenticatedPeer { events.append("authenticated") }
        if (event as? ChannelEvent) == .inputClosed { events.append("inputClosed") }
    }
}

private let logger = Logger(label: "test", factory: { _ in SwiftLogNoOpLogHandler() })

/// Every reply line written to the channel so far.
private func replies(_ channel: EmbeddedChannel) throws -> [String] {
    var lines: [String] = []
    while let buffer = try channel.readOutbound(as: ByteBuffer.self) {
        lines += String(buffer: buffer).split(separator: "\n", omittingEmptySubsequences: false).dropLast().map(String.init)
    }
    return lines
}

@Suite("Connection pipeline: peer authentication")
struct PeerAuthenticationHandlerTests {
    private func channel(uid: UInt32?, maximumConnections: Int = 4, stats: ServerStats = ServerStats()) throws -> (EmbeddedChannel, Collector<ByteBuffer>) {
        let collector = Collector<ByteBuffer>()
        let authentication = PeerAuthenticationHandler(
            peers: [PeerRule(uid: 1001, source: "web")], maximumConnections: maximumConnections, maximumPerSource: 8, stats: stats, logger: logger,
            credentials: { _ in uid.map { (pid: 7, uid: $0, gid: 100) } })
        let channel = EmbeddedChannel(handlers: [authentication, collector])
        try channel.connect(to: SocketAddress(unixDomainSocketPath: "/stele-test")).wait()
        return (channel, collector)
    }

    @Test("a configured uid is announced before the channel is active, and its bytes pass")
    func authorizedPeerPasses() throws {
        let (channel, collector) = try channel(uid: 1001)
        #expect(collector.events == ["authenticated", "active"])
        try channel.writeInbound(ByteBuffer(string: "{\"op\":\"ping\"}\n"))
        #expect(collector.messages.map { String(buffer: $0) } == ["{\"op\":\"ping\"}\n"])
        #expect(channel.isActive)
    }

    @Test("an unknown uid, or a peer the kernel does not describe, gets one unauthorized line and is closed; nothing it sends is read")
    func unknownPeerRefused() throws {
        for uid in [UInt32(1002), nil] {
            let (channel, collector) = try channel(uid: uid)
            let lines = try replies(channel)
            #expect(lines.count == 1 && lines[0].contains("\"code\":\"unauthorized\""), "\(lines)")
            #expect(!channel.isActive)
            #expect(collector.events.isEmpty)
            #expect(collector.messages.isEmpty)
        }
    }

    @Test("past the cap for its source a peer gets too_many_connections, though the daemon has room")
    func perSourceCap() throws {
        let stats = ServerStats()
        let rules = [PeerRule(uid: 1001, source: "web"), PeerRule(uid: 1002, source: "mailer")]
        func connect(_ uid: UInt32) throws -> EmbeddedChannel {
            let channel = EmbeddedChannel(handlers: [
                PeerAuthenticationHandler(
                    peers: rules, maximumConnections: 10, maximumPerSource: 2, stats: stats, logger: logger,
                    credentials: { _ in (pid: 1, uid: uid, gid: 1) })
            ])
            try channel.connect(to: SocketAddress(unixDomainSocketPath: "/stele-test")).wait()
            return channel
        }
        let web = try (0..<2).map { _ in try connect(1001) }
        let third = try connect(1001)
        #expect(try replies(third).first?.contains("too_many_connections") == true && !third.isActive)
        let mailer = try connect(1002)
        #expect(mailer.isActive && web.allSatisfy(\.isActive))
    }

    @Test("past the connection cap a peer gets too_many_connections; closing frees its place")
    func connectionCap() throws {
        let stats = ServerStats()
        let (first, _) = try channel(uid: 1001, maximumConnections: 1, stats: stats)
        let (second, _) = try channel(uid: 1001, maximumConnections: 1, stats: stats)
        #expect(try replies(second).first?.contains("too_many_connections") == true)
        #expect(!second.isActive && stats.connections == 1)
        _ = try first.finish(acceptAlreadyClosed: true)
        #expect(stats.connections == 0)
    }
}

@Suite("Connection pipeline: line framing")
struct LineFramingHandlerTests {
    /// A framing handler with a 10 s line deadline, and what it passes on.
    private func framing(maximumLineLength: Int) -> (EmbeddedChannel, Collector<RequestLines>) {
        let collector = Collector<RequestLines>()
        let framing = LineFramingHandler(maximumLineLength: maximumLineLength, lineDeadline: .seconds(10))
        return (EmbeddedChannel(handlers: [framing, collector]), collector)
    }

    @Test("each read becomes one message of its lines; NULs and invalid UTF-8 pass as bytes, oversized lines are marked, CRLF is trimmed")
    func hostileLines() throws {
        let (channel, collector) = framing(maximumLineLength: 8)
        var read = ByteBuffer(string: "a\u{0}b\r\n")
        read.writeBytes([0xFF, 0xFE, 0x0A])
        read.writeString(String(repeating: "x", count: 20) + "\nok\npart")
        try channel.writeInbound(read)
        #expect(collector.messages.count == 1)
        let lines = collector.messages[0].lines.map { line -> [UInt8]? in
            if case .line(let bytes) = line { return Array(bytes.readableBytesView) } else { return nil }
        }
        #expect(lines == [[0x61, 0, 0x62], [0xFF, 0xFE], nil, Array("ok".utf8)])
        // The rest of a line cut across reads arrives with its second read.
        try channel.writeInbound(ByteBuffer(string: "ial\n"))
        #expect(collector.messages.count == 2)
        guard case .line(let joined) = collector.messages[1].lines.first else { Issue.record("no line"); return }
        #expect(String(buffer: joined) == "partial")
    }

    @Test("a line that has not arrived in full within the deadline of its first byte gets line_timeout, and the connection drains and closes")
    func lineDeadline() throws {
        let (channel, collector) = framing(maximumLineLength: 64)
        try channel.writeInbound(ByteBuffer(string: "ok\n{\"op\""))
        channel.read()  // the daemon asks for more
        channel.embeddedEventLoop.advanceTime(by: .seconds(6))
        try channel.writeInbound(ByteBuffer(string: ":\"pi"))  // still trickling: the deadline counts from the first byte
        channel.read()
        channel.embeddedEventLoop.advanceTime(by: .seconds(5))
        #expect(collector.messages.count == 2)
        guard case .timedOut = collector.messages.last?.lines.first else { Issue.record("no timeout"); return }
        try channel.writeInbound(ByteBuffer(string: "ng\"}\n"))  // nothing is read after the timeout
        #expect(collector.messages.count == 2)
    }

    @Test("time in which the daemon holds reads back (backpressure) does not count against the line")
    func heldReadsPauseTheDeadline() throws {
        let (channel, collector) = framing(maximumLineLength: 64)
        try channel.writeInbound(ByteBuffer(string: "{\"op\""))  // no read asked for after it: the daemon holds
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(collector.messages.isEmpty)
        channel.read()  // reading resumes; the client finishes the line in time
        try channel.writeInbound(ByteBuffer(string: ":\"ping\"}\n"))
        #expect(collector.messages.count == 1)
        guard case .line = collector.messages[0].lines.first else { Issue.record("no line"); return }
    }

    @Test("when reads resume after backpressure, the line gets a full deadline again: one due meanwhile does not fire before the waiting data arrives")
    func resumedReadsRestartTheDeadline() throws {
        let (channel, collector) = framing(maximumLineLength: 64)
        try channel.writeInbound(ByteBuffer(string: "{\"op\""))  // the daemon holds reads for most of a deadline
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(9_900))
        channel.read()  // reads resume just before the deadline was due
        channel.embeddedEventLoop.advanceTime(by: .milliseconds(200))
        #expect(collector.messages.isEmpty, "the deadline fired between the request for data and its arrival")
        try channel.writeInbound(ByteBuffer(string: ":\"ping\"}\n"))
        guard case .line = collector.messages.first?.lines.first else { Issue.record("no line"); return }
    }

    @Test("a line completed in time cancels its deadline")
    func lineInTime() throws {
        let (channel, collector) = framing(maximumLineLength: 64)
        try channel.writeInbound(ByteBuffer(string: "pa"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(9))
        try channel.writeInbound(ByteBuffer(string: "rt\n"))
        channel.embeddedEventLoop.advanceTime(by: .seconds(60))
        #expect(collector.messages.count == 1)
        guard case .line(let line) = collector.messages[0].lines.first else { Issue.record("no line"); return }
        #expect(String(buffer: line) == "part")
    }

    @Test("half-close: the final line without a newline is passed on before the end of input")
    func halfClose() throws {
        let (channel, collector) = framing(maximumLineLength: 64)
        try channel.writeInbound(ByteBuffer(string: "one\ntwo"))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        #expect(collector.messages.count == 2)
        guard case .line(let last) = collector.messages[1].lines.first else { Issue.record("no line"); return }
        #expect(String(buffer: last) == "two")
        #expect(collector.events == ["inputClosed"])
    }
}

@Suite("Connection pipeline: ordered replies, backpressure and the drain")
struct ReplyOrderingTests {
    private static func lines(_ count: Int) -> RequestLines {
        RequestLines(lines: Array(repeating: .line(ByteBuffer(string: "x")), count: count))
    }

    private func channel(maximumInFlight: Int = 8) throws -> (EmbeddedChannel, ReadCounter, Collector<NumberedRequests>) {
        let counter = ReadCounter()
        let collector = Collector<NumberedRequests>()
        let channel = EmbeddedChannel(handlers: [counter, ReplyOrderingHandler(maximumInFlight: maximumInFlight), collector])
        try channel.connect(to: SocketAddress(unixDomainSocketPath: "/stele-test")).wait()
        return (channel, counter, collector)
    }

    private func reply(_ channel: EmbeddedChannel, _ slot: UInt64, _ text: String) throws {
        try channel.writeOutbound(SlotReply(slot: slot, bytes: Array(text.utf8)))
    }

    @Test("pipelined requests are numbered in order, and replies leave in request order whatever order they are ready in")
    func repliesInRequestOrder() throws {
        let (channel, _, collector) = try channel()
        try channel.writeInbound(Self.lines(2))
        try channel.writeInbound(Self.lines(1))
        #expect(collector.messages.map(\.firstSlot) == [0, 2])
        try reply(channel, 2, "c")
        try reply(channel, 1, "b")
        #expect(try replies(channel).isEmpty)  // slot 0 is still pending
        try reply(channel, 0, "a")
        #expect(try replies(channel) == ["a", "b", "c"])
    }

    @Test("with max_in_flight replies pending, reads stop until half are written")
    func backpressure() throws {
        let (channel, counter, _) = try channel(maximumInFlight: 4)
        try channel.writeInbound(Self.lines(64))  // a large burst: no read coalescing
        channel.pipeline.fireChannelReadComplete()
        let before = counter.reads
        channel.read()
        #expect(counter.reads == before)  // 64 pending ≥ 4: held
        for slot in 0..<61 { try reply(channel, UInt64(slot), "r") }
        #expect(counter.reads == before)  // 3 pending, over half of 4: still held
        try reply(channel, 61, "r")
        #expect(counter.reads == before + 1)  // 2 pending, half of 4: resumed
        #expect(try replies(channel).count == 62)
    }

    @Test("a small burst from a client that pipelines waits for its replies before the next read; a client that waits for each reply is read at once")
    func readCoalescing() throws {
        let (channel, counter, _) = try channel(maximumInFlight: 100)
        // Waits for each reply: never held.
        for slot in 0..<3 {
            try channel.writeInbound(Self.lines(1))
            channel.pipeline.fireChannelReadComplete()
            try reply(channel, UInt64(slot), "r")
            let reads = counter.reads
            channel.read()
            #expect(counter.reads == reads + 1)
        }
        // Pipelines: a burst begins while a reply is pending, so the next small burst is held.
        try channel.writeInbound(Self.lines(1))
        channel.pipeline.fireChannelReadComplete()
        try channel.writeInbound(Self.lines(2))
        channel.pipeline.fireChannelReadComplete()
        let reads = counter.reads
        channel.read()
        #expect(counter.reads == reads)
        for slot in 3..<6 { try reply(channel, UInt64(slot), "r") }
        #expect(counter.reads == reads + 1)  // the held read goes ahead once the batch is answered
    }

    @Test("drain: no read after the client finished sending; the connection closes once the last reply is written")
    func drainAnswersThenCloses() throws {
        let (channel, counter, _) = try channel()
        try channel.writeInbound(Self.lines(2))
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let reads = counter.reads
        channel.read()
        #expect(counter.reads == reads)
        try reply(channel, 0, "a")
        #expect(channel.isActive)
        try reply(channel, 1, "b")
        #expect(try replies(channel) == ["a", "b"])
        #expect(!channel.isActive)
    }

    @Test("quiescing with nothing pending closes at once; an idle connection closes only with nothing pending")
    func quiesceAndIdle() throws {
        let (quiet, _, _) = try channel()
        quiet.pipeline.fireUserInboundEventTriggered(ChannelShouldQuiesceEvent())
        #expect(!quiet.isActive)

        let (busy, _, _) = try channel()
        try busy.writeInbound(Self.lines(1))
        busy.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
        #expect(busy.isActive)
        try reply(busy, 0, "a")
        busy.pipeline.fireUserInboundEventTriggered(IdleStateHandler.IdleStateEvent.read)
        #expect(!busy.isActive)
    }
}

@Suite("Connection pipeline: the whole connection without a socket")
struct ConnectionPipelineTests {
    @Test("hostile lines, pings and stats through every handler: one reply each, in order, each error with its code")
    func wholePipeline() throws {
        let dir = TemporaryDirectory()
        var options = Ledger.Options()
        options.createWithOrigin = "stele.test/pipeline"
        let writer = try LedgerWriter(ledger: Ledger(path: dir.path, options: options))
        defer { try? writer.close() }
        var configuration = ServerConfiguration()
        configuration.peers = [PeerRule(uid: 1001, source: "web", kinds: ["login.*"])]
        configuration.limits.maximumLineLength = 256
        let loop = EmbeddedEventLoop()
        let stats = ServerStats()
        let context = DaemonContext(
            configuration: configuration, writer: writer, decoder: RequestDecoder(limits: configuration.limits), stats: stats,
            limiter: RateLimiter(ratePerSecond: 0), mailboxes: LoopMailboxes(group: loop), verifier: nil,
            retention: RetentionRunner(writer: writer, policy: RetentionPolicy(catalogue: configuration.catalogue), interval: 0, logger: logger),
            logger: logger)
        let channel = EmbeddedChannel(
            handlers: [
                PeerAuthenticationHandler(
                    peers: configuration.peers, maximumConnections: 4, maximumPerSource: 4, stats: stats, logger: logger,
                    credentials: { _ in (pid: 1, uid: 1001, gid: 1) }),
                LineFramingHandler(maximumLineLength: 256),
                ReplyOrderingHandler(maximumInFlight: 16),
                RequestHandler(shared: context),
            ], loop: loop)
        try channel.connect(to: SocketAddress(unixDomainSocketPath: "/stele-test")).wait()
        var input = ByteBuffer(string: "{\"op\":\"ping\",\"id\":\"p1\"}\n{not json\n\u{0}\n")
        input.writeBytes([0xC3, 0x28, 0x0A])
        input.writeString(String(repeating: "y", count: 300) + "\n")
        input.writeString("{\"kind\":\"admin.action\",\"id\":\"a\",\"actor\":\"staff:1\",\"attrs\":{\"action\":\"x\",\"target\":\"y\"}}\n{\"op\":\"stats\",\"id\":\"s\"}\n{\"op\":\"ping\",\"id\":\"last\"}")
        try channel.writeInbound(input)
        channel.pipeline.fireChannelReadComplete()
        channel.pipeline.fireUserInboundEventTriggered(ChannelEvent.inputClosed)
        let lines = try replies(channel)
        let codes = lines.map { line in
            line.contains("\"ok\":true") ? "ok" : String(line.split(separator: "\"code\":\"")[1].prefix { $0 != "\"" })
        }
        #expect(codes == ["ok", "malformed_json", "malformed_json", "malformed_json", "line_too_long", "forbidden_kind", "ok", "ok"], "\(lines)")
        #expect(lines.first?.contains("\"id\":\"p1\"") == true && lines.last?.contains("\"id\":\"last\"") == true)
        #expect(lines[6].contains("\"stats\":{"))
        #expect(!channel.isActive)  // every reply written after the end of input: closed
    }
}
