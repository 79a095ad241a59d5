import CSystemd
import Glibc
import LinuxIO

/// A socket passed in by systemd (`LISTEN_FDS`, `sd_listen_fds_with_names`).
public struct PassedSocket: Sendable {
    /// What was passed: a listening socket (`Accept=no`) or one client (`Accept=yes`).
    public enum Kind: Sendable, Equatable {
        case listening
        case connection
    }

    public var fd: FileDescriptor
    /// The `FileDescriptorName=` of the socket unit (`connection` for `Accept=yes`).
    public var name: String
    public var kind: Kind
    /// The bound address, for logs and status.
    public var address: SocketAddress?
}

/// A passed descriptor zend cannot serve.
public struct SocketActivationError: Error, CustomStringConvertible {
    public var description: String
}

/// Socket activation: takes the sockets systemd passed in.
public enum SocketActivation {
    /// The passed sockets, made non-blocking and close-on-exec; the `LISTEN_*` variables
    /// are removed so nothing started later inherits them. Empty when nothing was passed.
    public static func takePassedSockets() throws(SocketActivationError) -> [PassedSocket] {
        var names: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?
        let count = sd_listen_fds_with_names(1, &names)
        defer {
            if let names {
                for index in 0 ..< Int(max(count, 0)) { free(names[index]) }
                free(names)
            }
        }
        guard count >= 0 else {
            throw SocketActivationError(description: "cannot read passed sockets: \(SystemError("sd_listen_fds", errno: -count))")
        }
        var sockets: [PassedSocket] = []
        for index in 0 ..< Int(count) {
            let raw = SD_LISTEN_FDS_START + Int32(index)
            let fd = FileDescriptor(rawValue: raw)
            let name = names.flatMap { $0[index] }.map { String(cString: $0) } ?? "unknown"
            let kind: PassedSocket.Kind
            if sd_is_socket(raw, AF_UNSPEC, Int32(SOCK_STREAM.rawValue), 1) > 0 {
                kind = .listening
            } else if sd_is_socket(raw, AF_UNSPEC, Int32(SOCK_STREAM.rawValue), 0) > 0 {
                kind = .connection
            } else {
                throw SocketActivationError(description:
                    "passed file descriptor \(raw) (\(name)) is not a stream socket; "
                    + "zend serves ListenStream= sockets only")
            }
            do {
                try fd.setNonBlocking(true)
                try fd.setCloseOnExec(true)
            } catch {
                throw SocketActivationError(description: "cannot prepare passed socket \(raw) (\(name)): \(error)")
            }
            let address = kind == .listening ? (try? fd.localAddress()).flatMap { $0 } : nil
            sockets.append(PassedSocket(fd: fd, name: name, kind: kind, address: address))
        }
        return sockets
    }
}
