#include "hodei/template.h"

#include <string.h>

static bool tpl_lower_or_digit(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

bool hodei_template_name_valid(const char *s)
{
    size_t n = strlen(s);
    if (n == 0 || n > HODEI_TEMPLATE_NAME_MAX || !tpl_lower_or_digit(s[0]))
        return false;
    for (size_t i = 0; i < n; i++)
        if (!tpl_lower_or_digit(s[i]) && s[i] != '.' && s[i] != '_' && s[i] != '-')
            return false;
    return true;
}

bool hodei_template_param_valid(const char *s, size_t len)
{
    if (len == 0 || len > HODEI_TEMPLATE_PARAM_NAME_MAX || (s[0] >= '0' && s[0] <= '9'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
              (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
            return false;
    return true;
}
