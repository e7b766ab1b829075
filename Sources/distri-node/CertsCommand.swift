import ArgumentParser
import Distri
import DistriCommandLine
import Foundation

/// `distri-node certs init|node|client`: the cluster's authority and the certificates it issues.
struct CertsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "certs",
        abstract: "Make the cluster's certificate authority, and certificates for nodes and clients.",
        discussion: """
            Files go to --dir (default: $DISTRI_HOME/certs, else ~/.distri/certs): ca.pem and ca.key for the \
            authority, NAME.pem and NAME.key for each certificate. Keys are written with mode 0600; keep \
            ca.key off the nodes. A node runs with `distri-node run --ca ca.pem --cert NAME.pem --key \
            NAME.key`; clients and peers need only ca.pem (--ca or $DISTRI_CA).
            """,
        subcommands: [Init.self, Node.self, ClientCertificate.self])

    struct Directory: ParsableArguments {
        @Option(name: .long, help: ArgumentHelp("Where the files go (default: ~/.distri/certs).", valueName: "dir"))
        var dir: String?

        var path: String { dir ?? TLSFiles.certificatesDirectory }

        func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

        func authority() throws -> ClusterCertificates.Issued {
            func read(_ name: String) throws -> String {
                guard let data = FileManager.default.contents(atPath: file(name)) else {
                    throw CommandFailure(
                        .notFound, "cannot read \(file(name))",
                        hint: "make the authority first with `distri-node certs init`")
                }
                return String(decoding: data, as: UTF8.self)
            }
            return ClusterCertificates.Issued(certificatePEM: try read("ca.pem"), keyPEM: try read("ca.key"))
        }

        /// Writes `issued` as NAME.pem (0644) and NAME.key (0600), refusing to replace them without `force`.
        func write(_ issued: ClusterCertificates.Issued, as name: String, force: Bool) throws {
            for suffix in [".pem", ".key"] where !force && FileManager.default.fileExists(atPath: file(name + suffix)) {
                throw CommandFailure(.refused, "\(file(name + suffix)) exists", hint: "pass --force to replace it")
            }
            try TLSFiles.write(issued.certificatePEM, to: file(name + ".pem"), public: true)
            try TLSFiles.write(issued.keyPEM, to: file(name + ".key"))
            print("\(file(name + ".pem"))\n\(file(name + ".key"))")
        }
    }

    struct Init: ParsableCommand {
        static let configuration = CommandConfiguration(abstract: "Make the cluster's certificate authority.")

        @OptionGroup var directory: Directory

        @Option(name: .long, help: "Days the authority is valid.")
        var days = 3650

        @Flag(name: .long, help: "Replace an existing authority (every certificate it issued stops working).")
        var force = false

        func run() throws {
            try directory.write(ClusterCertificates.makeAuthority(days: days), as: "ca", force: force)
        }
    }

    struct Node: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Issue a node's key pair and certificate; the name becomes the node's id.")

        @OptionGroup var directory: Directory

        @Option(name: .long, help: "The node's name (its id in the cluster).")
        var name: String

        @Option(name: .long, help: "Comma-separated IP addresses and host names the node is reached at.")
        var hosts = "127.0.0.1,localhost"

        @Flag(name: .long, help: "Replace existing files.")
        var force = false

        func run() throws {
            let issued = try ClusterCertificates.issue(
                name: name, role: .node, hosts: hosts.split(separator: ",").map(String.init),
                authority: try directory.authority())
            try directory.write(issued, as: name, force: force)
        }
    }

    struct ClientCertificate: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "client",
            abstract: "Issue a client certificate (public services only; clients may also connect without one).")

        @OptionGroup var directory: Directory

        @Option(name: .long, help: "The client's name.")
        var name: String

        @Flag(name: .long, help: "Replace existing files.")
        var force = false

        func run() throws {
            let issued = try ClusterCertificates.issue(
                name: name, role: .client, hosts: [], authority: try directory.authority())
            try directory.write(issued, as: name, force: force)
        }
    }
}
