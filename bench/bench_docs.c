// bench_docs.c: the packed-chunk document lengths shared by `seer bench forward` and `seer bench gate`.
#include <stdlib.h>
#include <string.h>

#include "bench/bench.h"

int bench_make_docs(int *lens, const char *list, int T, SeerErr *err) {
    if (T < 1) return seer_fail(err, "--tokens: must be >= 1, not %d", T);
    int n = 0, used = 0;
    while (used < T) {
        for (const char *p = list;; p++) {
            char num[32];
            size_t k = strcspn(p, ",");
            long l;
            if (k == 0 || k >= sizeof num) return seer_fail(err, "--docs: '%s' is not a list of lengths", list);
            memcpy(num, p, k), num[k] = 0;
            if (parse_long(num, 1, 1L << 30, &l)) return seer_fail(err, "--docs: '%s' is not a length >= 1", num);
            lens[n] = l < T - used ? (int)l : T - used;
            used += lens[n++];
            p += k;
            if (used == T || !*p) break;
        }
    }
    return n;
}
