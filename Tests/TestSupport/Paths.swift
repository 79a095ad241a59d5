import Glibc
import LinuxIO

/// Where the built products and scratch files are.
public enum Paths {
    /// The directory holding the built executables (beside the running test binary).
    public static var products: String {
        var buffer = [CChar](repeating: 0, count: 4096)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        let path = String(decoding: buffer[0 ..< max(count, 0)].map { UInt8(bitPattern: $0) }, as: UTF8.self)
        // …/debug/zendPackageTests.xctest → …/debug
        return String(path[..<(path.lastIndex(of: "/") ?? path.endIndex)])
    }

    /// The checkout's root directory (for files tests check: the man page, the catalog, …).
    public static let repository = "/" + #filePath.split(separator: "/").dropLast(3).joined(separator: "/")

    /// Path to a built product such as `zend` or `zen`.
    public static func product(_ name: String) -> String { products + "/" + name }

    /// A new, empty scratch directory for one test.
    public static func scratchDirectory(_ label: String) -> String {
        var template = Array("/tmp/zend-test-\(label)-XXXXXX".utf8CString)
        return template.withUnsafeMutableBufferPointer { buffer in
            String(cString: mkdtemp(buffer.baseAddress!)!)
        }
    }

    /// Writes `text` to `path`.
    public static func write(_ text: String, to path: String) {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        precondition(fd >= 0, "cannot write \(path)")
        FileDescriptor(rawValue: fd).writeAllIgnoringErrors(text)
        Glibc.close(fd)
    }

    /// Contents of `path`, or "" if it cannot be read.
    public static func read(_ path: String) -> String {
        (try? FileDescriptor.readFile(path)).map { String(decoding: $0, as: UTF8.self) } ?? ""
    }

    /// Removes a scratch directory and what is in it.
    public static func remove(_ directory: String) {
        guard directory.hasPrefix("/tmp/zend-test-") else { return }
        var pid: pid_t = 0
        let argv = [strdup("/bin/rm"), strdup("-rf"), strdup(directory), nil]
        defer { for pointer in argv { free(pointer) } }
        if posix_spawn(&pid, "/bin/rm", nil, nil, argv, environ) == 0 {
            var status: Int32 = 0
            waitpid(pid, &status, 0)
        }
    }
}

extension Paths {
    /// The threads of process `pid`: thread id and name (from /proc/PID/task).
    public static func threads(of pid: pid_t) -> [(id: Int32, name: String)] {
        guard let directory = opendir("/proc/\(pid)/task") else { return [] }
        defer { closedir(directory) }
        var result: [(Int32, String)] = []
        while let entry = readdir(directory) {
            let name = withUnsafeBytes(of: entry.pointee.d_name) { String(decoding: $0.prefix { $0 != 0 }, as: UTF8.self) }
            guard let id = Int32(name) else { continue }
            let comm = read("/proc/\(pid)/task/\(id)/comm").split(separator: "\n").first.map(String.init) ?? ""
            result.append((id, comm))
        }
        return result
    }
}
