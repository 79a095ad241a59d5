// Does ThreadSanitizer see a lock? Built by Tests/Sanitizers/run.sh with -sanitize=thread
// from this file and Sources/LinuxIO/Lock.swift alone (no SwiftPM), and run once per way:
//
//   LockCheck lock    two threads add to a counter under LinuxIO's Lock     (no report expected)
//   LockCheck mutex   the same under Synchronization.Mutex                  (this toolchain: a report)
//   LockCheck none    the same with no lock at all                          (a report expected:
//                                                                             proof TSan is on)
//
// The script compares TSan's exit status (66 after a report) with what is expected.
import Glibc
import Synchronization

let rounds = 10_000
let lock = Lock(0)
let mutex = Mutex(0)
nonisolated(unsafe) var unguarded = 0

enum Way: String { case lock, mutex, none }
nonisolated(unsafe) var chosen = Way.none

func addRounds() {
    for _ in 0 ..< rounds {
        switch chosen {
        case .lock: lock.withLock { $0 += 1 }
        case .mutex: mutex.withLock { $0 += 1 }
        case .none: unguarded += 1
        }
    }
}

@main
enum LockCheck {
    static func main() {
        guard CommandLine.arguments.count == 2, let way = Way(rawValue: CommandLine.arguments[1]) else {
            print("usage: LockCheck lock|mutex|none")
            exit(64)
        }
        chosen = way
        startAndJoin()
        let total: Int
        switch way {
        case .lock: total = lock.withLock { $0 }
        case .mutex: total = mutex.withLock { $0 }
        case .none: total = unguarded
        }
        print("\(way): \(total) of \(2 * rounds)")
    }
}

/// Two threads running `addRounds` (a plain function: a closure written in `main` would
/// belong to the main actor, and the runtime traps when another thread calls it).
func startAndJoin() {
    var threads: [pthread_t] = []
    for _ in 0 ..< 2 {
        var thread = pthread_t()
        guard pthread_create(&thread, nil, { _ in addRounds(); return nil }, nil) == 0 else { exit(70) }
        threads.append(thread)
    }
    for thread in threads { pthread_join(thread, nil) }
}
