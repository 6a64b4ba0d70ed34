/* Numbers as the scripts write and read them, and the orderings the commands sort by. */

#include "riskdecide.h"

/* The decimal digits of v (snprintf's formatting machinery costs more than the rest of a field). */
size_t fmt_u64(char *out, unsigned long long v) {
    char tmp[24];
    size_t n = 0;
    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    for (size_t i = 0; i < n; i++) out[i] = tmp[n - 1 - i];
    return n;
}

/* A stream id "<ms>-<seq>" into out (at least 42 bytes); its length. */
size_t fmt_id(char *out, unsigned long long ms, unsigned long long seq) {
    size_t n = fmt_u64(out, ms);
    out[n++] = '-';
    return n + fmt_u64(out + n, seq);
}

/* ---- Lua's number semantics, where the script's results depend on them ---- */

/* tonumber() of a string, as Lua 5.1 reads it: strtod, then only trailing spaces. */
int lua_number(const char *s, size_t len, double *out) {
    char tmp[64];
    if (len == 0 || len >= sizeof tmp) return 0;
    memcpy(tmp, s, len);
    tmp[len] = '\0';
    char *end;
    double d = strtod(tmp, &end);
    if (end == tmp) return 0;
    if (*end == 'x' || *end == 'X') d = (double)strtoul(tmp, &end, 16);
    while (*end && isspace((unsigned char)*end)) end++;
    if (*end) return 0;
    *out = d;
    return 1;
}


int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int cmp_ms(const void *a, const void *b) {
    ms_t x = *(const ms_t *)a, y = *(const ms_t *)b;
    return x < y ? -1 : x > y;
}
