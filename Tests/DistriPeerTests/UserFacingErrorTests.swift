import Distri
import DistriCommandLine
import Testing

@Suite("Errors a person can act on: one mapping to a sentence, a hint and an exit code")
struct UserFacingErrorTests {
    @Test("a refused connection names the address and says nothing listens; no library type names")
    func unreachable() {
        let error = ClientError(
            .connectFailed, node: NodeAddress(host: "127.0.0.1", port: 1),
            message:
                "NIOPosix.NIOConnectionError(host: \"127.0.0.1\", port: 1, dnsAAAAError: nil, dnsAError: nil, connectionErrors: [NIOPosix.SingleConnectionFailure(target: [IPv4]127.0.0.1/127.0.0.1:1, error: connection reset (error set): Connection refused (errno: 111))])"
        )
        let mapped = UserFacingError(error, arguments: [])
        #expect(mapped.category == .unreachable && mapped.category.exitCode == 69)
        #expect(mapped.message == "cannot reach 127.0.0.1:1: nothing listens there")
        #expect(mapped.hint?.contains("--cloud") == true)
        #expect(!mapped.message.contains("NIO") && mapped.detail.contains("SingleConnectionFailure"))
    }

    @Test("TLS: --insecure against TLS, plain against TLS, another CA: each says what to change")
    func tls() {
        let node = NodeAddress(host: "10.0.0.1", port: 7000)
        let insecure = UserFacingError(
            ClientError(.protocolViolation, node: node, message: "frame header (7 bytes pending)"),
            arguments: ["distri-peer", "list", "peers", "--insecure"])
        #expect(insecure.category == .tls && insecure.hint?.contains("drop --insecure") == true)
        let plain = UserFacingError(
            ClientError(.connectionLost, node: node, message: "handshake: WRONG_VERSION_NUMBER at /x/.build/y.cc:127"),
            arguments: [])
        #expect(plain.message == "the cloud at 10.0.0.1:7000 does not speak TLS")
        let otherCA = UserFacingError(
            ClientError(.connectFailed, node: node, message: "handshakeFailed(CERTIFICATE_VERIFY_FAILED)"),
            arguments: [])
        #expect(otherCA.hint?.contains("--ca") == true && !otherCA.message.contains(".build"))
    }

    @Test("the cloud's refusals keep its words; codes map to refused, not found, busy; JSON has code, message, hint")
    func remote() {
        let full = UserFacingError(
            ClientError(.remote, node: nil, remoteCode: .quotaExceeded, message: "bob's mailbox is full"), arguments: []
        )
        #expect(full.category == .refused && full.message == "bob's mailbox is full" && full.category.exitCode == 77)
        let missing = UserFacingError(
            ClientError(.remote, node: nil, remoteCode: .notFound, message: "no such document"), arguments: [])
        #expect(missing.category == .notFound && missing.category.exitCode == 66)
        #expect(
            UserFacingError(ClientError(.remote, node: nil, remoteCode: .busy, message: "busy"), arguments: []).category
                == .busy)
        #expect(full.json.jsonText == #"{"error":{"code":"refused","message":"bob's mailbox is full"}}"#)
    }

    @Test("nested failures in a longer message (the outbox's reasons) read as words, without build paths")
    func readable() {
        let nested =
            "'bob' could not be reached (direct: 10.0.0.2:7100: connectFailed at 10.0.0.2:7100: NIOPosix.NIOConnectionError(host: x); relay: TLS WRONG_VERSION_NUMBER at /work/x/.build/checkouts/a.cc:127)"
        let text = UserFacingError.readable(nested)
        #expect(text.contains("cannot connect to 10.0.0.2:7100"))
        #expect(!text.contains("NIOPosix") && !text.contains(".build"), "\(text)")
    }
}
