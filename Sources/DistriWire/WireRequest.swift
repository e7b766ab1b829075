import NIOCore

/// Where a request may run.
public struct Routing: RawRepresentable, Hashable, Sendable, CustomStringConvertible {
    public let rawValue: UInt8
    public init(rawValue: UInt8) { self.rawValue = rawValue }

    /// The node asked elects the executor (itself or another node) by load.
    public static let elect = Routing(rawValue: 0)
    /// Run on the node asked: it was elected already (a forwarded task, or a client that located it).
    public static let local = Routing(rawValue: 1)
    /// A retry of a task that may have reached an executor already: before electing, the node asks
    /// the members whether one of them is running or has run this task id, and sends it there.
    public static let electRetry = Routing(rawValue: 2)

    /// The routing byte's bit that says a trace context follows the task id (docs/wire-format.md);
    /// not a routing of its own: ``WireRequest`` sets and clears it.
    static let tracedBit: UInt8 = 0x80

    public var description: String {
        switch self {
        case .elect: "elect"
        case .local: "local"
        case .electRetry: "electRetry"
        default: "routing(\(rawValue))"
        }
    }
}

/// The payload of a request message: which service to run, its parameters, the caller's remaining
/// time budget and the input bytes.
public struct WireRequest: Sendable, Equatable {
    /// Longest service name accepted.
    public static let maxServiceNameLength = 255
    /// Most parameters accepted.
    public static let maxParams = 1024

    /// The name of the service to run.
    public var service: String
    /// Its parameters, in order.
    public var params: [String]
    /// Milliseconds the caller will wait, counted from when the node receives the request; 0 = no limit.
    public var deadlineMillis: UInt32
    /// Where the request may run.
    public var routing: Routing
    /// The caller's id for the task, the same on every retry; 0 = none (no deduplication).
    public var taskID: UInt64
    /// The caller's trace context; empty for an untraced request (nothing on the wire).
    public var traceFields = TraceFields()
    /// The input bytes.
    public var data: ByteBuffer

    /// A request with the given fields.
    public init(
        service: String, params: [String] = [], deadlineMillis: UInt32 = 0, routing: Routing = .elect,
        taskID: UInt64 = 0, data: ByteBuffer
    ) {
        self.service = service
        self.params = params
        self.deadlineMillis = deadlineMillis
        self.routing = routing
        self.taskID = taskID
        self.data = data
    }

    /// Bytes this request occupies on the wire, before framing.
    public var encodedSize: Int {
        4 + 1 + 8 + (traceFields.isEmpty ? 0 : traceFields.encodedSize) + 2 + service.utf8.count + 2
            + params.reduce(0) { $0 + 4 + $1.utf8.count }
            + data.readableBytes
    }

    /// Encodes the request as a message payload.
    public func encode(allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: encodedSize)
        out.writeInteger(deadlineMillis)
        out.writeInteger(traceFields.isEmpty ? routing.rawValue : routing.rawValue | Routing.tracedBit)
        out.writeInteger(taskID)
        if !traceFields.isEmpty { traceFields.encode(into: &out) }
        out.writeInteger(UInt16(truncatingIfNeeded: service.utf8.count))
        out.writeString(service)
        out.writeInteger(UInt16(truncatingIfNeeded: params.count))
        for param in params {
            out.writeInteger(UInt32(truncatingIfNeeded: param.utf8.count))
            out.writeString(param)
        }
        out.writeImmutableBuffer(data)
        return out
    }

    /// Decodes a request payload; the data is a slice of `payload`, not a copy.
    public static func decode(_ payload: ByteBuffer) throws(WireError) -> WireRequest {
        var buffer = payload
        guard let deadline = buffer.readInteger(as: UInt32.self),
            let routing = buffer.readInteger(as: UInt8.self),
            let taskID = buffer.readInteger(as: UInt64.self)
        else { throw .malformedMessage("request shorter than its fixed fields") }
        let traceFields = routing & Routing.tracedBit == 0 ? TraceFields() : try TraceFields.decode(from: &buffer)
        guard let nameLength = buffer.readInteger(as: UInt16.self) else {
            throw .malformedMessage("request shorter than its fixed fields")
        }
        guard Int(nameLength) <= maxServiceNameLength, nameLength > 0 else {
            throw .malformedMessage(
                "service name length \(nameLength) outside 1...\(maxServiceNameLength)")
        }
        guard let name = (try? buffer.readUTF8ValidatedString(length: Int(nameLength))) ?? nil else {
            throw .malformedMessage("service name is not \(nameLength) bytes of UTF-8")
        }
        guard let count = buffer.readInteger(as: UInt16.self) else {
            throw .malformedMessage("missing parameter count")
        }
        guard Int(count) <= maxParams else {
            throw .malformedMessage("\(count) parameters (limit \(maxParams))")
        }
        var params: [String] = []
        params.reserveCapacity(Int(count))
        for index in 0..<Int(count) {
            guard let length = buffer.readInteger(as: UInt32.self), Int(length) <= buffer.readableBytes,
                let value = (try? buffer.readUTF8ValidatedString(length: Int(length))) ?? nil
            else { throw .malformedMessage("parameter \(index) is truncated or not UTF-8") }
            params.append(value)
        }
        var request = WireRequest(
            service: name, params: params, deadlineMillis: deadline,
            routing: Routing(rawValue: routing & ~Routing.tracedBit), taskID: taskID, data: buffer)
        request.traceFields = traceFields
        return request
    }
}

/// The payload of an error message.
public struct WireErrorReply: Sendable, Equatable, Error, CustomStringConvertible {
    /// The error's code.
    public var code: ErrorCode
    /// Its message, for people.
    public var message: String

    /// An error reply of `code` with `message`.
    public init(code: ErrorCode, message: String) {
        self.code = code
        self.message = message
    }

    /// The payload's binary form.
    public func encode(allocator: ByteBufferAllocator) -> ByteBuffer {
        var out = allocator.buffer(capacity: 2 + message.utf8.count)
        out.writeInteger(code.rawValue)
        out.writeString(message)
        return out
    }

    /// Decodes an error message's payload.
    public static func decode(_ payload: ByteBuffer) throws(WireError) -> WireErrorReply {
        var buffer = payload
        guard let code = buffer.readInteger(as: UInt16.self) else {
            throw .malformedMessage("error reply without a code")
        }
        guard let message = (try? buffer.readUTF8ValidatedString(length: buffer.readableBytes)) ?? nil
        else {
            throw .malformedMessage("error message is not UTF-8")
        }
        return WireErrorReply(code: ErrorCode(rawValue: code), message: message)
    }

    public var description: String { "\(code): \(message)" }
}
