/* libs/core arena.c and libs/domain pb.c's protobuf-c allocator over it. */
#include <criterion/criterion.h>
#include <stdalign.h>
#include <stdint.h>
#include <string.h>

#include "hodei/arena.h"
#include "hodei/pb.h"
#include "hodei/v1/worker.pb-c.h"

Test(arena, allocations_are_aligned_distinct_and_counted)
{
    hodei_arena a;
    hodei_arena_init(&a, 0, SIZE_MAX);
    char *p = hodei_arena_alloc(&a, 1);
    char *q = hodei_arena_alloc(&a, 3);
    double *d = hodei_arena_alloc(&a, sizeof *d);
    cr_assert(p && q && d);
    cr_assert_neq(p, q);
    cr_assert_eq((uintptr_t)q % alignof(max_align_t), 0);
    cr_assert_eq((uintptr_t)d % alignof(max_align_t), 0);
    *d = 1.5; /* usable as what it was asked for */
    cr_assert_eq(a.bytes, 3 * alignof(max_align_t));
    cr_assert_not_null(hodei_arena_alloc(&a, 0), "size 0 still gives a pointer");
    hodei_arena_fini(&a);
    hodei_arena_fini(&a); /* twice is safe */
}

Test(arena, calloc_zeroes_and_refuses_overflow)
{
    hodei_arena a;
    hodei_arena_init(&a, 128, SIZE_MAX);
    unsigned char *junk = hodei_arena_alloc(&a, 64);
    memset(junk, 0xab, 64);
    hodei_arena_mark m = hodei_arena_mark_get(&a);
    hodei_arena_rollback(&a, m);
    hodei_arena_reset(&a); /* the same block comes back, dirty */
    unsigned char *z = hodei_arena_calloc(&a, 16, 4);
    for (size_t i = 0; i < 64; i++)
        cr_assert_eq(z[i], 0, "byte %zu", i);
    cr_assert_null(hodei_arena_calloc(&a, SIZE_MAX / 2, 3));
    cr_assert_null(hodei_arena_alloc(&a, SIZE_MAX));
    hodei_arena_fini(&a);
}

Test(arena, maximum_is_enforced_and_named_by_bytes)
{
    hodei_arena a;
    hodei_arena_init(&a, 0, 1024);
    cr_assert_not_null(hodei_arena_alloc(&a, 1000));
    cr_assert_null(hodei_arena_alloc(&a, 100), "past the maximum");
    size_t before = a.bytes;
    cr_assert_null(hodei_arena_alloc(&a, 4096));
    cr_assert_eq(a.bytes, before, "a refusal takes nothing");
    hodei_arena_reset(&a);
    cr_assert_not_null(hodei_arena_alloc(&a, 1000), "reset gives the room back");
    hodei_arena_fini(&a);
}

Test(arena, strings)
{
    hodei_arena a;
    hodei_arena_init(&a, 0, SIZE_MAX);
    char *s = hodei_arena_strndup(&a, "hello world", 5);
    cr_assert_str_eq(s, "hello");
    cr_assert_str_eq(hodei_arena_strdup(&a, "x"), "x");
    cr_assert_null(hodei_arena_strdup(&a, NULL));
    cr_assert_str_eq(hodei_arena_strndup(&a, "", 0), "");
    hodei_arena_fini(&a);
}

Test(arena, large_allocations_get_a_block_and_rollback_frees_them)
{
    hodei_arena a;
    hodei_arena_init(&a, 256, SIZE_MAX);
    char *small = hodei_arena_alloc(&a, 16);
    memcpy(small, "kept", 5);
    hodei_arena_mark m = hodei_arena_mark_get(&a);
    char *big = hodei_arena_alloc(&a, 10000);
    cr_assert_not_null(big);
    memset(big, 1, 10000); /* ASan: the whole block is ours */
    hodei_arena_alloc(&a, 16);
    cr_assert_gt(a.bytes, 10000);
    hodei_arena_rollback(&a, m);
    cr_assert_eq(a.bytes, m.bytes);
    cr_assert_str_eq(small, "kept", "what came before the mark stays");
    char *again = hodei_arena_alloc(&a, 16);
    cr_assert_eq(again, small + 16, "carving resumes where the mark was");
    hodei_arena_fini(&a); /* LSan: nothing leaks */
}

Test(arena, reset_keeps_one_standard_block)
{
    hodei_arena a;
    hodei_arena_init(&a, 512, SIZE_MAX);
    for (int i = 0; i < 20; i++)
        hodei_arena_alloc(&a, 200);
    hodei_arena_alloc(&a, 5000);
    hodei_arena_reset(&a);
    cr_assert_eq(a.bytes, 0);
    cr_assert_not_null(a.head);
    char *p = hodei_arena_alloc(&a, 500);
    cr_assert_not_null(p);
    hodei_arena_fini(&a);
    cr_assert_null(a.head);
}

Test(arena, protobuf_unpacks_into_the_arena)
{
    Hodei__V1__LogLine l1 = HODEI__V1__LOG_LINE__INIT, l2 = HODEI__V1__LOG_LINE__INIT;
    Hodei__V1__LogLine *lines[] = {&l1, &l2};
    Hodei__V1__LogBatch b = HODEI__V1__LOG_BATCH__INIT;
    b.job_id = "0190b1c2-0000-7000-8000-000000000001";
    b.epoch = 3;
    l1.sequence = 1;
    l1.data.data = (uint8_t *)"one";
    l1.data.len = 3;
    l2.sequence = 2;
    b.lines = lines;
    b.n_lines = 2;
    uint8_t packed[256];
    size_t len = hodei__v1__log_batch__pack(&b, packed);

    hodei_arena a;
    hodei_arena_init(&a, 0, SIZE_MAX);
    ProtobufCAllocator alloc = hodei_pb_arena(&a);
    Hodei__V1__LogBatch *u = hodei__v1__log_batch__unpack(&alloc, len, packed);
    cr_assert_not_null(u);
    cr_assert_str_eq(u->job_id, b.job_id);
    cr_assert_eq(u->n_lines, 2);
    cr_assert_eq(u->lines[0]->data.len, 3);
    cr_assert_eq(memcmp(u->lines[0]->data.data, "one", 3), 0);
    cr_assert_gt(a.bytes, 0, "the message lives in the arena");
    hodei_arena_fini(&a); /* and goes with it: LSan sees no leak */

    hodei_arena tiny;
    hodei_arena_init(&tiny, 0, 32);
    alloc = hodei_pb_arena(&tiny);
    cr_assert_null(hodei__v1__log_batch__unpack(&alloc, len, packed),
                   "past the arena's maximum the unpack fails");
    hodei_arena_fini(&tiny);
}
