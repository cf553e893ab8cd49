/* Container image references as jobs name them (JobSpec.image) and
 * container engines take them: [domain[:port]/]path[:tag][@digest], the
 * grammar of the Docker/OCI distribution reference:
 *   domain     components of [A-Za-z0-9-] joined by '.', optional :port;
 *              the first path element is a domain when it holds '.' or ':'
 *              or is "localhost"
 *   path       components of [a-z0-9] joined by '.', '_', '__' or '-'*,
 *              separated by '/'; the whole name at most 255 bytes
 *   tag        [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}
 *   digest     algorithm ":" at least 32 hex digits (sha256:...)
 * Pure: no I/O. */
#ifndef HODEI_IMAGE_REF_H
#define HODEI_IMAGE_REF_H

#include <stdbool.h>
#include <stddef.h>

#define HODEI_IMAGE_NAME_MAX 255
#define HODEI_IMAGE_TAG_MAX 128
#define HODEI_IMAGE_WHY_MAX 160

/* Where the parts of a reference are, as offsets and lengths into it. */
typedef struct {
    size_t name_len; /* [domain/]path: from offset 0 */
    size_t tag_off;  /* 0 when there is no tag */
    size_t tag_len;
    size_t digest_off; /* 0 when there is no digest */
    size_t digest_len;
} hodei_image_ref;

/* Parses ref; false with why (HODEI_IMAGE_WHY_MAX bytes, may be NULL) saying
 * what is wrong when it is not a valid reference. */
bool hodei_image_ref_parse(const char *ref, hodei_image_ref *out, char *why);

#endif
