import Distri
import DistriImaging
import DistriTestSupport
import Foundation
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix
import Testing

/// Resident memory of process `pid` from `/proc/PID/status`: now (VmRSS) and its peak since it
/// started (VmHWM), in bytes; nil where that file does not exist.
private func residentMemory(of pid: Int32) -> (now: Int, peak: Int)? {
    guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8) else { return nil }
    func kilobytes(_ field: String) -> Int? {
        guard let line = text.split(separator: "\n").first(where: { $0.hasPrefix(field + ":") }) else { return nil }
        return line.split(whereSeparator: \.isWhitespace).dropFirst().first.flatMap { Int($0) }
    }
    guard let now = kilobytes("VmRSS"), let peak = kilobytes("VmHWM") else { return nil }
    return (now * 1024, peak * 1024)
}

/// Counts what a raw connection receives, and whether the node closed it.
private final class Watcher: ChannelInboundHandler, Sendable {
    typealias InboundIn = ByteBuffer
    let received = NIOLockedValueBox(ByteBuffer())

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var chunk = unwrapInboundIn(data)
        received.withLockedValue { _ = $0.writeBuffer(&chunk) }
    }

    /// The codes of the error replies received.
    var errorCodes: [ErrorCode] {
        var buffer = received.withLockedValue { $0 }
        var decoder = MessageDecoder()
        var codes: [ErrorCode] = []
        // Bounded: each pass consumes a message from the finite buffer, or the loop ends.
        while let message = try? decoder.next(from: &buffer) {
            if message.kind == .error, let reply = try? WireErrorReply.decode(message.payload) {
                codes.append(reply.code)
            }
        }
        return codes
    }
}

private func rawConnection(to address: NodeAddress, tls: Bool) async throws -> (Channel, Watcher) {
    let watcher = Watcher()
    let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        .channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture {
                if tls {
                    try channel.pipeline.syncOperations.addHandler(try E2ETLS.authority.clientTLS.makeClientHandler())
                }
                try channel.pipeline.syncOperations.addHandler(watcher)
            }
        }
        .connect(host: address.host, port: address.port).get()
    return (channel, watcher)
}

/// Waits for `channel` to close, at most `timeout`; true when it closed.
private func closed(_ channel: Channel, within timeout: TimeAmount) async -> Bool {
    let timer = channel.eventLoop.scheduleTask(in: timeout) {}
    let promise = channel.eventLoop.makePromise(of: Bool.self)
    channel.closeFuture.whenComplete { _ in promise.succeed(true) }
    timer.futureResult.whenComplete { _ in promise.succeed(false) }
    let result = (try? await promise.futureResult.get()) ?? false
    timer.cancel()
    return result
}

/// The 99th percentile of `samples` (nearest rank).
private func p99(_ samples: [Duration]) -> Duration {
    let sorted = samples.sorted()
    guard !sorted.isEmpty else { return .zero }
    return sorted[min(sorted.count - 1, Int((Double(sorted.count) * 0.99).rounded(.up)) - 1)]
}

private func median(_ values: [Duration]) -> Duration {
    let sorted = values.sorted()
    return sorted.isEmpty ? .zero : sorted[sorted.count / 2]
}

private func seconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) + Double(duration.components.attoseconds) / 1e18
}

private func ms(_ duration: Duration) -> String {
    String(format: "%.2f ms", seconds(duration) * 1e3)
}

/// `calls` Echo calls one after another; each one's latency.
private func echoLatencies(_ client: Client, calls: Int) async throws -> [Duration] {
    let clock = ContinuousClock()
    var latencies: [Duration] = []
    let payload = [UInt8](repeating: 1, count: 64)
    for _ in 0..<calls {
        let start = clock.now
        _ = try await client.send(payload, service: BuiltinServices.echo)
        latencies.append(clock.now - start)
    }
    return latencies
}

@Suite(.serialized) struct HostileLoadTests {
    /// `count` Encrypt calls at once of `image` into `cover`: each one's error code (nil: encrypted and
    /// verified) and message.
    static func encryptAtOnce(_ client: Client, image: [UInt8], cover: [UInt8], count: Int) async -> [(
        code: ErrorCode?, message: String
    )] {
        await withTaskGroup(of: (code: ErrorCode?, message: String).self) { group in
            for _ in 0..<count {
                group.addTask {
                    do {
                        _ = try await ImageEncryptionClient(client: client).encrypt(image, cover: cover)
                        return (nil, "encrypted")
                    } catch let error as ClientError {
                        return (error.remoteCode ?? .internal, error.message)
                    } catch {
                        return (.internal, "\(error)")
                    }
                }
            }
            return await group.reduce(into: []) { $0.append($1) }
        }
    }

    /// Whether `message` is the refusal of a connection whose bytes found the node's buffer full.
    static func bufferFull(_ outcome: (code: ErrorCode?, message: String)) -> Bool {
        outcome.code == .busy && outcome.message.contains("buffer for incomplete messages")
    }

    /// Sends UpdateDocument with a 25 MB `$in` list in its `if` condition; the error code and message.
    static func sendHugeParameter(_ client: Client) async -> (ErrorCode?, String) {
        let list = String(repeating: "1,", count: 12_500_000) + "1"
        do {
            _ = try await client.send(
                Array(#"{"n":2}"#.utf8), service: "UpdateDocument",
                params: ["hostile", "x", #"if={"n":{"$in":["# + list + "]}}"])
            return (nil, "a 25 MB parameter was accepted")
        } catch let error as ClientError {
            return (error.remoteCode, "\(error)")
        } catch {
            return (nil, "\(error)")
        }
    }

    /// The documented ceiling (README, "Limits"; ``Distri/ResourceLimits``).
    static let ceiling = 512 << 20

    @Test(
        "one node under hostile load (16 unfinished 120 MiB messages, 8 bomb covers, 200 slow TLS handshakes, a 25 MB parameter) stays under 512 MiB and keeps serving"
    )
    func hostileLoad() async throws {
        // The bomb: 8192 x 8192 pixels (256 MiB of RGBA once decoded) in a few hundred KB of PNG.
        let bomb = try PNGCodec.encode(
            RGBAImage(width: 8192, height: 8192, pixels: [UInt8](repeating: 0, count: 8192 * 8192 * 4)),
            settings: PNGEncodeSettings(level: 9, filter: .none, strategy: .default))
        // Covers at the node's limit (4096 x 4096, 64 MiB of RGBA decoded), a few tens of KB of PNG.
        let largest = try PNGCodec.encode(
            RGBAImage(width: 4096, height: 4096, pixels: [UInt8](repeating: 0, count: 4096 * 4096 * 4)),
            settings: PNGEncodeSettings(level: 9, filter: .none, strategy: .default))
        let image = try PNGCodec.encode(CoverGenerator.cover(width: 64, height: 48, seed: 9), settings: .default)
        let node = try NodeProcess(id: "hostile", seeds: [])
        defer { node.stop() }
        let configuration = ClientConfiguration(timeout: .seconds(30), tls: E2ETLS.authority.clientTLS)
        // The well-behaved client on an event loop of its own: the attackers' TLS work in this
        // process does not delay its calls, so what it measures is the node.
        let goodLoop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let good = Client(nodes: [node.address], configuration: configuration, group: goodLoop)
        let attacker = Client(nodes: [node.address], configuration: configuration)
        let coverClient = Client(nodes: [node.address], configuration: configuration)
        do {
            try await Self.attack(
                node, good: good, attacker: attacker, coverClient: coverClient, image: image, bomb: bomb,
                largest: largest)
        } catch {
            await good.shutdown()
            await attacker.shutdown()
            await coverClient.shutdown()
            try? await goodLoop.shutdownGracefully()
            throw error
        }
        await good.shutdown()
        await attacker.shutdown()
        await coverClient.shutdown()
        try await goodLoop.shutdownGracefully()
    }

    private static func attack(
        _ node: NodeProcess, good: Client, attacker: Client, coverClient: Client, image: [UInt8], bomb: [UInt8],
        largest: [UInt8]
    ) async throws {
        let address = node.address

        // Before: the well-behaved client's p99 over 5 batches of 100 calls (after 200 to warm up).
        _ = try await echoLatencies(good, calls: 200)
        var before: [Duration] = []
        for _ in 0..<5 { before.append(p99(try await echoLatencies(good, calls: 100))) }
        let baseline = try #require(residentMemory(of: node.pid))
        let statsBefore = await stats(of: [address])[address]

        let clock = ContinuousClock()
        let attackStart = clock.now
        let attackOver = NIOLockedValueBox(false)
        async let attacks: Void = withThrowingTaskGroup(of: Void.self) { group in
            // 16 connections, each sending two messages of 60 MiB that never end (1 MiB frames
            // without the end flag), as fast as the node takes them.
            group.addTask {
                let outcomes = try await withThrowingTaskGroup(
                    of: (closed: Bool, codes: [ErrorCode], after: Duration).self
                ) {
                    group in
                    for _ in 0..<16 {
                        group.addTask {
                            let (channel, watcher) = try await rawConnection(to: address, tls: true)
                            let payload = ByteBuffer(repeating: 0x5A, count: 1 << 20)
                            for index in 0..<120 where channel.isActive {
                                var frame = ByteBuffer()
                                FrameHeader(
                                    kind: .request, flags: [], requestID: UInt64(1 + index / 60),
                                    payloadLength: 1 << 20
                                ).write(to: &frame)
                                frame.writeImmutableBuffer(payload)
                                do { try await channel.writeAndFlush(frame) } catch { break }
                            }
                            // Held unfinished: the node refuses it (busy) or drops it as a slow request.
                            let wasClosed = await closed(channel, within: .seconds(25))
                            if !wasClosed { try? await channel.close() }
                            return (wasClosed, watcher.errorCodes, clock.now - attackStart)
                        }
                    }
                    return try await group.reduce(into: []) { $0.append($1) }
                }
                #expect(outcomes.allSatisfy { $0.closed }, "unfinished messages left open: \(outcomes)")
                #expect(outcomes.allSatisfy { $0.codes.allSatisfy { $0 == .busy } }, "\(outcomes.map(\.codes))")
                // Refused busy when its growth found the node's buffer full; one whose whole 120 MiB
                // fitted (after the others were refused) is dropped by the slow-request timeout.
                // (Every code received is busy: checked just above.)
                var refused: [(closed: Bool, codes: [ErrorCode], after: Duration)] = []
                var slow: [(closed: Bool, codes: [ErrorCode], after: Duration)] = []
                for outcome in outcomes {
                    if outcome.codes.isEmpty { slow.append(outcome) } else { refused.append(outcome) }
                }
                let closedAfter = { (items: [(closed: Bool, codes: [ErrorCode], after: Duration)]) in
                    items.map { String(format: "%.1f", seconds($0.after)) }.sorted().joined(separator: ",")
                }
                print(
                    "hostile: unfinished 120 MiB messages: \(refused.count) of 16 refused busy (closed after \(closedAfter(refused)) s), \(slow.count) dropped as slow requests (after \(closedAfter(slow)) s)"
                )
            }
            // 8 bomb covers at once, and 8 covers at the per-image limit at once (the node's pixel
            // budget, 24 Mpixel, lets one run at a time; the others are answered busy before anything
            // is decoded). Each may also be refused busy when its upload finds the node's buffer
            // full of the unfinished messages; after the attack they are sent again on a calm node.
            group.addTask {
                let bombs = await Self.encryptAtOnce(attacker, image: image, cover: bomb, count: 8)
                #expect(bombs.allSatisfy { $0.code == .tooLarge || Self.bufferFull($0) }, "\(bombs)")
                print("hostile: 8 bomb covers during the attack: \(Set(bombs.map(\.message)))")
            }
            group.addTask {
                let covers = await Self.encryptAtOnce(coverClient, image: image, cover: largest, count: 8)
                #expect(covers.allSatisfy { $0.code == nil || $0.code == .busy }, "\(covers)")
                let encrypted = covers.count { $0.code == nil }
                print(
                    "hostile: 8 covers of 4096x4096 during the attack: \(encrypted) encrypted, \(covers.count - encrypted) busy"
                )
            }
            // 200 TLS handshakes that drip a ClientHello at 1 byte a second.
            group.addTask {
                var drips: [Channel] = []
                for _ in 0..<200 { drips.append(try await rawConnection(to: address, tls: false).0) }
                let hello: [UInt8] = [0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00, 0x01, 0xFC, 0x03, 0x03]
                // Bounded: one byte a second for at most 20 s; the node's deadline is 10 s.
                for second in 0..<20 where drips.contains(where: \.isActive) {
                    for drip in drips where drip.isActive {
                        drip.writeAndFlush(ByteBuffer(bytes: [hello[second % hello.count]]), promise: nil)
                    }
                    try await Task.sleep(for: .seconds(1))  // the drip's pace, not synchronisation
                }
                let open = drips.filter(\.isActive).count
                for drip in drips where drip.isActive { try? await drip.close() }
                #expect(open == 0, "\(open) of 200 slow handshakes still open after 20 s")
                print("hostile: 200 slow TLS handshakes closed after \(clock.now - attackStart)")
            }
            // A 25 MB `$in` list in the condition of an update: refused for its size (badParams),
            // or, while the unfinished messages fill the node's buffer, before it is complete (busy).
            group.addTask {
                let (code, message) = await Self.sendHugeParameter(attacker)
                #expect(code == .badParams || code == .busy, "\(message)")
                print("hostile: 25 MB parameter during the attack: \(message)")
            }
            try await group.waitForAll()
            attackOver.withLockedValue { $0 = true }
        }

        // During: the same batches while the attack lasts (at most 1000 batches or 40 s), and the
        // node's resident memory after each.
        var during: [Duration] = []
        var all: [Duration] = []
        var peakSampled = baseline.now
        for _ in 0..<1000 {
            let latencies = try await echoLatencies(good, calls: 100)
            all += latencies
            during.append(p99(latencies))
            if let memory = residentMemory(of: node.pid) { peakSampled = max(peakSampled, memory.now) }
            if attackOver.withLockedValue({ $0 }) || clock.now - attackStart > .seconds(40) { break }
        }
        try await attacks
        let attackTime = clock.now - attackStart
        let memory = try #require(residentMemory(of: node.pid))

        // Still serving, and every connection the attack made is gone.
        #expect(try await good.send([9], service: BuiltinServices.echo) == [9])
        let (code, message) = await Self.sendHugeParameter(attacker)
        #expect(code == .badParams, "\(message)")
        print("hostile: 25 MB parameter after the attack: \(message)")
        let bombs = await Self.encryptAtOnce(attacker, image: image, cover: bomb, count: 8)
        #expect(bombs.allSatisfy { $0.code == .tooLarge }, "\(bombs)")
        print("hostile: 8 bomb covers after the attack: \(Set(bombs.map(\.message)))")
        let covers = await Self.encryptAtOnce(coverClient, image: image, cover: largest, count: 8)
        let encrypted = covers.filter { $0.code == nil }.count
        #expect(encrypted >= 1 && covers.allSatisfy { $0.code == nil || $0.code == .busy }, "\(covers)")
        print(
            "hostile: 8 covers of 4096x4096 at once after the attack: \(encrypted) encrypted, \(8 - encrypted) busy: \(Set(covers.compactMap { $0.code == nil ? nil : $0.message }))"
        )
        let nodeStats = await stats(of: [address])[address]

        let beforeP99 = median(before)
        let duringP99 = median(during)
        let ratio = seconds(duringP99) / max(1e-9, seconds(beforeP99))
        print(
            """
            hostile: node RSS \(baseline.now >> 20) MiB before, peak \(memory.peak >> 20) MiB (VmHWM; sampled \
            \(peakSampled >> 20) MiB), \(memory.now >> 20) MiB after; ceiling \(Self.ceiling >> 20) MiB
            hostile: good client p99 before \(ms(beforeP99)) (median of 5 batches of 100), during \(ms(duringP99)) \
            (median of \(during.count) batches), ratio \(String(format: "%.2f", ratio)); over all \(all.count) calls \
            during: p99 \(ms(p99(all))), worst batch \(ms(during.max() ?? .zero)); attack lasted \(attackTime)
            hostile: node stats during the attack: slow connections dropped \
            \((nodeStats?.slowConnectionsDropped ?? 0) - (statsBefore?.slowConnectionsDropped ?? 0)), idle closed \
            \((nodeStats?.idleConnectionsClosed ?? 0) - (statsBefore?.idleConnectionsClosed ?? 0)), TLS handshakes \
            failed \((nodeStats?.tlsHandshakesFailed ?? 0) - (statsBefore?.tlsHandshakesFailed ?? 0))
            """)
        #expect(memory.peak < Self.ceiling, "peak resident memory \(memory.peak >> 20) MiB")
        // The assertion on latency: the median over batches of each batch's p99, so that one slow
        // batch (a scheduling hiccup of this 2-core machine, shared by the node, the attackers and
        // this client) does not decide it; and within 2x of before or 5 ms, whichever is larger,
        // because a sub-millisecond p99 doubles from noise alone.
        #expect(
            duringP99 <= max(beforeP99 * 2, .milliseconds(5)), "p99 before \(ms(beforeP99)), during \(ms(duringP99))")
    }
}
