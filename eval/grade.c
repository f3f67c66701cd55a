// grade.c: see grade.h.
#define _GNU_SOURCE
#include "eval/grade.h"

#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common/common.h"

// ---------------------------------------------------------------------------------------------
// Extraction

// Index just past the brace that closes the '{' at s[open], or -1 when it never closes.
static long brace_end(const char *s, long open) {
    int depth = 0;
    for (long i = open; s[i]; i++) {
        if (s[i] == '\\' && s[i + 1]) {  // an escaped brace does not count
            i++;
            continue;
        }
        if (s[i] == '{') depth++;
        if (s[i] == '}' && --depth == 0) return i + 1;
    }
    return -1;
}

// Start of the last occurrence of needle in s, or NULL.
static const char *last_of(const char *s, const char *needle) {
    const char *last = NULL;
    for (const char *p = strstr(s, needle); p; p = strstr(p + 1, needle)) last = p;
    return last;
}

char *grade_last_boxed(const char *text) {
    const char *a = last_of(text, "\\boxed"), *b = last_of(text, "\\fbox");
    const char *at = a && (!b || a > b) ? a : b;
    if (!at) return NULL;
    const char *p = at + (at == a ? 6 : 5);
    if (*p == '{') {
        long end = brace_end(p, 0);
        return end < 0 ? NULL : strndup(p + 1, (size_t)(end - 2));
    }
    if (*p != ' ') return NULL;
    while (*p == ' ') p++;
    size_t n = strcspn(p, " $\n");
    return n ? strndup(p, n) : NULL;
}

// ---------------------------------------------------------------------------------------------
// Normalisation

// Copy of s with every whitespace character and LaTeX spacing command removed.
static char *drop_spaces(const char *s) {
    char *out = xmalloc(strlen(s) + 1), *o = out;
    for (const char *p = s; *p; p++) {
        if (*p == '\\' && p[1] && strchr(",;:! ", p[1])) {
            p++;
            continue;
        }
        if (!isspace((unsigned char)*p)) *o++ = *p;
    }
    *o = 0;
    return out;
}

// Replaces every `from` by `to` in the malloc'd *s; with word = 1 only where `from` is not
// followed by a letter (so "\right" does not match "\rightarrow").
static void replace_all(char **s, const char *from, const char *to, int word) {
    size_t nf = strlen(from), nt = strlen(to);
    char *out = xmalloc(strlen(*s) * (nt > nf ? nt : 1) + 1), *o = out;
    for (const char *p = *s; *p;) {
        if (!strncmp(p, from, nf) && !(word && isalpha((unsigned char)p[nf]))) {
            memcpy(o, to, nt), o += nt, p += nf;
        } else {
            *o++ = *p++;
        }
    }
    *o = 0;
    free(*s);
    *s = out;
}

// Replaces "\cmd{X}" by "X" everywhere (innermost content kept as is).
static void unwrap_all(char **s, const char *cmd) {
    size_t nc = strlen(cmd);
    for (char *at = strstr(*s, cmd); at; at = strstr(*s, cmd)) {
        long open = (long)(at - *s) + (long)nc;
        long end = (*s)[open] == '{' ? brace_end(*s, open) : -1;
        if (end < 0) return;
        memmove(*s + end - 1, *s + end, strlen(*s + end) + 1);   // drop the closing brace
        memmove(at, *s + open + 1, strlen(*s + open + 1) + 1);  // drop "\cmd{"
    }
}

// Drops a short variable prefix such as "x=" or "ab=" (one '=' only, 1-2 letters before it).
static void drop_lhs(char *s) {
    char *eq = strchr(s, '=');
    if (!eq || strchr(eq + 1, '=') || eq == s || eq - s > 2) return;
    for (char *p = s; p < eq; p++)
        if (!isalpha((unsigned char)*p)) return;
    memmove(s, eq + 1, strlen(eq + 1) + 1);
}

char *grade_normalize(const char *s) {
    char *t = drop_spaces(s);
    replace_all(&t, "\\left", "", 1);
    replace_all(&t, "\\right", "", 1);
    replace_all(&t, "\\displaystyle", "", 1);
    replace_all(&t, "\\dfrac", "\\frac", 0);
    replace_all(&t, "\\tfrac", "\\frac", 0);
    unwrap_all(&t, "\\textbf");
    unwrap_all(&t, "\\text");
    unwrap_all(&t, "\\mathrm");
    unwrap_all(&t, "\\mbox");
    replace_all(&t, "^{\\circ}", "", 0);
    replace_all(&t, "^\\circ", "", 0);
    replace_all(&t, "\\%", "", 0);
    replace_all(&t, "%", "", 0);
    replace_all(&t, "$", "", 0);
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == '.') t[--n] = 0;
    drop_lhs(t);
    return t;
}

// ---------------------------------------------------------------------------------------------
// Comparison

// 1 when s is a sign, 1-3 digits, then groups ",ddd", then no further comma or digit run.
static int grouping_ok(const char *s) {
    const char *p = s + (*s == '+' || *s == '-');
    int lead = 0;
    while (isdigit((unsigned char)p[lead])) lead++;
    if (lead < 1 || lead > 3 || p[lead] != ',') return 0;
    for (p += lead; *p == ','; p += 4)
        if (!isdigit((unsigned char)p[1]) || !isdigit((unsigned char)p[2]) ||
            !isdigit((unsigned char)p[3]))
            return 0;
    return !isdigit((unsigned char)*p) && !strchr(p, ',');
}

// A plain decimal number, the whole string: sign, digits (optionally grouped as 1,234),
// fraction, exponent. 1 with *x on success.
static int parse_plain(const char *s, double *x) {
    char buf[128];
    size_t n = 0;
    if (!*s || strlen(s) >= sizeof buf || (strchr(s, ',') && !grouping_ok(s))) return 0;
    for (const char *p = s; *p; p++) {
        if (*p == ',') continue;
        if (!strchr("0123456789.eE+-", *p)) return 0;
        buf[n++] = *p;
    }
    buf[n] = 0;
    char *end;
    *x = strtod(buf, &end);
    return end == buf + n && isfinite(*x);
}

// A number: plain, "a/b", "\frac{a}{b}" (a, b plain), with an optional sign before \frac.
static int parse_number(const char *s, double *x) {
    if (parse_plain(s, x)) return 1;
    double sign = 1, a, b;
    const char *p = s;
    if (*p == '-' || *p == '+') sign = *p++ == '-' ? -1 : 1;
    if (!strncmp(p, "\\frac{", 6)) {
        long e1 = brace_end(p, 5);
        if (e1 < 0 || p[e1] != '{') return 0;
        long e2 = brace_end(p, e1);
        if (e2 < 0 || p[e2]) return 0;
        char *num = strndup(p + 6, (size_t)(e1 - 7)), *den = strndup(p + e1 + 1, (size_t)(e2 - e1 - 2));
        int ok = parse_plain(num, &a) && parse_plain(den, &b) && b != 0;
        free(num), free(den);
        if (ok) *x = sign * a / b;
        return ok;
    }
    const char *slash = strchr(s, '/');
    if (!slash || strchr(slash + 1, '/')) return 0;
    char *num = strndup(s, (size_t)(slash - s));
    int ok = parse_plain(num, &a) && parse_plain(slash + 1, &b) && b != 0;
    free(num);
    if (ok) *x = a / b;
    return ok;
}

static int close_to(double x, double r) { return fabs(x - r) <= 1e-4; }

// Rule 3 of grade.h on normalised strings.
static int numbers_equal(const char *pred, const char *ref) {
    double x, r;
    if (!parse_number(pred, &x) || !parse_number(ref, &r)) return 0;
    return close_to(x, r) || close_to(x, r * 100) || close_to(x, r / 100);
}

// Rule 2: the letter pred reduces to, or 0.
static char choice_letter(const char *p) {
    if (p[0] == '(' && isalpha((unsigned char)p[1]) && p[2] == ')') return (char)toupper(p[1]);
    if (isalpha((unsigned char)p[0]) && (!p[1] || strchr(".):", p[1]))) return (char)toupper(p[0]);
    return 0;
}

// Splits s at commas outside (), [], {} into malloc'd items; returns the count (>= 1).
static int split_top(const char *s, char ***items) {
    int n = 0, depth = 0;
    *items = NULL;
    const char *start = s;
    for (const char *p = s;; p++) {
        if (*p == '(' || *p == '[' || *p == '{') depth++;
        if ((*p == ')' || *p == ']' || *p == '}') && depth > 0) depth--;
        if (*p == 0 || (*p == ',' && depth == 0)) {
            *items = xrealloc(*items, sizeof(char *) * (size_t)(n + 1));
            (*items)[n++] = strndup(start, (size_t)(p - start));
            if (!*p) break;
            start = p + 1;
        }
    }
    return n;
}

static void free_items(char **items, int n) {
    for (int i = 0; i < n; i++) free(items[i]);
    free(items);
}

static int item_equal(const char *a, const char *b) { return !strcmp(a, b) || numbers_equal(a, b); }

// Rule 4: the same items in any order.
static int lists_equal(const char *pred, const char *ref) {
    char **pi, **ri;
    int np = split_top(pred, &pi), nr = split_top(ref, &ri), ok = np == nr && nr > 1;
    unsigned char *used = xcalloc((size_t)np, 1);
    for (int i = 0; ok && i < nr; i++) {
        int found = 0;
        for (int j = 0; j < np && !found; j++)
            if (!used[j] && item_equal(pi[j], ri[i])) used[j] = 1, found = 1;
        ok = found;
    }
    free(used);
    free_items(pi, np);
    free_items(ri, nr);
    return ok;
}

int grade_answer(const char *pred, const char *ref) {
    if (!pred || !ref) return 0;
    char *p = grade_normalize(pred), *r = grade_normalize(ref);
    int ok = 0;
    if (*p) {
        ok = !strcmp(p, r);
        if (!ok && strlen(r) == 1 && toupper((unsigned char)r[0]) >= 'A' &&
            toupper((unsigned char)r[0]) <= 'J')
            ok = choice_letter(p) == toupper((unsigned char)r[0]);
        if (!ok) ok = numbers_equal(p, r);
        if (!ok) ok = lists_equal(p, r);
    }
    free(p), free(r);
    return ok;
}

// ---------------------------------------------------------------------------------------------
// Testbed traces

#define KEY_MAX 32

typedef struct {
    char src[KEY_MAX], dst[KEY_MAX];
} Arrow;

// Parses "- a b" at line (a, b: non-space words, b ending at ',' or space or end of line) into
// src / dst; 1 on success.
static int parse_arrow(const char *line, char *src, char *dst) {
    if (line[0] != '-' || line[1] != ' ') return 0;
    const char *p = line + 2;
    size_t n = strcspn(p, " \n");
    if (n == 0 || n >= KEY_MAX || p[n] != ' ') return 0;
    memcpy(src, p, n), src[n] = 0;
    p += n + 1;
    size_t m = strcspn(p, " ,\n");
    if (m == 0 || m >= KEY_MAX) return 0;
    memcpy(dst, p, m), dst[m] = 0;
    return 1;
}

// Every "- a b" line of text (at most cap), in order; returns the count.
static int collect_arrows(const char *text, Arrow *out, int cap) {
    int n = 0;
    for (const char *line = text; line && *line && n < cap;) {
        if (parse_arrow(line, out[n].src, out[n].dst)) n++;
        line = strchr(line, '\n');
        if (line) line++;
    }
    return n;
}

static const char *arrow_target(const Arrow *a, int n, const char *src) {
    for (int i = 0; i < n; i++)
        if (!strcmp(a[i].src, src)) return a[i].dst;
    return NULL;
}

double grade_trace_line_acc(const char *problem, const char *output) {
    const char *st = strstr(problem, "Start at "), *fo = strstr(problem, "follow the arrows ");
    if (!st || !fo) return -1;
    char start[KEY_MAX];
    size_t n = strcspn(st + 9, " \n");
    int M = atoi(fo + 18);
    if (n == 0 || n >= KEY_MAX || M < 1) return -1;
    memcpy(start, st + 9, n), start[n] = 0;

    int cap = 4096, na;
    Arrow *arrows = xmalloc(sizeof(Arrow) * (size_t)cap), *lines = xmalloc(sizeof(Arrow) * (size_t)M);
    na = collect_arrows(problem, arrows, cap);
    int nl = collect_arrows(output ? output : "", lines, M), good = 0;
    for (int i = 0; i < nl && na > 0; i++) {
        const char *want_src = i == 0 ? start : lines[i - 1].dst;
        const char *dst = arrow_target(arrows, na, lines[i].src);
        good += !strcmp(lines[i].src, want_src) && dst && !strcmp(dst, lines[i].dst);
    }
    free(arrows), free(lines);
    return na > 0 ? (double)good / M : -1;
}
