import ArgumentParser
import Distri
import DistriCommandLine
import DistriCore
import Foundation
import NIOCore
import NIOPosix
import Tracing

/// `distri-bench [calls]`: throughput and latency of small calls, beside a plain loopback echo.
struct BenchCallsCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calls",
        abstract: "Measure small-call throughput and latency against a cloud, beside a loopback echo.",
        discussion: """
            Without --cloud it starts `distri-node local --nodes N` as a child process and stops it afterwards. \
            Both runs use one client thread; the cloud runs in its own process.
            """)

    @OptionGroup var target: BenchCloud

    @Option(name: .long, help: "Number of calls.")
    var calls = 100_000

    @Option(name: .long, help: "Calls in flight at once (no pipelining beyond that).")
    var concurrency = 50

    @Option(name: .long, help: "Payload bytes per call.")
    var payload = 64

    @Option(name: .long, help: "Service to call.")
    var service = BuiltinServices.echo

    @OptionGroup var jsonOutput: JSONOutputOptions
    var json: Bool { jsonOutput.enabled }

    @Flag(
        name: .long,
        help: "Also start an --insecure local cloud and run the same calls against it: the cost of TLS as a ratio.")
    var compareInsecure = false

    @Flag(
        name: .long,
        help: "Also start a local cloud serving metrics (--metrics) and run the same calls against it: their cost.")
    var compareMetrics = false

    @Flag(
        name: .long,
        help: ArgumentHelp(
            "Also start a local cloud carrying trace context (--trace-propagation: spans made, none recorded, as with "
                + "a sampler off) and run the same calls against it: the cost of tracing."))
    var compareTracing = false

    func validate() throws {
        if compareMetrics || compareTracing, target.cloud != nil {
            throw ValidationError("--compare-metrics and --compare-tracing measure local clouds: give no --cloud")
        }
        if compareInsecure, target.cloud != nil || target.tls.insecure {
            throw ValidationError("--compare-insecure measures two local clouds: give neither --cloud nor --insecure")
        }
        if calls < 1 || concurrency < 1 || payload < 0 {
            throw ValidationError("calls and concurrency must be positive")
        }
    }

    func run() async throws {
        let group = MultiThreadedEventLoopGroup.singleton
        let cloud = try target.open()
        let (addresses, child) = (cloud.addresses, cloud.child)
        defer { child?.stop() }

        let echo = try await LoopbackEcho.measure(
            calls: calls, concurrency: concurrency, size: payload + 24, group: group)

        let client = Client(nodes: addresses, configuration: cloud.configuration, group: group)
        let data = ByteBuffer(repeating: 0x61, count: payload)
        let service = self.service
        let distri = try await measureCalls(
            client, name: "distri \(service)\(cloud.configuration.tls == nil ? "" : " (TLS)")")
        // Election overhead: the same small task on one node, elected there vs. sent as already elected.
        let target = addresses[0]
        var overhead: [LoadResult] = []
        for routing in [Routing.local, .elect] {
            overhead.append(
                try await LoadDriver.run(
                    name: "Echo at one node, routing \(routing)", loop: client.eventLoop, total: max(1, calls / 4),
                    concurrency: 1
                ) { done in
                    client.call(data, service: service, node: target, routing: routing).assumeIsolated()
                        .whenComplete { result in
                            if case .success = result { done(true) } else { done(false) }
                        }
                })
        }
        let stats = await client.collectStats()
        await client.shutdown()
        var insecure: LoadResult?
        if compareInsecure {
            let plain = try BenchCloud.startLocal(nodes: addresses.count, insecure: true)
            defer { plain.child?.stop() }
            let plainClient = Client(nodes: plain.addresses, configuration: plain.configuration, group: group)
            insecure = try await measureCalls(plainClient, name: "distri \(service) (--insecure)")
            await plainClient.shutdown()
        }
        let withMetrics = compareMetrics ? try await measureLocal(nodes: addresses.count, with: "--metrics") : nil
        // A traced caller: every call starts a trace that the nodes carry through, none of it recorded.
        let withTracing =
            compareTracing
            ? try await measureLocal(nodes: addresses.count, with: "--trace-propagation", tracer: PropagatingTracer())
            : nil

        let report = BenchReport(
            nodes: addresses.count, payloadBytes: payload, baseline: echo, distri: distri,
            throughputRatio: distri.callsPerSecond / echo.callsPerSecond, electionOff: overhead[0],
            electionOn: overhead[1],
            electionLatencyRatio: Double(overhead[1].p50Micros) / Double(max(1, overhead[0].p50Micros)),
            nodeResidentMiB: stats.compactMap { try? $0.result.get().residentBytes }.map { Double($0) / 1_048_576 },
            insecure: insecure, tlsToInsecure: insecure.map { distri.callsPerSecond / $0.callsPerSecond },
            withMetrics: withMetrics, metricsToNone: withMetrics.map { $0.callsPerSecond / distri.callsPerSecond },
            withTracing: withTracing, tracingToNone: withTracing.map { $0.callsPerSecond / distri.callsPerSecond })
        if json {
            print(try JSONStyle.text(report))
        } else {
            print(report.text)
        }
    }

    /// The same calls against a local cloud of `nodes` started with `flag` (`distri-node local`'s), from
    /// a client with `tracer`, if given.
    private func measureLocal(nodes: Int, with flag: String, tracer: (any Tracer)? = nil) async throws -> LoadResult {
        let measured = try BenchCloud.startLocal(nodes: nodes, insecure: target.tls.insecure, extraArguments: [flag])
        defer { measured.child?.stop() }
        var configuration = measured.configuration
        configuration.tracer = tracer
        let client = Client(
            nodes: measured.addresses, configuration: configuration, group: MultiThreadedEventLoopGroup.singleton)
        let result = try await measureCalls(client, name: "distri \(service) (\(flag))")
        await client.shutdown()
        return result
    }

    /// `calls` calls of the service, `concurrency` at a time, after one call to every node.
    private func measureCalls(_ client: Client, name: String) async throws -> LoadResult {
        let data = ByteBuffer(repeating: 0x61, count: payload)
        let service = self.service
        for address in client.nodes { _ = try await client.call(data, service: service, node: address).get() }
        return try await LoadDriver.run(name: name, loop: client.eventLoop, total: calls, concurrency: concurrency) {
            done in
            client.call(data, service: service).assumeIsolated().whenComplete { result in
                if case .success = result { done(true) } else { done(false) }
            }
        }
    }
}

struct BenchReport: Codable {
    var nodes: Int
    var payloadBytes: Int
    var baseline: LoadResult
    var distri: LoadResult
    var throughputRatio: Double
    var electionOff: LoadResult
    var electionOn: LoadResult
    var electionLatencyRatio: Double
    var nodeResidentMiB: [Double]
    /// The same calls against an `--insecure` local cloud in the same run, and TLS / insecure throughput.
    var insecure: LoadResult?
    var tlsToInsecure: Double?
    /// The same calls against a local cloud serving metrics, and metrics / none throughput.
    var withMetrics: LoadResult?
    var metricsToNone: Double?
    /// The same calls against a local cloud carrying trace context, and tracing / none throughput.
    var withTracing: LoadResult?
    var tracingToNone: Double?

    var text: String {
        func row(_ r: LoadResult) -> [String] {
            [
                r.name, "\(r.calls)", "\(r.failures)", "\(Int(r.callsPerSecond))", "\(r.p50Micros)", "\(r.p90Micros)",
                "\(r.p99Micros)", "\(r.maxMicros)",
            ]
        }
        let table = TextTable.render(
            headers: ["run", "calls", "failed", "calls/s", "p50 µs", "p90 µs", "p99 µs", "max µs"],
            rows: [row(baseline), row(distri)] + (insecure.map { [row($0)] } ?? [])
                + (withMetrics.map { [row($0)] } ?? []) + (withTracing.map { [row($0)] } ?? []) + [
                    row(electionOff), row(electionOn),
                ])
        let memory = nodeResidentMiB.map { String(Int($0.rounded())) }.joined(separator: ", ")
        var text = """
            \(table)
            distri / loopback echo throughput: \(Int((throughputRatio * 100).rounded()))%  \
            (\(nodes) nodes, \(payloadBytes)-byte payload, concurrency \(distri.concurrency))
            election / no election, p50 latency of one small call at a time: \(Int((electionLatencyRatio * 100).rounded()))%
            node process resident memory (MiB): \(memory)
            """
        if let insecure, let tlsToInsecure {
            let p50 = Double(distri.p50Micros) / Double(max(1, insecure.p50Micros))
            text +=
                "\nTLS / --insecure: throughput \(Int((tlsToInsecure * 100).rounded()))%, p50 latency \(Int((p50 * 100).rounded()))%"
        }
        if let withMetrics, let metricsToNone {
            let p50 = Double(withMetrics.p50Micros) / Double(max(1, distri.p50Micros))
            text +=
                "\nmetrics / none: throughput \(Int((metricsToNone * 100).rounded()))%, p50 latency \(Int((p50 * 100).rounded()))%"
        }
        if let withTracing, let tracingToNone {
            let p50 = Double(withTracing.p50Micros) / Double(max(1, distri.p50Micros))
            text +=
                "\ntracing (propagation, sampler off) / none: throughput \(Int((tracingToNone * 100).rounded()))%, p50 latency \(Int((p50 * 100).rounded()))%"
        }
        return text
    }
}
