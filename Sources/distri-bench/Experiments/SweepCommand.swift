import ArgumentParser
import Distri
import DistriCommandLine
import Foundation

/// `distri-bench sweep`: the original's grid of experiments on local clouds, to CSV.
struct SweepCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sweep",
        abstract: "Run the original experiments over a grid of server and client counts on local clouds; write CSV.",
        discussion: """
            For each server count a fresh `distri-node local --nodes S` child process (TLS unless --insecure), \
            then for each client count each test (see `distri-bench example`). Rows are printed as they come and \
            written to OUT/sweep.csv; `scripts/sweep.sh` draws the charts from it with gnuplot. Exits with status \
            2 if any task failed or any acknowledged document is missing on a node.
            """)

    @Option(name: .long, help: "Comma-separated server counts (the original: 1 to 7).")
    var servers = "1,3,7"

    @Option(name: .long, help: "Comma-separated client counts (the original: 5 to 2500).")
    var clients = "5,100,1000"

    @Option(name: .long, help: "Comma-separated tests: encrypt, db.")
    var tests = "encrypt,db"

    @Option(name: .long, help: ArgumentHelp("Directory for sweep.csv.", valueName: "dir"))
    var out = "sweep-results"

    @Option(
        name: .long, help: ArgumentHelp("A PNG to encrypt (default: a generated 160x120 image).", valueName: "file"))
    var image: String?

    @Flag(name: .long, help: "Local clouds without TLS (debugging only).")
    var insecure = false

    private func counts(_ text: String, _ name: String) throws -> [Int] {
        let values = text.split(separator: ",").compactMap { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--\(name) is a comma-separated list of positive numbers")
        }
        return values
    }

    func validate() throws {
        _ = try counts(servers, "servers")
        _ = try counts(clients, "clients")
        let names = tests.split(separator: ",").map(String.init)
        guard !names.isEmpty, names.allSatisfy({ ["encrypt", "db"].contains($0) }) else {
            throw ValidationError("--tests is a comma-separated list of encrypt and db")
        }
    }

    func run() async throws {
        let image = try ExampleCommand.testImage(image)
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let csvPath = (out as NSString).appendingPathComponent("sweep.csv")
        var csv = ExperimentResult.csvHeader + "\n"
        var results: [ExperimentResult] = []
        let names = tests.split(separator: ",").map(String.init)
        for serverCount in try counts(servers, "servers") {
            let cloud = try BenchCloud.startLocal(nodes: serverCount, insecure: insecure)
            defer { cloud.child?.stop() }
            let probe = Client(nodes: cloud.addresses, configuration: cloud.configuration)
            try await BenchDBCommand.waitForMembership(client: probe, nodes: serverCount)
            await probe.shutdown()
            for clientCount in try counts(clients, "clients") {
                for name in names {
                    let result =
                        name == "encrypt"
                        ? await SeedExperiments.encrypt(
                            clients: clientCount, addresses: cloud.addresses, configuration: cloud.configuration,
                            image: image)
                        : await SeedExperiments.database(
                            clients: clientCount, addresses: cloud.addresses, configuration: cloud.configuration)
                    results.append(result)
                    csv += result.csvRow + "\n"
                    try Data(csv.utf8).write(to: URL(fileURLWithPath: csvPath), options: .atomic)
                    print(try ExperimentFormat.table.render([result]))
                }
            }
        }
        print("wrote \(csvPath)")
        if results.contains(where: { $0.failedTasks > 0 || $0.documentsOnEveryNode != $0.documentsAcknowledged }) {
            throw ExitCode(2)
        }
    }
}
