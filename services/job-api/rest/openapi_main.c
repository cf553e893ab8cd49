/* hodei-openapi [OUT]: writes the REST door's OpenAPI 3 document
 * (rest_openapi.c) to OUT, or stdout. Run by the build: build/docs/openapi.json. */
#include <stdio.h>
#include <stdlib.h>

#include "rest_int.h"

int main(int argc, char **argv)
{
    json_t *doc = rest_openapi();
    int rc = 1;
    if (!doc) {
        fprintf(stderr, "hodei-openapi: out of memory\n");
        return 1;
    }
    if (argc > 2) {
        fprintf(stderr, "usage: hodei-openapi [OUT]\n");
        goto out;
    }
    size_t flags = JSON_INDENT(2) | JSON_PRESERVE_ORDER;
    if (argc == 2 ? json_dump_file(doc, argv[1], flags) != 0
                  : json_dumpf(doc, stdout, flags) != 0) {
        fprintf(stderr, "hodei-openapi: cannot write %s\n", argc == 2 ? argv[1] : "stdout");
        goto out;
    }
    rc = 0;
out:
    json_decref(doc);
    return rc;
}
