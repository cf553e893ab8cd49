/* Paths inside a folder, resolved one component at a time with openat and
 * O_NOFOLLOW: a symlink anywhere on the way (made by the job, or planted in
 * an allowed file:// folder) ends the resolution with an error instead of
 * leading out. Only regular files are read (a FIFO or device could block or
 * leak). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "art_int.h"
#include "hodei/util.h"

#define ART_PATH_MAX 4096
#define ART_GLOB_DEPTH_MAX 64

static const char *art_errno_text(int e)
{
    if (e == ELOOP || e == EMLINK)
        return "a symbolic link is on the way (links are not followed)";
    if (e == ENOTDIR)
        return "a path component is not a folder (or is a symbolic link)";
    return strerror(e);
}

/* Opens the folder holding the last component of rel (creating missing
 * folders when create), and points *last at that component. */
static hodei_status art_walk_parent(int dir_fd, const char *rel, bool create, int *parent_out,
                                    const char **last, hodei_err *err)
{
    char comp[HODEI_ARTIFACT_COMPONENT_MAX + 1];
    int cur = dup(dir_fd);
    if (cur < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "dup: %s", strerror(errno));
    const char *p = rel;
    for (;;) {
        const char *slash = strchr(p, '/');
        if (!slash || slash[1] == '\0')
            break;
        size_t n = (size_t)(slash - p);
        if (n == 0 || n >= sizeof comp) {
            close(cur);
            return hodei_err_set(err, HODEI_ERR_INVALID, "bad path component in %s", rel);
        }
        memcpy(comp, p, n);
        comp[n] = '\0';
        if (create && mkdirat(cur, comp, 0755) != 0 && errno != EEXIST) {
            int e = errno;
            close(cur);
            return hodei_err_set(err, HODEI_ERR_IO, "%s: cannot make folder %s: %s", rel, comp,
                                 strerror(e));
        }
        int next = openat(cur, comp, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        int e = errno;
        close(cur);
        if (next < 0)
            return hodei_err_set(err, e == ENOENT ? HODEI_ERR_NOT_FOUND : HODEI_ERR_PERMISSION,
                                 "%s: %s", rel, art_errno_text(e));
        cur = next;
        p = slash + 1;
    }
    *parent_out = cur;
    *last = p;
    return HODEI_OK;
}

hodei_status art_open_read(int dir_fd, const char *rel, int *fd_out, int64_t *size_out,
                           hodei_err *err)
{
    int parent = -1;
    const char *last = NULL;
    hodei_status st = art_walk_parent(dir_fd, rel, false, &parent, &last, err);
    if (st != HODEI_OK)
        return st;
    int fd = openat(parent, last, O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    int e = errno;
    close(parent);
    if (fd < 0)
        return hodei_err_set(err, e == ENOENT ? HODEI_ERR_NOT_FOUND : HODEI_ERR_PERMISSION,
                             "%s: %s", rel, art_errno_text(e));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return hodei_err_set(err, HODEI_ERR_PERMISSION, "%s: not a regular file", rel);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0)
        (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    *size_out = (int64_t)sb.st_size;
    return HODEI_OK;
}

hodei_status art_create_write(int dir_fd, const char *rel, int *fd_out, hodei_err *err)
{
    int parent = -1;
    const char *last = NULL;
    hodei_status st = art_walk_parent(dir_fd, rel, true, &parent, &last, err);
    if (st != HODEI_OK)
        return st;
    int fd = openat(parent, last, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644);
    int e = errno;
    close(parent);
    if (fd < 0)
        return hodei_err_set(err, e == EEXIST ? HODEI_ERR_EXISTS : HODEI_ERR_IO, "%s: %s", rel,
                             e == EEXIST ? "already exists in the workspace" : art_errno_text(e));
    *fd_out = fd;
    return HODEI_OK;
}

void art_unlink(int dir_fd, const char *rel)
{
    int parent = -1;
    const char *last = NULL;
    hodei_err err;
    if (art_walk_parent(dir_fd, rel, false, &parent, &last, &err) != HODEI_OK)
        return;
    (void)unlinkat(parent, last, 0);
    close(parent);
}

/* ------------------------------------------------------------ file:// */

/* The root of `roots` that path is below, and the rest of path. */
static bool art_root_match(const char *roots, const char *path, char *root, size_t root_len,
                           const char **rest)
{
    const char *r = roots;
    while (*r) {
        size_t n = strcspn(r, ":");
        while (n > 1 && r[n - 1] == '/')
            n--;
        if (n > 0 && n < root_len && strncmp(path, r, n) == 0 && path[n] == '/' &&
            path[n + 1] != '\0') {
            memcpy(root, r, n);
            root[n] = '\0';
            *rest = path + n + 1;
            return true;
        }
        r += strcspn(r, ":");
        if (*r == ':')
            r++;
    }
    return false;
}

hodei_status art_open_file_url(const char *roots, const char *path, int *fd_out, int64_t *size_out,
                               hodei_err *err)
{
    char root[ART_PATH_MAX];
    const char *rest = NULL;
    if (!roots || !roots[0])
        return hodei_err_set(err, HODEI_ERR_PERMISSION,
                             "file:// inputs are off on this worker (worker.file_inputs is empty)");
    if (!art_root_match(roots, path, root, sizeof root, &rest))
        return hodei_err_set(err, HODEI_ERR_PERMISSION,
                             "%s is not below a folder of worker.file_inputs", path);
    int root_fd = open(root, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (root_fd < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "worker.file_inputs folder %s: %s", root,
                             strerror(errno));
    hodei_status st = art_open_read(root_fd, rest, fd_out, size_out, err);
    close(root_fd);
    return st;
}

/* ------------------------------------------------------------ glob */

typedef struct {
    art_match_fn fn;
    void *user;
    size_t max, n;
    char rel[ART_PATH_MAX];
} art_glob_ctx;

static bool art_has_glob(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] == '*' || s[i] == '?' || s[i] == '[')
            return true;
    return false;
}

/* The last component matched: report it with its type (lstat: a symlink
 * is reported as one, never followed). */
static void art_glob_hit(art_glob_ctx *g, int dir_fd, const char *name)
{
    struct stat sb;
    if (g->n >= g->max || fstatat(dir_fd, name, &sb, AT_SYMLINK_NOFOLLOW) != 0)
        return;
    art_match_kind k = S_ISREG(sb.st_mode)   ? ART_MATCH_FILE
                       : S_ISLNK(sb.st_mode) ? ART_MATCH_SYMLINK
                                             : ART_MATCH_OTHER;
    g->n++;
    g->fn(g->user, g->rel, k);
}

static hodei_status art_glob_dir(art_glob_ctx *g, int dir_fd, const char *pattern, size_t rel_len,
                                 int depth, hodei_err *err);

/* One entry of dir_fd named name matched the component: record or descend. */
static hodei_status art_glob_entry(art_glob_ctx *g, int dir_fd, const char *name, const char *rest,
                                   size_t rel_len, int depth, hodei_err *err)
{
    size_t n = strlen(name);
    if (rel_len + n + 2 >= sizeof g->rel)
        return HODEI_OK;
    size_t len = rel_len;
    if (len > 0)
        g->rel[len++] = '/';
    memcpy(g->rel + len, name, n + 1);
    if (!rest) {
        art_glob_hit(g, dir_fd, name);
        return HODEI_OK;
    }
    int sub = openat(dir_fd, name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (sub < 0)
        return HODEI_OK; /* not a folder, or a symlink: no match below it */
    hodei_status st = art_glob_dir(g, sub, rest, len + n, depth + 1, err);
    close(sub);
    return st;
}

static hodei_status art_glob_dir(art_glob_ctx *g, int dir_fd, const char *pattern, size_t rel_len,
                                 int depth, hodei_err *err)
{
    char comp[HODEI_ARTIFACT_COMPONENT_MAX + 1];
    if (depth > ART_GLOB_DEPTH_MAX)
        return HODEI_OK;
    size_t n = strcspn(pattern, "/");
    if (n == 0 || n >= sizeof comp)
        return HODEI_OK;
    memcpy(comp, pattern, n);
    comp[n] = '\0';
    const char *rest = pattern[n] == '/' ? pattern + n + 1 : NULL;
    if (!art_has_glob(comp, n))
        return art_glob_entry(g, dir_fd, comp, rest, rel_len, depth, err);
    int fd = dup(dir_fd);
    DIR *d = fd >= 0 ? fdopendir(fd) : NULL;
    if (!d) {
        if (fd >= 0)
            close(fd);
        return hodei_err_set(err, HODEI_ERR_IO, "listing the workspace: %s", strerror(errno));
    }
    hodei_status st = HODEI_OK;
    struct dirent *e;
    while (st == HODEI_OK && g->n < g->max && (e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (fnmatch(comp, e->d_name, FNM_PERIOD) == 0)
            st = art_glob_entry(g, dir_fd, e->d_name, rest, rel_len, depth, err);
    }
    closedir(d);
    return st;
}

hodei_status art_glob(int dir_fd, const char *pattern, size_t max, art_match_fn fn, void *user,
                      size_t *n_out, hodei_err *err)
{
    art_glob_ctx g = {.fn = fn, .user = user, .max = max};
    g.rel[0] = '\0';
    hodei_status st = art_glob_dir(&g, dir_fd, pattern, 0, 0, err);
    *n_out = g.n;
    return st;
}
