/* A tiny unit-test harness: CHECK() records failures and keeps going; main() ends with
 * T_DONE(), which prints "N passed, M failed" and sets the exit status. */
#ifndef HUTCH_T_H
#define HUTCH_T_H

#include <stdio.h>
#include <string.h>

static int t_pass, t_fail;

#define CHECK(cond)                                                                     \
	do {                                                                            \
		if (cond) {                                                             \
			t_pass++;                                                       \
		} else {                                                                \
			t_fail++;                                                       \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                       \
	} while (0)

#define CHECK_STR(a, b)                                                                        \
	do {                                                                                   \
		const char *_a = (a), *_b = (b);                                               \
		if (_a && _b && strcmp(_a, _b) == 0) {                                         \
			t_pass++;                                                              \
		} else {                                                                       \
			t_fail++;                                                              \
			fprintf(stderr, "FAIL %s:%d: %s == %s (\"%s\" vs \"%s\")\n", __FILE__, \
			        __LINE__, #a, #b, _a ? _a : "(null)", _b ? _b : "(null)");     \
		}                                                                              \
	} while (0)

#define T_DONE()                                                  \
	do {                                                      \
		printf("%d passed, %d failed\n", t_pass, t_fail); \
		return t_fail ? 1 : 0;                            \
	} while (0)

#endif
