import Glibc

/// The sanitizer the tests (and so the `zend` beside them, built by the same command)
/// were built with, for the few figures a sanitizer distorts.
///
/// `Tests/Sanitizers/run.sh` sets `ZEND_SANITIZER` to `address` or `thread`; a test
/// binary built with `--sanitize` and run by hand is recognised by the sanitizer's
/// runtime being linked in.
public enum Sanitizer {
    /// `address`, `thread`, or nil in an ordinary build.
    public static let active: String? = {
        if let named = getenv("ZEND_SANITIZER"), named.pointee != 0 { return String(cString: named) }
        if dlsym(nil, "__asan_init") != nil { return "address" }  // nil: RTLD_DEFAULT
        if dlsym(nil, "__tsan_init") != nil { return "thread" }
        return nil
    }()

    /// True if `figure` is to be checked: false, printing why, when a sanitizer named in
    /// `distortedBy` is active (it makes memory or time figures meaningless, not wrong).
    ///
    ///     if Sanitizer.checks("resident bytes per idle connection", distortedBy: ["address"],
    ///                         because: "ASan's shadow memory and redzones inflate RSS") {
    ///         #expect(perConnection <= 200)
    ///     }
    public static func checks(_ figure: String, distortedBy sanitizers: Set<String> = ["address", "thread"],
                              because reason: String) -> Bool {
        guard let active, sanitizers.contains(active) else { return true }
        print("SKIP under the \(active) sanitizer: the figure \"\(figure)\" is not checked: \(reason)")
        return false
    }

    /// The threads a sanitizer's runtime started in `pid` (ThreadSanitizer's background
    /// thread wakes every 100 ms), for figures about zend's own threads; none without a
    /// sanitizer. Every thread zend starts gets a name of its own (`PosixThread.spawn`),
    /// so a thread other than the main one that still bears the main thread's name is
    /// the runtime's. Prints which it found, as the figure they distort leaves them out.
    public static func runtimeThreads(of pid: pid_t, for figure: String) -> Set<Int32> {
        guard let active else { return [] }
        let threads = Paths.threads(of: pid)
        guard let main = threads.first(where: { $0.id == pid }) else { return [] }
        let foreign = Set(threads.filter { $0.id != pid && $0.name == main.name }.map(\.id))
        if !foreign.isEmpty {
            print("SKIP under the \(active) sanitizer: \(figure) leaves out the sanitizer's thread(s) \(foreign.sorted())")
        }
        return foreign
    }
}
