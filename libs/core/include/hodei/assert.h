/* Assertions for programmer errors. Always on; print file:line and abort. */
#ifndef HODEI_ASSERT_H
#define HODEI_ASSERT_H

_Noreturn void hodei_assert_fail(const char *expr, const char *file, int line);

#define HODEI_ASSERT(cond) ((cond) ? (void)0 : hodei_assert_fail(#cond, __FILE__, __LINE__))

#endif
