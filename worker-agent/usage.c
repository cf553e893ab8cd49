/* Resource usage for heartbeats: CPU cores in use and memory, from the
 * agent's own cgroup (v2: cpu.stat usage_usec, memory.current, memory.max)
 * when it has one, else from /proc/stat and /proc/meminfo. The files stay
 * open and are re-read with pread; CPU is a delta since the last sample. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <unistd.h>

#include "agent.h"
#include "hodei/time.h"
#include "hodei/util.h"

#define USAGE_READ_MAX 4096 /* bytes read from one stats file */
#define USAGE_CGROUP_PATH_MAX 1024
#define USAGE_CGROUP_ROOT "/sys/fs/cgroup"

static int usage_open(const char *dir, const char *name)
{
    char path[USAGE_CGROUP_PATH_MAX + 64];
    int n = snprintf(path, sizeof path, "%s/%s", dir, name);
    if (n < 0 || (size_t)n >= sizeof path)
        return -1;
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* Reads the whole (small) file from offset 0 into buf; returns the length or -1. */
static ssize_t usage_read(int fd, char *buf, size_t cap)
{
    if (fd < 0)
        return -1;
    ssize_t n = pread(fd, buf, cap - 1, 0);
    if (n < 0)
        return -1;
    buf[n] = '\0';
    return n;
}

/* The number after `key` (which includes its separator) at a line start. */
static bool usage_field(const char *text, const char *key, int64_t *out)
{
    size_t klen = strlen(key);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (strncmp(p, key, klen) != 0)
            continue;
        char *end = NULL;
        long long v = strtoll(p + klen, &end, 10);
        if (end == p + klen || v < 0)
            return false;
        *out = v;
        return true;
    }
    return false;
}

/* The agent's cgroup v2 directory ("0::/path" in /proc/self/cgroup), when
 * /sys/fs/cgroup is a v2 hierarchy. */
static bool usage_cgroup_dir(char *out, size_t out_len)
{
    char buf[USAGE_READ_MAX];
    int fd = open("/proc/self/cgroup", O_RDONLY | O_CLOEXEC);
    ssize_t n = usage_read(fd, buf, sizeof buf);
    if (fd >= 0)
        close(fd);
    const char *line = n > 0 ? strstr(buf, "0::/") : NULL;
    if (!line || (line != buf && line[-1] != '\n'))
        return false;
    line += 3;
    size_t len = strcspn(line, "\n");
    int w = snprintf(out, out_len, "%s%.*s", USAGE_CGROUP_ROOT, (int)len, line);
    if (w < 0 || (size_t)w >= out_len)
        return false;
    return access(USAGE_CGROUP_ROOT "/cgroup.controllers", F_OK) == 0;
}

static void usage_cpu_read(agent_usage *u, int64_t *busy, int64_t *total)
{
    char buf[USAGE_READ_MAX];
    *busy = *total = -1;
    if (usage_read(u->cpu_fd, buf, sizeof buf) <= 0)
        return;
    if (u->cgroup_cpu) {
        usage_field(buf, "usage_usec ", busy);
        return;
    }
    long long v[8] = {0};
    if (sscanf(buf, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1], &v[2], &v[3],
               &v[4], &v[5], &v[6], &v[7]) < 4)
        return;
    /* user nice system idle iowait irq softirq steal */
    *busy = v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
    *total = *busy + v[3] + v[4];
}

void agent_usage_init(agent_usage *u)
{
    char dir[USAGE_CGROUP_PATH_MAX];
    memset(u, 0, sizeof *u);
    u->cpu_fd = u->mem_fd = u->mem_max_fd = -1;
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    u->ncpu = ncpu > 0 ? (int)ncpu : 1;
    if (usage_cgroup_dir(dir, sizeof dir)) {
        u->cpu_fd = usage_open(dir, "cpu.stat");
        u->cgroup_cpu = u->cpu_fd >= 0;
        u->mem_fd = usage_open(dir, "memory.current");
        u->mem_max_fd = usage_open(dir, "memory.max");
    }
    if (u->cpu_fd < 0)
        u->cpu_fd = open("/proc/stat", O_RDONLY | O_CLOEXEC);
    u->meminfo_fd = open("/proc/meminfo", O_RDONLY | O_CLOEXEC);
    u->prev_wall_us = hodei_mono_ns() / 1000;
    usage_cpu_read(u, &u->prev_busy, &u->prev_total);
}

void agent_usage_fini(agent_usage *u)
{
    int *fds[] = {&u->cpu_fd, &u->mem_fd, &u->mem_max_fd, &u->meminfo_fd};
    for (size_t i = 0; i < sizeof fds / sizeof fds[0]; i++) {
        if (*fds[i] >= 0)
            close(*fds[i]);
        *fds[i] = -1;
    }
}

static double usage_cpu_cores(agent_usage *u)
{
    int64_t busy, total, now_us = hodei_mono_ns() / 1000;
    usage_cpu_read(u, &busy, &total);
    double cores = 0;
    if (busy >= 0 && u->prev_busy >= 0 && busy >= u->prev_busy) {
        if (u->cgroup_cpu && now_us > u->prev_wall_us)
            cores = (double)(busy - u->prev_busy) / (double)(now_us - u->prev_wall_us);
        else if (!u->cgroup_cpu && total > u->prev_total)
            cores = u->ncpu * (double)(busy - u->prev_busy) / (double)(total - u->prev_total);
    }
    u->prev_busy = busy;
    u->prev_total = total;
    u->prev_wall_us = now_us;
    return cores < 0 ? 0 : cores > u->ncpu ? u->ncpu : cores;
}

/* Memory of the machine (MemTotal) and in use (MemTotal - MemAvailable). */
static void usage_meminfo(agent_usage *u, int64_t *total, int64_t *used)
{
    char buf[USAGE_READ_MAX];
    int64_t t_kb = 0, avail_kb = 0;
    *total = *used = 0;
    if (usage_read(u->meminfo_fd, buf, sizeof buf) <= 0 || !usage_field(buf, "MemTotal:", &t_kb))
        return;
    if (!usage_field(buf, "MemAvailable:", &avail_kb))
        avail_kb = t_kb;
    *total = t_kb * 1024;
    *used = (t_kb - avail_kb) * 1024;
}

/* cgroup memory.max: a number, or "max" (then the machine's total). */
static int64_t usage_mem_limit(agent_usage *u, int64_t machine_total)
{
    char buf[64];
    int64_t v;
    if (usage_read(u->mem_max_fd, buf, sizeof buf) <= 0)
        return machine_total;
    buf[strcspn(buf, "\n")] = '\0';
    if (!hodei_parse_i64(buf, 1, INT64_MAX, &v) || (machine_total > 0 && v > machine_total))
        return machine_total;
    return v;
}

void agent_usage_sample(agent_usage *u, Hodei__V1__ResourceUsage *out)
{
    char buf[64];
    int64_t total, used, cg;
    out->cpu_cores_used = usage_cpu_cores(u);
    usage_meminfo(u, &total, &used);
    if (usage_read(u->mem_fd, buf, sizeof buf) > 0) {
        buf[strcspn(buf, "\n")] = '\0';
        if (hodei_parse_i64(buf, 0, INT64_MAX, &cg)) {
            used = cg;
            total = usage_mem_limit(u, total);
        }
    }
    out->memory_bytes_used = used;
    out->memory_bytes_total = total;
}

/* Kernel machine names as the job specs spell architectures. */
static const char *usage_arch(const char *machine)
{
    if (strcmp(machine, "x86_64") == 0)
        return "amd64";
    if (strcmp(machine, "aarch64") == 0)
        return "arm64";
    return machine;
}

void agent_capacity(agent_usage *u, const agent_config *cfg, Hodei__V1__ResourceRequirements *out,
                    char *arch, size_t arch_len)
{
    Hodei__V1__ResourceUsage now = HODEI__V1__RESOURCE_USAGE__INIT;
    struct utsname un;
    agent_usage_sample(u, &now);
    out->cpu_cores = cfg->cpu_millis > 0 ? (double)cfg->cpu_millis / 1000.0 : u->ncpu;
    out->memory_bytes = cfg->memory_bytes > 0 ? cfg->memory_bytes : now.memory_bytes_total;
    hodei_strlcpy(arch, uname(&un) == 0 ? usage_arch(un.machine) : "", arch_len);
    out->architecture = arch;
}
