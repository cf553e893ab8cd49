/* The start-up check of hodei_daemon_lite: the skeleton for a process that
 * uses neither PostgreSQL nor NATS (the worker agent), so it links neither
 * libpq nor nats.c (the NATS check is a library of its own,
 * hodei_daemon_nats). A service built on it that still sets needs_db gets a
 * clear start-up failure instead of a missing check. */
#include <stdio.h>

#include "daemon_int.h"

static int daemon_no_dep(const hodei_daemon *d, const char *what)
{
    fprintf(stderr,
            "%s: built without %s support (hodei_daemon_lite): set needs_db only in a"
            " service linked with hodei_daemon\n",
            d->svc->name, what);
    return DAEMON_EXIT_FAILURE;
}

int daemon_check_db(hodei_daemon *d)
{
    return daemon_no_dep(d, "PostgreSQL");
}

int daemon_check_db_url(const hodei_daemon *d)
{
    return d->svc->needs_db ? daemon_no_dep(d, "PostgreSQL") : DAEMON_EXIT_OK;
}
