/* Start-up check: can we connect to nats.url? User and password in the URL
 * are never printed. */
#include "daemon_int.h"
#include "hodei/daemon_nats.h"

#include <nats/nats.h>
#include <string.h>

#include "hodei/log.h"

/* Copies url with the user-info of each "scheme://user:pass@host" replaced
 * by "***"; secret receives the first user-info found (for redacting). */
static void check_nats_redact_url(const char *url, char *out, size_t out_len, char *secret,
                                  size_t secret_len)
{
    size_t n = 0;
    secret[0] = '\0';
    for (const char *p = url; *p && n + 4 < out_len;) {
        const char *at = NULL;
        if (strncmp(p, "://", 3) == 0) {
            memcpy(out + n, "://", 3);
            n += 3;
            p += 3;
            size_t span = strcspn(p, "@,/");
            at = p[span] == '@' ? p + span : NULL;
        }
        if (at) {
            if (!secret[0] && (size_t)(at - p) < secret_len) {
                memcpy(secret, p, (size_t)(at - p));
                secret[at - p] = '\0';
            }
            memcpy(out + n, "***", 3);
            n += 3;
            p = at;
        } else if (*p) {
            out[n++] = *p++;
        }
    }
    out[n] = '\0';
}

static natsStatus check_nats_connect(const hodei_common_config *c, natsConnection **nc)
{
    natsOptions *opts = NULL;
    natsStatus s = natsOptions_Create(&opts);
    if (s == NATS_OK)
        s = natsOptions_SetURL(opts, c->nats_url);
    if (s == NATS_OK && c->nats_user && c->nats_user[0])
        s = natsOptions_SetUserInfo(opts, c->nats_user, c->nats_password ? c->nats_password : "");
    if (s == NATS_OK)
        s = natsOptions_SetTimeout(opts, DAEMON_NATS_CHECK_TIMEOUT_MS);
    if (s == NATS_OK)
        s = natsOptions_SetAllowReconnect(opts, false);
    if (s == NATS_OK)
        s = natsConnection_Connect(nc, opts);
    natsOptions_Destroy(opts);
    return s;
}

/* nats.c's last error text without its "(file.c:123): " prefix, else the
 * status's text. */
static const char *check_nats_reason(natsStatus s)
{
    const char *last = nats_GetLastError(NULL);
    if (!last || !*last)
        return natsStatus_GetText(s);
    if (last[0] == '(') {
        const char *end = strstr(last, "): ");
        if (end && end[3])
            return end + 3;
    }
    return last;
}

static bool check_nats(hodei_daemon *d)
{
    char shown[DAEMON_DESCRIBE_MAX], secret[DAEMON_DESCRIBE_MAX], reason[DAEMON_REASON_MAX];
    natsConnection *nc = NULL;
    check_nats_redact_url(d->common.nats_url, shown, sizeof shown, secret, sizeof secret);
    natsStatus s = check_nats_connect(&d->common, &nc);
    natsConnection_Destroy(nc);
    if (s == NATS_OK) {
        HLOG_INFO("NATS reachable at %s", shown);
        return true;
    }
    daemon_redact(check_nats_reason(s), secret, reason, sizeof reason);
    if (s == NATS_CONNECTION_AUTH_FAILED)
        fprintf(stderr, "%s: NATS at %s refused the credentials (nats.user, nats.password): %s\n",
                d->svc->name, shown, reason);
    else
        fprintf(stderr, "%s: cannot reach NATS at %s: %s\n", d->svc->name, shown, reason);
    return false;
}

/* Releases what nats.c keeps for the process, waiting for its threads. */
static void check_nats_release(void)
{
    /* NATS_NOT_INITIALIZED: never opened, or the service closed it already. */
    if (nats_CloseAndWait(DAEMON_NATS_CLOSE_WAIT_MS) == NATS_TIMEOUT)
        HLOG_WARN("NATS library still busy after %dms at exit (a connection left open?)",
                  DAEMON_NATS_CLOSE_WAIT_MS);
}

const hodei_daemon_probe hodei_daemon_nats_probe = {.check = check_nats,
                                                    .release = check_nats_release};
