/* A private Docker engine per test (tests/harness/private-dockerd): Debian's
 * dockerd with its own data root, exec root, pidfile and socket under a
 * fresh /tmp folder; never the machine's own engine. A watchdog process
 * stops it and removes the folder if the test dies without stopping it. */
#ifndef HODEI_TEST_DOCKERD_H
#define HODEI_TEST_DOCKERD_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

typedef struct {
    char dir[64];   /* /tmp/hd-XXXXXX */
    char sock[96];  /* dir/d.sock */
    char host[112]; /* unix://dir/d.sock, as DOCKER_HOST and providers' config.host */
    char script[600];
    pid_t watchdog;
    bool up;
} harness_dockerd;

/* Starts the engine. false when no engine can run on this machine at all,
 * with the reason in why (the test then skips, saying so). root is the
 * source tree (HODEI_ROOT). */
bool harness_dockerd_start(harness_dockerd *d, const char *root, char *why, size_t why_len);
/* Stops it with its containers and removes its folder. Idempotent. */
void harness_dockerd_stop(harness_dockerd *d);
/* `docker ARGS` against it through sh; returns the exit code, stdout (and
 * stderr) into out when out != NULL. */
int harness_docker(harness_dockerd *d, char *out, size_t out_len, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Imports an image holding only busybox (and /etc/os-release) as name. */
void harness_dockerd_busybox(harness_dockerd *d, const char *name);

#endif
