import LinuxIO

/// Timeouts: one timerfd armed for the earliest deadline of the loop.
///
/// Idle and linger timeouts live on two lists ordered by last activity (see
/// `ConnectionTable`), so only each list's head is ever looked at.
extension Reactor {
    /// The configuration's timeouts in nanoseconds, converted once: `Duration` arithmetic
    /// is 128-bit, and the timer is re-armed after every wakeup.
    struct TimeoutNanoseconds {
        let idle: Int64
        let drainGrace: Int64
        let request: Int64
        let linger: Int64
        let proxyHeader: Int64

        init(_ configuration: ReactorConfiguration) {
            proxyHeader = configuration.proxyHeaderTimeout.nanoseconds
            idle = configuration.idleTimeout.nanoseconds
            drainGrace = configuration.drainGrace.nanoseconds
            request = configuration.requestTimeout.nanoseconds
            linger = configuration.lingerTimeout.nanoseconds
        }
    }

    /// How long a connection may stay quiet: the idle timeout, or the grace during a drain.
    private var quietPeriod: Int64 { draining ? timeouts.drainGrace : timeouts.idle }
    /// How long a partial request may take to complete; during a drain, no longer than the
    /// quiet grace (a client that started a request but went quiet holds up the exit).
    private var requestPeriod: Int64 { draining ? min(timeouts.request, timeouts.drainGrace) : timeouts.request }

    mutating func expireTimeouts() {
        reportSuppressedClientProblems()
        let quietPeriod = self.quietPeriod
        while let slot = table.head(.idle), table.slots[Int(slot)].lastActive.advanced(byNanoseconds: quietPeriod) <= now {
            let connection = table.slots + Int(slot)
            if draining, connection.pointee.output.count > 0 || connection.pointee.state.contains(.paused) {
                // Still owed answers: quiet only because the client is slow to read.
                table.wait(slot, for: .idle, now: now)
                continue
            }
            close(slot, reason: draining ? .shuttingDown : .idleTimeout)
        }
        while let slot = table.head(.request), table.slots[Int(slot)].requestSince.advanced(byNanoseconds: requestPeriod) <= now {
            let connection = table.slots + Int(slot)
            if draining, connection.pointee.output.count > 0 || connection.pointee.state.contains(.paused) {
                table.wait(slot, for: .request, now: now)
                continue
            }
            if !draining {
                reportClientProblem("request not completed within the request timeout; closing", slot, [
                    "request_timeout_ms": "\(timeouts.request / 1_000_000)",
                    "pending_bytes": "\(connection.pointee.input.count)",
                ])
            }
            close(slot, reason: draining ? .shuttingDown : .requestTimeout)
        }
        while let slot = table.head(.proxyHeader),
              table.slots[Int(slot)].requestSince.advanced(byNanoseconds: timeouts.proxyHeader) <= now {
            stats.proxyRejectedTimeout &+= 1
            reportClientProblem("no whole PROXY header within the timeout; closing", slot, [
                "proxy_timeout_ms": "\(timeouts.proxyHeader / 1_000_000)",
                "pending_bytes": "\(table.slots[Int(slot)].input.count)",
            ])
            close(slot, reason: .proxyRejected)
        }
        while let slot = table.head(.linger), table.slots[Int(slot)].lingerSince.advanced(byNanoseconds: timeouts.linger) <= now {
            close(slot, reason: .requestTooLong)
        }
        if let deadline = drainDeadline, now >= deadline {
            let remaining = table.openIndices
            if !remaining.isEmpty {
                logger.warning("drain timeout; closing remaining connections", metadata: ["connections": "\(remaining.count)"])
            }
            for slot in remaining { close(slot, reason: .drainTimeout) }
        }
        if let trimAt = memoryTrimAt, now >= trimAt {
            // After load: what the pools released is free in the allocator, but resident
            // until it is trimmed (10,000 closed connections kept 40 MB otherwise).
            memoryTrimAt = nil
            _ = receivePool.takeReleased() + sendPool.takeReleased()
            ProcessFacts.returnFreeMemory()
        }
        if let resume = acceptResumeAt, now >= resume {
            acceptResumeAt = nil
            // Another reactor may have taken the descriptor our spare freed.
            if spareDescriptor == nil { spareDescriptor = try? EventFD() }
            do {
                try startAccepting()
            } catch {
                logger.error("cannot resume accepting", metadata: ["error": "\(error)"])
                acceptResumeAt = now.advanced(by: .seconds(1))
            }
        }
    }

    /// Arms the timerfd for the earliest deadline, unless it is already armed earlier.
    /// A timer that fires early (its connection was active since) is simply re-armed.
    mutating func updateTimer() throws(SystemError) {
        var next = MonotonicInstant.never
        if let slot = table.head(.idle) { next = min(next, table.slots[Int(slot)].lastActive.advanced(byNanoseconds: quietPeriod)) }
        if let slot = table.head(.request) {
            next = min(next, table.slots[Int(slot)].requestSince.advanced(byNanoseconds: requestPeriod))
        }
        if let slot = table.head(.proxyHeader) {
            next = min(next, table.slots[Int(slot)].requestSince.advanced(byNanoseconds: timeouts.proxyHeader))
        }
        if let slot = table.head(.linger) {
            next = min(next, table.slots[Int(slot)].lingerSince.advanced(byNanoseconds: timeouts.linger))
        }
        if let drainDeadline { next = min(next, drainDeadline) }
        if let memoryTrimAt { next = min(next, memoryTrimAt) }
        if clientProblems.suppressed > 0 { next = min(next, clientProblems.windowEnd) }
        if let acceptResumeAt { next = min(next, acceptResumeAt) }
        guard next < .never else { return }
        if let armed = timerArmedAt, armed <= next { return }
        try timer.arm(at: next)
        timerArmedAt = next
    }
}
