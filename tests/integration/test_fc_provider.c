/* The Firecracker provider driver against a fake Firecracker
 * (tests/clients/fake-firecracker.mjs): it is started as the provider starts
 * the real binary (or the jailer), serves the API socket, and checks every
 * request's path and body against Firecracker's published API. There is no
 * firecracker binary and no usable KVM on the test machines: no microVM
 * boots here. The fake's "guest" is a stand-in worker started with the
 * MMDS data, so the token's way through MMDS is checked for real. Tap
 * devices are real (made and removed by the driver). */
#include <criterion/criterion.h>

#include <errno.h>
#include <net/if.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "hodei/time.h"
#include "provider.h"

#define T_WAIT_MS 30000
#define T_OTP "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
#define T_WORKER "0190a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b"

static char g_dir[256];

static void t_write(const char *path, const char *text, mode_t mode)
{
    FILE *f = fopen(path, "w");
    cr_assert(f, "%s: %s", path, strerror(errno));
    fputs(text, f);
    fclose(f);
    chmod(path, mode);
}

static void t_setup(void)
{
    char path[512], text[2048];
    snprintf(g_dir, sizeof g_dir, "/tmp/hodei-fc-test-XXXXXX");
    cr_assert(mkdtemp(g_dir), "mkdtemp: %s", strerror(errno));
    const char *root = getenv("HODEI_ROOT");
    snprintf(path, sizeof path, "%s/vmlinux", g_dir);
    t_write(path, "not a kernel", 0644);
    snprintf(path, sizeof path, "%s/rootfs.ext4", g_dir);
    t_write(path, "not a filesystem", 0644);
    snprintf(path, sizeof path, "%s/worker.sh", g_dir);
    t_write(path,
            "#!/bin/sh\nd=\"$(dirname \"$0\")\"\n"
            "env | sort > \"$d/env-$HODEI_WORKER_ID.tmp\"\n"
            "mv \"$d/env-$HODEI_WORKER_ID.tmp\" \"$d/env-$HODEI_WORKER_ID\"\n"
            "exec sleep 600\n",
            0755);
    snprintf(path, sizeof path, "%s/bin", g_dir);
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/bin/firecracker", g_dir);
    snprintf(text, sizeof text,
             "#!/bin/sh\nexec node %s/tests/clients/fake-firecracker.mjs --log-dir %s"
             " --worker-bin %s/worker.sh \"$@\"\n",
             root, g_dir, g_dir);
    t_write(path, text, 0755);
    snprintf(path, sizeof path, "%s/bin/jailer", g_dir);
    snprintf(text, sizeof text,
             "#!/bin/sh\nexec node %s/tests/clients/fake-firecracker.mjs --jailer --log-dir %s"
             " --worker-bin %s/worker.sh \"$@\"\n",
             root, g_dir, g_dir);
    t_write(path, text, 0755);
}

static void t_teardown(void)
{
    char cmd[400];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", g_dir);
    if (g_dir[0] && system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", g_dir);
}

TestSuite(fc, .init = t_setup, .fini = t_teardown, .timeout = 240);

static prov_driver *t_driver(const char *extra_json, hodei_status want)
{
    char cfg[2048];
    prov_driver *drv = NULL;
    hodei_err err = {0};
    snprintf(cfg, sizeof cfg,
             "{\"firecracker_binary\":\"%s/bin/firecracker\",\"kernel_image\":\"%s/vmlinux\","
             "\"rootfs\":\"%s/rootfs.ext4\",\"socket_wait\":\"60s\",\"tap_prefix\":\"hft\"%s}",
             g_dir, g_dir, g_dir, extra_json);
    prov_driver_params p = {.name = "fc",
                            .config_json = cfg,
                            .state_dir = g_dir,
                            .worker_binary = "",
                            .destroy_grace_ms = 1500};
    hodei_status st = prov_firecracker_ops.create(&p, &drv, &err);
    cr_assert_eq(st, want, "create: %s", err.msg);
    return drv;
}

static prov_worker_env t_env(void)
{
    return (prov_worker_env){
        .worker_id = T_WORKER,
        .server = "10.0.0.1:50051",
        .otp = T_OTP,
        .log_level = "debug",
        .spec = {.cpu_millis = 1500, .memory_bytes = 1073741824, .labels_json = "{}"},
    };
}

/* The requests the fake saw, in order. */
static json_t *t_requests(void)
{
    char path[512], line[8192];
    snprintf(path, sizeof path, "%s/fc-hodei-" T_WORKER ".jsonl", g_dir);
    json_t *all = json_array();
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        json_error_t jerr;
        json_t *r = json_loads(line, 0, &jerr);
        cr_assert(r, "request log line: %s", line);
        json_array_append_new(all, r);
    }
    if (f)
        fclose(f);
    return all;
}

static void t_expect_request(json_t *reqs, size_t i, const char *path, const char *body_json)
{
    json_t *r = json_array_get(reqs, i);
    cr_assert(r, "request %zu (%s) was made", i, path);
    cr_expect_str_eq(json_string_value(json_object_get(r, "method")), "PUT");
    cr_expect_str_eq(json_string_value(json_object_get(r, "path")), path, "request %zu", i);
    cr_expect_eq(json_integer_value(json_object_get(r, "status")), 204, "%s: %s", path,
                 json_string_value(json_object_get(r, "fault")));
    json_error_t jerr;
    json_t *want = json_loads(body_json, 0, &jerr);
    cr_assert(want, "test body: %s", jerr.text);
    char *got = json_dumps(json_object_get(r, "body"), JSON_SORT_KEYS | JSON_COMPACT);
    char *exp = json_dumps(want, JSON_SORT_KEYS | JSON_COMPACT);
    cr_expect_str_eq(got, exp, "body of %s", path);
    free(got);
    free(exp);
    json_decref(want);
}

static bool t_file_has(const char *path, const char *needle)
{
    char buf[16384];
    FILE *f = fopen(path, "r");
    if (!f)
        return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    return strstr(buf, needle) != NULL;
}

static bool t_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static void t_boot_sequence(json_t *reqs, const char *kernel, const char *rootfs)
{
    char body[1024];
    t_expect_request(reqs, 0, "/machine-config",
                     "{\"vcpu_count\":2,\"mem_size_mib\":1024,\"smt\":false}");
    snprintf(body, sizeof body,
             "{\"kernel_image_path\":\"%s\",\"boot_args\":\"console=ttyS0 reboot=k panic=1 "
             "pci=off ro init=/sbin/hodei-init\"}",
             kernel);
    t_expect_request(reqs, 1, "/boot-source", body);
    snprintf(body, sizeof body,
             "{\"drive_id\":\"rootfs\",\"path_on_host\":\"%s\",\"is_root_device\":true,"
             "\"is_read_only\":true}",
             rootfs);
    t_expect_request(reqs, 2, "/drives/rootfs", body);
    json_t *net = json_object_get(json_array_get(reqs, 3), "body");
    snprintf(body, sizeof body,
             "{\"iface_id\":\"eth0\",\"host_dev_name\":\"hft2e3f4a5b\",\"guest_mac\":\"%s\"}",
             json_string_value(json_object_get(net, "guest_mac")));
    t_expect_request(reqs, 3, "/network-interfaces/eth0", body);
    t_expect_request(reqs, 4, "/mmds/config",
                     "{\"version\":\"V2\",\"network_interfaces\":[\"eth0\"]}");
    t_expect_request(reqs, 5, "/mmds",
                     "{\"hodei\":{\"server\":\"10.0.0.1:50051\",\"worker_id\":\"" T_WORKER
                     "\",\"otp\":\"" T_OTP "\",\"log_level\":\"debug\"}}");
    t_expect_request(reqs, 6, "/actions", "{\"action_type\":\"InstanceStart\"}");
}

static void t_wait_env(void)
{
    char env[400];
    snprintf(env, sizeof env, "%s/env-" T_WORKER, g_dir);
    int64_t deadline = hodei_mono_ms() + T_WAIT_MS;
    while (!t_file_has(env, "HODEI_OTP=" T_OTP))
        cr_assert(hodei_mono_ms() < deadline, "the guest got its token from MMDS");
    cr_expect(t_file_has(env, "HODEI_SERVER=10.0.0.1:50051"));
}

Test(fc, boot_and_teardown_in_order)
{
    prov_driver *drv = t_driver("", HODEI_OK);
    cr_expect_neq(drv->scope[0], '\0', "a VM is one host's: the driver has a scope");
    prov_worker_env env = t_env();
    char ref[PROV_REF_MAX] = "", kernel[300], rootfs[300], vm_dir[400];
    hodei_err err = {0};
    cr_assert_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_OK, "create: %s", err.msg);
    cr_expect(if_nametoindex("hft2e3f4a5b") > 0, "the tap device exists");
    snprintf(kernel, sizeof kernel, "%s/vmlinux", g_dir);
    snprintf(rootfs, sizeof rootfs, "%s/rootfs.ext4", g_dir);
    json_t *reqs = t_requests();
    cr_expect_eq(json_array_size(reqs), 7, "seven requests boot the VM");
    t_boot_sequence(reqs, kernel, rootfs);
    json_decref(reqs);
    t_wait_env();

    prov_worker_status ws;
    cr_assert_eq(drv->ops->get_status(drv, T_WORKER, ref, &ws, NULL, &err), HODEI_OK);
    cr_expect_eq(ws, PROV_WORKER_RUNNING);
    prov_worker_ref list[4];
    size_t n = 0;
    cr_assert_eq(drv->ops->list_workers(drv, list, 4, &n, &err), HODEI_OK, "%s", err.msg);
    cr_expect_eq(n, 1);
    cr_expect_str_eq(list[0].worker_id, T_WORKER);

    /* teardown: SendCtrlAltDel, the VM exits, everything of it is removed */
    int64_t t0 = hodei_mono_ms();
    cr_assert_eq(drv->ops->destroy_worker(drv, T_WORKER, ref, &err), HODEI_OK, "%s", err.msg);
    cr_expect_lt(hodei_mono_ms() - t0, 1500, "the guest rebooted: no SIGKILL needed");
    reqs = t_requests();
    cr_expect_eq(json_array_size(reqs), 8);
    t_expect_request(reqs, 7, "/actions", "{\"action_type\":\"SendCtrlAltDel\"}");
    json_decref(reqs);
    cr_assert_eq(drv->ops->get_status(drv, T_WORKER, ref, &ws, NULL, &err), HODEI_OK);
    cr_expect_eq(ws, PROV_WORKER_GONE);
    cr_expect_eq(if_nametoindex("hft2e3f4a5b"), 0, "the tap device is removed");
    snprintf(vm_dir, sizeof vm_dir, "%s/firecracker/" T_WORKER, g_dir);
    cr_expect_not(t_exists(vm_dir), "the VM's folder is removed");
    cr_expect_eq(drv->ops->destroy_worker(drv, T_WORKER, ref, &err), HODEI_OK,
                 "a second destroy is fine");
    char msg[PROV_HEALTH_MSG_MAX];
    cr_expect(drv->ops->health(drv, msg), "health: %s", msg);
    drv->ops->destroy(drv);
}

Test(fc, a_refused_request_undoes_everything)
{
    prov_driver *drv = t_driver("", HODEI_OK);
    char path[400];
    snprintf(path, sizeof path, "%s/rootfs.ext4", g_dir);
    unlink(path);
    prov_worker_env env = t_env();
    char ref[PROV_REF_MAX] = "";
    hodei_err err = {0};
    cr_assert_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_ERR_INVALID);
    cr_expect(strstr(err.msg, "root drive: PUT /drives/rootfs: 400: Unable to create the block"),
              "%s", err.msg);
    cr_expect_null(strstr(err.msg, T_OTP));
    cr_expect_eq(if_nametoindex("hft2e3f4a5b"), 0, "no tap left behind");
    prov_worker_status ws;
    cr_assert_eq(drv->ops->get_status(drv, T_WORKER, "", &ws, NULL, &err), HODEI_OK);
    cr_expect_eq(ws, PROV_WORKER_GONE, "no firecracker left behind");
    json_t *reqs = t_requests();
    cr_expect_eq(json_array_size(reqs), 3, "it stopped at the refused request");
    json_decref(reqs);
    drv->ops->destroy(drv);
}

Test(fc, jailer_runs_it_in_a_chroot)
{
    char extra[600], jail[600], base[64] = "/tmp/hjl-XXXXXX"; /* unix socket paths are short */
    cr_assert(mkdtemp(base));
    snprintf(extra, sizeof extra,
             ",\"jailer_binary\":\"%s/bin/jailer\",\"chroot_base\":\"%s\",\"jailer_uid\":\"0\","
             "\"jailer_gid\":\"0\"",
             g_dir, base);
    prov_driver *drv = t_driver(extra, HODEI_OK);
    prov_worker_env env = t_env();
    char ref[PROV_REF_MAX] = "";
    hodei_err err = {0};
    cr_assert_eq(drv->ops->create_worker(drv, &env, ref, &err), HODEI_OK, "create: %s", err.msg);
    json_t *reqs = t_requests();
    t_boot_sequence(reqs, "/vmlinux", "/rootfs.ext4");
    json_decref(reqs);
    snprintf(jail, sizeof jail, "%s/firecracker/hodei-" T_WORKER "/root/rootfs.ext4", base);
    cr_expect(t_exists(jail), "the rootfs is linked into the jail");
    t_wait_env();
    cr_assert_eq(drv->ops->destroy_worker(drv, T_WORKER, ref, &err), HODEI_OK, "%s", err.msg);
    cr_expect_not(t_exists(jail), "the jail's files are removed");
    drv->ops->destroy(drv);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", base);
    cr_expect_eq(system(cmd), 0);
}

Test(fc, bad_config_names_the_key)
{
    prov_driver *drv = NULL;
    hodei_err err = {0};
    prov_driver_params p = {
        .name = "fc", .config_json = "{\"rootfs\":\"/x\"}", .state_dir = "/tmp"};
    cr_expect_eq(prov_firecracker_ops.create(&p, &drv, &err), HODEI_ERR_INVALID);
    cr_expect(strstr(err.msg, "kernel_image"), "%s", err.msg);
    p.config_json = "{\"kernel_image\":\"/k\",\"rootfs\":\"/r\",\"vcpu_count\":\"64\"}";
    cr_expect_eq(prov_firecracker_ops.create(&p, &drv, &err), HODEI_ERR_INVALID);
    cr_expect(strstr(err.msg, "vcpu_count"), "%s", err.msg);
    p.config_json = "{\"kernel_image\":\"/k\",\"rootfs\":\"/r\",\"mem\":\"1\"}";
    cr_expect_eq(prov_firecracker_ops.create(&p, &drv, &err), HODEI_ERR_INVALID);
    cr_expect(strstr(err.msg, "unknown key \"mem\""), "%s", err.msg);
}
