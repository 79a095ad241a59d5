// startup ROUNDS FILE: exec-to-first-answer and exec-to-exit times, round-robin.
//
// FILE has one command per line: "LABEL MODE PROGRAM ARGS..." where MODE is
//   e  time from fork+exec to exit (e.g. --version), or
//   c  time from fork+exec to the first answer to "Beautiful is better than?" on
//      127.0.0.1:PORT ("{port}" in ARGS becomes a fresh port); then SIGTERM.
// The commands run in turn, ROUNDS times, so a busy machine slows all of them alike.
// Children are pinned to CPU 0, this program to CPU 1. Printed per label: the median
// and quartiles of the wall time and of the child's on-CPU time (all its threads,
// from /proc/PID/task/*/schedstat, read at the answer or before reaping), which
// depends less on what else the machine runs.
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <dirent.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_COMMANDS 64
#define MAX_ARGS 64

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int compare(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double on_cpu_ms(pid_t pid) {
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    DIR *tasks = opendir(path);
    if (!tasks) return -1;
    double total = 0;
    struct dirent *task;
    while ((task = readdir(tasks))) {
        if (task->d_name[0] == '.') continue;
        char file[320];
        snprintf(file, sizeof file, "/proc/%d/task/%s/schedstat", pid, task->d_name);
        FILE *stat = fopen(file, "r");
        unsigned long long ns;
        if (stat && fscanf(stat, "%llu", &ns) == 1) total += ns / 1e6;
        if (stat) fclose(stat);
    }
    closedir(tasks);
    return total;
}

static int answered(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons(port)};
    address.sin_addr.s_addr = htonl(0x7f000001);
    if (connect(fd, (struct sockaddr *)&address, sizeof address)) { close(fd); return 0; }
    const char *question = "Beautiful is better than?";
    if (write(fd, question, strlen(question)) < 0) { close(fd); return 0; }
    char answer[32];
    int got = 0;
    while (got < 5) {
        ssize_t n = read(fd, answer + got, sizeof answer - got);
        if (n <= 0) break;
        got += n;
    }
    close(fd);
    return got >= 5 && !memcmp(answer, "Ugly.", 5);
}

static void pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    sched_setaffinity(0, sizeof set, &set);
}

int main(int argc, char **argv) {
    if (argc != 3) { fprintf(stderr, "usage: startup ROUNDS FILE\n"); return 2; }
    int rounds = atoi(argv[1]);
    FILE *file = fopen(argv[2], "r");
    if (!file || rounds < 1) { perror(argv[2]); return 2; }
    char *label[MAX_COMMANDS], mode[MAX_COMMANDS], **args[MAX_COMMANDS];
    int count = 0;
    char line[4096];
    while (count < MAX_COMMANDS && fgets(line, sizeof line, file)) {
        if (line[0] == '#' || line[0] == '\n') continue;
        line[strcspn(line, "\n")] = 0;
        char *save, *copy = strdup(line);
        label[count] = strtok_r(copy, " ", &save);
        char *m = strtok_r(NULL, " ", &save);
        if (!label[count] || !m) continue;
        mode[count] = m[0];
        args[count] = calloc(MAX_ARGS, sizeof(char *));
        for (int k = 0; k < MAX_ARGS - 1 && (args[count][k] = strtok_r(NULL, " ", &save)); k++) {}
        count++;
    }
    pin(1);
    double *wall[MAX_COMMANDS], *cpu[MAX_COMMANDS];
    for (int v = 0; v < count; v++) {
        wall[v] = calloc(rounds, sizeof(double));
        cpu[v] = calloc(rounds, sizeof(double));
    }
    int devnull = open("/dev/null", O_RDWR), sequence = 0;
    for (int round = 0; round < rounds; round++) {
        for (int v = 0; v < count; v++) {
            int port = 21000 + (getpid() * 7 + sequence++ * 13) % 20000;
            char port_text[16];
            snprintf(port_text, sizeof port_text, "%d", port);
            char *argument[MAX_ARGS];
            int k = 0;
            for (; args[v][k]; k++) {
                char *at = strstr(args[v][k], "{port}");
                if (!at) { argument[k] = args[v][k]; continue; }
                argument[k] = malloc(strlen(args[v][k]) + 16);
                sprintf(argument[k], "%.*s%s%s", (int)(at - args[v][k]), args[v][k], port_text, at + 6);
            }
            argument[k] = NULL;
            double start = now_ms(), end;
            pid_t pid = fork();
            if (pid == 0) {
                pin(0);
                dup2(devnull, 1);
                dup2(devnull, 2);
                execv(argument[0], argument);
                _exit(127);
            }
            int status;
            if (mode[v] == 'c') {
                for (;;) {
                    if (answered(port)) { end = now_ms(); cpu[v][round] = on_cpu_ms(pid); break; }
                    usleep(20);
                    if (waitpid(pid, &status, WNOHANG) == pid) {
                        // Most likely the port was taken: try again with another.
                        fprintf(stderr, "%s exited with status %d on port %d; again\n", label[v], status, port);
                        if (WIFEXITED(status) && WEXITSTATUS(status) == 127) return 1;
                        v--;
                        goto next;
                    }
                    if (now_ms() - start > 10000) { fprintf(stderr, "%s: no answer\n", label[v]); kill(pid, SIGKILL); return 1; }
                }
                kill(pid, SIGTERM);
                for (int waited = 0; waitpid(pid, &status, WNOHANG) != pid; waited++) {
                    if (waited > 10000) { kill(pid, SIGKILL); waitpid(pid, &status, 0); break; }
                    usleep(500);
                }
            } else {
                siginfo_t info;
                waitid(P_PID, pid, &info, WEXITED | WNOWAIT);
                end = now_ms();
                cpu[v][round] = on_cpu_ms(pid);
                waitpid(pid, &status, 0);
                if (!WIFEXITED(status) || WEXITSTATUS(status) == 127) fprintf(stderr, "%s: status %d\n", label[v], status);
            }
            wall[v][round] = end - start;
        next:;
        }
    }
    printf("%-36s %28s   %28s\n", "", "wall ms: median (p25-p75)", "on-CPU ms: median (p25-p75)");
    for (int v = 0; v < count; v++) {
        qsort(wall[v], rounds, sizeof(double), compare);
        qsort(cpu[v], rounds, sizeof(double), compare);
        printf("%-36s %8.3f (%6.3f-%6.3f)   %8.3f (%6.3f-%6.3f)  n=%d\n", label[v], wall[v][rounds / 2],
               wall[v][rounds / 4], wall[v][3 * rounds / 4], cpu[v][rounds / 2], cpu[v][rounds / 4],
               cpu[v][3 * rounds / 4], rounds);
    }
    return 0;
}
