/* Job templates (TemplateService): names and parameter names, with the
 * limits the edge enforces and the CLI checks before sending. Pure
 * functions, no I/O. */
#ifndef HODEI_TEMPLATE_H
#define HODEI_TEMPLATE_H

#include <stdbool.h>
#include <stddef.h>

#define HODEI_TEMPLATE_NAME_MAX 63          /* bytes */
#define HODEI_TEMPLATE_DESCRIPTION_MAX 1024 /* bytes */
#define HODEI_TEMPLATE_PARAMS_MAX 64        /* declared parameters */
#define HODEI_TEMPLATE_PARAM_NAME_MAX 64    /* bytes */
#define HODEI_TEMPLATE_VALUE_MAX 4096       /* bytes of one value given to RunTemplate */

/* 1..63 of a-z 0-9 . _ -, starting with a letter or digit. */
bool hodei_template_name_valid(const char *s);
/* s[0..len) is a parameter name: [A-Za-z_][A-Za-z0-9_]*, 1..64 bytes. */
bool hodei_template_param_valid(const char *s, size_t len);

#endif
