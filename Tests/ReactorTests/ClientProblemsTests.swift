import Testing
import LinuxIO
@testable import Reactor

private func instant(_ milliseconds: Int) -> MonotonicInstant { MonotonicInstant(nanoseconds: Int64(milliseconds) * 1_000_000) }

@Suite("Log rate limit")
struct LogRateLimitTests {
    @Test("at most the limit's lines in one second; the rest are counted, and the count is due once the second is over")
    func perSecond() {
        var limit = LogRateLimit(perSecond: 5)
        let admitted = (0 ..< 8).filter { _ in limit.admit(now: instant(100)) }.count
        #expect(admitted == 5)
        #expect(limit.suppressed == 3)
        #expect(limit.takeSuppressed(now: instant(999)) == nil, "the count came before its second was over")
        #expect(limit.takeSuppressed(now: instant(1000)) == 3)
        #expect(limit.takeSuppressed(now: instant(1000)) == nil, "the count is reported once")
        // A new second admits the limit's lines again.
        #expect((0 ..< 6).filter { _ in limit.admit(now: instant(1200)) }.count == 5)
    }

    @Test("a line that carries the count itself gets the lines not logged since the last one, and the count starts again")
    func counting() {
        var limit = LogRateLimit(perSecond: 1)
        #expect(limit.admitCounting(now: instant(0)) == 0)
        #expect(limit.admitCounting(now: instant(300)) == nil)
        #expect(limit.admitCounting(now: instant(600)) == nil)
        #expect(limit.admitCounting(now: instant(1000)) == 2)
        #expect(limit.admitCounting(now: instant(2000)) == 0)
    }
}
