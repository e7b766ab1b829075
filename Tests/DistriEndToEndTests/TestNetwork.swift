import Foundation
import Synchronization

/// Test hosts: a small network of Linux network namespaces made by `scripts/testnet.sh` (README "Test
/// hosts (network namespaces)"): a wan namespace routing between hosts, one veth link per host with an
/// address in 10.77.0.0/24, latency with jitter per link (a delaying TCP relay in the wan namespace:
/// this kernel has no netem), packet loss per link (nftables), link cuts, and NAT gateways with hosts
/// behind them (10.78.k.0/24) that can dial out but cannot be dialled.
///
/// Needs root or CAP_NET_ADMIN, nftables and python3; tests use `.enabled(if: TestNetwork.isAvailable)`
/// and are skipped with the reason printed otherwise. Everything the network makes lives inside its own
/// namespaces (named `RUN-NAME`, RUN unique to the network) and is removed by `teardown()`, which also
/// stops whatever still runs in them; a run left by a crashed test process is removed by the next one.
///
/// Holds no mutable state of its own (the script keeps the network's state in files), so it is Sendable.
final class TestNetwork: Sendable {
    /// A host (or a NAT gateway) of the network.
    struct Host: Sendable, Hashable, CustomStringConvertible {
        let name: String
        /// The namespace the host's processes run in.
        let namespace: String
        /// Its address: on the wan for open hosts and gateways, on its gateway's LAN for a host behind one.
        let address: String
        var description: String { "\(name) (\(address))" }
    }

    struct Failure: Error, CustomStringConvertible { var description: String }

    /// The run id: the prefix of every namespace of this network.
    let run: String

    /// `scripts/testnet.sh` of this checkout.
    static let script: String = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent().deletingLastPathComponent().appendingPathComponent("scripts/testnet.sh").path

    /// `scripts/netprobe.py`: a TCP echo server and round-trip meter to run on hosts.
    static let probe: String = URL(fileURLWithPath: script).deletingLastPathComponent()
        .appendingPathComponent("netprobe.py").path

    /// Nil when this process may build test networks; otherwise why not (printed once as "SKIPPED: ...").
    static let unavailableReason: String? = {
        do {
            let result = try runTool("/bin/bash", [script, "check"], timeout: 30)
            if result.status == 0 { return nil }
            let reason =
                "network namespaces not permitted: "
                + (result.errors + result.output)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            print("SKIPPED: tests on namespaced hosts: \(reason)")
            return reason
        } catch {
            print("SKIPPED: tests on namespaced hosts: cannot run \(script): \(error)")
            return "cannot run \(script): \(error)"
        }
    }()

    static var isAvailable: Bool { unavailableReason == nil }

    private static let counter = Atomic<Int>(0)

    private init(run: String) { self.run = run }

    /// A new network with only its wan namespace (and the relay); add hosts to it. `prefix`: 1-4 of
    /// [a-z0-9]; the run id adds this process's id and a counter.
    static func make(prefix: String = "dt") throws -> TestNetwork {
        let count = counter.add(1, ordering: .relaxed).newValue
        let run = String(prefix.prefix(4)) + String(getpid(), radix: 36) + String(count, radix: 36)
        let network = TestNetwork(run: run)
        do {
            try network.script(["init", run, "--owner", String(getpid())])
        } catch {
            network.teardown()
            throw error
        }
        return network
    }

    /// A host on the wan. `delayMillis`: the one-way delay of its link to the wan, so two hosts with
    /// 10 ms each are 20 ms apart one way, 40 ms round trip; `jitterMillis`: each chunk's delay on the
    /// link varies by up to this much either way; `lossPercent`: frames dropped on the link, each way.
    @discardableResult
    func addHost(_ name: String, delayMillis: Int = 0, jitterMillis: Int = 0, lossPercent: Int = 0) throws -> Host {
        let address = try script(["host", run, name] + linkOptions(delayMillis, jitterMillis, lossPercent))
        return Host(name: name, namespace: "\(run)-\(name)", address: address)
    }

    /// A NAT gateway on the wan (its link as a host's), with a LAN for hosts behind it.
    @discardableResult
    func addNATGateway(_ name: String, delayMillis: Int = 0, jitterMillis: Int = 0, lossPercent: Int = 0) throws
        -> Host
    {
        let address = try script(["gateway", run, name] + linkOptions(delayMillis, jitterMillis, lossPercent))
        return Host(name: name, namespace: "\(run)-\(name)", address: address)
    }

    /// A host on `gateway`'s LAN: it dials out through the gateway (masqueraded to the gateway's address,
    /// with the gateway's link delay); nobody can dial in. `lossPercent`: on its LAN link.
    @discardableResult
    func addHost(_ name: String, behind gateway: Host, lossPercent: Int = 0) throws -> Host {
        let address = try script(["host", run, name, "--behind", gateway.name, "--loss", String(lossPercent)])
        return Host(name: name, namespace: "\(run)-\(name)", address: address)
    }

    /// Takes the host's link down (its eth0 loses carrier; nothing crosses until `restore`).
    func cut(_ host: Host) throws { try script(["cut", run, host.name]) }

    /// Brings a cut link back up.
    func restore(_ host: Host) throws { try script(["restore", run, host.name]) }

    /// Drops `percent` of the frames on the host's link, each way (100: all).
    func setLoss(_ host: Host, percent: Int) throws { try script(["set", run, host.name, "--loss", String(percent)]) }

    /// Limits the host's link to `mbit` Mbit/s each way (0: unlimited), with a tbf qdisc on both ends.
    func setRate(_ host: Host, mbit: Int) throws { try script(["rate", run, host.name, String(mbit)]) }

    /// A new delay and jitter on the host's link; applies to the next chunk of open connections too.
    func setDelay(_ host: Host, millis: Int, jitterMillis: Int = 0) throws {
        try script(["set", run, host.name, "--delay", String(millis), "--jitter", String(jitterMillis)])
    }

    /// A process that runs `executable` on `host` (not started: set its pipes, then `run()`). `ip netns
    /// exec` execs the program, so the process's PID is the program's, to stop by PID as usual. Note: it
    /// inherits the test process's signal mask, in which SIGTERM is blocked; a program that does not
    /// unblock or handle it (distri-node and the scripts do) ignores `terminate()` until SIGKILL.
    func process(on host: Host, executable: String, arguments: [String]) -> Process {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: Self.ipTool)
        process.arguments = ["netns", "exec", host.namespace, executable] + arguments
        return process
    }

    /// Runs `executable` on `host` to its end (terminated after `timeout`).
    func run(on host: Host, executable: String, arguments: [String], timeout: TimeInterval = 30) throws -> (
        status: Int32, output: String, errors: String
    ) {
        try Self.runTool(Self.ipTool, ["netns", "exec", host.namespace, executable] + arguments, timeout: timeout)
    }

    /// The delay relay's log (one line per connection).
    var relayLog: String {
        let path =
            (ProcessInfo.processInfo.environment["DISTRI_TESTNET_STATE"] ?? "/tmp/distri-testnet") + "/\(run)/relay.log"
        return (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
    }

    /// Stops every process still running in the network's namespaces (by PID: they are this run's),
    /// the relay, and deletes the namespaces with their links and nftables. Safe to call twice.
    func teardown() {
        do {
            let result = try Self.runTool("/bin/bash", [Self.script, "down", run], timeout: 60)
            if result.status != 0 { print("testnet down \(run) failed: \(result.errors)") }
        } catch {
            print("testnet down \(run) failed: \(error)")
        }
    }

    /// The namespaces of this run that exist now (empty after `teardown()`).
    func namespaces() throws -> [String] {
        let result = try Self.runTool(Self.ipTool, ["netns", "list"], timeout: 10)
        return result.output.split(separator: "\n").compactMap { line in
            let name = String(line.split(separator: " ").first ?? "")
            return name.hasPrefix("\(run)-") ? name : nil
        }
    }

    @discardableResult
    private func script(_ arguments: [String]) throws -> String {
        let result = try Self.runTool("/bin/bash", [Self.script] + arguments, timeout: 60)
        guard result.status == 0 else {
            throw Failure(description: "testnet.sh \(arguments.joined(separator: " ")): \(result.errors)")
        }
        return result.output.trimmingCharacters(in: .whitespacesAndNewlines)
    }

    private func linkOptions(_ delay: Int, _ jitter: Int, _ loss: Int) -> [String] {
        ["--delay", String(delay), "--jitter", String(jitter), "--loss", String(loss)]
    }

    private static let ipTool: String =
        ["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"].first {
            FileManager.default.isExecutableFile(atPath: $0)
        }
        ?? "/usr/sbin/ip"

    /// Runs `path` with `arguments` to its end (terminated after `timeout`), with its output.
    static func runTool(_ path: String, _ arguments: [String], timeout: TimeInterval) throws -> (
        status: Int32, output: String, errors: String
    ) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: path)
        process.arguments = arguments
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let timer = DispatchWorkItem { if process.isRunning { process.terminate() } }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: timer)
        defer { timer.cancel() }
        // Both pipes drained together, so neither fills up while the other is read.
        let errorData = DataBox()
        let readErrors = DispatchWorkItem {
            let data = errors.fileHandleForReading.readDataToEndOfFile()
            errorData.value.withLock { $0 = data }
        }
        DispatchQueue.global().async(execute: readErrors)
        let out = output.fileHandleForReading.readDataToEndOfFile()
        readErrors.wait()
        process.waitUntilExit()
        let err = errorData.value.withLock { $0 }
        return (process.terminationStatus, String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self))
    }
}

/// Bytes read on another thread.
private final class DataBox: Sendable {
    let value = Mutex(Data())
}

/// Round trips measured by `netprobe.py rtt` on a host of a test network.
struct ProbeResult: Decodable {
    var ok: Bool
    var connect_ms: Double?
    var rtts_ms: [Double]?
    var error: String?

    var median: Double? {
        guard let rtts = rtts_ms, !rtts.isEmpty else { return nil }
        return rtts.sorted()[rtts.count / 2]
    }
}

extension TestNetwork {
    /// From `host`, connects to `target` and times `count` echo round trips (each, and the connect,
    /// bounded by `timeout` seconds).
    func probe(from host: Host, to target: String, count: Int = 20, timeout: Double = 3) throws -> ProbeResult {
        let result = try run(
            on: host, executable: "python3",
            arguments: [Self.probe, "rtt", "--to", target, "--count", String(count), "--timeout", String(timeout)],
            timeout: timeout * Double(count + 1) + 10)
        guard let line = result.output.split(separator: "\n").last,
            let probe = try? JSONDecoder().decode(ProbeResult.self, from: Data(line.utf8))
        else { throw Failure(description: "netprobe printed no result: \(result.output) \(result.errors)") }
        return probe
    }

    /// Starts the echo server on `host` on `port`; stop it with `stopProcess`.
    func startEcho(on host: Host, port: Int) throws -> Process {
        let process = process(
            on: host, executable: "python3", arguments: [Self.probe, "echo", "--listen", "0.0.0.0:\(port)"])
        let output = Pipe()
        process.standardOutput = output
        try process.run()
        _ = try listeningAddress(of: process, output: output, name: "echo on \(host)")
        return process
    }
}
