/* libFuzzer entry points, declared once for every harness (each harness
 * defines LLVMFuzzerTestOneInput, and LLVMFuzzerInitialize when it needs
 * one-time set-up). The same harness links either with libFuzzer (make
 * fuzz: clang, -fsanitize=fuzzer) or with replay.c (make test: every file
 * of the committed corpus run once under ASan+UBSan). */
#ifndef HODEI_FUZZ_H
#define HODEI_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

/* A property a harness checks failed: print it and abort, so that libFuzzer
 * saves the input as a crash and the replay test fails. */
#define FUZZ_CHECK(cond, ...)                                                                      \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "fuzz: %s:%d: property failed: %s: ", __FILE__, __LINE__, #cond);      \
            fprintf(stderr, __VA_ARGS__);                                                          \
            fputc('\n', stderr);                                                                   \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

#endif
