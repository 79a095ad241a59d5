import Glibc

/// A mutual-exclusion lock around a value, built on a `pthread_mutex_t`.
///
/// zend uses this instead of `Synchronization.Mutex` so that ThreadSanitizer sees its
/// locking: TSan intercepts `pthread_mutex_lock` and `pthread_mutex_unlock` and so
/// knows that what one thread wrote under the lock happens before what the next holder
/// reads, whereas this toolchain's TSan does not see `Mutex` and reports every access
/// guarded by one as a data race. `scripts/test-sanitizers` checks both facts with a
/// small program (Tests/Sanitizers/LockCheck.swift).
///
/// Copies share one lock, like references to a class. The state and the mutex live in
/// one heap allocation (a `ManagedBuffer`), where neither moves while in use: a
/// `pthread_mutex_t` must keep its address, which a stored property does not promise.
public struct Lock<State> {
    @usableFromInline let storage: Storage

    /// A lock guarding `initialState`.
    public init(_ initialState: State) {
        storage = Storage.create(initialState)
    }

    /// Runs `body` with the state, holding the lock. The mutex is not recursive: calling
    /// `withLock` on the same lock from `body` deadlocks.
    @inlinable
    public func withLock<Result, Failure: Error>(
        _ body: (inout State) throws(Failure) -> Result
    ) throws(Failure) -> Result {
        try storage.withUnsafeMutablePointers { (state, mutex) throws(Failure) -> Result in
            let status = pthread_mutex_lock(mutex)
            precondition(status == 0, "pthread_mutex_lock failed: \(status)")
            defer { pthread_mutex_unlock(mutex) }
            return try body(&state.pointee)
        }
    }

    /// The state beside its mutex, in one allocation.
    @usableFromInline
    final class Storage: ManagedBuffer<State, pthread_mutex_t> {
        static func create(_ initialState: State) -> Storage {
            let buffer = Storage.create(minimumCapacity: 1) { _ in initialState }
            buffer.withUnsafeMutablePointerToElements { mutex in
                mutex.initialize(to: pthread_mutex_t())
                let status = pthread_mutex_init(mutex, nil)
                precondition(status == 0, "pthread_mutex_init failed: \(status)")
            }
            return unsafeDowncast(buffer, to: Storage.self)
        }

        deinit {
            // The header (the state) is destroyed by ManagedBuffer itself.
            _ = withUnsafeMutablePointerToElements { pthread_mutex_destroy($0) }
        }
    }
}

// @unchecked Sendable: the state is read and written only inside `withLock`, that is
// between `pthread_mutex_lock` and `pthread_mutex_unlock` of the mutex beside it, so no
// two threads ever touch it at once; the mutex is made for use from any thread and is
// destroyed only when the last copy of the lock is gone (ManagedBuffer's reference
// count). Only a lock of Sendable state is Sendable, so a value that must not cross
// threads cannot be put in on one thread and taken out on another.
extension Lock: @unchecked Sendable where State: Sendable {}
