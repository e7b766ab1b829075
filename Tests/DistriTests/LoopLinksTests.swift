import NIOPosix
import Testing

@testable import Distri

@Suite struct LoopLinksTests {
    @Test("each loop of the group gets its own client, on that loop, made once; other loops get none")
    func oneClientPerLoop() async throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: 2)
        let other = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        let template = Client(nodes: [NodeAddress(host: "127.0.0.1", port: 1)], group: group)
        var links = LoopLinks(group: group, template: template)
        let loops = Array(group.makeIterator())
        let madeFirst = links.client(on: loops[0])
        let madeSecond = links.client(on: loops[1])
        let first = try #require(madeFirst)
        let second = try #require(madeSecond)
        let again = links.client(on: loops[0])
        let foreign = links.client(on: other.next())
        let offLoop = links.client(on: nil)
        #expect(first.eventLoop === loops[0])
        #expect(second.eventLoop === loops[1])
        #expect(again === first, "made once")
        #expect(first.nodes == template.nodes)
        #expect(foreign == nil, "a loop of another group")
        #expect(offLoop == nil, "not on an event loop")
        #expect(links.clients.count == 2)
        for client in links.clients + [template] { await client.shutdown() }
        try await group.shutdownGracefully()
        try await other.shutdownGracefully()
    }
}
