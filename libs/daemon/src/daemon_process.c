/* The process_* metrics every Prometheus client library exports, with the
 * same names and units, read from /proc at each scrape: CPU time, resident
 * and virtual memory, open and maximum file descriptors, start time. A
 * value that cannot be read is left out rather than shown as 0. */
#include "daemon_int.h"

#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#define PROCESS_STAT_MAX 4096

typedef struct {
    uint64_t utime_ticks, stime_ticks, start_ticks; /* fields 14, 15, 22 */
    uint64_t vsize_bytes, rss_pages;                /* fields 23, 24 */
} process_stat;

/* /proc/self/stat after the command name, which may hold spaces and
 * parentheses: fields from the third on follow the last ')'. */
static bool process_stat_read(process_stat *ps)
{
    char text[PROCESS_STAT_MAX];
    FILE *f = fopen("/proc/self/stat", "r");
    if (!f)
        return false;
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *p = strrchr(text, ')');
    if (!p)
        return false;
    p++;
    uint64_t v[24] = {0};
    int field = 3;
    for (char *tok = p; field <= 24; field++) {
        char *end;
        while (*tok == ' ')
            tok++;
        if (field == 3) { /* the state letter */
            tok++;
            continue;
        }
        v[field - 1] = strtoull(tok, &end, 10);
        if (end == tok)
            return false;
        tok = end;
    }
    ps->utime_ticks = v[13];
    ps->stime_ticks = v[14];
    ps->start_ticks = v[21];
    ps->vsize_bytes = v[22];
    ps->rss_pages = v[23];
    return true;
}

/* The boot time (Unix seconds) from /proc/stat's btime line; 0 if unread. */
static uint64_t process_boot_time(void)
{
    char line[256];
    uint64_t btime = 0;
    FILE *f = fopen("/proc/stat", "r");
    while (f && fgets(line, sizeof line, f))
        if (sscanf(line, "btime %" SCNu64, &btime) == 1)
            break;
    if (f)
        fclose(f);
    return btime;
}

/* Entries of /proc/self/fd, the directory's own descriptor left out; -1 if
 * unread. */
static int64_t process_open_fds(void)
{
    DIR *dir = opendir("/proc/self/fd");
    if (!dir)
        return -1;
    int64_t n = 0;
    struct dirent *e;
    while ((e = readdir(dir)) != NULL)
        if (e->d_name[0] != '.')
            n++;
    closedir(dir);
    return n > 0 ? n - 1 : 0;
}

static void process_line(hodei_buf *b, const char *name, const char *help, const char *type,
                         const char *value)
{
    hodei_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n%s %s\n", name, help, name, type, name, value);
}

void daemon_process_metrics(hodei_buf *b)
{
    char v[64];
    process_stat ps;
    long hz = sysconf(_SC_CLK_TCK);
    long page = sysconf(_SC_PAGESIZE);
    if (hz > 0 && page > 0 && process_stat_read(&ps)) {
        uint64_t ticks = ps.utime_ticks + ps.stime_ticks;
        snprintf(v, sizeof v, "%.2f", (double)ticks / (double)hz);
        process_line(b, "process_cpu_seconds_total",
                     "Total user and system CPU time spent in seconds.", "counter", v);
        snprintf(v, sizeof v, "%" PRIu64, ps.rss_pages * (uint64_t)page);
        process_line(b, "process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
                     v);
        snprintf(v, sizeof v, "%" PRIu64, ps.vsize_bytes);
        process_line(b, "process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge",
                     v);
        uint64_t boot = process_boot_time();
        if (boot > 0) {
            snprintf(v, sizeof v, "%.2f", (double)boot + (double)ps.start_ticks / (double)hz);
            process_line(b, "process_start_time_seconds",
                         "Start time of the process since unix epoch in seconds.", "gauge", v);
        }
    }
    int64_t fds = process_open_fds();
    if (fds >= 0) {
        snprintf(v, sizeof v, "%" PRId64, fds);
        process_line(b, "process_open_fds", "Number of open file descriptors.", "gauge", v);
    }
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
        snprintf(v, sizeof v, "%" PRIu64, (uint64_t)rl.rlim_cur);
        process_line(b, "process_max_fds", "Maximum number of open file descriptors.", "gauge", v);
    }
}
