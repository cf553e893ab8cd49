/* hodei-bench-artifacts: libs/artifact's throughput against an S3 endpoint,
 * as a worker moves a job's files: one output file uploaded (multipart past
 * the threshold) and the same object staged back as an input, checksums
 * computed on the way. Prints one JSON object with curl's figures on the
 * same file and server (measured by bench/run just before) and the ratios.
 *   hodei-bench-artifacts --endpoint URL --bucket B --file PATH --workdir DIR
 *                         [--curl-up MIB_S --curl-down MIB_S]
 * The access key and secret come from BENCH_S3_CREDENTIALS ("AK:SK"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "hodei/artifact.h"
#include "hodei/time.h"

typedef struct {
    const char *endpoint, *bucket, *file, *workdir;
    double curl_up, curl_down;
} bench_args;

static const char *bench_secret(void *user, const char *name)
{
    (void)user;
    return strcmp(name, "bench") == 0 ? getenv("BENCH_S3_CREDENTIALS") : NULL;
}

static int bench_parse(int argc, char **argv, bench_args *a)
{
    for (int i = 1; i + 1 < argc; i += 2) {
        if (strcmp(argv[i], "--endpoint") == 0)
            a->endpoint = argv[i + 1];
        else if (strcmp(argv[i], "--bucket") == 0)
            a->bucket = argv[i + 1];
        else if (strcmp(argv[i], "--file") == 0)
            a->file = argv[i + 1];
        else if (strcmp(argv[i], "--workdir") == 0)
            a->workdir = argv[i + 1];
        else if (strcmp(argv[i], "--curl-up") == 0)
            a->curl_up = strtod(argv[i + 1], NULL);
        else if (strcmp(argv[i], "--curl-down") == 0)
            a->curl_down = strtod(argv[i + 1], NULL);
        else
            return -1;
    }
    return a->endpoint && a->bucket && a->file && a->workdir ? 0 : -1;
}

int main(int argc, char **argv)
{
    bench_args a = {0};
    hodei_err err;
    if (bench_parse(argc, argv, &a) != 0 || !getenv("BENCH_S3_CREDENTIALS")) {
        fprintf(stderr,
                "usage: BENCH_S3_CREDENTIALS=AK:SK %s --endpoint URL --bucket B --file "
                "PATH --workdir DIR\n",
                argv[0]);
        return 2;
    }
    struct stat sb;
    if (stat(a.file, &sb) != 0 || hodei_artifact_global_init(&err) != HODEI_OK)
        return 1;
    hodei_artifact_conf conf;
    hodei_artifact_conf_default(&conf);
    conf.s3_endpoint = a.endpoint;
    conf.s3_path_style = true;
    hodei_artifact_hooks hooks = {.secret = bench_secret};
    /* Upload: the file's folder is the workspace, its name the output. */
    char dir[4096], out_dir[4096], dest[512];
    snprintf(dir, sizeof dir, "%s", a.file);
    char *slash = strrchr(dir, '/');
    if (!slash)
        return 2;
    *slash = '\0';
    const char *name = slash + 1;
    snprintf(dest, sizeof dest, "s3://%s/bench/%s", a.bucket, name);
    Hodei__V1__Artifact out = HODEI__V1__ARTIFACT__INIT, *outp = &out;
    out.source = (char *)name;
    out.destination = dest;
    out.credentials = "bench";
    hodei_artifact_job *j = NULL;
    if (hodei_artifact_job_create(&conf, dir, 0, &hooks, &j, &err) != HODEI_OK) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    hodei_artifact_records recs;
    int64_t t0 = hodei_mono_ns();
    hodei_artifact_collect(j, &outp, 1, true, 1, &recs);
    int64_t up_ns = hodei_mono_ns() - t0;
    bool up_ok =
        recs.len == 1 && recs.items[0]->state == HODEI__V1__ARTIFACT_STATE__ARTIFACT_STATE_UPLOADED;
    if (!up_ok)
        fprintf(stderr, "upload failed: %s\n", recs.len ? recs.items[0]->error : "no record");
    char sum[80] = "";
    if (up_ok)
        snprintf(sum, sizeof sum, "%s", recs.items[0]->checksum);
    hodei_artifact_records_free(&recs);
    hodei_artifact_job_destroy(j);
    /* Download: the object staged into a fresh folder, checksum verified. */
    snprintf(out_dir, sizeof out_dir, "%s/in", a.workdir);
    mkdir(out_dir, 0700);
    Hodei__V1__Artifact in = HODEI__V1__ARTIFACT__INIT, *inp = &in;
    in.source = dest;
    in.destination = (char *)name;
    in.checksum = sum;
    in.credentials = "bench";
    int64_t down_ns = 0;
    bool down_ok = false;
    if (up_ok && hodei_artifact_job_create(&conf, out_dir, 0, &hooks, &j, &err) == HODEI_OK) {
        t0 = hodei_mono_ns();
        down_ok = hodei_artifact_stage(j, &inp, 1, &err) == HODEI_OK;
        down_ns = hodei_mono_ns() - t0;
        if (!down_ok)
            fprintf(stderr, "download failed: %s\n", err.msg);
        hodei_artifact_job_destroy(j);
    }
    double mb = (double)sb.st_size / (1024.0 * 1024.0);
    double up = up_ok ? mb / ((double)up_ns / 1e9) : 0.0;
    double down = down_ok ? mb / ((double)down_ns / 1e9) : 0.0;
    printf("{\"scenario\":\"artifacts_s3\",\"file_mib\":%.0f,\"upload_mib_s\":%.1f,"
           "\"download_mib_s\":%.1f,\"curl_upload_mib_s\":%.1f,\"curl_download_mib_s\":%.1f,"
           "\"upload_vs_curl\":%.2f,\"download_vs_curl\":%.2f}\n",
           mb, up, down, a.curl_up, a.curl_down, a.curl_up > 0 ? up / a.curl_up : 0.0,
           a.curl_down > 0 ? down / a.curl_down : 0.0);
    return up_ok && down_ok ? 0 : 1;
}
