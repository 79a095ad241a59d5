import Glibc
import LinuxIO
import Testing
import TestSupport

/// Milliseconds `body` took.
private func milliseconds<T>(_ body: () throws -> T) rethrows -> (T, Double) {
    let start = ContinuousClock.now
    let result = try body()
    let elapsed = ContinuousClock.now - start
    return (result, Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
}

private func readFailure(_ path: String, maxBytes: Int = 1 << 20) -> RegularFileError? {
    do {
        _ = try FileDescriptor.readRegularFile(path, maxBytes: maxBytes)
        return nil
    } catch {
        return error
    }
}

/// A scratch directory holding a FIFO called `fifo` (no writer ever opens it).
private func directoryWithFIFO() -> String {
    let directory = Paths.scratchDirectory("fifo")
    precondition(mkfifo(directory + "/fifo", 0o644) == 0, "mkfifo failed")
    return directory
}

@Suite("Reading a configuration file: regular files only, bounded, never blocking")
struct RegularFileTests {
    @Test("a regular file is read whole, up to and including the limit")
    func regular() throws {
        let directory = Paths.scratchDirectory("regular")
        defer { Paths.remove(directory) }
        Paths.write("Beautiful is better than? Ugly.\n", to: directory + "/a.conf")
        #expect(try FileDescriptor.readRegularFile(directory + "/a.conf", maxBytes: 32)
                == Array("Beautiful is better than? Ugly.\n".utf8))
        Paths.write("", to: directory + "/empty")
        #expect(try FileDescriptor.readRegularFile(directory + "/empty", maxBytes: 0) == [])
        let large = String(repeating: "x", count: 200_000)
        Paths.write(large, to: directory + "/large")
        #expect(try FileDescriptor.readRegularFile(directory + "/large", maxBytes: 200_000) == Array(large.utf8))
    }

    @Test("a FIFO is refused at once (the open does not wait for a writer)")
    func fifo() {
        let directory = directoryWithFIFO()
        defer { Paths.remove(directory) }
        let (error, elapsed) = milliseconds { readFailure(directory + "/fifo") }
        #expect(error == .notRegular(kind: "a FIFO"))
        #expect(error?.reason == "is a FIFO, not a regular file")
        #expect(elapsed < 1000)
    }

    @Test("character devices that never end are refused without reading: /dev/zero, /dev/urandom")
    func endlessDevices() {
        for path in ["/dev/zero", "/dev/urandom", "/dev/null"] {
            let (error, elapsed) = milliseconds { readFailure(path) }
            #expect(error == .notRegular(kind: "a character device"), "\(path)")
            #expect(error?.reason == "is a character device, not a regular file")
            #expect(elapsed < 1000, "\(path)")
        }
    }

    @Test("a directory is refused")
    func directory() {
        let error = readFailure("/tmp")
        #expect(error == .notRegular(kind: "a directory"))
        #expect(error?.errno == EISDIR)
    }

    @Test("a file larger than the limit is refused, by its size, before reading")
    func oversized() throws {
        let directory = Paths.scratchDirectory("oversized")
        defer { Paths.remove(directory) }
        Paths.write(String(repeating: "x", count: 33), to: directory + "/big")
        #expect(readFailure(directory + "/big", maxBytes: 32) == .tooLarge(size: 33, limit: 32))
        #expect(readFailure(directory + "/big", maxBytes: 32)?.reason == "is 33 bytes, more than the limit of 32 bytes")
        // A sparse file of 1 TiB: refused from its size, nothing read.
        let fd = open(directory + "/sparse", O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        #expect(ftruncate(fd, 1 << 40) == 0)
        close(fd)
        let (error, elapsed) = milliseconds { readFailure(directory + "/sparse", maxBytes: 16 << 20) }
        #expect(error == .tooLarge(size: 1 << 40, limit: 16 << 20))
        #expect(elapsed < 1000)
    }

    @Test("a file whose size fstat does not know (/proc) is still cut off after limit + 1 bytes")
    func growingPastTheLimit() throws {
        // /proc files report size 0 and produce their text when read.
        #expect(readFailure("/proc/self/status", maxBytes: 10) == .tooLarge(size: nil, limit: 10))
        let whole = try FileDescriptor.readRegularFile("/proc/self/status", maxBytes: 1 << 20)
        #expect(String(decoding: whole, as: UTF8.self).contains("Name:"))
    }

    @Test("a missing file or a denied one is the system error, with its errno")
    func missing() {
        let error = readFailure("/nonexistent/aphorisms.conf")
        #expect(error?.errno == ENOENT)
        #expect(error?.reason == "No such file or directory")
    }
}

/// Runs the built `zend` (under a 1 GiB address-space and 20 s CPU limit, so a
/// regression that reads `/dev/zero` fails the test instead of exhausting memory);
/// its exit code (nil: still running at `timeout` or killed), output, and milliseconds.
private func zend(_ arguments: [String], timeout: Duration = .seconds(10)) throws
    -> (code: Int32?, output: String, milliseconds: Double) {
    let directory = Paths.scratchDirectory("zend-check")
    defer { Paths.remove(directory) }
    let output = directory + "/output"
    // A sanitizer's shadow memory reserves terabytes of address space: no -v limit there
    // (the CPU limit and the timeout still stop a zend reading /dev/zero).
    let addressSpace = Sanitizer.checks("zend --check within a 1 GiB address space", because:
        "the sanitizer's shadow memory needs terabytes of address space") ? "ulimit -v 1048576; " : ""
    let limited = ["-c", addressSpace + "ulimit -t 20; exec \"$0\" \"$@\"", Paths.product("zend")] + arguments
    let start = ContinuousClock.now
    let child = try ChildProcess("/bin/sh", limited, stdout: output, stderr: output)
    defer { child.stop() }
    child.wait(timeout: timeout)
    let elapsed = ContinuousClock.now - start
    return (child.exitCode, Paths.read(output),
            Double(elapsed.components.seconds) * 1000 + Double(elapsed.components.attoseconds) / 1e15)
}

// These run the real binary, like Tests/ZendEndToEndTests, because the reading they check
// is LinuxIO's `readRegularFile` as zend uses it at start, on --check and on reload.
@Suite("zend --check with an aphorism file that is not a sane regular file")
struct ZendAphorismFileCheckTests {
    @Test("a FIFO: exits 78 at once saying it is a FIFO (it used to hang in open(), deaf to SIGTERM)")
    func fifo() throws {
        let directory = directoryWithFIFO()
        defer { Paths.remove(directory) }
        let result = try zend(["--check", "--aphorisms", directory + "/fifo"])
        #expect(result.code == 78)
        #expect(result.output.contains("aphorism file \(directory)/fifo is a FIFO, not a regular file"), "\(result.output)")
        #expect(result.milliseconds < 5000)
    }

    @Test("/dev/zero and /dev/urandom: exits 78 at once (they used to be read until memory ran out)")
    func endlessDevices() throws {
        for path in ["/dev/zero", "/dev/urandom"] {
            let result = try zend(["--check", "--aphorisms", path])
            #expect(result.code == 78, "\(path)")
            #expect(result.output.contains("aphorism file \(path) is a character device, not a regular file"),
                    "\(path): \(result.output.suffix(2000))")
            #expect(result.milliseconds < 5000)
        }
    }

    @Test("a directory: exits 78 saying it is a directory")
    func directory() throws {
        let directory = Paths.scratchDirectory("dir")
        defer { Paths.remove(directory) }
        let result = try zend(["--check", "--aphorisms", directory])
        #expect(result.code == 78)
        #expect(result.output.contains("aphorism file \(directory) is a directory, not a regular file"), "\(result.output)")
    }

    @Test("a file over the default 16 MiB limit: exits 78 naming its size and the limit")
    func oversized() throws {
        let directory = Paths.scratchDirectory("big")
        defer { Paths.remove(directory) }
        let file = directory + "/aphorisms.conf"
        let fd = open(file, O_WRONLY | O_CREAT | O_CLOEXEC, 0o644)
        #expect(fd >= 0)
        #expect(ftruncate(fd, (16 << 20) + 1) == 0)
        close(fd)
        let result = try zend(["--check", "--aphorisms", file])
        #expect(result.code == 78)
        #expect(result.output.contains("aphorism file \(file) is 16777217 bytes, more than the limit of 16777216 bytes"),
                "\(result.output.suffix(2000))")
    }

    @Test("a question no client can ask is named in a short warning, not printed whole")
    func longQuestionWarning() throws {
        let directory = Paths.scratchDirectory("longq")
        defer { Paths.remove(directory) }
        let file = directory + "/aphorisms.conf"
        Paths.write("Short? Yes.\n" + String(repeating: "Q", count: 100_000) + "? Never asked.\n", to: file)
        let result = try zend(["--check", "--aphorisms", file])
        #expect(result.code == 0)
        #expect(result.output.contains("msg=\"a question is longer than --max-request-bytes; no client can ask it\" "
                                       + "max_request_bytes=4096 question=\"\(String(repeating: "Q", count: 60))… (100001 bytes)\""),
                "\(result.output.prefix(500))")
        #expect(result.output.utf8.count < 2000)
    }
}
