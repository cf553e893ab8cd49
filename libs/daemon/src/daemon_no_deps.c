/* The start-up checks of hodei_daemon_lite: the skeleton for a process that
 * uses neither PostgreSQL nor NATS (the worker agent), so it links neither
 * libpq nor nats.c. A service built on it that still sets needs_db or
 * needs_nats gets a clear start-up failure instead of a missing check. */
#include <stdio.h>

#include "daemon_int.h"

static int daemon_no_dep(const hodei_daemon *d, const char *what)
{
    fprintf(stderr,
            "%s: built without %s support (hodei_daemon_lite): set needs_%s only in a"
            " service linked with hodei_daemon\n",
            d->svc->name, what, what[0] == 'P' ? "db" : "nats");
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

int daemon_check_nats(hodei_daemon *d)
{
    return daemon_no_dep(d, "NATS");
}

void daemon_nats_release(void) {}
