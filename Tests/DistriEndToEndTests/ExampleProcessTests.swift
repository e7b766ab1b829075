import Distri
import DistriTestSupport
import Foundation
import Testing

/// `distri-bench example`, the original example program's interface, against real node processes.
@Suite(.serialized) struct ExampleProcessTests {
    /// Runs `distri-bench` with `arguments` to the end (at most 120 s).
    static func bench(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let result = try runBuilt("distri-bench", arguments, timeout: 120)
        return (result.status, result.output)
    }

    /// The CSV row of a `--csv` report, by column name.
    private static func row(_ csv: String) -> [String: String] {
        let lines = csv.split(separator: "\n").map { $0.split(separator: ",", omittingEmptySubsequences: false) }
        guard lines.count >= 2 else { return [:] }
        return Dictionary(uniqueKeysWithValues: zip(lines[0].map(String.init), lines[1].map(String.init)))
    }

    @Test("the original DB and Encrypt tests through `example --mode client`: 0 failed, every document on every node")
    func originalTests() async throws {
        try await withNodeProcesses(3) { nodes in
            let ips = nodes.map(\.address.description).joined(separator: ",")
            #expect(
                await poll(timeout: .seconds(30)) {
                    await membershipAgrees(observers: nodes.map(\.address), alive: Set(nodes.map(\.id)))
                })
            let db = try Self.bench([
                "example", "--mode", "client", "--test", "test-client-db", "--n", "40", "--ips", ips, "--ca",
                E2ETLS.caFile, "--csv",
            ])
            #expect(db.status == 0, "\(db.output)")
            let dbRow = Self.row(db.output)
            #expect(dbRow["failed_tasks"] == "0" && dbRow["tasks"] == "160")
            #expect(dbRow["documents_acknowledged"] == "40" && dbRow["documents_on_every_node"] == "40")

            let encrypt = try Self.bench([
                "example", "--mode", "client", "--test", "test-client-encrypt", "--n", "4", "--n-servers", "2",
                "--ips", ips, "--ca", E2ETLS.caFile, "--csv",
            ])
            #expect(encrypt.status == 0, "\(encrypt.output)")
            let encryptRow = Self.row(encrypt.output)
            #expect(encryptRow["failed_tasks"] == "0" && encryptRow["tasks"] == "40" && encryptRow["servers"] == "2")

            let report = try Self.bench([
                "example", "--mode", "client", "--report", "--ips", ips, "--ca", E2ETLS.caFile,
            ])
            #expect(report.status == 0)
            #expect(report.output.components(separatedBy: "Received response from").count - 1 == 3)
            #expect(report.output.components(separatedBy: "Server Stats:").count - 1 == 3, "every node answered")
            #expect(!report.output.contains("No response from"))
            #expect(report.output.contains("DB Data: example-db: 40 entries"))
        }
    }
}

extension ExampleProcessTests {
    @Test("`example --mode server` runs a node (here --insecure, on a free port) that `--mode client --report` reaches")
    func serverMode() async throws {
        let process = Process()
        process.executableURL = builtExecutable("distri-bench")
        process.arguments = ["example", "--mode", "server", "--ips", "127.0.0.1:0", "--insecure"]
        let output = Pipe()
        process.standardOutput = output
        process.standardError = FileHandle.nullDevice
        try process.run()
        defer { stopProcess(process) }
        let address = try listeningAddress(of: process, output: output, name: "the example server")
        let report = try Self.bench(["example", "--mode", "client", "--report", "--ips", address, "--insecure"])
        #expect(report.status == 0)
        #expect(report.output.contains("Received response from \(address): Server Stats:"))
    }
}
