/* The Firecracker provider: each worker is a microVM, one `firecracker`
 * process (or `jailer` running it, when configured) per worker, driven over
 * its API socket (HTTP on a unix socket, libcurl). Boot, in this order:
 *
 *   PUT /machine-config   vCPUs and memory from the worker row (or defaults)
 *   PUT /boot-source      the kernel and its command line (no secret in it)
 *   PUT /drives/rootfs    the worker root filesystem, read-only
 *   PUT /network-interfaces/eth0  a tap device made for the VM (and put on a bridge)
 *   PUT /mmds/config      MMDS V2 on eth0
 *   PUT /mmds             {"hodei": {server, worker_id, otp, log_level}}: the
 *                         token reaches the guest only through MMDS
 *   PUT /actions          InstanceStart
 *
 * The guest's init (deploy/firecracker/hodei-init) reads MMDS and starts
 * hodei-worker. Teardown: PUT /actions SendCtrlAltDel (the guest reboots,
 * and with reboot=k Firecracker exits), SIGKILL after destroy_grace, then
 * the tap, the socket, the VM folder (and the jail) are removed.
 *
 * State: <state dir>/firecracker/<worker id>/ (api.sock, firecracker.log,
 * pid = "<pid> <start time>"); provider_ref = "<pid>:<start time>". A VM is
 * one host's: the scope is a UUID kept in <state dir>/firecracker/scope
 * (provider.h, "Scope"). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/if_tun.h>
#include <linux/sockios.h>
#include <net/if.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "hodei/id.h"
#include "hodei/log.h"
#include "hodei/time.h"
#include "hodei/util.h"
#include "prov_http.h"
#include "provider.h"

#define FC_PATH_MAX 4096
#define FC_POLL_MS 20
#define FC_KILL_WAIT_MS 3000
#define FC_REQUEST_MS 5000
#define FC_VCPU_MAX 32
#define FC_CHILDREN_MAX 4096
#define FC_SOCKET_NAME "api.sock"
#define FC_JAIL_SOCKET "/run/firecracker.socket"
#define FC_MIB (1024 * 1024)

typedef struct {
    prov_driver base; /* first: the provisioner sees only this */
    char dir[FC_PATH_MAX];
    char firecracker[FC_PATH_MAX];
    char jailer[FC_PATH_MAX]; /* "" = no jailer */
    char chroot_base[FC_PATH_MAX];
    char kernel[FC_PATH_MAX];
    char rootfs[FC_PATH_MAX];
    char boot_args[1024];
    char bridge[IFNAMSIZ];
    char tap_prefix[8];
    int64_t uid, gid; /* the jailer's */
    int64_t vcpus_default, mem_mib_default;
    int64_t grace_ms;
    int64_t socket_wait_ms; /* for the API socket to appear */
    pthread_mutex_t mu;
    pid_t children[FC_CHILDREN_MAX];
    size_t n_children;
} fc_driver;

static fc_driver *fc_of(prov_driver *drv)
{
    return (fc_driver *)drv;
}

/* ------------------------------------------------------------ processes */

static bool fc_read(const char *path, char *buf, size_t cap)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    ssize_t n = read(fd, buf, cap - 1);
    close(fd);
    if (n < 0)
        return false;
    buf[n] = '\0';
    return true;
}

/* Start time (field 22 of /proc/<pid>/stat); false when gone or a zombie. */
static bool fc_proc_start(pid_t pid, uint64_t *start)
{
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!fc_read(path, buf, sizeof buf))
        return false;
    char *p = strrchr(buf, ')');
    unsigned long long st = 0;
    if (!p || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
        return false;
    if (sscanf(p + 2,
               "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %*u %*u %*d %*d %*d %*d %*d %*d"
               " %llu",
               &st) != 1)
        return false;
    *start = st;
    return true;
}

static void fc_reap(fc_driver *fd)
{
    pthread_mutex_lock(&fd->mu);
    for (size_t i = 0; i < fd->n_children;) {
        pid_t r = waitpid(fd->children[i], NULL, WNOHANG);
        if (r == fd->children[i] || (r < 0 && errno == ECHILD))
            fd->children[i] = fd->children[--fd->n_children];
        else
            i++;
    }
    pthread_mutex_unlock(&fd->mu);
}

static void fc_vm_dir(const fc_driver *fd, const char *worker_id, char *out, size_t len)
{
    if (snprintf(out, len, "%s/%s", fd->dir, worker_id) >= (int)len)
        out[0] = '\0'; /* too long: matches nothing */
}

static void fc_vm_id(const char *worker_id, char out[64])
{
    snprintf(out, 64, "hodei-%s", worker_id);
}

/* The jail's root: <chroot base>/<exec file name>/<vm id>/root. */
static void fc_jail_root(const fc_driver *fd, const char *worker_id, char *out, size_t len)
{
    char vm[64];
    const char *slash = strrchr(fd->firecracker, '/');
    fc_vm_id(worker_id, vm);
    if (snprintf(out, len, "%s/%s/%s/root", fd->chroot_base, slash ? slash + 1 : fd->firecracker,
                 vm) >= (int)len)
        out[0] = '\0';
}

static void fc_socket_path(const fc_driver *fd, const char *worker_id, char *out, size_t len)
{
    if (fd->jailer[0]) {
        char root[FC_PATH_MAX];
        fc_jail_root(fd, worker_id, root, sizeof root);
        snprintf(out, len, "%s" FC_JAIL_SOCKET, root);
    } else {
        char dir[FC_PATH_MAX];
        fc_vm_dir(fd, worker_id, dir, sizeof dir);
        snprintf(out, len, "%s/" FC_SOCKET_NAME, dir);
    }
}

/* "<pid> <start>" in <vm dir>/pid, else the ref. */
static bool fc_ident(const fc_driver *fd, const char *worker_id, const char *ref, pid_t *pid,
                     uint64_t *start)
{
    char dir[FC_PATH_MAX], path[FC_PATH_MAX + 16], buf[128];
    long long p = 0;
    unsigned long long s = 0;
    fc_vm_dir(fd, worker_id, dir, sizeof dir);
    snprintf(path, sizeof path, "%s/pid", dir);
    bool ok = (fc_read(path, buf, sizeof buf) && sscanf(buf, "%lld %llu", &p, &s) == 2) ||
              (ref && sscanf(ref, "%lld:%llu", &p, &s) == 2);
    if (!ok || p <= 1 || p > INT32_MAX)
        return false;
    *pid = (pid_t)p;
    *start = s;
    return true;
}

static bool fc_alive(pid_t pid, uint64_t start)
{
    uint64_t now;
    return fc_proc_start(pid, &now) && now == start;
}

/* ------------------------------------------------------------ the tap */

static hodei_status fc_tap_create(const fc_driver *fd, const char *tap, hodei_err *err)
{
    struct ifreq ifr = {0};
    int tfd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tfd < 0)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "tap %s: /dev/net/tun: %s", tap,
                             strerror(errno));
    hodei_strlcpy(ifr.ifr_name, tap, sizeof ifr.ifr_name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    hodei_status st = HODEI_OK;
    if (ioctl(tfd, TUNSETIFF, &ifr) != 0 || ioctl(tfd, TUNSETPERSIST, 1) != 0 ||
        (fd->jailer[0] && (ioctl(tfd, TUNSETOWNER, (unsigned long)fd->uid) != 0 ||
                           ioctl(tfd, TUNSETGROUP, (unsigned long)fd->gid) != 0)))
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "tap %s: %s", tap, strerror(errno));
    close(tfd);
    if (st != HODEI_OK)
        return st;
    int s = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    memset(&ifr, 0, sizeof ifr);
    hodei_strlcpy(ifr.ifr_name, tap, sizeof ifr.ifr_name);
    if (s < 0 || ioctl(s, SIOCGIFFLAGS, &ifr) != 0 ||
        (ifr.ifr_flags |= IFF_UP, ioctl(s, SIOCSIFFLAGS, &ifr) != 0))
        st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "tap %s: bringing it up: %s", tap,
                           strerror(errno));
    if (st == HODEI_OK && fd->bridge[0]) {
        struct ifreq br = {0};
        hodei_strlcpy(br.ifr_name, fd->bridge, sizeof br.ifr_name);
        br.ifr_ifindex = (int)if_nametoindex(tap);
        if (ioctl(s, SIOCBRADDIF, &br) != 0)
            st = hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "tap %s: adding it to bridge %s: %s",
                               tap, fd->bridge, strerror(errno));
    }
    if (s >= 0)
        close(s);
    return st;
}

static void fc_tap_delete(const char *tap)
{
    struct ifreq ifr = {0};
    int tfd = open("/dev/net/tun", O_RDWR | O_CLOEXEC);
    if (tfd < 0 || !if_nametoindex(tap)) {
        if (tfd >= 0)
            close(tfd);
        return;
    }
    hodei_strlcpy(ifr.ifr_name, tap, sizeof ifr.ifr_name);
    ifr.ifr_flags = IFF_TAP | IFF_NO_PI | IFF_VNET_HDR;
    if (ioctl(tfd, TUNSETIFF, &ifr) == 0 && ioctl(tfd, TUNSETPERSIST, 0) != 0)
        HLOG_WARN("tap %s: %s", tap, strerror(errno));
    close(tfd);
}

/* tap name: prefix + 8 hex digits of the worker id (IFNAMSIZ = 16). */
static void fc_tap_name(const fc_driver *fd, const char *worker_id, char out[IFNAMSIZ])
{
    char hex[16] = "";
    size_t n = 0;
    for (const char *p = worker_id + strlen(worker_id); p > worker_id && n < 8;) {
        --p;
        if (*p != '-')
            hex[7 - n++] = *p;
    }
    snprintf(out, IFNAMSIZ, "%.6s%.8s", fd->tap_prefix, hex);
}

/* ------------------------------------------------------------ the API */

static hodei_status fc_put(const char *sock, const char *path, json_t *body, const char *what,
                           hodei_err *err)
{
    prov_http_target t = {
        .base_url = "http://localhost", .unix_socket = sock, .timeout_ms = FC_REQUEST_MS};
    prov_http_resp r;
    char *text = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!text)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", what);
    prov_http_resp_init(&r);
    hodei_status st = prov_http_do(&t, "PUT", path, text, NULL, &r, NULL, NULL, err);
    explicit_bzero(text, strlen(text)); /* the MMDS body holds the token */
    free(text);
    if (st == HODEI_OK && r.status != 204 && r.status != 200) {
        json_error_t jerr;
        json_t *e = json_loads(r.body.data ? r.body.data : "", 0, &jerr);
        const char *fault = json_string_value(json_object_get(e, "fault_message"));
        st = hodei_err_set(err, r.status == 400 ? HODEI_ERR_INVALID : HODEI_ERR_UNAVAILABLE,
                           "%s: PUT %s: %ld: %s", what, path, r.status,
                           fault ? fault : "(no fault_message)");
        json_decref(e);
    }
    prov_http_resp_fini(&r);
    return st;
}

/* ------------------------------------------------------------ spawning */

static hodei_status fc_spawn(fc_driver *fd, const char *worker_id, const char *vm_dir, pid_t *pid,
                             hodei_err *err)
{
    char sock[FC_PATH_MAX], log[FC_PATH_MAX + 32], vm[64], uid[24], gid[24];
    fc_socket_path(fd, worker_id, sock, sizeof sock);
    fc_vm_id(worker_id, vm);
    snprintf(log, sizeof log, "%s/firecracker.log", vm_dir);
    snprintf(uid, sizeof uid, "%lld", (long long)fd->uid);
    snprintf(gid, sizeof gid, "%lld", (long long)fd->gid);
    char *plain[] = {fd->firecracker, "--api-sock", sock, "--id", vm, NULL};
    char *jailed[] = {
        fd->jailer,   "--id",         vm,  "--exec-file",       fd->firecracker, "--uid",
        uid,          "--gid",        gid, "--chroot-base-dir", fd->chroot_base, "--",
        "--api-sock", FC_JAIL_SOCKET, NULL};
    char *const *argv = fd->jailer[0] ? jailed : plain;
    char *envp[] = {"PATH=/usr/sbin:/usr/bin:/sbin:/bin", NULL};
    int logfd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0640);
    if (logfd < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "worker %s: %s: %s", worker_id, log,
                             strerror(errno));
    posix_spawn_file_actions_t fa;
    posix_spawnattr_t attr;
    sigset_t none, defaults;
    sigemptyset(&none);
    sigfillset(&defaults);
    sigdelset(&defaults, SIGKILL);
    sigdelset(&defaults, SIGSTOP);
    int rc = posix_spawn_file_actions_init(&fa);
    rc = rc ? rc : posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, logfd, 1);
    rc = rc ? rc : posix_spawn_file_actions_adddup2(&fa, logfd, 2);
    rc = rc ? rc : posix_spawnattr_init(&attr);
    rc = rc ? rc
            : posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK |
                                                  POSIX_SPAWN_SETSIGDEF);
    rc = rc ? rc : posix_spawnattr_setsigmask(&attr, &none);
    rc = rc ? rc : posix_spawnattr_setsigdefault(&attr, &defaults);
    rc = rc ? rc : posix_spawn(pid, argv[0], &fa, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&fa);
    posix_spawnattr_destroy(&attr);
    close(logfd);
    if (rc != 0)
        return hodei_err_set(err, HODEI_ERR_UNAVAILABLE, "worker %s: starting %s: %s", worker_id,
                             argv[0], strerror(rc));
    pthread_mutex_lock(&fd->mu);
    if (fd->n_children < FC_CHILDREN_MAX)
        fd->children[fd->n_children++] = *pid;
    pthread_mutex_unlock(&fd->mu);
    return HODEI_OK;
}

static hodei_status fc_wait_socket(const fc_driver *fd, const char *sock, pid_t pid,
                                   const char *worker_id, hodei_err *err)
{
    int64_t deadline = hodei_mono_ms() + fd->socket_wait_ms;
    struct stat st;
    uint64_t start;
    while (stat(sock, &st) != 0 || !S_ISSOCK(st.st_mode)) {
        if (!fc_proc_start(pid, &start))
            return hodei_err_set(err, HODEI_ERR_UNAVAILABLE,
                                 "worker %s: firecracker exited before opening its API socket",
                                 worker_id);
        if (hodei_mono_ms() >= deadline)
            return hodei_err_set(err, HODEI_ERR_TIMEOUT,
                                 "worker %s: no API socket %s after %" PRId64 " ms", worker_id,
                                 sock, fd->socket_wait_ms);
        hodei_sleep_ms(FC_POLL_MS);
    }
    return HODEI_OK;
}

/* Kernel and rootfs inside the jail (hard links: the jail cannot see out). */
static hodei_status fc_jail_files(fc_driver *fd, const char *worker_id, hodei_err *err)
{
    char root[FC_PATH_MAX], dst[FC_PATH_MAX + 32];
    fc_jail_root(fd, worker_id, root, sizeof root);
    const char *src[2] = {fd->kernel, fd->rootfs}, *name[2] = {"vmlinux", "rootfs.ext4"};
    for (int i = 0; i < 2; i++) {
        snprintf(dst, sizeof dst, "%s/%s", root, name[i]);
        if (link(src[i], dst) != 0 && errno != EEXIST)
            return hodei_err_set(err, HODEI_ERR_IO, "worker %s: linking %s into the jail: %s",
                                 worker_id, src[i], strerror(errno));
        if (chown(dst, (uid_t)fd->uid, (gid_t)fd->gid) != 0)
            return hodei_err_set(err, HODEI_ERR_IO, "worker %s: %s: %s", worker_id, dst,
                                 strerror(errno));
    }
    return HODEI_OK;
}

/* ------------------------------------------------------------ boot */

static void fc_sizes(const fc_driver *fd, const prov_worker_spec *spec, int64_t *vcpus,
                     int64_t *mib)
{
    *vcpus = spec->cpu_millis > 0 ? (spec->cpu_millis + 999) / 1000 : fd->vcpus_default;
    if (*vcpus > FC_VCPU_MAX)
        *vcpus = FC_VCPU_MAX;
    *mib =
        spec->memory_bytes > 0 ? (spec->memory_bytes + FC_MIB - 1) / FC_MIB : fd->mem_mib_default;
}

static void fc_mac(const char *worker_id, char out[18])
{
    unsigned h = 2166136261u;
    for (const char *p = worker_id; *p; p++)
        h = (h ^ (unsigned char)*p) * 16777619u;
    snprintf(out, 18, "06:00:%02x:%02x:%02x:%02x", h >> 24, (h >> 16) & 255, (h >> 8) & 255,
             h & 255);
}

static hodei_status fc_boot(fc_driver *fd, const prov_worker_env *env, const char *sock,
                            const char *tap, hodei_err *err)
{
    int64_t vcpus, mib;
    char mac[18];
    const char *kernel = fd->jailer[0] ? "/vmlinux" : fd->kernel;
    const char *rootfs = fd->jailer[0] ? "/rootfs.ext4" : fd->rootfs;
    fc_sizes(fd, &env->spec, &vcpus, &mib);
    fc_mac(env->worker_id, mac);
    hodei_status st = fc_put(sock, "/machine-config",
                             json_pack("{s:I, s:I, s:b}", "vcpu_count", (json_int_t)vcpus,
                                       "mem_size_mib", (json_int_t)mib, "smt", 0),
                             "machine config", err);
    if (st == HODEI_OK)
        st =
            fc_put(sock, "/boot-source",
                   json_pack("{s:s, s:s}", "kernel_image_path", kernel, "boot_args", fd->boot_args),
                   "boot source", err);
    if (st == HODEI_OK)
        st = fc_put(sock, "/drives/rootfs",
                    json_pack("{s:s, s:s, s:b, s:b}", "drive_id", "rootfs", "path_on_host", rootfs,
                              "is_root_device", 1, "is_read_only", 1),
                    "root drive", err);
    if (st == HODEI_OK)
        st = fc_put(sock, "/network-interfaces/eth0",
                    json_pack("{s:s, s:s, s:s}", "iface_id", "eth0", "host_dev_name", tap,
                              "guest_mac", mac),
                    "network interface", err);
    if (st == HODEI_OK)
        st = fc_put(sock, "/mmds/config",
                    json_pack("{s:s, s:[s]}", "version", "V2", "network_interfaces", "eth0"),
                    "MMDS config", err);
    if (st == HODEI_OK)
        st = fc_put(sock, "/mmds",
                    json_pack("{s:{s:s, s:s, s:s, s:s}}", "hodei", "server", env->server,
                              "worker_id", env->worker_id, "otp", env->otp, "log_level",
                              env->log_level),
                    "MMDS", err);
    if (st == HODEI_OK)
        st = fc_put(sock, "/actions", json_pack("{s:s}", "action_type", "InstanceStart"),
                    "InstanceStart", err);
    return st;
}

static hodei_status fc_pidfile_write(const char *vm_dir, pid_t pid, uint64_t start, hodei_err *err)
{
    char path[FC_PATH_MAX + 16], text[64];
    snprintf(path, sizeof path, "%s/pid", vm_dir);
    int n = snprintf(text, sizeof text, "%d %" PRIu64 "\n", (int)pid, start);
    int f = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    bool ok = f >= 0 && write(f, text, (size_t)n) == n && fsync(f) == 0;
    if (f >= 0)
        ok = close(f) == 0 && ok;
    return ok ? HODEI_OK : hodei_err_set(err, HODEI_ERR_IO, "%s: %s", path, strerror(errno));
}

static hodei_status fc_stop(fc_driver *fd, const char *worker_id, const char *ref, bool graceful,
                            hodei_err *err);

static hodei_status fc_create_worker(prov_driver *drv, const prov_worker_env *env,
                                     char ref_out[PROV_REF_MAX], hodei_err *err)
{
    fc_driver *fd = fc_of(drv);
    char vm_dir[FC_PATH_MAX], sock[FC_PATH_MAX], tap[IFNAMSIZ];
    pid_t pid = 0;
    uint64_t start = 0;
    fc_reap(fd);
    if (fc_ident(fd, env->worker_id, "", &pid, &start) && fc_alive(pid, start))
        return hodei_err_set(err, HODEI_ERR_EXISTS, "worker %s: its VM already runs (pid %d)",
                             env->worker_id, (int)pid);
    fc_vm_dir(fd, env->worker_id, vm_dir, sizeof vm_dir);
    if (mkdir(vm_dir, 0750) != 0 && errno != EEXIST)
        return hodei_err_set(err, HODEI_ERR_IO, "worker %s: %s: %s", env->worker_id, vm_dir,
                             strerror(errno));
    fc_socket_path(fd, env->worker_id, sock, sizeof sock);
    if (strlen(sock) >= sizeof((struct sockaddr_un *)0)->sun_path)
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "worker %s: API socket path %s is longer than a unix socket allows "
                             "(%zu bytes): shorten provisioner.state_dir or chroot_base",
                             env->worker_id, sock, sizeof((struct sockaddr_un *)0)->sun_path - 1);
    unlink(sock); /* a stale one from an earlier attempt */
    fc_tap_name(fd, env->worker_id, tap);
    hodei_status st = fc_tap_create(fd, tap, err);
    if (st == HODEI_OK)
        st = fc_spawn(fd, env->worker_id, vm_dir, &pid, err);
    if (st == HODEI_OK && !fc_proc_start(pid, &start))
        start = 0;
    if (st == HODEI_OK)
        st = fc_pidfile_write(vm_dir, pid, start, err);
    if (st == HODEI_OK && fd->jailer[0]) {
        st = fc_wait_socket(fd, sock, pid, env->worker_id, err); /* the jail exists by then */
        if (st == HODEI_OK)
            st = fc_jail_files(fd, env->worker_id, err);
    }
    if (st == HODEI_OK && !fd->jailer[0])
        st = fc_wait_socket(fd, sock, pid, env->worker_id, err);
    if (st == HODEI_OK)
        st = fc_boot(fd, env, sock, tap, err);
    if (st != HODEI_OK) {
        hodei_err derr = {0};
        if (fc_stop(fd, env->worker_id, "", false, &derr) != HODEI_OK) /* nothing half-made stays */
            HLOG_WARN("%s", derr.msg);
        return st;
    }
    snprintf(ref_out, PROV_REF_MAX, "%d:%" PRIu64, (int)pid, start);
    return HODEI_OK;
}

/* ------------------------------------------------------------ status, list */

static hodei_status fc_get_status(prov_driver *drv, const char *worker_id, const char *ref,
                                  prov_worker_status *out, char ref_out[PROV_REF_MAX],
                                  hodei_err *err)
{
    fc_driver *fd = fc_of(drv);
    pid_t pid;
    uint64_t start;
    fc_reap(fd);
    *out = PROV_WORKER_GONE;
    if (fc_ident(fd, worker_id, ref, &pid, &start) && fc_alive(pid, start)) {
        *out = PROV_WORKER_RUNNING;
        if (ref_out)
            snprintf(ref_out, PROV_REF_MAX, "%d:%" PRIu64, (int)pid, start);
    }
    return HODEI_OK;
}

static hodei_status fc_list_workers(prov_driver *drv, prov_worker_ref *out, size_t cap,
                                    size_t *n_out, hodei_err *err)
{
    fc_driver *fd = fc_of(drv);
    *n_out = 0;
    fc_reap(fd);
    DIR *dir = opendir(fd->dir);
    if (!dir)
        return hodei_err_set(err, HODEI_ERR_IO, "list workers: %s: %s", fd->dir, strerror(errno));
    struct dirent *de;
    while ((de = readdir(dir)) != NULL && *n_out < cap) {
        pid_t pid;
        uint64_t start;
        if (!hodei_id_valid(de->d_name) || !fc_ident(fd, de->d_name, "", &pid, &start) ||
            !fc_alive(pid, start))
            continue;
        hodei_strlcpy(out[*n_out].worker_id, de->d_name, sizeof out[*n_out].worker_id);
        snprintf(out[*n_out].ref, PROV_REF_MAX, "%d:%" PRIu64, (int)pid, start);
        (*n_out)++;
    }
    closedir(dir);
    return HODEI_OK;
}

/* ------------------------------------------------------------ teardown */

static bool fc_wait_gone(fc_driver *fd, pid_t pid, uint64_t start, int64_t timeout_ms)
{
    int64_t deadline = hodei_mono_ms() + timeout_ms;
    for (;;) {
        fc_reap(fd);
        if (!fc_alive(pid, start))
            return true;
        if (hodei_mono_ms() >= deadline)
            return false;
        hodei_sleep_ms(FC_POLL_MS);
    }
}

static void fc_cleanup(fc_driver *fd, const char *worker_id)
{
    char path[FC_PATH_MAX + 64], tap[IFNAMSIZ];
    fc_tap_name(fd, worker_id, tap);
    fc_tap_delete(tap);
    fc_socket_path(fd, worker_id, path, sizeof path);
    unlink(path);
    if (fd->jailer[0]) {
        char root[FC_PATH_MAX];
        fc_jail_root(fd, worker_id, root, sizeof root);
        snprintf(path, sizeof path, "%s/vmlinux", root);
        unlink(path);
        snprintf(path, sizeof path, "%s/rootfs.ext4", root);
        unlink(path);
    }
    const char *files[] = {"pid", "firecracker.log", FC_SOCKET_NAME, NULL};
    char dir[FC_PATH_MAX];
    fc_vm_dir(fd, worker_id, dir, sizeof dir);
    for (int i = 0; files[i]; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        unlink(path);
    }
    if (rmdir(dir) != 0 && errno != ENOENT)
        HLOG_WARN("worker %s: removing %s: %s", worker_id, dir, strerror(errno));
}

/* Stops the VM (graceful: SendCtrlAltDel first, SIGKILL after the grace)
 * and removes everything of it. */
static hodei_status fc_stop(fc_driver *fd, const char *worker_id, const char *ref, bool graceful,
                            hodei_err *err)
{
    char sock[FC_PATH_MAX];
    pid_t pid;
    uint64_t start;
    fc_reap(fd);
    if (fc_ident(fd, worker_id, ref, &pid, &start) && fc_alive(pid, start) && !graceful) {
        kill(pid, SIGKILL);
        if (!fc_wait_gone(fd, pid, start, FC_KILL_WAIT_MS))
            return hodei_err_set(err, HODEI_ERR_TIMEOUT,
                                 "worker %s: firecracker pid %d survived SIGKILL", worker_id,
                                 (int)pid);
    } else if (fc_ident(fd, worker_id, ref, &pid, &start) && fc_alive(pid, start)) {
        hodei_err serr = {0};
        fc_socket_path(fd, worker_id, sock, sizeof sock);
        if (fc_put(sock, "/actions", json_pack("{s:s}", "action_type", "SendCtrlAltDel"),
                   "SendCtrlAltDel", &serr) != HODEI_OK)
            HLOG_INFO("worker %s: %s; stopping it by signal", worker_id, serr.msg);
        if (!fc_wait_gone(fd, pid, start, fd->grace_ms)) {
            HLOG_WARN("worker %s: VM still running %" PRId64 " ms after SendCtrlAltDel; SIGKILL",
                      worker_id, fd->grace_ms);
            kill(pid, SIGKILL);
            if (!fc_wait_gone(fd, pid, start, FC_KILL_WAIT_MS))
                return hodei_err_set(err, HODEI_ERR_TIMEOUT,
                                     "worker %s: firecracker pid %d survived SIGKILL", worker_id,
                                     (int)pid);
        }
    }
    fc_cleanup(fd, worker_id);
    return HODEI_OK;
}

static hodei_status fc_destroy_worker(prov_driver *drv, const char *worker_id, const char *ref,
                                      hodei_err *err)
{
    return fc_stop(fc_of(drv), worker_id, ref, true, err);
}

/* ------------------------------------------------------------ instance */

static bool fc_health(prov_driver *drv, char msg[PROV_HEALTH_MSG_MAX])
{
    fc_driver *fd = fc_of(drv);
    const char *exe = fd->jailer[0] ? fd->jailer : fd->firecracker;
    if (access(exe, X_OK) != 0)
        snprintf(msg, PROV_HEALTH_MSG_MAX, "%.160s: %s", exe, strerror(errno));
    else if (access(fd->kernel, R_OK) != 0)
        snprintf(msg, PROV_HEALTH_MSG_MAX, "kernel %.160s: %s", fd->kernel, strerror(errno));
    else if (access(fd->rootfs, R_OK) != 0)
        snprintf(msg, PROV_HEALTH_MSG_MAX, "rootfs %.160s: %s", fd->rootfs, strerror(errno));
    else if (access("/dev/net/tun", R_OK | W_OK) != 0)
        snprintf(msg, PROV_HEALTH_MSG_MAX, "/dev/net/tun: %s", strerror(errno));
    else {
        snprintf(msg, PROV_HEALTH_MSG_MAX, "ok: %.200s", exe);
        return true;
    }
    return false;
}

static void fc_capabilities(const prov_driver *drv, prov_caps *out)
{
    out->isolation = "vm";
    out->survives_restart = true;
    out->create_timeout_ms = ((const fc_driver *)drv)->socket_wait_ms + 7 * FC_REQUEST_MS;
}

static void fc_destroy(prov_driver *drv)
{
    if (!drv)
        return;
    fc_driver *fd = fc_of(drv);
    fc_reap(fd);
    pthread_mutex_destroy(&fd->mu);
    free(fd);
}

/* ---- configuration ---- */

static const char *const fc_keys[] = {
    "firecracker_binary", "jailer_binary", "jailer_uid",  "jailer_gid", "chroot_base",
    "kernel_image",       "rootfs",        "boot_args",   "bridge",     "tap_prefix",
    "vcpu_count",         "mem_size_mib",  "socket_wait", NULL};

static const char *fc_get(json_t *cfg, const char *key, const char *dflt)
{
    const char *v = json_string_value(json_object_get(cfg, key));
    return v && v[0] ? v : dflt;
}

static hodei_status fc_config_str(json_t *cfg, const char *key, const char *dflt, char *out,
                                  size_t len, hodei_err *err)
{
    if (!hodei_strlcpy(out, fc_get(cfg, key, dflt), len))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "firecracker provider config: \"%s\" is too long", key);
    return HODEI_OK;
}

static hodei_status fc_config_int(json_t *cfg, const char *key, const char *dflt, int64_t min,
                                  int64_t max, int64_t *out, hodei_err *err)
{
    if (!hodei_parse_i64(fc_get(cfg, key, dflt), min, max, out))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "firecracker provider config: \"%s\" must be an integer between "
                             "%" PRId64 " and %" PRId64,
                             key, min, max);
    return HODEI_OK;
}

static hodei_status fc_config_keys(json_t *cfg, hodei_err *err)
{
    const char *key;
    json_t *val;
    json_object_foreach(cfg, key, val)
    {
        bool known = false;
        for (size_t i = 0; fc_keys[i] && !known; i++)
            known = strcmp(fc_keys[i], key) == 0;
        if (!known || !json_is_string(val))
            return hodei_err_set(err, HODEI_ERR_INVALID,
                                 "firecracker provider config: %s key \"%s\"",
                                 known ? "a string is needed for" : "unknown", key);
    }
    if (!fc_get(cfg, "kernel_image", NULL) || !fc_get(cfg, "rootfs", NULL))
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "firecracker provider config: \"kernel_image\" and \"rootfs\" are "
                             "required");
    return HODEI_OK;
}

static hodei_status fc_config(fc_driver *fd, const char *json, hodei_err *err)
{
    json_error_t jerr;
    json_t *cfg = json_loads(json && json[0] ? json : "{}", 0, &jerr);
    if (!json_is_object(cfg)) {
        json_decref(cfg);
        return hodei_err_set(err, HODEI_ERR_INVALID,
                             "firecracker provider config: not a JSON object");
    }
    hodei_status st = fc_config_keys(cfg, err);
    if (st == HODEI_OK)
        st = fc_config_str(cfg, "firecracker_binary", "/usr/local/bin/firecracker", fd->firecracker,
                           sizeof fd->firecracker, err);
    if (st == HODEI_OK)
        st = fc_config_str(cfg, "jailer_binary", "", fd->jailer, sizeof fd->jailer, err);
    if (st == HODEI_OK)
        st = fc_config_str(cfg, "chroot_base", "/srv/jailer", fd->chroot_base,
                           sizeof fd->chroot_base, err);
    if (st == HODEI_OK)
        st = fc_config_str(cfg, "kernel_image", "", fd->kernel, sizeof fd->kernel, err);
    if (st == HODEI_OK)
        st = fc_config_str(cfg, "rootfs", "", fd->rootfs, sizeof fd->rootfs, err);
    if (st == HODEI_OK)
        st = fc_config_str(cfg, "boot_args",
                           "console=ttyS0 reboot=k panic=1 pci=off ro init=/sbin/hodei-init",
                           fd->boot_args, sizeof fd->boot_args, err);
    if (st == HODEI_OK)
        st = fc_config_str(cfg, "bridge", "", fd->bridge, sizeof fd->bridge, err);
    if (st == HODEI_OK)
        st = fc_config_str(cfg, "tap_prefix", "hfc", fd->tap_prefix, 7, err);
    if (st == HODEI_OK)
        st = fc_config_int(cfg, "jailer_uid", "0", 0, INT32_MAX, &fd->uid, err);
    if (st == HODEI_OK)
        st = fc_config_int(cfg, "jailer_gid", "0", 0, INT32_MAX, &fd->gid, err);
    if (st == HODEI_OK)
        st = fc_config_int(cfg, "vcpu_count", "1", 1, FC_VCPU_MAX, &fd->vcpus_default, err);
    if (st == HODEI_OK)
        st = fc_config_int(cfg, "mem_size_mib", "512", 128, 1 << 20, &fd->mem_mib_default, err);
    if (st == HODEI_OK &&
        (!hodei_parse_duration_ms(fc_get(cfg, "socket_wait", "5s"), &fd->socket_wait_ms) ||
         fd->socket_wait_ms < 100 || fd->socket_wait_ms > 300000))
        st = hodei_err_set(err, HODEI_ERR_INVALID,
                           "firecracker provider config: \"socket_wait\" must be a duration "
                           "between 100ms and 5m");
    json_decref(cfg);
    return st;
}

/* The folder's scope: a UUID made once (link() settles a race between
 * provisioners sharing the folder). */
static hodei_status fc_scope(fc_driver *fd, hodei_err *err)
{
    char path[FC_PATH_MAX + 16], tmp[FC_PATH_MAX + 48], buf[PROV_SCOPE_MAX], id[HODEI_ID_BUF];
    snprintf(path, sizeof path, "%s/scope", fd->dir);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (fc_read(path, buf, sizeof buf)) {
            buf[strcspn(buf, "\n")] = '\0';
            if (hodei_id_valid(buf)) {
                hodei_strlcpy(fd->base.scope, buf, sizeof fd->base.scope);
                return HODEI_OK;
            }
        }
        hodei_id_new(id);
        snprintf(tmp, sizeof tmp, "%s/scope.%d.tmp", fd->dir, (int)getpid());
        FILE *f = fopen(tmp, "w");
        if (!f)
            break;
        fprintf(f, "%s\n", id);
        fclose(f);
        if (link(tmp, path) != 0 && errno != EEXIST) {
            unlink(tmp);
            break;
        }
        unlink(tmp);
    }
    return hodei_err_set(err, HODEI_ERR_IO, "firecracker provider: %s: %s", path, strerror(errno));
}

static hodei_status fc_create(const prov_driver_params *p, prov_driver **out, hodei_err *err)
{
    fc_driver *fd = calloc(1, sizeof *fd);
    if (!fd)
        return hodei_err_set(err, HODEI_ERR_NOMEM, "firecracker provider: out of memory");
    fd->base.ops = &prov_firecracker_ops;
    hodei_strlcpy(fd->base.name, p->name, sizeof fd->base.name);
    fd->grace_ms = p->destroy_grace_ms;
    pthread_mutex_init(&fd->mu, NULL);
    hodei_status st = fc_config(fd, p->config_json, err);
    int n = snprintf(fd->dir, sizeof fd->dir, "%s/firecracker", p->state_dir ? p->state_dir : "");
    if (st == HODEI_OK && (n < 0 || (size_t)n >= sizeof fd->dir))
        st = hodei_err_set(err, HODEI_ERR_INVALID, "provisioner.state_dir: too long");
    if (st == HODEI_OK && mkdir(fd->dir, 0750) != 0 && errno != EEXIST)
        st = hodei_err_set(err, HODEI_ERR_IO, "firecracker provider: %s: %s", fd->dir,
                           strerror(errno));
    if (st == HODEI_OK)
        st = fc_scope(fd, err);
    if (st != HODEI_OK) {
        fc_destroy(&fd->base);
        return st;
    }
    *out = &fd->base;
    return HODEI_OK;
}

const prov_driver_ops prov_firecracker_ops = {
    .type = "firecracker",
    .create = fc_create,
    .destroy = fc_destroy,
    .create_worker = fc_create_worker,
    .get_status = fc_get_status,
    .destroy_worker = fc_destroy_worker,
    .list_workers = fc_list_workers,
    .health = fc_health,
    .capabilities = fc_capabilities,
};
