import Glibc
import LinuxIO
import Logging

/// Opening, balancing and closing connections.
///
/// Balance: `EPOLLEXCLUSIVE` wakes the reactors sharing a listener in a fixed order, so
/// left alone the first idle one takes nearly every connection. A reactor that accepts
/// while another holds fewer connections hands the new one to the least loaded (through
/// its mailbox), and moves its own listener registrations to the back of the wake-up
/// queue (nginx re-adds its listener the same way), so the next connection wakes
/// another reactor first. This works as well for the single socket systemd passes.
extension Reactor {
    mutating func acceptConnections(from listener: Int) {
        let fd = listeners[listener].fd
        let proxied = listeners[listener].expectsProxyHeader
        var handedOver = 0
        while listening {
            let result: IOResult<FileDescriptor>
            do {
                result = try fd.accept(peer: peerStorage)
            } catch {
                handleAcceptError(error, listener: listener)
                break
            }
            guard case .processed(let client) = result else { break }
            let peer = PeerAddress(peerStorage)
            if proxied, !isTrustedBalancer(peer) {
                client.close()
                stats.proxyRejectedUntrusted &+= 1
                if clientProblems.admit(now: now) {
                    logger.notice("PROXY listener: connection from an address not in --proxy-from; closing it",
                                  metadata: ["client_address": "\(peer)"])
                }
                continue
            }
            guard admit(client, peer: peer) else { continue }
            if let target = lessLoadedPeer(), target.handOver(.init(fd: client, peer: peer, proxied: proxied)) {
                handedOver += 1
                continue
            }
            control.load.wrappingAdd(1, ordering: .relaxed)
            open(client, peer: peer, proxied: proxied)
        }
        if handedOver > 0 { requeueListeners() }
    }

    /// Another reactor holding fewer connections than this one, the least loaded; nil when
    /// this one is among the least loaded.
    @inline(__always)
    private func lessLoadedPeer() -> ReactorControl? {
        guard peers.count > 1 else { return nil }
        var best: ReactorControl? = nil
        var lowest = control.load.load(ordering: .relaxed)
        for peer in peers where peer !== control {
            let load = peer.load.load(ordering: .relaxed)
            if load < lowest {
                lowest = load
                best = peer
            }
        }
        return best
    }

    /// Counts a new connection in the shared limits (all connections, those of its client
    /// address); when a limit refuses it, closes it and says so, and counts nothing.
    mutating func admit(_ fd: FileDescriptor, peer: PeerAddress) -> Bool {
        guard shared.reserveConnection() else {
            fd.close()
            noteRejection()
            return false
        }
        guard shared.reserveClient(peer) else {
            fd.close()
            releaseConnection()
            noteRejection(client: peer)
            return false
        }
        return true
    }

    /// Closes a connection that ends or could not start, and gives back what it counted:
    /// the shared limits and this reactor's load.
    mutating func release(_ fd: FileDescriptor, peer: PeerAddress) {
        fd.close()
        shared.releaseClient(peer)
        control.load.wrappingSubtract(1, ordering: .relaxed)
        releaseConnection()
    }

    /// Whether a PROXY header from `peer` is believed: its address is in `--proxy-from`, or
    /// it came through a unix socket (which the socket file's mode guards).
    private func isTrustedBalancer(_ peer: PeerAddress) -> Bool {
        guard peer.isInternet else { return true }
        return configuration.proxyFrom.contains { $0.contains(peer) }
    }

    /// Starts serving an accepted or handed-over connection (already counted in
    /// `shared` and in this reactor's load); a `proxied` one first waits for its PROXY header.
    mutating func open(_ fd: FileDescriptor, peer: PeerAddress, proxied: Bool = false) {
        guard let slot = table.allocate() else {
            // The table is sized to the connection limit, so this is only a safety net.
            release(fd, peer: peer)
            noteRejection()
            return
        }
        let connection = table.slots + Int(slot)
        connection.pointee.fd = fd
        connection.pointee.id = shared.nextConnectionID.wrappingAdd(1, ordering: .relaxed).oldValue
        connection.pointee.state = proxied ? [.writable, .awaitingProxyHeader] : [.writable]
        connection.pointee.peer = peer
        connection.pointee.opened = now
        if peer.isInternet {
            // Answers are small and go out once per read: don't let Nagle hold them.
            try? fd.setOption(Int32(IPPROTO_TCP), TCP_NODELAY, 1)
        }
        do {
            // Data that arrived before this call still produces the first edge.
            try poller.add(fd, events: [.input, .readHangup, .edgeTriggered],
                           data: EventToken.connection(slot, connection.pointee.generation))
        } catch {
            logger.error("cannot watch a new connection", metadata: ["error": "\(error)"])
            table.release(slot)
            release(fd, peer: peer)
            return
        }
        stats.connectionsServed &+= 1
        table.wait(slot, for: .idle, now: now)
        if proxied { table.wait(slot, for: .proxyHeader, now: now) }
        if logsConnections {
            logger.debug("connection opened", metadata: [
                "client_address": "\(peer)",
                "connection_id": "\(connection.pointee.id)",
            ])
        }
    }

    mutating func close(_ slot: Int32, reason: CloseReason, error: SystemError? = nil) {
        // A read or send that failed because the client reset the connection is the client's
        // doing: counted apart from real errors. Decided here, off the hot path (a choice in
        // the read and send paths kept the compiler from inlining them).
        let reason = error?.isReset == true ? CloseReason.reset : reason
        let connection = table.slots + Int(slot)
        if logsConnections {
            var metadata: Logger.Metadata = [
                "client_address": "\(connection.pointee.peer)",
                "connection_id": "\(connection.pointee.id)",
                "requests": "\(connection.pointee.requests)",
                "bytes_received": "\(connection.pointee.bytesReceived)",
                "bytes_sent": "\(connection.pointee.bytesSent)",
                "duration_ms": "\(now.duration(since: connection.pointee.opened).nanoseconds / 1_000_000)",
                "reason": "\(reason.rawValue)",
            ]
            if let error { metadata["error"] = "\(error)" }
            if connection.pointee.proxy.isSet { metadata["proxy_address"] = "\(connection.pointee.proxy)" }
            logger.debug("connection closed", metadata: metadata)
        }
        stats.closed[reason.counted.rawValue] &+= 1
        table.unlink(slot)
        connection.pointee.input.release(to: &receivePool)
        connection.pointee.output.release(to: &sendPool)
        let (fd, peer) = (connection.pointee.fd, connection.pointee.peer)
        table.release(slot)
        release(fd, peer: peer)
        if memoryTrimAt == nil, receivePool.released + sendPool.released >= Self.buffersBeforeTrim {
            memoryTrimAt = now.advanced(by: .seconds(1))
        }
    }

    /// Buffers given back to the allocator after which it is trimmed (a second later, so a
    /// wave of closes is trimmed once): 4 MiB of 16 KiB buffers.
    static var buffersBeforeTrim: Int { 256 }

    /// Gives a connection back to the shared count; the supervisor hears when the last
    /// one across all reactors has gone (for `--exit-when-idle`).
    func releaseConnection() {
        if shared.releaseConnection() == 0, configuration.reportIdle {
            notifySupervisor()
        }
    }

    private mutating func handleAcceptError(_ error: SystemError, listener: Int) {
        switch error.errno {
        case EMFILE, ENFILE:
            // The waiting client stays in the backlog and the level-triggered listener
            // would report it again at once: free the reserve descriptor, accept and close
            // it, and if even that fails, stop accepting for a moment instead of spinning.
            if spareDescriptor != nil {
                spareDescriptor = nil
                if case .processed(let client)? = try? listeners[listener].fd.accept(peer: peerStorage) {
                    client.close()
                }
                spareDescriptor = try? EventFD()
                noteRejection(cause: error)
                if spareDescriptor != nil { return }
            }
            pauseAccepting(for: .milliseconds(100), cause: error)
        case ECONNABORTED, EPROTO, EPERM, EINTR:
            // This client is gone or refused by a filter; the next one may be fine.
            return
        default:
            pauseAccepting(for: .milliseconds(100), cause: error)
        }
    }

    /// Counts a refused connection; one warning a second at most, with the count since the
    /// last (a flood must not become a log flood).
    private mutating func noteRejection(cause: SystemError? = nil, client: PeerAddress? = nil) {
        if cause != nil {
            stats.refusedOutOfDescriptors &+= 1
        } else if client != nil {
            stats.refusedPerClient &+= 1
        } else {
            stats.refusedAtLimit &+= 1
        }
        guard let missed = rejections.admitCounting(now: now) else { return }
        var metadata: Logger.Metadata = ["rejected": "\(missed + 1)"]
        let message: Logger.Message
        if let cause {
            message = "out of file descriptors; closing new connections"
            metadata["error"] = "\(cause)"
        } else if let client {
            message = "connection limit per client reached; closing its new connections"
            metadata["client_address"] = "\(client)"
            metadata["max_connections_per_client"] = "\(shared.maxConnectionsPerClient)"
        } else {
            message = "connection limit reached; closing new connections"
            metadata["max_connections"] = "\(shared.maxConnections)"
        }
        logger.warning(message, metadata: metadata)
    }

    /// Level-triggered (a backlog left behind is reported again), one reactor woken per connection.
    static var listenerEvents: Epoll.Events { [.input, .exclusive] }

    mutating func startAccepting() throws(SystemError) {
        guard !listening, !draining else { return }
        for (position, listener) in listeners.enumerated() {
            try poller.add(listener.fd, events: Self.listenerEvents, data: EventToken.listener(position))
        }
        listening = true
    }

    mutating func stopAccepting() {
        guard listening else { return }
        for listener in listeners { try? poller.remove(listener.fd) }
        listening = false
    }

    /// Re-registers the listeners, which puts this reactor last in their wake-up queues.
    private mutating func requeueListeners() {
        stopAccepting()
        do {
            try startAccepting()
        } catch {
            pauseAccepting(for: .milliseconds(100), cause: error)
        }
    }

    private mutating func pauseAccepting(for duration: Duration, cause: SystemError) {
        stats.acceptPauses &+= 1
        logger.error("accepting paused", metadata: ["error": "\(cause)", "pause_ms": "\(duration.nanoseconds / 1_000_000)"])
        stopAccepting()
        acceptResumeAt = now.advanced(by: duration)
    }
}
