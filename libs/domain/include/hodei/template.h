/* Job templates (TemplateService): names and parameter names, with the
 * limits the edge enforces and the CLI checks before sending, and the
 * substitution of ${param} in a spec's strings. Pure functions, no I/O. */
#ifndef HODEI_TEMPLATE_H
#define HODEI_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#include "hodei/v1/job.pb-c.h"

#define HODEI_TEMPLATE_NAME_MAX 63          /* bytes */
#define HODEI_TEMPLATE_DESCRIPTION_MAX 1024 /* bytes */
#define HODEI_TEMPLATE_PARAMS_MAX 64        /* declared parameters */
#define HODEI_TEMPLATE_PARAM_NAME_MAX 64    /* bytes */
#define HODEI_TEMPLATE_VALUE_MAX 4096       /* bytes of one value given to RunTemplate */

/* 1..63 of a-z 0-9 . _ -, starting with a letter or digit. */
bool hodei_template_name_valid(const char *s);
/* s[0..len) is a parameter name: [A-Za-z_][A-Za-z0-9_]*, 1..64 bytes. */
bool hodei_template_param_valid(const char *s, size_t len);

/* A substitution: names[0..n) are a template's declared parameters,
 * values[i] the value of names[i] (values NULL: only find which are used).
 * Only a declared name is a placeholder: "${HOME}" in a script stays as it
 * is, and so does "${" without a closing brace; a value is never scanned
 * again. */
typedef struct {
    char *const *names;
    size_t n;                  /* at most HODEI_TEMPLATE_PARAMS_MAX */
    const char *const *values; /* NULL: only mark what is used */
    bool used[HODEI_TEMPLATE_PARAMS_MAX];
    bool failed; /* out of memory, or the strings filled in past HODEI_JOB_SPEC_PACKED_MAX */
    size_t filled_bytes; /* bytes of the strings filled in so far (start at 0) */
} hodei_template_subst;

/* One string: marks in t->used the declared parameters *s names and, with
 * values, replaces *s by the filled-in copy (malloc'd). The old *s is freed
 * unless it is protobuf-c's shared empty string, so it must come from the
 * default allocator (or be that empty string). A NULL *s is left alone.
 * Sets t->failed (and leaves *s) when the strings filled in with t so far,
 * this one included, would pass HODEI_JOB_SPEC_PACKED_MAX bytes together (a
 * spec holding them could not be valid: so one RunTemplate never makes more
 * than that, however many placeholders its strings repeat), or memory runs
 * out. */
void hodei_template_subst_string(hodei_template_subst *t, char **s);
/* Every string of the spec that may hold a placeholder: name, command and
 * args, script interpreter and content, env and label values, working_dir,
 * image; each as hodei_template_subst_string. */
void hodei_template_subst_spec(hodei_template_subst *t, Hodei__V1__JobSpec *spec);

#endif
