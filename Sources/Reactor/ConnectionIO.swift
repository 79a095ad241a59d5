import Glibc
import LinuxIO
import LogEvents
import Logging
import ZenProtocol

/// Serving one connection: the edge-triggered rules in one place.
///
/// Read until `EAGAIN`, a short read (the socket is drained: the next edge says when
/// there is more, so no read is spent just to see `EAGAIN`) or the read budget; answer
/// every complete request; write at once, and arm `EPOLLOUT` only once the kernel's
/// buffer is full.
extension Reactor {
    /// Answers, writes and reads for one connection until it would block, its read
    /// budget is spent (then it goes on the ready list) or it is closed.
    mutating func drive(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        var reads = 0
        while true {
            var state = connection.pointee.state
            if state.contains(.lingering) {
                discardInput(slot)
                return
            }
            if connection.pointee.input.count > 0, state.isDisjoint(with: [.paused, .closing]) {
                answer(slot)
                state = connection.pointee.state
            }
            if connection.pointee.output.count > 0, state.contains(.writable) {
                guard flush(slot) else { return }
                state = connection.pointee.state
            }
            if state.contains(.closing) {
                if connection.pointee.output.count == 0 { startLingering(slot) }
                return
            }
            if state.contains(.paused) {
                guard connection.pointee.output.count <= sendLowWater else { return }
                connection.pointee.state.remove(.paused)
                continue
            }
            if state.contains(.endOfInput) || !state.contains(.readable) { break }
            if reads == configuration.readBudget {
                enqueue(slot)
                return
            }
            guard read(slot) else { return }
            reads += 1
        }
        if connection.pointee.state.contains(.endOfInput), connection.pointee.output.count == 0 {
            finishAtEndOfInput(slot)
        }
    }

    /// Reads once into the receive buffer; false if the connection was closed.
    @inline(__always)
    private mutating func read(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        let space = connection.pointee.input.reserve(from: &receivePool, minimumSpace: Self.minimumReadSpace)
        let result: IOResult<Int>
        do {
            result = try connection.pointee.fd.read(into: space)
        } catch {
            close(slot, reason: .readFailed, error: error)
            return false
        }
        switch result {
        case .wouldBlock:
            connection.pointee.state.remove(.readable)
        case .processed(0):
            connection.pointee.state.remove(.readable)
            connection.pointee.state.insert(.endOfInput)
        case .processed(let count):
            connection.pointee.input.commit(count)
            connection.pointee.bytesReceived &+= UInt64(count)
            table.touch(slot, .idle, now: now)
            if count < space.count {
                // A short read drained the socket. If the peer already shut its side,
                // nothing more will ever come.
                connection.pointee.state.remove(.readable)
                if connection.pointee.state.contains(.peerClosed) {
                    connection.pointee.state.insert(.endOfInput)
                }
            }
        }
        connection.pointee.input.releaseIfEmpty(to: &receivePool)
        return true
    }

    /// Frames and answers buffered requests into the send buffer.
    @inline(__always)
    private mutating func answer(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        let space = connection.pointee.output.reserve(from: &sendPool, minimumSpace: sendPool.bufferSize)
        let result = service.serve(connection.pointee.input.bytes, into: space)
        connection.pointee.input.consume(result.consumed)
        connection.pointee.output.commit(result.produced)
        if result.requests > 0 {
            connection.pointee.requests &+= UInt64(result.requests)
            requestsServed &+= UInt64(result.requests)
        }
        switch result.stop {
        case .needInput:
            break
        case .outputFull:
            connection.pointee.state.insert(.paused)
        case .requestTooLong:
            connection.pointee.state.insert(.closing)
            logger.warning("request too long; answering with an error and closing", metadata: [
                LifecycleEvent.metadataKey: .string(LifecycleEvent.clientError.rawValue),
                "client_address": "\(connection.pointee.peer)",
                "connection_id": "\(connection.pointee.id)",
                "max_request_bytes": "\(service.maxRequestBytes)",
            ])
        }
        connection.pointee.input.releaseIfEmpty(to: &receivePool)
        connection.pointee.output.releaseIfEmpty(to: &sendPool)
    }

    /// Writes unsent answers; false if the connection was closed.
    @inline(__always)
    private mutating func flush(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        while connection.pointee.output.count > 0 {
            let result: IOResult<Int>
            do {
                result = try connection.pointee.fd.send(connection.pointee.output.bytes)
            } catch {
                close(slot, reason: .sendFailed, error: error)
                return false
            }
            switch result {
            case .processed(let sent):
                let wanted = connection.pointee.output.count
                connection.pointee.output.consume(sent)
                connection.pointee.bytesSent &+= UInt64(sent)
                table.touch(slot, .idle, now: now)
                // A short write: the socket buffer is full, as an EAGAIN would say.
                if sent < wanted { return waitForOutput(slot) }
            case .wouldBlock:
                return waitForOutput(slot)
            }
        }
        connection.pointee.output.releaseIfEmpty(to: &sendPool)
        return true
    }

    /// The kernel's send buffer is full: wait for the output edge, arming `EPOLLOUT` the
    /// first time (connections that never fill it never pay for the `epoll_ctl`).
    /// False if the connection was closed.
    private mutating func waitForOutput(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        connection.pointee.state.remove(.writable)
        guard !connection.pointee.state.contains(.outputArmed) else { return true }
        connection.pointee.state.insert(.outputArmed)
        do {
            try poller.modify(connection.pointee.fd, events: [.input, .output, .readHangup, .edgeTriggered],
                              data: Token.connection(slot, connection.pointee.generation))
            return true
        } catch {
            close(slot, reason: .epollFailed, error: error)
            return false
        }
    }

    /// Puts a connection on the ready list, to be served after the others.
    mutating func enqueue(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        guard !connection.pointee.state.contains(.queued) else { return }
        connection.pointee.state.insert(.queued)
        ready.append(Token.connection(slot, connection.pointee.generation))
    }

    /// The peer shut its side and every answer went out: report a partial request, close.
    private mutating func finishAtEndOfInput(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        let partial = connection.pointee.input.count
        if partial > 0 {
            logger.warning("client sent a partial request but then closed", metadata: [
                LifecycleEvent.metadataKey: .string(LifecycleEvent.clientError.rawValue),
                "client_address": "\(connection.pointee.peer)",
                "connection_id": "\(connection.pointee.id)",
                "pending_bytes": "\(partial)",
            ])
        }
        close(slot, reason: .clientClosed)
    }

    /// The error answer is out: shut the write side (the client reads EOF after it) and
    /// discard input for a while, so unread input does not make `close` send a reset.
    private mutating func startLingering(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        guard (try? connection.pointee.fd.shutdown(Int32(SHUT_WR))) != nil,
              !connection.pointee.state.contains(.endOfInput) else {
            close(slot, reason: .requestTooLong)
            return
        }
        connection.pointee.state.remove(.closing)
        connection.pointee.state.insert(.lingering)
        connection.pointee.input.release(to: &receivePool)
        table.touch(slot, .linger, now: now)
        discardInput(slot)
    }

    /// Reads and drops what a lingering client still sends, a budget at a time.
    private mutating func discardInput(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        for _ in 0 ..< configuration.readBudget {
            guard connection.pointee.state.contains(.readable) else { return }
            switch try? connection.pointee.fd.read(into: discardBuffer) {
            case .processed(let count) where count > 0:
                connection.pointee.bytesReceived &+= UInt64(count)
                if count < discardBuffer.count { connection.pointee.state.remove(.readable) }
            case .wouldBlock:
                connection.pointee.state.remove(.readable)
            default:
                close(slot, reason: .requestTooLong)
                return
            }
        }
        enqueue(slot)
    }
}
