import NIOCore

/// The default aphorism table of zend (spec section 1), as ready-made buffers.
let zenTable: [ByteBuffer: ByteBuffer] = [
    ByteBuffer(string: "Beautiful is better than?"): ByteBuffer(string: "Ugly."),
    ByteBuffer(string: "Explicit is better than?"): ByteBuffer(string: "Implicit."),
    ByteBuffer(string: "Simple is better than?"): ByteBuffer(string: "Complex."),
]
let zenUnknown = ByteBuffer(string: "Error: unknown aphorism.")
let zenTooLong = ByteBuffer(string: "Error: request too long.")

/// Longest request accepted without a '?' (zend's default).
let zenMaxRequest = 4096

enum ZenFrame {
    case request(ByteBuffer)
    case tooLong
}

/// Frames the byte stream at each '?': a request is every byte since the end of
/// the previous request up to and including the next '?'. ASCII whitespace
/// (space, tab, CR, LF) before a request is skipped.
struct ZenDecoder: ByteToMessageDecoder {
    typealias InboundOut = ZenFrame
    private var failed = false

    mutating func decode(context: ChannelHandlerContext, buffer: inout ByteBuffer) throws -> DecodingState {
        if failed {
            buffer.moveReaderIndex(to: buffer.writerIndex)
            return .needMoreData
        }
        // Skip leading whitespace.
        let skip = buffer.withUnsafeReadableBytes { bytes -> Int in
            var i = 0
            while i < bytes.count {
                switch bytes[i] {
                case 0x20, 0x09, 0x0D, 0x0A: i += 1
                default: return i
                }
            }
            return i
        }
        if skip > 0 { buffer.moveReaderIndex(forwardBy: skip) }
        if buffer.readableBytes == 0 { return .needMoreData }

        let end = buffer.withUnsafeReadableBytes { bytes -> Int? in
            bytes.firstIndex(of: UInt8(ascii: "?"))
        }
        guard let end else {
            if buffer.readableBytes > zenMaxRequest {
                failed = true
                buffer.moveReaderIndex(to: buffer.writerIndex)
                context.fireChannelRead(self.wrapInboundOut(.tooLong))
            }
            return .needMoreData
        }
        let request = buffer.readSlice(length: end + 1)!
        context.fireChannelRead(self.wrapInboundOut(.request(request)))
        return .continue
    }

    mutating func decodeLast(context: ChannelHandlerContext, buffer: inout ByteBuffer, seenEOF: Bool) throws -> DecodingState {
        // Complete requests still buffered are answered; a trailing partial
        // request (no '?') is dropped.
        while try decode(context: context, buffer: &buffer) == .continue {}
        buffer.moveReaderIndex(to: buffer.writerIndex)
        return .needMoreData
    }
}

/// Writes each answer as its request is decoded and flushes once per read batch.
final class ZenHandler: ChannelInboundHandler {
    typealias InboundIn = ZenFrame
    typealias OutboundOut = ByteBuffer

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch self.unwrapInboundIn(data) {
        case .request(let key):
            context.write(self.wrapOutboundOut(zenTable[key] ?? zenUnknown), promise: nil)
        case .tooLong:
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(zenTooLong)).whenComplete { _ in
                channel.close(promise: nil)
            }
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        context.flush()
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let event = event as? ChannelEvent, event == .inputClosed {
            // Half-close: send every answer still owed, then close.
            let channel = context.channel
            context.writeAndFlush(self.wrapOutboundOut(ByteBuffer())).whenComplete { _ in
                channel.close(promise: nil)
            }
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        context.close(promise: nil)
    }
}
