import DistriCommandLine
import DistriIdentity
import DistriImaging
import DistriPeer
import Foundation
import Testing

@Suite("Peer home: identity files and where things are")
struct PeerHomeTests {
    @Test func initCreatesPrivateFilesAndRefusesOverwrite() async throws {
        try await withTemporaryDirectory { directory in
            let home = PeerHome(path: directory + "/alice")
            let identity = try PeerIdentity.create(name: "alice", home: home)
            #expect(SecureFiles.mode(home.path) == 0o700)
            #expect(SecureFiles.mode(home.imagesDirectory) == 0o700)
            #expect(SecureFiles.mode(home.keysDirectory) == 0o700)
            for file in [home.recordFile, home.signingKeyFile, home.agreementKeyFile] {
                #expect(SecureFiles.mode(file) == 0o600, "\(file)")
            }
            let loaded = try PeerIdentity.load(from: home)
            #expect(loaded.name == "alice")
            #expect(loaded.signing.publicKey == identity.signing.publicKey)
            #expect(loaded.agreement.publicKey == identity.agreement.publicKey)

            #expect(throws: PeerError.self) { try PeerIdentity.create(name: "alice", home: home) }
            let replaced = try PeerIdentity.create(name: "alice", home: home, force: true)
            #expect(replaced.signing.publicKey != identity.signing.publicKey)

            // A key others may read is refused, as ssh does.
            chmod(home.signingKeyFile, 0o644)
            #expect(throws: PeerError.self) { try PeerIdentity.load(from: home) }
            #expect(throws: (any Error).self) {
                try PeerIdentity.create(name: "../x", home: PeerHome(path: directory + "/x"))
            }
        }
    }

    @Test func homeAndCloudResolution() async throws {
        try await withTemporaryDirectory { directory in
            let env = ["HOME": directory, "DISTRI_PEER_HOME": directory + "/env-home"]
            #expect(
                try PeerHome.resolve(flag: directory + "/flag", name: "a", environment: env).path == directory + "/flag"
            )
            #expect(try PeerHome.resolve(flag: nil, name: "a", environment: env).path == directory + "/env-home")
            let plain = ["HOME": directory]
            #expect(
                try PeerHome.resolve(flag: nil, name: "bob", environment: plain).path == directory
                    + "/.distri/peers/bob")
            #expect(throws: PeerError.self) { try PeerHome.resolve(flag: nil, name: nil, environment: plain) }
            _ = try PeerIdentity.create(name: "bob", home: PeerHome(path: directory + "/.distri/peers/bob"))
            #expect(
                try PeerHome.resolve(flag: nil, name: nil, environment: plain).path == directory + "/.distri/peers/bob")

            #expect(throws: CloudLocatorError.self) { try CloudLocator.resolve(flag: nil, environment: plain) }
            try Data("127.0.0.1:7000,127.0.0.1:7001\n".utf8).write(
                to: URL(fileURLWithPath: directory + "/.distri/cloud"))
            #expect(try CloudLocator.resolve(flag: nil, environment: plain).map(\.port) == [7000, 7001])
            #expect(
                try CloudLocator.resolve(flag: nil, environment: plain.merging(["DISTRI_CLOUD": "h:1"]) { $1 }).map(
                    \.port) == [1])
            #expect(try CloudLocator.resolve(flag: "h:2", environment: plain).map(\.port) == [2])
            #expect(
                try CloudLocator.locate(flag: nil, environment: plain).source
                    == "the cloud file \(directory)/.distri/cloud")
            #expect(
                try CloudLocator.locate(flag: nil, environment: plain.merging(["DISTRI_CLOUD": "h:1"]) { $1 }).source
                    == "$DISTRI_CLOUD")
            #expect(throws: CloudLocatorError.self) { try CloudLocator.resolve(flag: "nonsense", environment: plain) }
        }
    }

    @Test func lockedReadModifyWritesDoNotLoseUpdates() async throws {
        try await withTemporaryDirectory { directory in
            let counter = directory + "/counter"
            try SecureFiles.write(Array("0".utf8), to: counter)
            await withTaskGroup(of: Void.self) { group in
                for _ in 0..<8 {
                    group.addTask {
                        for _ in 0..<10 {
                            try? SecureFiles.withLock(counter + ".lock") {
                                let text = String(decoding: try SecureFiles.read(counter), as: UTF8.self)
                                try SecureFiles.write(Array(String((Int(text) ?? 0) + 1).utf8), to: counter)
                            }
                        }
                    }
                }
            }
            #expect(String(decoding: try SecureFiles.read(counter), as: UTF8.self) == "80")
            #expect(SecureFiles.mode(counter + ".lock") == 0o600)
        }
    }
}

@Suite("Showing an image in the terminal") struct TerminalImageTests {
    @Test("two pixel rows per line, the top as foreground, the bottom as background, scaled to fit")
    func halfBlocks() {
        // 8 x 4: the top two rows red, the bottom two blue.
        var pixels: [UInt8] = []
        for row in 0..<4 {
            for _ in 0..<8 { pixels += row < 2 ? [255, 0, 0, 255] : [0, 0, 255, 255] }
        }
        let text = TerminalImage.render(RGBAImage(width: 8, height: 4, pixels: pixels), columns: 4)
        let lines = text.split(separator: "\n")
        #expect(lines.count == 1, "4 pixel rows scaled by 2 are 2 rows: one line")
        #expect(lines[0].components(separatedBy: "\u{2580}").count - 1 == 4)
        #expect(lines[0].contains("\u{1B}[38;2;255;0;0m\u{1B}[48;2;0;0;255m"))
    }
}
