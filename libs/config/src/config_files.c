/* "<name>_file" settings: a secret string parameter (database.url,
 * nats.password, secrets.master_key, ...) may instead name a file holding
 * its value, so that no secret has to sit in the YAML file or in an
 * environment variable (Kubernetes and compose mount secrets as files).
 * The file's content, without one trailing newline, becomes the value,
 * checked like any other. Setting both the parameter and its file is
 * refused, naming both and where each came from. Messages never show a
 * file's content. */
#include "config_int.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hodei/util.h"

/* Reads at most max bytes (one more is read to notice a longer file). */
hodei_status hodei_config_read_file(const char *param, const char *path, size_t max, char **out,
                                    hodei_err *err)
{
    hodei_status st = HODEI_ERR_IO;
    *out = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
    if (fd < 0)
        return hodei_err_set(err, HODEI_ERR_IO, "%s: cannot open %s: %s", param, path,
                             strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        st = hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s is not a regular file", param, path);
        goto out_close;
    }
    char *buf = calloc(1, max + 3);
    if (!buf) {
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "%s: out of memory", param);
        goto out_close;
    }
    size_t len = 0;
    while (len < max + 2) {
        ssize_t n = read(fd, buf + len, max + 2 - len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            st = hodei_err_set(err, HODEI_ERR_IO, "%s: cannot read %s: %s", param, path,
                               strerror(errno));
            goto out_free;
        }
        if (n == 0)
            break;
        len += (size_t)n;
    }
    if (len > 0 && buf[len - 1] == '\n')
        buf[--len] = '\0';
    if (len > 0 && buf[len - 1] == '\r')
        buf[--len] = '\0';
    if (len > max) {
        st = hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s holds more than %zu bytes", param, path,
                           max);
        goto out_free;
    }
    if (len == 0 || memchr(buf, '\0', len) != NULL) {
        st = hodei_err_set(err, HODEI_ERR_INVALID, "%s: %s %s", param, path,
                           len == 0 ? "is empty" : "holds a NUL byte");
        goto out_free;
    }
    *out = buf;
    close(fd);
    return HODEI_OK;

out_free:
    explicit_bzero(buf, max + 3);
    free(buf);
out_close:
    close(fd);
    return st;
}

static hodei_status config_file_apply(config_slot *fs, hodei_err *err)
{
    config_slot *target = fs->file_of;
    const hodei_cfg_param *p = target->param;
    if (strcmp(target->source, "default") != 0)
        return hodei_err_set(
            err, HODEI_ERR_INVALID, "%s and %s are both set (%s from %s, %s from %s); set only one",
            p->name, fs->param->name, p->name, target->source, fs->param->name, fs->source);
    size_t max = p->max > 0 ? (size_t)p->max : CONFIG_STRING_MAX_DEFAULT;
    char *value = NULL;
    hodei_status st = hodei_config_read_file(fs->param->name, fs->text, max, &value, err);
    if (st != HODEI_OK)
        return st;
    char source[CONFIG_SOURCE_MAX];
    int n = snprintf(source, sizeof source, "file %s (%s from %s)", fs->text, fs->param->name,
                     fs->source);
    if (n < 0 || (size_t)n >= sizeof source) /* a very long path: keep its name */
        snprintf(source, sizeof source, "%s", fs->param->name);
    st = config_slot_set(target, value, source, err);
    explicit_bzero(value, strlen(value));
    free(value);
    return st;
}

hodei_status config_files_apply(config_table *t, hodei_err *err)
{
    for (size_t i = t->n_declared; i < t->n_slots; i++) {
        config_slot *fs = &t->slots[i];
        if (!fs->file_of || fs->text[0] == '\0')
            continue;
        hodei_status st = config_file_apply(fs, err);
        if (st != HODEI_OK)
            return st;
    }
    return HODEI_OK;
}
