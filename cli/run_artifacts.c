/* `hodei artifacts JOB_ID --download DIR`: each uploaded output of the job
 * fetched into DIR with libs/artifact, as a worker stages an input: the
 * recorded checksum verified, no file overwritten, no path leading out of
 * DIR. S3 credentials come from the user's own environment (AWS_*), never
 * from the server. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "hodei/artifact.h"
#include "run_int.h"

#define ARTS_CRED_NAME "env"
#define ARTS_CRED_MAX 4096

typedef struct {
    FILE *err;
    char cred[ARTS_CRED_MAX]; /* "" = anonymous */
} arts_ctx;

static void arts_note(void *user, const char *line)
{
    arts_ctx *c = user;
    fprintf(c->err, "[hodei] %s\n", line);
}

static const char *arts_secret(void *user, const char *name)
{
    arts_ctx *c = user;
    return strcmp(name, ARTS_CRED_NAME) == 0 && c->cred[0] ? c->cred : NULL;
}

static const char *arts_env(const char *name, const char *fallback)
{
    const char *v = getenv(name);
    return v && v[0] ? v : fallback;
}

/* The credentials as the worker takes them: JSON with a session token. */
static void arts_cred(arts_ctx *c)
{
    const char *ak = arts_env("AWS_ACCESS_KEY_ID", ""), *sk = arts_env("AWS_SECRET_ACCESS_KEY", "");
    const char *tok = arts_env("AWS_SESSION_TOKEN", "");
    c->cred[0] = '\0';
    if (!ak[0] || !sk[0] || strpbrk(ak, "\"\\") || strpbrk(sk, "\"\\") || strpbrk(tok, "\"\\"))
        return;
    int n = snprintf(c->cred, sizeof c->cred,
                     "{\"access_key_id\":\"%s\",\"secret_access_key\":\"%s\","
                     "\"session_token\":\"%s\"}",
                     ak, sk, tok);
    if (n < 0 || (size_t)n >= sizeof c->cred)
        c->cred[0] = '\0';
}

int run_artifacts_download(const run_ctx *c, const Hodei__V1__Job *job)
{
    const char *dir = c->a->download_dir;
    hodei_artifact_conf conf;
    hodei_artifact_conf_default(&conf);
    conf.s3_endpoint = arts_env("HODEI_S3_ENDPOINT", "");
    conf.s3_region = arts_env("AWS_REGION", arts_env("AWS_DEFAULT_REGION", "us-east-1"));
    conf.s3_path_style = strcmp(arts_env("HODEI_S3_PATH_STYLE", ""), "true") == 0;
    conf.ca_file = arts_env("HODEI_ARTIFACTS_CA_FILE", "");
    arts_ctx ctx = {.err = c->err};
    arts_cred(&ctx);
    hodei_artifact_hooks hooks = {.note = arts_note, .secret = arts_secret, .user = &ctx};
    size_t n = 0;
    Hodei__V1__Artifact *items = calloc(job->n_artifacts + 1, sizeof *items);
    Hodei__V1__Artifact **ptrs = calloc(job->n_artifacts + 1, sizeof *ptrs);
    hodei_artifact_job *aj = NULL;
    hodei_err e;
    int rc = CLI_EXIT_ERROR;
    if (!items || !ptrs) {
        fprintf(c->err, "hodei: out of memory\n");
        goto out;
    }
    for (size_t i = 0; i < job->n_artifacts; i++) {
        const Hodei__V1__ArtifactRecord *r = job->artifacts[i];
        if (r->state != HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED)
            continue;
        hodei__v1__artifact__init(&items[n]);
        items[n].source = r->destination;
        items[n].destination = r->source;
        items[n].checksum = r->checksum;
        items[n].credentials = strncmp(r->destination, "s3://", 5) == 0 ? ARTS_CRED_NAME : "";
        ptrs[n] = &items[n];
        n++;
    }
    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
        fprintf(c->err, "hodei: --download %s: %s\n", dir, strerror(errno));
        goto out;
    }
    if (hodei_artifact_global_init(&e) != HODEI_OK ||
        hodei_artifact_job_create(&conf, dir, 0, &hooks, &aj, &e) != HODEI_OK ||
        hodei_artifact_stage(aj, ptrs, n, &e) != HODEI_OK) {
        fprintf(c->err, "hodei: %s\n", e.msg);
        goto out;
    }
    rc = CLI_EXIT_OK;
out:
    hodei_artifact_job_destroy(aj);
    explicit_bzero(ctx.cred, sizeof ctx.cred);
    free(items);
    free(ptrs);
    return rc;
}
