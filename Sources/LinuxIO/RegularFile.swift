import Glibc

/// Why a bounded read of a regular file failed.
public enum RegularFileError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A system call failed (`open`, `fstat`, `read`), e.g. no such file or no permission.
    case system(SystemError)
    /// The path is something other than a regular file; `kind` says what, with its
    /// article: "a FIFO", "a directory", "a character device", …
    case notRegular(kind: String)
    /// The file holds more than `limit` bytes; `size` is its size when `fstat` knew it
    /// (nil when the file grew past the limit while being read).
    case tooLarge(size: Int?, limit: Int)

    /// The errno that best describes the failure (for `sd_notify` `ERRNO=`).
    public var errno: Int32 {
        switch self {
        case .system(let error): error.errno
        case .notRegular(let kind): kind == "a directory" ? EISDIR : EINVAL
        case .tooLarge: EFBIG
        }
    }

    /// What went wrong, as the end of a sentence about the file: "is a FIFO, not a regular
    /// file", "is 20000000 bytes, more than the limit of 16777216", "No such file or directory".
    public var reason: String {
        switch self {
        case .system(let error): error.reason
        case .notRegular(let kind): "is \(kind), not a regular file"
        case .tooLarge(let size?, let limit): "is \(size) bytes, more than the limit of \(limit) bytes"
        case .tooLarge(nil, let limit): "is more than the limit of \(limit) bytes"
        }
    }

    public var description: String { reason }
}

extension FileDescriptor {
    /// Reads a configuration file that must be a regular file of at most `maxBytes` bytes,
    /// without ever waiting on what the path turns out to be.
    ///
    /// The path is opened with `O_RDONLY|O_NONBLOCK|O_CLOEXEC|O_NOCTTY`, so a FIFO opens
    /// at once instead of waiting for a writer, and a terminal never becomes the
    /// controlling one. `fstat` on the open descriptor (not the path, so a swap in between
    /// does not matter) refuses anything but a regular file: a FIFO, a device such as
    /// `/dev/zero`, a directory, a socket. A file `fstat` says is larger than `maxBytes`
    /// is refused before reading; otherwise at most `maxBytes + 1` bytes are read, so a
    /// file growing meanwhile (or a `/proc` file reporting size 0) can neither exhaust
    /// memory nor slip past the limit.
    public static func readRegularFile(_ path: String, maxBytes: Int) throws(RegularFileError) -> [UInt8] {
        precondition(maxBytes >= 0, "maxBytes must not be negative")
        let opened: Int32
        do {
            opened = try retryingInterrupts("open(\(path))") {
                open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY)
            }
        } catch {
            throw .system(error)
        }
        let fd = FileDescriptor(rawValue: opened)
        defer { fd.close() }

        var status = stat()
        do {
            try retryingInterrupts("fstat(\(path))") { fstat(fd.rawValue, &status) }
        } catch {
            throw .system(error)
        }
        if let kind = Self.fileKind(status.st_mode) {
            throw .notRegular(kind: kind)
        }
        if Int(status.st_size) > maxBytes {
            throw .tooLarge(size: Int(status.st_size), limit: maxBytes)
        }

        let wanted = maxBytes + 1
        var result = [UInt8](repeating: 0, count: min(max(Int(status.st_size) + 1, 4096), wanted))
        var filled = 0
        while filled < wanted {
            if filled == result.count {
                result.append(contentsOf: repeatElement(0, count: min(result.count, wanted - result.count)))
            }
            let count = result.withUnsafeMutableBytes { buffer in
                Glibc.read(fd.rawValue, buffer.baseAddress! + filled, buffer.count - filled)
            }
            if count < 0 {
                let code = Glibc.errno
                if code == EINTR { continue }
                throw .system(SystemError("read(\(path))", errno: code))
            }
            if count == 0 { break }
            filled += count
        }
        if filled > maxBytes {
            throw .tooLarge(size: nil, limit: maxBytes)
        }
        result.removeSubrange(filled...)
        return result
    }

    /// "a FIFO", "a directory", … for anything but a regular file; nil for a regular file.
    static func fileKind(_ mode: mode_t) -> String? {
        switch mode & S_IFMT {
        case S_IFREG: nil
        case S_IFIFO: "a FIFO"
        case S_IFDIR: "a directory"
        case S_IFCHR: "a character device"
        case S_IFBLK: "a block device"
        case S_IFSOCK: "a socket"
        case S_IFLNK: "a symbolic link"
        default: "a file of type \(String(mode & S_IFMT, radix: 8))"
        }
    }
}
