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

// accept4(2); needs _GNU_SOURCE, which shim.c defines.
int zend_accept4(int fd, struct sockaddr *address, socklen_t *length, int flags);

// The number of CPUs this process may run on (sched_getaffinity + CPU_COUNT), or -1.
int zend_available_cpus(void);

// Names the calling thread (pthread_setname_np; Linux keeps 15 bytes).
void zend_set_thread_name(const char *name);

// posix_spawn_file_actions_addclosefrom_np: a spawned child inherits no stray descriptors.
#include <spawn.h>
int zend_spawn_file_actions_addclosefrom(posix_spawn_file_actions_t *actions, int from);

#endif
