import DistriCore
import DistriImaging
import DistriWire
import Foundation
import MallocInterposerSwift
import NIOCore

/// One measured hot path: time per operation and heap allocations per operation.
struct Measurement {
    var name: String
    var nanosPerOp: Double
    var mallocsPerOp: Double
    var bytesPerOp: Double
    var bytesProcessed: Int

    var line: String {
        let rate = bytesProcessed > 0 ? String(format: "%.1f MB/s", Double(bytesProcessed) / nanosPerOp * 1e3) : ""
        let columns = [
            String(format: "%.0f ns/op", nanosPerOp), String(format: "%.0f ops/s", 1e9 / nanosPerOp),
            String(format: "%.1f mallocs/op", mallocsPerOp), String(format: "%.0f B/op", bytesPerOp), rate,
        ]
        return name.padding(toLength: 40, withPad: " ", startingAt: 0)
            + columns.map { String(repeating: " ", count: max(0, 18 - $0.count)) + $0 }.joined()
    }
}

/// Runs `body` in batches for about `seconds`, after a warm-up batch; `bytes` is the payload one call handles.
func measure(_ name: String, bytes: Int = 0, seconds: Double = 1, _ body: () throws -> Void) rethrows -> Measurement {
    try body()
    var batch = 1
    var total = 0
    var elapsed: Duration = .zero
    var mallocs = 0
    var mallocBytes = 0
    let clock = ContinuousClock()
    // Bounded: at most 40 batches, each twice the last until the time is spent.
    for _ in 0..<40 where Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18 < seconds {
        MallocInterposerSwift.reset()
        MallocInterposerSwift.hook()
        let start = clock.now
        for _ in 0..<batch { try body() }
        elapsed += clock.now - start
        MallocInterposerSwift.unhook()
        let statistics = MallocInterposerSwift.getStatistics()
        mallocs += statistics.mallocCount
        mallocBytes += statistics.mallocBytesCount
        total += batch
        batch = min(batch * 2, 1 << 20)
    }
    let nanos =
        (Double(elapsed.components.seconds) * 1e9 + Double(elapsed.components.attoseconds) / 1e9) / Double(total)
    return Measurement(
        name: name, nanosPerOp: nanos, mallocsPerOp: Double(mallocs) / Double(total),
        bytesPerOp: Double(mallocBytes) / Double(total), bytesProcessed: bytes)
}

MallocInterposerSwift.initialize()
var results: [Measurement] = []
let allocator = ByteBufferAllocator()

// Frames: a small request encoded into a frame and decoded back.
let request = WireRequest(
    service: "AddDocument", params: ["catalog", "consistency=majority"], taskID: 42,
    data: ByteBuffer(string: #"{"name":"Ada","visits":3}"#))
results.append(
    measure("frame encode (request + header)") {
        let payload = request.encode(allocator: allocator)
        var frame = allocator.buffer(capacity: 16 + payload.readableBytes)
        FrameHeader(kind: .request, flags: .endOfMessage, requestID: 7, payloadLength: UInt32(payload.readableBytes))
            .write(to: &frame)
        var copy = payload
        frame.writeBuffer(&copy)
        precondition(frame.readableBytes > 0)
    })
let encodedPayload = request.encode(allocator: allocator)
results.append(
    measure("frame decode (request)") {
        let decoded = try! WireRequest.decode(encodedPayload)
        precondition(decoded.taskID == 42)
    })

// Documents: merging two replicas of a 10-field document, each newer on half the fields.
func document(_ node: String, newerOnEven: Bool) -> ReplicatedDocument {
    var fields: [String: ReplicatedDocument.Field] = [:]
    for index in 0..<10 {
        let newer = (index % 2 == 0) == newerOnEven
        fields["field\(index)"] = .init(
            value: .number(Double(index)), stamp: HLCTimestamp(millis: newer ? 2000 : 1000, counter: 0, node: node))
    }
    return ReplicatedDocument(id: "doc", fields: fields, deleted: nil, cleared: nil)
}
let left = document("a", newerOnEven: true)
let right = document("b", newerOnEven: false)
results.append(
    measure("document merge (10 fields)") {
        var merged = left
        merged.merge(right)
        precondition(merged.fields.count == 10)
    })

// Filters: a range and an $in over a 6-field document.
let filter = try DocumentFilter(
    .object([
        "population": .object(["$gte": .number(200_000), "$lt": .number(1_000_000)]),
        "country": .object(["$in": .array([.string("PT"), .string("NO")])]),
    ]))
let city: [String: JSONValue] = [
    "name": .string("Porto"), "country": .string("PT"), "population": .number(232_000),
    "founded": .number(868), "coastal": .bool(true), "tags": .array([.string("port")]),
]
results.append(
    measure("filter evaluation (range + $in)") {
        precondition(filter.matches(city))
    })

// Replication: one `majority` AddDocument through three engines, as the shell runs it: the JSON
// body parsed, applied on the origin, pushed in batches of 16 through the binary codec, merged by two
// peers, acknowledged back. Network and TLS excluded.
func majorityWriteRoundTrip() -> Measurement {
    var origin = ReplicaEngine(node: "n1", epoch: 1, seed: 1)
    var peerEngines = [
        "n2": ReplicaEngine(node: "n2", epoch: 2, seed: 2), "n3": ReplicaEngine(node: "n3", epoch: 3, seed: 3),
    ]
    var replicationNow: UInt64 = 1_000_000
    _ = origin.setPeers(known: ["n2", "n3"], alive: ["n2", "n3"], now: replicationNow)
    for name in ["n2", "n3"] {
        _ = peerEngines[name]!.setPeers(
            known: Set(["n1", "n2", "n3"].filter { $0 != name }), alive: ["n1"], now: replicationNow)
    }
    _ = origin.perform(.createCollection("bench"), consistency: .one, id: 0, now: replicationNow, deadline: .max)
    let documentText = Array(
        #"{"kind":"bench","n":42,"pad":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}"#.utf8)
    var writeNumber: UInt64 = 1
    func deliver(_ actions: [ReplicaAction]) -> Int {
        var completed = 0
        for action in actions {
            switch action {
            case .send(let peer, let number, let request):
                let bytes = ReplicaCodec.encode(request)
                let decoded = try! ReplicaCodec.decodeRequest(bytes)
                let (response, _) = peerEngines[peer]!.handle(decoded, from: "n1", now: replicationNow)
                let answer = try! ReplicaCodec.decodeResponse(ReplicaCodec.encode(response))
                completed += deliver(origin.receive(answer, for: number, now: replicationNow))
            case .completed: completed += 1
            default: break
            }
        }
        return completed
    }
    return measure("majority write, 3 engines (per write)") {
        writeNumber += 1
        replicationNow += 1
        guard case .object(let body) = try! JSONParser.parse(documentText) else { fatalError() }
        var completed = deliver(
            origin.perform(
                .add(collection: "bench", id: "w\(writeNumber)", body: body), consistency: .majority, id: writeNumber,
                now: replicationNow, deadline: .max))
        if writeNumber % 16 == 0 { completed += deliver(origin.flush(now: replicationNow)) }
        precondition(completed == 0 || writeNumber % 16 == 0)
    }
}
results.append(majorityWriteRoundTrip())

// AES-256-GCM in the STREAM layout, 1 MiB.
var random = SystemImagingRandom()
let key = try ImageKey.generate()
let plaintext = [UInt8](repeating: 0x5A, count: 1 << 20)
let sealed = try SealedStream.seal(plaintext, fileKey: key.fileKey, random: &random)
results.append(
    try measure("AES-256-GCM seal 1 MiB", bytes: plaintext.count) {
        _ = try SealedStream.seal(plaintext, fileKey: key.fileKey, random: &random)
    })
results.append(
    try measure("AES-256-GCM open 1 MiB", bytes: plaintext.count) {
        _ = try SealedStream.open(sealed, fileKey: key.fileKey)
    })

// PNG embedding: 64 KiB into a 512x512 cover's pixels, and back (no PNG coding).
let payload = [UInt8](repeating: 0xA5, count: 64 << 10)
let cover = CoverGenerator.cover(width: 512, height: 512, seed: 1)
var embedded = cover
try PayloadEmbedding.embed(payload, into: &embedded, key: key)
results.append(
    try measure("LSB embed 64 KiB (512x512)", bytes: payload.count) {
        var image = cover
        try PayloadEmbedding.embed(payload, into: &image, key: key)
    })
results.append(
    try measure("LSB extract 64 KiB (512x512)", bytes: payload.count) {
        _ = try PayloadEmbedding.extract(from: embedded, key: key)
    })
let png = try PNGCodec.encode(embedded)
results.append(
    try measure("PNG encode 512x512 (service settings)", bytes: cover.pixels.count) {
        _ = try PNGCodec.encode(embedded)
    })
results.append(
    try measure("PNG decode 512x512", bytes: cover.pixels.count) {
        _ = try PNGCodec.decode(png)
    })

print("Distri hot paths (one thread; allocations counted by ordo-one/malloc-interposer)")
for result in results { print(result.line) }
