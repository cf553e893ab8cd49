/* Each caller's share of the submit queue's bytes (client_shares.h): the
 * boundary of a share, other callers unaffected, the cap on callers, and
 * the table against a plain model through many arrivals and departures
 * that collide in a small table (backward-shift deletion). */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client_shares.h"

static submit_shares *shares_new(size_t keys_max)
{
    submit_shares *t = NULL;
    hodei_err err;
    cr_assert_eq(submit_shares_create(keys_max, &t, &err), HODEI_OK, "%s", err.msg);
    return t;
}

/* One take of bytes by who against a share of share_max: asserts its verdict
 * and the bytes who held before it. */
static void take(submit_shares *t, const char *who, size_t bytes, size_t share_max,
                 submit_share_verdict want, size_t held_want, const char *why)
{
    size_t held = 99;
    cr_assert_eq(submit_shares_take(t, who, bytes, share_max, &held), want, "%s takes %zu: %s", who,
                 bytes, why);
    cr_assert_eq(held, held_want, "%s held before taking %zu: %s", who, bytes, why);
}

Test(submit_shares, a_share_holds_exactly_its_bytes_and_spares_others)
{
    submit_shares *t = shares_new(8);
    take(t, "key:a", 600, 1000, SUBMIT_SHARE_OK, 0, "a first job");
    take(t, "key:a", 401, 1000, SUBMIT_SHARE_OVER, 600, "one byte past the share");
    take(t, "key:a", 400, 1000, SUBMIT_SHARE_OK, 600, "exactly the share");
    take(t, "key:a", 1, 1000, SUBMIT_SHARE_OVER, 1000, "a full share");
    take(t, "key:b", 1000, 1000, SUBMIT_SHARE_OK, 0, "another caller has its own share");
    take(t, "key:c", 1001, 1000, SUBMIT_SHARE_OVER, 0, "a job larger than a share");
    cr_assert_eq(submit_shares_keys(t), 2, "a refused caller is not kept");
    submit_shares_give(t, "key:a", 600);
    take(t, "key:a", 600, 1000, SUBMIT_SHARE_OK, 400, "bytes given back are free again");
    submit_shares_give(t, "key:a", 1000);
    submit_shares_give(t, "key:b", 1000);
    cr_assert_eq(submit_shares_keys(t), 0, "callers with nothing waiting leave");
    submit_shares_destroy(t);
    submit_shares_destroy(NULL);
}

Test(submit_shares, a_full_table_refuses_new_callers_only)
{
    submit_shares *t = shares_new(3);
    take(t, "key:1", 10, 100, SUBMIT_SHARE_OK, 0, "a first caller");
    take(t, "key:2", 10, 100, SUBMIT_SHARE_OK, 0, "a second caller");
    take(t, "anonymous", 10, 100, SUBMIT_SHARE_OK, 0, "a third caller fills the table");
    take(t, "cert:w1", 10, 100, SUBMIT_SHARE_FULL, 0, "a fourth caller");
    take(t, "key:2", 10, 100, SUBMIT_SHARE_OK, 10,
         "a caller already in the table still has its share");
    submit_shares_give(t, "key:1", 10);
    take(t, "cert:w1", 10, 100, SUBMIT_SHARE_OK, 0, "a slot freed is taken");
    cr_assert_eq(submit_shares_keys(t), 3);
    submit_shares_destroy(t);
}

Test(submit_shares, bad_sizes_refused)
{
    submit_shares *t = NULL;
    hodei_err err;
    cr_assert_eq(submit_shares_create(0, &t, &err), HODEI_ERR_INVALID);
    cr_assert_eq(submit_shares_create(65537, &t, &err), HODEI_ERR_INVALID);
    cr_assert_null(t);
}

#define MODEL_KEYS 40
#define MODEL_STEPS 200000

/* Random takes and gives over 40 callers in a table of at most 16: every
 * answer and every caller's bytes as a plain array says. */
Test(submit_shares, matches_a_plain_model)
{
    submit_shares *t = shares_new(16);
    size_t model[MODEL_KEYS] = {0};
    size_t live = 0;
    char who[MODEL_KEYS][16];
    for (int k = 0; k < MODEL_KEYS; k++)
        snprintf(who[k], sizeof who[k], "key:%d", k * 7919);
    srand(12345);
    for (int step = 0; step < MODEL_STEPS; step++) {
        int k = rand() % MODEL_KEYS;
        size_t bytes = 1 + (size_t)(rand() % 300);
        if (rand() % 2 == 0) {
            size_t held = 99;
            submit_share_verdict v = submit_shares_take(t, who[k], bytes, 1000, &held);
            submit_share_verdict want = model[k] + bytes > 1000       ? SUBMIT_SHARE_OVER
                                        : model[k] == 0 && live >= 16 ? SUBMIT_SHARE_FULL
                                                                      : SUBMIT_SHARE_OK;
            cr_assert_eq(v, want, "step %d: %s takes %zu holding %zu (%zu callers)", step, who[k],
                         bytes, model[k], live);
            cr_assert_eq(held, model[k], "step %d", step);
            if (v == SUBMIT_SHARE_OK) {
                live += model[k] == 0;
                model[k] += bytes;
            }
        } else if (model[k] > 0) {
            size_t give = bytes < model[k] ? bytes : model[k];
            submit_shares_give(t, who[k], give);
            model[k] -= give;
            live -= model[k] == 0;
        }
        cr_assert_eq(submit_shares_keys(t), live, "step %d", step);
    }
    submit_shares_destroy(t);
}

Test(submit_shares, who_is_the_key_the_certificate_or_anonymous)
{
    char out[SUBMIT_SHARE_WHO_BUF];
    hodei_identity id;
    memset(&id, 0, sizeof id);
    submit_share_who(&id, out);
    cr_assert_str_eq(out, "anonymous");
    submit_share_who(NULL, out);
    cr_assert_str_eq(out, "anonymous");
    id.kind = HODEI_PRINCIPAL_KEY;
    snprintf(id.key_id, sizeof id.key_id, "0b7e6f9c-0000-4000-8000-000000000001");
    submit_share_who(&id, out);
    cr_assert_str_eq(out, "key:0b7e6f9c-0000-4000-8000-000000000001");
    id.kind = HODEI_PRINCIPAL_CERT;
    memset(id.subject, 'w', HODEI_CERT_SAN_MAX);
    id.subject[HODEI_CERT_SAN_MAX] = '\0';
    submit_share_who(&id, out);
    cr_assert_eq(strncmp(out, "cert:www", 8), 0);
    cr_assert_eq(strlen(out), 5 + HODEI_CERT_SAN_MAX, "the longest subject fits whole");
}
