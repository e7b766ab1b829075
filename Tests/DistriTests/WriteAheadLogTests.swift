import DistriCore
import DistriTestSupport
import Foundation
import Testing

@testable import Distri

@Suite struct WriteAheadLogTests {
    /// Runs `body` with a fresh temporary directory, removed afterwards.
    private func withTemporaryDirectory(_ body: (String) throws -> Void) throws {
        let directory = TemporaryDirectory("wal-test")
        defer { directory.remove() }
        try body(directory.path)
    }

    private func fileBytes(_ path: String) throws -> [UInt8] {
        [UInt8](try #require(FileManager.default.contents(atPath: path)))
    }

    private func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        try Data(bytes).write(to: URL(fileURLWithPath: path))
    }

    /// Record `index`'s payload offset in a log holding `records`.
    private func payloadOffset(of index: Int, in records: [[UInt8]]) -> Int {
        8 + records.prefix(index).reduce(0) { $0 + 8 + $1.count } + 8
    }

    private let sample: [[UInt8]] = [
        Array("first".utf8), [], Array("third record".utf8), (0..<1000).map { UInt8($0 % 251) },
    ]

    /// A record another version wrote (a tag this one does not know) is intact: dropping it and the
    /// records after it would lose acknowledged writes, so the replica refuses to open the log.
    @Test("an intact log record this version cannot read stops the replica from starting, and nothing is cut")
    func unreadableIntactRecord() throws {
        try withTemporaryDirectory { directory in
            let change = PersistedEntry.change(
                sequence: 1,
                .collection(name: "c", created: HLCTimestamp(millis: 1, counter: 0, node: "n1"), dropped: nil))
            let records = [ReplicaCodec.encode(change), [1, 9, 0], ReplicaCodec.encode(change)]
            let log = try WriteAheadLog(directory: directory)
            try log.append(records)
            log.close()
            let path = (directory as NSString).appendingPathComponent("replica.wal")
            let before = try fileBytes(path)
            #expect(throws: StorageError.self) { _ = try DurableLog.open(directory: directory) }
            #expect(try fileBytes(path) == before, "the log was changed")
        }
    }

    @Test("CRC-32C matches the standard check value")
    func crcCheckValue() {
        #expect(CRC32C.update(0, Array("123456789".utf8)) == 0xE306_9283)
        #expect(CRC32C.update(0, [UInt8]()) == 0)
        let data = (0..<100).map { UInt8($0) }
        #expect(CRC32C.update(CRC32C.update(0, data[..<37]), data[37...]) == CRC32C.update(0, data))
    }

    @Test("appended records come back in order after reopening")
    func appendReopenRecover() throws {
        try withTemporaryDirectory { directory in
            let big = (0..<(1 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let records: [[UInt8]] = [Array("a".utf8), [], big, Array("last".utf8)]
            do {
                let log = try WriteAheadLog(directory: directory + "/nested/dir")
                #expect(try log.recover() == ([], 0))
                try log.append(Array(records[..<2]))
                try log.append(Array(records[2...]))
                try log.append([])
                #expect(log.sizeBytes == 8 + records.reduce(0) { $0 + 8 + $1.count })
            }
            let log = try WriteAheadLog(directory: directory + "/nested/dir")
            let (recovered, truncated) = try log.recover()
            #expect(recovered == records)
            #expect(truncated == 0)
        }
    }

    @Test("a torn tail is cut, earlier records survive, and appending continues")
    func tornTail() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/replica.wal"
            try WriteAheadLog(directory: directory).append(sample)
            let fullSize = try fileBytes(path).count
            #expect(truncate(path, off_t(fullSize - 3)) == 0)

            let log = try WriteAheadLog(directory: directory)
            let (recovered, truncated) = try log.recover()
            #expect(recovered == Array(sample.dropLast()))
            #expect(truncated == 8 + sample.last!.count - 3)
            #expect(try fileBytes(path).count == fullSize - 8 - sample.last!.count)
            try log.append([Array("after".utf8)])
            log.close()

            let reopened = try WriteAheadLog(directory: directory)
            #expect(try reopened.recover() == (Array(sample.dropLast()) + [Array("after".utf8)], 0))
        }
    }

    @Test("appending without recover first still cuts a torn tail, so new records are not lost")
    func appendWithoutRecover() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/replica.wal"
            try WriteAheadLog(directory: directory).append(sample)
            #expect(truncate(path, off_t(try fileBytes(path).count - 1)) == 0)
            try WriteAheadLog(directory: directory).append([[42]])
            let (recovered, truncated) = try WriteAheadLog(directory: directory).recover()
            #expect(recovered == Array(sample.dropLast()) + [[42]])
            #expect(truncated == 0)
        }
    }

    @Test("a zero-filled tail is not mistaken for empty records")
    func zeroTail() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/replica.wal"
            try WriteAheadLog(directory: directory).append(sample)
            try writeFile(path, try fileBytes(path) + [UInt8](repeating: 0, count: 4096))
            let (recovered, truncated) = try WriteAheadLog(directory: directory).recover()
            #expect(recovered == sample)
            #expect(truncated == 4096)
        }
    }

    @Test("a flipped byte in the last record drops that record only")
    func corruptLastRecord() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/replica.wal"
            try WriteAheadLog(directory: directory).append(sample)
            var bytes = try fileBytes(path)
            bytes[payloadOffset(of: sample.count - 1, in: sample) + 500] ^= 0x01
            try writeFile(path, bytes)

            let (recovered, truncated) = try WriteAheadLog(directory: directory).recover()
            #expect(recovered == Array(sample.dropLast()))
            #expect(truncated == 8 + sample.last!.count)
        }
    }

    @Test("a flipped byte in a middle record cuts it and everything after (the log is a prefix)")
    func corruptMiddleRecord() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/replica.wal"
            try WriteAheadLog(directory: directory).append(sample)
            var bytes = try fileBytes(path)
            bytes[payloadOffset(of: 2, in: sample) + 3] ^= 0x80
            try writeFile(path, bytes)

            let log = try WriteAheadLog(directory: directory)
            let (recovered, truncated) = try log.recover()
            #expect(recovered == Array(sample.prefix(2)))
            #expect(truncated == sample.suffix(2).reduce(0) { $0 + 8 + $1.count })
            #expect(log.sizeBytes == payloadOffset(of: 2, in: sample) - 8)
        }
    }

    @Test("a corrupt length field (over the limit) is treated as corruption")
    func corruptLength() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/replica.wal"
            try WriteAheadLog(directory: directory).append(sample)
            var bytes = try fileBytes(path)
            bytes[payloadOffset(of: 1, in: sample) - 8 + 3] = 0xFF
            try writeFile(path, bytes)
            #expect(try WriteAheadLog(directory: directory).recover().records == Array(sample.prefix(1)))
        }
    }

    @Test("replace(with:) swaps in exactly the new records")
    func replace() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory, name: "snap.wal")
            try log.append(sample)
            let snapshot: [[UInt8]] = [Array("snapshot".utf8), []]
            try log.replace(with: snapshot)
            #expect(try log.recover() == (snapshot, 0))
            try log.append([[7]])
            log.close()

            let reopened = try WriteAheadLog(directory: directory, name: "snap.wal")
            #expect(try reopened.recover() == (snapshot + [[7]], 0))
            try reopened.replace(with: [])
            #expect(try reopened.recover() == ([], 0))
            #expect(reopened.sizeBytes == 8)
            let names = try FileManager.default.contentsOfDirectory(atPath: directory)
            #expect(names == ["snap.wal"])
        }
    }

    @Test("a wrong file header is an error naming the file")
    func wrongHeader() throws {
        try withTemporaryDirectory { directory in
            let path = directory + "/replica.wal"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try writeFile(path, Array("NOTAWAL!and more bytes".utf8))
            let error = #expect(throws: StorageError.self) { try WriteAheadLog(directory: directory) }
            #expect(error?.description.contains(path) == true)

            try writeFile(path, Array("XYZ".utf8))
            #expect(throws: StorageError.self) { try WriteAheadLog(directory: directory) }
        }
    }

    @Test("a header cut short while the file was created is completed")
    func partialHeader() throws {
        try withTemporaryDirectory { directory in
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            try writeFile(directory + "/replica.wal", Array("DSTR".utf8))
            let log = try WriteAheadLog(directory: directory)
            #expect(try log.recover() == ([], 0))
            try log.append([[1, 2, 3]])
            #expect(try log.recover() == ([[1, 2, 3]], 0))
        }
    }

    @Test("oversized records are refused, a second opener is refused, and a closed log throws")
    func misuse() throws {
        try withTemporaryDirectory { directory in
            let log = try WriteAheadLog(directory: directory)
            let tooLong = [UInt8](repeating: 0, count: WriteAheadLog.maxRecordLength + 1)
            #expect(throws: StorageError.self) { try log.append([[1], tooLong]) }
            #expect(throws: StorageError.self) { try WriteAheadLog(directory: directory) }
            try log.append([[1]])
            #expect(try log.recover() == ([[1]], 0))

            log.close()
            #expect(throws: StorageError.self) { try log.append([[2]]) }
            #expect(throws: StorageError.self) { try log.recover() }
            #expect(throws: StorageError.self) { try log.replace(with: []) }
            #expect(try WriteAheadLog(directory: directory).recover() == ([[1]], 0))
        }
    }
}
