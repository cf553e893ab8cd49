/* libs/artifact's pure parts and its workspace path rules: SigV4 against
 * AWS's published S3 examples, the XML reader, and paths that must never
 * lead out of a folder (.., symlinks to /etc, FIFOs). */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "art_int.h"

#define AK "AKIAIOSFODNN7EXAMPLE"
#define SK "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
#define HOST "examplebucket.s3.amazonaws.com"
#define EMPTY "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define DATE "20130524T000000Z"

static const art_sigv4_cred cred = {AK, SK, "", "us-east-1", "s3"};

static void expect_sig(const char *method, const char *uri, const char *query,
                       const art_sigv4_header *h, size_t n, const char *payload, const char *sig)
{
    char auth[1024];
    hodei_err err;
    cr_assert_eq(art_sigv4_authorization(method, uri, query, h, n, payload, DATE, &cred, auth,
                                         sizeof auth, &err),
                 HODEI_OK, "%s", err.msg);
    const char *got = strstr(auth, "Signature=");
    cr_assert_not_null(got);
    cr_assert_str_eq(got + strlen("Signature="), sig, "%s %s", method, uri);
    cr_assert(strncmp(auth, "AWS4-HMAC-SHA256 Credential=" AK "/20130524/us-east-1/s3/aws4_request",
                      strlen("AWS4-HMAC-SHA256 Credential=" AK
                             "/20130524/us-east-1/s3/aws4_request")) == 0);
}

Test(sigv4, aws_get_object_example)
{
    art_sigv4_header h[] = {{"host", HOST},
                            {"range", "bytes=0-9"},
                            {"x-amz-content-sha256", EMPTY},
                            {"x-amz-date", DATE}};
    expect_sig("GET", "/test.txt", "", h, 4, EMPTY,
               "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
}

Test(sigv4, aws_put_object_example)
{
    const char *payload = "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072";
    art_sigv4_header h[] = {{"date", "Fri, 24 May 2013 00:00:00 GMT"},
                            {"host", HOST},
                            {"x-amz-content-sha256", payload},
                            {"x-amz-date", DATE},
                            {"x-amz-storage-class", "REDUCED_REDUNDANCY"}};
    hodei_buf uri;
    hodei_buf_init(&uri, 256);
    hodei_buf_putc(&uri, '/');
    art_uri_encode(&uri, "test$file.text", strlen("test$file.text"), true);
    cr_assert_str_eq(uri.data, "/test%24file.text");
    expect_sig("PUT", uri.data, "", h, 5, payload,
               "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    hodei_buf_fini(&uri);
}

Test(sigv4, aws_list_objects_example)
{
    art_sigv4_header h[] = {{"host", HOST}, {"x-amz-content-sha256", EMPTY}, {"x-amz-date", DATE}};
    expect_sig("GET", "/", "max-keys=2&prefix=J", h, 3, EMPTY,
               "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    expect_sig("GET", "/", "lifecycle=", h, 3, EMPTY,
               "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
}

Test(xml, tags_entities_and_spans)
{
    const char *x = "<R><Contents><Key>a&amp;b/c&lt;1&gt;</Key><Size>12</Size></Contents>"
                    "<Contents><Key>d</Key><Size>3</Size></Contents><IsTruncated>false"
                    "</IsTruncated></R>";
    size_t pos = 0, a = 0, b = 0;
    char out[64];
    cr_assert(art_xml_span(x, strlen(x), &pos, "Contents", &a, &b));
    size_t k = 0;
    cr_assert(art_xml_next(x + a, b - a, &k, "Key", out, sizeof out));
    cr_assert_str_eq(out, "a&b/c<1>");
    cr_assert(art_xml_span(x, strlen(x), &pos, "Contents", &a, &b));
    k = 0;
    cr_assert(art_xml_next(x + a, b - a, &k, "Size", out, sizeof out));
    cr_assert_str_eq(out, "3");
    cr_assert(!art_xml_span(x, strlen(x), &pos, "Contents", &a, &b));
    k = 0;
    cr_assert(!art_xml_next(x, strlen(x), &k, "UploadId", out, sizeof out));
}

/* ------------------------------------------------------------ paths */

static char root[256];
static int root_fd = -1;

static void ws_setup(void)
{
    snprintf(root, sizeof root, "/tmp/hodei-art-test-XXXXXX");
    cr_assert_not_null(mkdtemp(root));
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "cd %s && mkdir -p ws/out/sub allowed/data && echo secret > outside.txt &&"
             " echo a > ws/out/a.csv && echo b > ws/out/b.csv && echo c > ws/out/sub/c.csv &&"
             " echo h > ws/out/.hidden.csv && ln -s /etc/passwd ws/out/link.csv &&"
             " ln -s /etc ws/etc && ln -s ../outside.txt allowed/data/escape &&"
             " echo ref > allowed/data/ref.txt && mkfifo ws/out/fifo.csv",
             root);
    cr_assert_eq(system(cmd), 0);
    char ws[512];
    snprintf(ws, sizeof ws, "%s/ws", root);
    root_fd = open(ws, O_RDONLY | O_DIRECTORY);
    cr_assert_geq(root_fd, 0);
}

static void ws_teardown(void)
{
    char cmd[512];
    close(root_fd);
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(paths, .init = ws_setup, .fini = ws_teardown);

Test(paths, reads_only_regular_files_and_never_follows_links)
{
    int fd = -1;
    int64_t size = 0;
    hodei_err err;
    cr_assert_eq(art_open_read(root_fd, "out/a.csv", &fd, &size, &err), HODEI_OK, "%s", err.msg);
    cr_assert_eq(size, 2);
    close(fd);
    cr_assert_neq(art_open_read(root_fd, "out/link.csv", &fd, &size, &err), HODEI_OK);
    cr_assert_not_null(strstr(err.msg, "symbolic link"), "%s", err.msg);
    cr_assert_neq(art_open_read(root_fd, "etc/passwd", &fd, &size, &err), HODEI_OK);
    cr_assert_neq(art_open_read(root_fd, "out/fifo.csv", &fd, &size, &err), HODEI_OK);
    cr_assert_not_null(strstr(err.msg, "not a regular file"), "%s", err.msg);
}

Test(paths, writes_never_through_a_link_nor_over_a_file)
{
    int fd = -1;
    hodei_err err;
    cr_assert_eq(art_create_write(root_fd, "in/deep/x.bin", &fd, &err), HODEI_OK, "%s", err.msg);
    close(fd);
    cr_assert_eq(art_create_write(root_fd, "in/deep/x.bin", &fd, &err), HODEI_ERR_EXISTS);
    cr_assert_neq(art_create_write(root_fd, "etc/evil", &fd, &err), HODEI_OK);
    cr_assert_neq(art_create_write(root_fd, "out/link.csv", &fd, &err), HODEI_OK);
    cr_assert_eq(access("/etc/evil", F_OK), -1);
}

Test(paths, file_urls_only_below_the_allowed_folders)
{
    char roots[600], path[600];
    int fd = -1;
    int64_t size = 0;
    hodei_err err;
    snprintf(roots, sizeof roots, "/nonexistent:%s/allowed/", root);
    snprintf(path, sizeof path, "%s/allowed/data/ref.txt", root);
    cr_assert_eq(art_open_file_url(roots, path, &fd, &size, &err), HODEI_OK, "%s", err.msg);
    close(fd);
    snprintf(path, sizeof path, "%s/allowed/data/escape", root);
    cr_assert_neq(art_open_file_url(roots, path, &fd, &size, &err), HODEI_OK);
    snprintf(path, sizeof path, "%s/outside.txt", root);
    cr_assert_eq(art_open_file_url(roots, path, &fd, &size, &err), HODEI_ERR_PERMISSION);
    cr_assert_eq(art_open_file_url("", path, &fd, &size, &err), HODEI_ERR_PERMISSION);
    snprintf(path, sizeof path, "%s/allowedX/data/ref.txt", root);
    cr_assert_eq(art_open_file_url(roots, path, &fd, &size, &err), HODEI_ERR_PERMISSION);
}

typedef struct {
    char rel[16][64];
    art_match_kind kind[16];
    size_t n;
} hits;

static void on_hit(void *user, const char *rel, art_match_kind kind)
{
    hits *h = user;
    cr_assert_lt(h->n, 16);
    snprintf(h->rel[h->n], sizeof h->rel[h->n], "%s", rel);
    h->kind[h->n++] = kind;
}

static art_match_kind kind_of(const hits *h, const char *rel)
{
    for (size_t i = 0; i < h->n; i++)
        if (strcmp(h->rel[i], rel) == 0)
            return h->kind[i];
    cr_assert_fail("%s not matched", rel);
    return ART_MATCH_OTHER;
}

Test(paths, globs_report_links_without_following_them)
{
    hits h = {0};
    size_t n = 0;
    hodei_err err;
    cr_assert_eq(art_glob(root_fd, "out/*.csv", 100, on_hit, &h, &n, &err), HODEI_OK);
    cr_assert_eq(n, 4, "a, b, link, fifo (not the hidden one, not sub/c)");
    cr_assert_eq(kind_of(&h, "out/a.csv"), ART_MATCH_FILE);
    cr_assert_eq(kind_of(&h, "out/link.csv"), ART_MATCH_SYMLINK);
    cr_assert_eq(kind_of(&h, "out/fifo.csv"), ART_MATCH_OTHER);
    memset(&h, 0, sizeof h);
    cr_assert_eq(art_glob(root_fd, "*/sub/*.csv", 100, on_hit, &h, &n, &err), HODEI_OK);
    cr_assert_eq(n, 1);
    cr_assert_str_eq(h.rel[0], "out/sub/c.csv");
    memset(&h, 0, sizeof h);
    cr_assert_eq(art_glob(root_fd, "etc/pass*", 100, on_hit, &h, &n, &err), HODEI_OK);
    cr_assert_eq(n, 0, "the link to /etc is not entered");
    memset(&h, 0, sizeof h);
    cr_assert_eq(art_glob(root_fd, "out/*.csv", 2, on_hit, &h, &n, &err), HODEI_OK);
    cr_assert_eq(n, 2, "bounded");
}

/* Jobs as another user: the workspace and what staging wrote become that
 * user's, a link in it is changed itself and never what it points to, and
 * the root lets the user through without listing it. Needs root. */
Test(workspace, handed_to_the_job_user_without_following_links)
{
    if (geteuid() != 0)
        cr_skip_test("needs root to change owners");
    char wroot[] = "/tmp/hodei-art-hand-XXXXXX", ws[512], path[600];
    hodei_err err;
    cr_assert_not_null(mkdtemp(wroot));
    cr_assert_eq(hodei_artifact_workspace_create(wroot, "job", 1, ws, sizeof ws, &err), HODEI_OK,
                 "%s", err.msg);
    snprintf(path, sizeof path, "%s/in.txt", ws);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs("x", f);
    fclose(f);
    snprintf(path, sizeof path, "%s/link", ws);
    cr_assert_eq(symlink("/etc/hostname", path), 0);
    cr_assert_eq(hodei_artifact_workspace_hand(wroot, ws, 65534, 65534, &err), HODEI_OK, "%s",
                 err.msg);
    struct stat st;
    cr_assert_eq(stat(ws, &st), 0);
    cr_assert_eq(st.st_uid, 65534);
    snprintf(path, sizeof path, "%s/in.txt", ws);
    cr_assert_eq(stat(path, &st), 0);
    cr_assert_eq(st.st_uid, 65534);
    snprintf(path, sizeof path, "%s/link", ws);
    cr_assert_eq(lstat(path, &st), 0);
    cr_assert_eq(st.st_uid, 65534);
    cr_assert_eq(stat("/etc/hostname", &st), 0);
    cr_assert_eq(st.st_uid, 0, "the link's target must stay root's");
    cr_assert_eq(stat(wroot, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0711);
    hodei_artifact_workspace_remove(ws);
    rmdir(wroot);
}
