/* The fake Kubernetes API server (tests/clients/kube-apiserver.mjs) for
 * tests: a private folder with a CA, a server and a client certificate, the
 * fake started on loopback (HTTPS, a bearer token, optionally client
 * certificates), a kubeconfig naming it, and its control port. */
#ifndef HODEI_TEST_KUBE_FAKE_H
#define HODEI_TEST_KUBE_FAKE_H

#include <jansson.h>
#include <stdbool.h>
#include <sys/types.h>

#define KF_TOKEN "sa-token-3f9a"
#define KF_NS "hodei-test"

typedef struct {
    char dir[256]; /* private folder, removed by kf_stop */
    pid_t pid;
    int port; /* the API (HTTPS) */
    int ctl;  /* the control port (HTTP) */
} kube_fake;

/* Makes the folder and the certificates. */
void kf_setup(kube_fake *kf);
/* Starts the fake; worker_bin is what its "kubelet" runs for a Pod ("" =
 * a stand-in that records its environment in <dir>/env-<worker id>). */
void kf_start(kube_fake *kf, const char *worker_bin, bool client_certs);
/* Stops the fake (and its workers), removes the folder. */
void kf_stop(kube_fake *kf);
/* A kubeconfig at path (context "test", namespace KF_NS) with the token or
 * the client certificate, the CA as a file or inline (-data). */
void kf_kubeconfig(const kube_fake *kf, const char *path, bool client_cert, bool inline_data);
/* A control call: GET /state, POST /inject, /phase, /compact, /drop-watches. */
json_t *kf_ctl(const kube_fake *kf, const char *method, const char *path, const char *body);
/* The object named name in state's "pods" or "secrets", or NULL. */
json_t *kf_find(json_t *state, const char *list, const char *name);
void kf_write(const char *path, const char *text, mode_t mode);
void kf_sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
