import Glibc
import LinuxIO
import LogEvents
import Logging
import ZenProtocol

/// Serving one connection: the edge-triggered rules in one place.
///
/// Read until `EAGAIN`, a short read (the socket is drained: the next edge says when
/// there is more, so no read is spent just to see `EAGAIN`) or the turn's budget of work;
/// answer every complete request; write at once, and arm `EPOLLOUT` only once the
/// kernel's buffer is full.
extension Reactor {
    /// Answers, writes and reads for one connection until it would block, its read
    /// budget is spent (then it goes on the ready list) or it is closed.
    mutating func drive(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        turnWork = 0
        // The buffered input holds only part of a request: serving it again before
        // more bytes arrive would find nothing.
        var answered = false
        while true {
            if turnWork >= configuration.turnBudget {
                enqueue(slot)
                return
            }
            var state = connection.pointee.state
            // One test for both rare states, so the common path pays nothing for PROXY.
            if !state.isDisjoint(with: [.lingering, .awaitingProxyHeader]) {
                if state.contains(.lingering) {
                    discardInput(slot)
                    return
                }
                guard readProxyHeader(slot) else { return }
                continue
            }
            if !answered, connection.pointee.input.count > 0, state.isDisjoint(with: [.paused, .closing]) {
                guard answer(slot) else { return }
                answered = true
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
                answered = false
                continue
            }
            // Answering can stop at the budget with requests left: they must not wait for
            // an edge that may never come.
            if turnWork >= configuration.turnBudget, state.contains(.readable) || connection.pointee.input.count > 0 {
                enqueue(slot)
                return
            }
            if state.contains(.endOfInput) || !state.contains(.readable) { break }
            if connection.pointee.input.count == 0, connection.pointee.output.count == 0 {
                guard readAndAnswer(slot) else { return }
                answered = true
                // The common end of a turn: the read came up short and everything is
                // answered and sent (or waits for an output edge). Nothing else to do.
                if connection.pointee.state.isDisjoint(with: [.readable, .endOfInput, .closing, .paused]),
                   turnWork < configuration.turnBudget { return }
            } else {
                guard read(slot) else { return }
                answered = false
            }
        }
        if connection.pointee.state.contains(.endOfInput), connection.pointee.output.count == 0 {
            finishAtEndOfInput(slot)
        }
    }

    /// Reads once into the receive buffer; false if the connection was closed.
    @inline(__always)
    private mutating func read(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        guard let space = connection.pointee.input.reserve(from: &receivePool, minimumSpace: Self.minimumReadSpace) else {
            return refuseForMemory(slot)
        }
        guard let count = receive(slot, into: space) else { return false }
        connection.pointee.input.commit(count)
        connection.pointee.input.releaseIfEmpty(to: &receivePool)
        return true
    }

    /// Reads and answers through the reactor's scratch buffers: with nothing buffered for
    /// the connection (the common case) a request is read, answered and sent without the
    /// connection taking a buffer of its own. A partial request left over moves into the
    /// connection's receive buffer. False if the connection was closed.
    @inline(__always)
    private mutating func readAndAnswer(_ slot: Int32) -> Bool {
        guard let count = receive(slot, into: scratchInput) else { return false }
        guard count > 0 else { return true }
        let input = UnsafeRawBufferPointer(rebasing: scratchInput[..<count])
        guard let consumed = answerAndSend(slot, input) else { return false }
        let rest = UnsafeRawBufferPointer(rebasing: input[consumed...])
        if !rest.isEmpty {
            let connection = table.slots + Int(slot)
            guard let space = connection.pointee.input.reserve(from: &receivePool, minimumSpace: rest.count) else {
                return refuseForMemory(slot)
            }
            space.copyMemory(from: rest)
            connection.pointee.input.commit(rest.count)
        }
        return true
    }

    /// Answers the requests in `input` into the scratch output and sends them at once;
    /// answers the kernel does not take move into the connection's send buffer (which
    /// must be empty). Returns the bytes of `input` consumed, or nil if the connection
    /// was closed.
    @inline(__always)
    private mutating func answerAndSend(_ slot: Int32, _ input: UnsafeRawBufferPointer) -> Int? {
        let connection = table.slots + Int(slot)
        var rest = input
        while true {
            let result = service.serve(rest, into: scratchOutput)
            rest = UnsafeRawBufferPointer(rebasing: rest[result.consumed...])
            countAnswered(result, on: connection)
            var unsent = UnsafeRawBufferPointer(rebasing: scratchOutput[..<result.produced])
            if !unsent.isEmpty, connection.pointee.state.contains(.writable) {
                guard let sent = send(slot, unsent) else { return nil }
                unsent = UnsafeRawBufferPointer(rebasing: unsent[sent...])
            }
            if !unsent.isEmpty {
                guard let space = connection.pointee.output.reserve(from: &sendPool, minimumSpace: unsent.count) else {
                    _ = refuseForMemory(slot)
                    return nil
                }
                space.copyMemory(from: unsent)
                connection.pointee.output.commit(unsent.count)
            }
            noteServed(slot, result, leaving: rest.count)
            switch result.stop {
            case .needInput:
                break
            case .outputFull:
                // Everything produced went out: carry on with the rest, unless this turn's
                // budget is spent (the rest then waits in the input buffer).
                if unsent.isEmpty {
                    if turnWork < configuration.turnBudget { continue }
                } else {
                    connection.pointee.state.insert(.paused)
                }
            case .requestTooLong:
                connection.pointee.state.insert(.closing)
                noteRequestTooLong(slot)
            }
            return input.count - rest.count
        }
    }

    /// Reads once into `space`: the byte count (0 when nothing was read), or nil if the
    /// connection was closed. Updates the readiness flags by the short-read rule.
    @inline(__always)
    private mutating func receive(_ slot: Int32, into space: UnsafeMutableRawBufferPointer) -> Int? {
        let connection = table.slots + Int(slot)
        let result: IOResult<Int>
        do {
            result = try connection.pointee.fd.read(into: space)
        } catch {
            close(slot, reason: .readFailed, error: error)
            return nil
        }
        switch result {
        case .wouldBlock:
            connection.pointee.state.remove(.readable)
            return 0
        case .processed(0):
            connection.pointee.state.remove(.readable)
            connection.pointee.state.insert(.endOfInput)
            return 0
        case .processed(let count):
            connection.pointee.bytesReceived &+= UInt64(count)
            stats.bytesReceived &+= UInt64(count)
            turnWork &+= count
            table.touch(slot, now: now)
            if count < space.count {
                // A short read drained the socket. If the peer already shut its side,
                // nothing more will ever come.
                connection.pointee.state.remove(.readable)
                if connection.pointee.state.contains(.peerClosed) {
                    connection.pointee.state.insert(.endOfInput)
                }
            }
            return count
        }
    }

    /// Reads until the PROXY header at the front of the input is whole, then takes the
    /// client's address from it and leaves what follows (pipelined requests) to be
    /// answered. False while the header is incomplete, or if the connection was closed
    /// (a malformed header, end of input first, or a v2 header larger than a buffer).
    private mutating func readProxyHeader(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        while true {
            switch ProxyHeader.parse(connection.pointee.input.bytes) {
            case .complete(let header, let length):
                connection.pointee.input.consume(length)
                connection.pointee.input.releaseIfEmpty(to: &receivePool)
                adoptProxyHeader(slot, header)
                return connection.pointee.isOpen
            case .invalid(let error):
                rejectProxyHeader(slot, error)
                return false
            case .needMore:
                break
            }
            if connection.pointee.input.count >= receivePool.bufferSize - Self.minimumReadSpace {
                rejectProxyHeader(slot, nil)
                return false
            }
            let state = connection.pointee.state
            if state.contains(.endOfInput) || !state.contains(.readable) {
                if state.contains(.endOfInput) {
                    stats.proxyRejectedIncomplete &+= 1
                    reportClientProblem("connection closed before its PROXY header was whole", slot, [
                        "pending_bytes": "\(connection.pointee.input.count)",
                    ])
                    close(slot, reason: .proxyRejected)
                }
                return false
            }
            guard read(slot) else { return false }
        }
    }

    /// The header is whole: the client it names becomes the connection's peer (a LOCAL
    /// header, or one that names no address, leaves the balancer as the peer), the
    /// balancer is kept for the logs, and the connection is counted against its client's
    /// own limit instead of the balancer's.
    private mutating func adoptProxyHeader(_ slot: Int32, _ header: ProxyHeader) {
        let connection = table.slots + Int(slot)
        table.endRequest(slot)
        connection.pointee.state.remove(.awaitingProxyHeader)
        stats.proxyHeadersAccepted &+= 1
        guard header.command == .proxy, let source = header.source else { return }
        let client = PeerAddress(source)
        let balancer = connection.pointee.peer
        guard shared.reserveClient(client) else {
            reportClientProblem("connection limit per client reached; closing", slot, [
                "max_connections_per_client": "\(shared.maxConnectionsPerClient)",
                "client_address": "\(client)",
            ])
            close(slot, reason: .proxyRejected)
            return
        }
        shared.releaseClient(balancer)
        connection.pointee.peer = client
        connection.pointee.proxy = balancer
        if logsConnections {
            logger.debug("PROXY header accepted", metadata: [
                "client_address": "\(client)",
                "proxy_address": "\(balancer)",
                "connection_id": "\(connection.pointee.id)",
                "proxy_version": "\(header.version)",
            ])
        }
    }

    /// A malformed header (`error`; nil for one too large): closed without a byte of answer.
    private mutating func rejectProxyHeader(_ slot: Int32, _ error: ProxyHeaderError?) {
        let reason = error?.reason ?? ReactorStats.tooLargeProxyHeader
        stats.proxyRejectedInvalid[ReactorStats.index(of: error)] &+= 1
        reportClientProblem("malformed PROXY header; closing", slot, ["proxy_error": "\(reason)"])
        close(slot, reason: .proxyRejected)
    }

    /// The buffer budget is spent: this connection cannot be given the buffer it needs.
    /// Closes it (always false, for the callers' "still open" result).
    private mutating func refuseForMemory(_ slot: Int32) -> Bool {
        reportClientProblem("buffer memory limit reached; closing the connection", slot,
                            ["max_buffer_memory": "\(configuration.maxBufferMemory)"])
        close(slot, reason: .bufferLimit)
        return false
    }

    /// Answers buffered requests: through the scratch output when nothing waits to be
    /// sent, else into the send buffer behind what waits. False if the connection was closed.
    @inline(__always)
    private mutating func answer(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        if connection.pointee.output.count == 0 {
            guard let consumed = answerAndSend(slot, connection.pointee.input.bytes) else { return false }
            connection.pointee.input.consume(consumed)
            connection.pointee.input.releaseIfEmpty(to: &receivePool)
            return true
        }
        guard let space = connection.pointee.output.reserve(from: &sendPool, minimumSpace: sendPool.bufferSize) else {
            return refuseForMemory(slot)
        }
        let result = service.serve(connection.pointee.input.bytes, into: space)
        connection.pointee.input.consume(result.consumed)
        connection.pointee.output.commit(result.produced)
        countAnswered(result, on: connection)
        noteServed(slot, result, leaving: connection.pointee.input.count)
        switch result.stop {
        case .needInput:
            break
        case .outputFull:
            connection.pointee.state.insert(.paused)
        case .requestTooLong:
            connection.pointee.state.insert(.closing)
            noteRequestTooLong(slot)
        }
        connection.pointee.input.releaseIfEmpty(to: &receivePool)
        connection.pointee.output.releaseIfEmpty(to: &sendPool)
        return true
    }

    @inline(__always)
    private mutating func countAnswered(_ result: ServeResult, on connection: UnsafeMutablePointer<Connection>) {
        connection.pointee.requests &+= UInt64(result.requests)
        stats.requests &+= UInt64(result.requests)
        stats.unknownRequests &+= UInt64(result.unknown)
        turnWork &+= result.produced
    }

    /// Keeps the request deadline: a partial request left after serving starts it (unless
    /// it is the same partial request as before: nothing was consumed); no partial request
    /// left stops it.
    @inline(__always)
    private mutating func noteServed(_ slot: Int32, _ result: ServeResult, leaving remaining: Int) {
        let pending = table.slots[Int(slot)].requestPending
        if result.stop == .needInput, remaining > 0 {
            if !pending || result.consumed > 0 { table.wait(slot, for: .request, now: now) }
        } else if pending {
            table.endRequest(slot)
        }
    }

    private mutating func noteRequestTooLong(_ slot: Int32) {
        stats.tooLongRequests &+= 1
        reportClientProblem("request too long; answering with an error and closing", slot,
                            ["max_request_bytes": "\(service.maxRequestBytes)"])
    }

    /// Writes unsent answers; false if the connection was closed.
    @inline(__always)
    private mutating func flush(_ slot: Int32) -> Bool {
        let connection = table.slots + Int(slot)
        guard let sent = send(slot, connection.pointee.output.bytes) else { return false }
        connection.pointee.output.consume(sent)
        connection.pointee.output.releaseIfEmpty(to: &sendPool)
        return true
    }

    /// Sends once from `bytes`: how many the kernel took, or nil if the connection was
    /// closed. A short write, like `EAGAIN`, means its buffer is full.
    @inline(__always)
    private mutating func send(_ slot: Int32, _ bytes: UnsafeRawBufferPointer) -> Int? {
        let connection = table.slots + Int(slot)
        let result: IOResult<Int>
        do {
            result = try connection.pointee.fd.send(bytes)
        } catch {
            close(slot, reason: .sendFailed, error: error)
            return nil
        }
        var sent = 0
        if case .processed(let count) = result {
            sent = count
            connection.pointee.bytesSent &+= UInt64(count)
            stats.bytesSent &+= UInt64(count)
            table.touch(slot, now: now)
        }
        if sent < bytes.count {
            guard waitForOutput(slot) else { return nil }
        }
        return sent
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
                              data: EventToken.connection(slot, connection.pointee.generation))
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
        ready.append(EventToken.connection(slot, connection.pointee.generation))
    }

    /// The peer shut its side and every answer went out: report a partial request, close.
    private mutating func finishAtEndOfInput(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        let partial = connection.pointee.input.count
        if partial > 0 {
            reportClientProblem("client sent a partial request but then closed", slot, ["pending_bytes": "\(partial)"])
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
        table.endRequest(slot)
        table.wait(slot, for: .linger, now: now)
        discardInput(slot)
    }

    /// Reads and drops what a lingering client still sends, a budget at a time.
    private mutating func discardInput(_ slot: Int32) {
        let connection = table.slots + Int(slot)
        var discarded = 0
        while discarded < configuration.turnBudget {
            guard connection.pointee.state.contains(.readable) else { return }
            switch try? connection.pointee.fd.read(into: scratchInput) {
            case .processed(let count) where count > 0:
                discarded += count
                connection.pointee.bytesReceived &+= UInt64(count)
                stats.bytesReceived &+= UInt64(count)
                if count < scratchInput.count { connection.pointee.state.remove(.readable) }
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
