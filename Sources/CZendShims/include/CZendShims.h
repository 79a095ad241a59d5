// The Linux calls and headers Swift's Glibc module does not export.
#ifndef CZENDSHIMS_H
#define CZENDSHIMS_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/signalfd.h>
#include <sys/timerfd.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>

#include <sys/syscall.h>
#include <unistd.h>

// read(2) and send(2) as plain system calls. glibc makes both cancellation points: in a
// process with threads each call switches asynchronous cancellation on and off around the
// system call, which costs more user-space instructions than the rest of a request. zend
// never cancels a thread, so the reactor's hot path calls the kernel directly.
static inline long zend_read(int fd, void *buffer, size_t count) {
    return syscall(SYS_read, fd, buffer, count);
}
static inline long zend_send(int fd, const void *buffer, size_t count, int flags) {
    return syscall(SYS_sendto, fd, buffer, count, flags, (void *)0, 0);
}

// malloc_trim(3): gives the allocator's free memory back to the system after load.
#include <malloc.h>

// accept4(2); needs _GNU_SOURCE, which shim.c defines.
int zend_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

// The peer of a unix socket as the kernel recorded it at connect (SO_PEERCRED, whose
// struct ucred needs _GNU_SOURCE). Returns 0, or -1 with errno set.
int zend_peer_credentials(int fd, int *pid, unsigned *uid, unsigned *gid);

// The number of CPUs this process may run on (sched_getaffinity + CPU_COUNT), or -1.
int zend_available_cpus(void);

// Names the calling thread (pthread_setname_np; Linux keeps 15 bytes).
void zend_set_thread_name(const char *name);

// posix_spawn_file_actions_addclosefrom_np: a spawned child inherits no stray descriptors.
#include <spawn.h>
int zend_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif
