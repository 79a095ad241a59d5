import Foundation
import Glibc
import LinuxIO
import Testing
import TestSupport

/// The release zend beside this build if it is newer than every file under Sources/ (or
/// `ZEND_HOTPATH_ZEND`); nil if there is none. A debug zend allocates on every request
/// (unspecialised generics, no inlining), so the allocation test needs an optimised one.
private let releaseZend: String? = {
    if let chosen = ProcessInfo.processInfo.environment["ZEND_HOTPATH_ZEND"] { return chosen }
    let products = Paths.products
    if products.hasSuffix("/release") { return Paths.product("zend") }
    let release = String(products[..<(products.lastIndex(of: "/") ?? products.endIndex)]) + "/release/zend"
    let files = FileManager.default
    func modified(_ path: String) -> Date? { (try? files.attributesOfItem(atPath: path))?[.modificationDate] as? Date }
    guard let built = modified(release) else { return nil }
    let sources = Paths.repository + "/Sources"
    let newest = (files.enumerator(atPath: sources)?.allObjects as? [String] ?? []).compactMap { modified(sources + "/" + $0) }.max()
    return newest.map { $0 <= built } ?? true ? release : nil
}()

private let haveStrace = access("/usr/bin/strace", X_OK) == 0
private let haveCompiler = access("/usr/bin/cc", X_OK) == 0

extension EndToEnd {
    /// The hot path's costs per request, by the difference of two run lengths: start-up,
    /// connection set-up and shutdown are the same in both runs and cancel.
    @Suite("hot path")
    struct HotPathTests {
        /// `zen bench` over 50 connections. It fails a connection whose first answer takes
        /// more than 100 ms, whatever --timeout says, so a slow start is tried again.
        private func bench(port: UInt16, pipeline: Int, requests: Int) throws {
            var last = ""
            for _ in 0 ..< 3 {
                let result = try runCommand(Paths.product("zen"), [
                    "bench", "--port", "\(port)", "-c", "50", "-P", "\(pipeline)", "-n", "\(requests)",
                    "--threads", "1", "--timeout", "30",
                ], timeout: .seconds(60))
                if result.code == 0 { return }
                last = result.output
            }
            throw Failure("zen bench failed three times:\n\(last)")
        }

        /// Heap allocations of a zend that served `requests` requests at pipeline depths 1
        /// and 16 over 50 connections each, counted by the preloaded malloc_count.so.
        private func allocations(zend: String, library: String, directory: String, requests: Int) throws -> Int {
            let countFile = directory + "/count-\(requests)"
            // HOTPATH_EXTRA_PRELOAD: libraries preloaded after the counter, to check that this
            // test fails when something allocates per request (see the commit that added it).
            let extra = getenv("HOTPATH_EXTRA_PRELOAD").map { ":" + String(cString: $0) } ?? ""
            let environment = ZendServer.environment(["LD_PRELOAD": library + extra, "MALLOC_COUNT_FILE": countFile,
                                                      "ZEND": zend])
            // zend is this build's product unless a launcher execs another: the release one.
            let server = try ZendServer(["--threads", "2"], environment: environment,
                                        launcher: ["/bin/sh", "-c", "exec \"$ZEND\" \"$@\""], label: "hotpath")
            let port = server.port
            for pipeline in [1, 16] { try bench(port: port, pipeline: pipeline, requests: requests) }
            server.process.signal(SIGTERM)
            server.process.wait(timeout: .seconds(10))
            guard server.process.exitCode == 0 else { throw Failure("zend did not exit 0 on SIGTERM:\n\(server.log)") }
            guard let count = Int(Paths.read(countFile).split(separator: "\n").first ?? "") else {
                throw Failure("malloc_count.so wrote no count to \(countFile)")
            }
            return count
        }

        @Test("no heap allocation per request (release zend, c=50 at depths 1 and 16)",
              .enabled(if: releaseZend != nil,
                       "needs a release zend newer than Sources/: swift build -c release --product zend"),
              .enabled(if: haveCompiler, "needs cc to build the malloc counter"))
        func noAllocationPerRequest() throws {
            let zend = try #require(releaseZend)
            let directory = Paths.scratchDirectory("hotpath")
            defer { Paths.remove(directory) }
            let library = directory + "/malloc_count.so"
            let build = try runCommand("/usr/bin/cc", ["-shared", "-fPIC", "-O2", "-o", library,
                                                       Paths.repository + "/Tests/HotPath/malloc_count.c"])
            try #require(build.code == 0, "cannot build the malloc counter: \(build.output)")
            let requests = 5_000
            let short = try allocations(zend: zend, library: library, directory: directory, requests: requests)
            let long = try allocations(zend: zend, library: library, directory: directory, requests: 5 * requests)
            // Two loads each: 2 × 4 × requests more requests in the long run.
            let perRequest = Double(long - short) / Double(2 * 4 * requests)
            #expect(short > 0, "the counter saw no allocation at all: is it preloaded?")
            #expect(perRequest < 0.01, "\(perRequest) allocations per request (\(short) then \(long) in all)")
        }

        /// Total syscalls of every zend thread while `body` runs, from `strace -f -c`.
        private func syscalls(of zend: ZendServer, directory: String, run: Int, _ body: () throws -> Void) throws -> Int {
            let output = directory + "/strace-\(run)"
            let strace = try ChildProcess("/usr/bin/strace", ["-f", "-c", "-o", output, "-p", "\(zend.process.pid)"],
                                          stderr: directory + "/strace.err")
            defer { strace.stop() }
            // Attached once every thread of zend has a tracer.
            let deadline = ContinuousClock.now + .seconds(10)
            while ContinuousClock.now < deadline {
                let threads = Paths.threads(of: zend.process.pid)
                let traced = threads.filter { thread in
                    Paths.read("/proc/\(zend.process.pid)/task/\(thread.id)/status").contains("TracerPid:\t\(strace.pid)\n")
                }
                if !threads.isEmpty, traced.count == threads.count { break }
                usleep(10_000)
            }
            usleep(100_000)
            try body()
            usleep(100_000)
            strace.signal(SIGINT)  // detaches and writes the table
            strace.wait(timeout: .seconds(10))
            // The last row: "100.00    0.462612    11     40821    19 total" (errors may be empty).
            guard let total = Paths.read(output).split(separator: "\n").last(where: { $0.hasSuffix(" total") }),
                  let calls = Int(total.split(separator: " ")[3]) else {
                throw Failure("no strace summary:\n\(Paths.read(output))")
            }
            return calls
        }

        @Test("at most 2.1 syscalls per request at c=50, one request in flight each (strace -c)",
              .enabled(if: haveStrace, "needs /usr/bin/strace (scripts/setup installs it)"))
        func syscallsPerRequest() throws {
            let zend = try ZendServer(["--threads", "1"])
            let directory = Paths.scratchDirectory("hotpath")
            defer { Paths.remove(directory) }
            let requests = 2_000
            let short = try syscalls(of: zend, directory: directory, run: 1) {
                try bench(port: zend.port, pipeline: 1, requests: requests)
            }
            let long = try syscalls(of: zend, directory: directory, run: 2) {
                try bench(port: zend.port, pipeline: 1, requests: 5 * requests)
            }
            let perRequest = Double(long - short) / Double(4 * requests)
            #expect(perRequest <= 2.1, "\(perRequest) syscalls per request (\(short) then \(long) in all)")
            #expect(perRequest >= 1.9, "\(perRequest) syscalls per request: a read and a send each cannot be fewer")
        }
    }
}
