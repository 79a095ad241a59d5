import CZendShims
import Glibc

/// A joinable POSIX thread running one closure (one reactor per thread).
public struct PosixThread: Sendable {
    private let handle: pthread_t

    private final class Box {
        let name: String
        let body: @Sendable () -> Void
        init(name: String, body: @escaping @Sendable () -> Void) {
            self.name = name
            self.body = body
        }
    }

    /// Starts a thread named `name` (shown by `ps -T` and in core dumps) running `body`.
    public static func spawn(name: String, _ body: @escaping @Sendable () -> Void) throws(SystemError) -> PosixThread {
        let box = Unmanaged.passRetained(Box(name: name, body: body))
        var handle = pthread_t()
        let status = pthread_create(&handle, nil, { argument in
            let box = Unmanaged<Box>.fromOpaque(argument!).takeRetainedValue()
            // Linux limits thread names to 15 bytes.
            zend_set_thread_name(String(box.name.utf8.prefix(15))!)
            box.body()
            return nil
        }, box.toOpaque())
        guard status == 0 else {
            box.release()
            throw SystemError("pthread_create", errno: status)
        }
        return PosixThread(handle: handle)
    }

    /// Waits for the thread to finish.
    public func join() {
        _ = pthread_join(handle, nil)
    }
}
