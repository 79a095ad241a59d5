import Glibc
import LinuxIO
import Testing

@Suite("Lock")
struct LockTests {
    @Test("threads that change the state under the lock lose no change")
    func exclusion() throws {
        // Plain reads and writes of a non-atomic pair: a lost update or a torn pair shows
        // without the lock, and under ThreadSanitizer so would a missing happens-before.
        struct Pair { var count = 0; var shadow = 0 }
        let lock = Lock(Pair())
        let threads = 4, rounds = 20_000
        var spawned: [PosixThread] = []
        for index in 0 ..< threads {
            spawned.append(try PosixThread.spawn(name: "lock-test-\(index)") {
                for _ in 0 ..< rounds {
                    lock.withLock { pair in
                        pair.count += 1
                        pair.shadow = pair.count
                    }
                }
            })
        }
        for thread in spawned { thread.join() }
        let pair = lock.withLock { $0 }
        #expect(pair.count == threads * rounds)
        #expect(pair.shadow == pair.count)
    }

    @Test("an error thrown in withLock leaves the lock released and its change made")
    func throwing() {
        struct Refused: Error {}
        let lock = Lock([Int]())
        #expect(throws: Refused.self) {
            try lock.withLock { (values: inout [Int]) throws(Refused) in
                values.append(1)
                throw Refused()
            }
        }
        // Not deadlocked: the lock is free again.
        #expect(lock.withLock { $0 } == [1])
    }

    @Test("copies of a lock share one state")
    func copies() {
        let lock = Lock(0)
        let copy = lock
        copy.withLock { $0 = 7 }
        #expect(lock.withLock { $0 } == 7)
    }
}
