/* A configuration file: YAML bytes -> hodei_config_load over the
 * parameters every daemon has. The input goes through a file, as a
 * daemon's --config does. Property: a refusal has a message that names
 * the file or a parameter; an acceptance prints (--check-config) without
 * ever showing database.url, a secret. */
#include <string.h>
#include <unistd.h>

#include "fuzz.h"
#include "hodei/config.h"

static char path[64];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    /* Memory-backed when there is one: a file per execution. */
    const char *dir = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(path, sizeof path, "%s/hodei-fuzz-config-%ld.yaml", dir, (long)getpid());
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        abort();
    if (size && fwrite(data, 1, size, f) != size)
        abort();
    fclose(f);
    hodei_common_config conf;
    hodei_cfg_section sec = {hodei_common_params, hodei_common_params_len, &conf};
    hodei_err err = {0};
    if (hodei_config_load(&sec, 1, path, &err) == HODEI_OK) {
        char *text = NULL;
        size_t len = 0;
        FILE *out = open_memstream(&text, &len);
        if (!out)
            abort();
        hodei_config_print(&sec, 1, out);
        fclose(out);
        /* Only its own line: the value may be any text found elsewhere. */
        const char *line = strstr(text, "database.url = ");
        const char *eol = line ? strchr(line, '\n') : NULL;
        const char *hit = conf.database_url && strlen(conf.database_url) >= 4 && line
                              ? strstr(line, conf.database_url)
                              : NULL;
        FUZZ_CHECK(!hit || (eol && hit > eol), "database.url shown: %s", text);
        free(text);
    } else {
        FUZZ_CHECK(strstr(err.msg, path) || strchr(err.msg, '.'), "message names nothing: %s",
                   err.msg);
    }
    hodei_config_free(&sec, 1);
    unlink(path);
    return 0;
}
