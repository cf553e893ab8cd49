/* See kube_fake.h. */
#include <criterion/criterion.h>

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "hodei/time.h"
#include "kube_fake.h"
#include "prov_http.h"

void kf_write(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

void kf_sh(const char *fmt, ...)
{
    char cmd[4096];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(cmd, sizeof cmd, fmt, ap);
    va_end(ap);
    int rc = system(cmd);
    cr_assert(rc == 0, "command failed (%d): %s", rc, cmd);
}

/* A CA, a server certificate for 127.0.0.1 and a client certificate. */
static void kf_pki(const kube_fake *kf)
{
    kf_sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 2"
          " -subj /CN=test-ca >/dev/null 2>&1"
          " && openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr -subj /CN=apiserver"
          " >/dev/null 2>&1 && printf 'subjectAltName=IP:127.0.0.1\\n' > srv.ext"
          " && openssl x509 -req -in srv.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out srv.crt"
          " -days 2 -extfile srv.ext >/dev/null 2>&1"
          " && openssl req -newkey rsa:2048 -nodes -keyout cli.key -out cli.csr"
          " -subj /CN=hodei-provisioner >/dev/null 2>&1"
          " && openssl x509 -req -in cli.csr -CA ca.crt -CAkey ca.key -CAcreateserial -out cli.crt"
          " -days 2 >/dev/null 2>&1",
          kf->dir);
}

/* The stand-in worker: records its environment, sleeps until killed. */
static const char kf_worker_sh[] =
    "#!/bin/sh\n"
    "d=\"$(dirname \"$0\")\"\n"
    "env | sort > \"$d/env-$HODEI_WORKER_ID.tmp\"\n"
    "mv \"$d/env-$HODEI_WORKER_ID.tmp\" \"$d/env-$HODEI_WORKER_ID\"\n"
    "exec sleep 600\n";

void kf_start(kube_fake *kf, const char *worker_bin, bool client_certs)
{
    char path[512], out[512], line[256] = "";
    snprintf(path, sizeof path, "%s/worker.sh", kf->dir);
    kf_write(path, kf_worker_sh, 0755);
    if (worker_bin && worker_bin[0])
        snprintf(path, sizeof path, "%s", worker_bin);
    snprintf(out, sizeof out, "%s/fake.out", kf->dir);
    kf->pid = fork();
    cr_assert(kf->pid >= 0);
    if (kf->pid == 0) {
        char script[512], cert[300], key[300], ca[300], log[300];
        const char *root = getenv("HODEI_ROOT");
        snprintf(script, sizeof script, "%s/tests/clients/kube-apiserver.mjs", root);
        snprintf(cert, sizeof cert, "%s/srv.crt", kf->dir);
        snprintf(key, sizeof key, "%s/srv.key", kf->dir);
        snprintf(ca, sizeof ca, "%s/ca.crt", kf->dir);
        snprintf(log, sizeof log, "%s/fake.log", kf->dir);
        int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0644);
        dup2(fd, 1);
        dup2(fd, 2);
        setpgid(0, 0);
        if (client_certs)
            execlp("node", "node", script, "--cert", cert, "--key", key, "--token", KF_TOKEN,
                   "--client-ca", ca, "--worker-bin", path, "--log", log, (char *)NULL);
        else
            execlp("node", "node", script, "--cert", cert, "--key", key, "--token", KF_TOKEN,
                   "--worker-bin", path, "--log", log, (char *)NULL);
        _exit(127);
    }
    int64_t deadline = hodei_mono_ms() + 60000;
    for (;;) {
        FILE *f = fopen(out, "r");
        if (f) {
            if (!fgets(line, sizeof line, f))
                line[0] = '\0';
            fclose(f);
        }
        if (sscanf(line, "{\"port\":%d,\"control\":%d}", &kf->port, &kf->ctl) == 2)
            break;
        cr_assert(hodei_mono_ms() < deadline && waitpid(kf->pid, NULL, WNOHANG) == 0,
                  "the fake API server did not start: %s", line);
        hodei_sleep_ms(50);
    }
}

void kf_setup(kube_fake *kf)
{
    snprintf(kf->dir, sizeof kf->dir, "/tmp/hodei-k8s-test-XXXXXX");
    cr_assert(mkdtemp(kf->dir), "mkdtemp: %s", strerror(errno));
    kf_pki(kf);
}

void kf_stop(kube_fake *kf)
{
    if (kf->pid > 0) {
        kill(-kf->pid, SIGTERM);
        waitpid(kf->pid, NULL, 0);
        kf->pid = 0;
    }
    if (kf->dir[0]) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", kf->dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", kf->dir);
    }
}

/* A kubeconfig naming the fake, with the token or the client certificate. */
void kf_kubeconfig(const kube_fake *kf, const char *path, bool client_cert, bool inline_data)
{
    char text[16384], ca_b64[8192] = "";
    if (inline_data) {
        char cmd[600];
        snprintf(cmd, sizeof cmd, "base64 -w0 %s/ca.crt", kf->dir);
        FILE *p = popen(cmd, "r");
        cr_assert(p && fgets(ca_b64, sizeof ca_b64, p));
        pclose(p);
    }
    char ca_line[8400];
    if (inline_data)
        snprintf(ca_line, sizeof ca_line, "    certificate-authority-data: %s\n", ca_b64);
    else
        snprintf(ca_line, sizeof ca_line, "    certificate-authority: ca.crt\n");
    snprintf(text, sizeof text,
             "apiVersion: v1\nkind: Config\ncurrent-context: test\n"
             "clusters:\n- name: fake\n  cluster:\n    server: https://127.0.0.1:%d\n%s"
             "contexts:\n- name: other\n  context: {cluster: nowhere, user: nobody}\n"
             "- name: test\n  context:\n    cluster: fake\n    user: me\n    namespace: " KF_NS "\n"
             "users:\n- name: me\n  user:\n%s",
             kf->port, ca_line,
             client_cert ? "    client-certificate: cli.crt\n    client-key: cli.key\n"
                         : "    token: " KF_TOKEN "\n");
    kf_write(path, text, 0600);
}

json_t *kf_ctl(const kube_fake *kf, const char *method, const char *path, const char *body)
{
    char base[64];
    snprintf(base, sizeof base, "http://127.0.0.1:%d", kf->ctl);
    prov_http_target t = {.base_url = base, .timeout_ms = 10000};
    prov_http_resp r;
    hodei_err err = {0};
    prov_http_resp_init(&r);
    cr_assert_eq(prov_http_do(&t, method, path, body, NULL, &r, NULL, NULL, &err), HODEI_OK,
                 "control %s: %s", path, err.msg);
    json_error_t jerr;
    json_t *j = json_loads(r.body.data, 0, &jerr);
    cr_assert(j, "control %s: not JSON: %s", path, r.body.data);
    prov_http_resp_fini(&r);
    return j;
}

json_t *kf_find(json_t *state, const char *list, const char *name)
{
    size_t i;
    json_t *o;
    json_array_foreach(json_object_get(state, list), i, o)
    {
        const char *n = json_string_value(json_object_get(json_object_get(o, "metadata"), "name"));
        if (n && strcmp(n, name) == 0)
            return o;
    }
    return NULL;
}
