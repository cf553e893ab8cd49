/* hodei-bench-stamp FILE: a job's first act in the dispatch benchmark.
 * Appends "<HODEI_JOB_ID> <wall µs>" to FILE. No libraries beyond libc, so
 * its own start-up adds as little as possible to what is measured. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    if (argc != 2)
        return 2;
    const char *id = getenv("HODEI_JOB_ID");
    char line[128];
    int n = snprintf(line, sizeof line, "%s %lld\n", id ? id : "?",
                     (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000);
    int fd = open(argv[1], O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (fd < 0 || write(fd, line, (size_t)n) != n)
        return 1;
    close(fd);
    return 0;
}
