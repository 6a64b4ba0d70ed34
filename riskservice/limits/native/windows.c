/* Count windows over packed logs, and the users seen on a device (common.lua judge_log(),
 * record_log(), users_after()). */

#include "riskdecide.h"

/* ---- Count windows over packed logs (6-byte big-endian ms, oldest first) ---- */

/* 0 when the entry the retry needs is not in the log (a limit under 1: the script fails there too). */
int judge_log(const unsigned char *s, size_t len, ms_t now, double limit, ms_t win, ms_t *count,
              ms_t *retry, ms_t *reset) {
    size_t n = len / 6, lo = 1, hi = n + 1;
    ms_t bound = now - win;
    if (n > 0 && (ms_t)log_at(s, 1) > bound) hi = 1; /* all of it inside */
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        if ((ms_t)log_at(s, mid) > bound) hi = mid; else lo = mid + 1;
    }
    *count = (ms_t)(n - lo + 1);
    *retry = 0;
    *reset = 0;
    if ((double)*count >= limit) {
        ms_t at = (ms_t)lo + *count - (ms_t)limit;
        if (at < 1 || at > (ms_t)n) return 0;
        *retry = (ms_t)log_at(s, (size_t)at) + win - now;
    }
    if (*count > 0) *reset = (ms_t)log_at(s, lo) + win - now;
    return 1;
}

void record_log(Buf *out, const unsigned char *s, size_t len, ms_t now, ms_t cap, ms_t keep) {
    size_t n = len / 6;
    if (n > 0 && (ms_t)log_at(s, n) > now) {
        /* The clock stepped back: sorted again, as record() does. */
        ms_t *log = RedisModule_Alloc((n + 1) * sizeof *log);
        for (size_t i = 0; i < n; i++) log[i] = (ms_t)log_at(s, i + 1);
        log[n] = now;
        qsort(log, n + 1, sizeof *log, cmp_ms);
        ms_t m = (ms_t)n + 1, first = m - cap + 1;
        if (first < 1) first = 1;
        while (first <= m && now - log[first - 1] >= keep) first++;
        for (ms_t i = first; i <= m; i++) buf_uint(out, (uint64_t)log[i - 1], 6);
        RedisModule_Free(log);
        return;
    }
    ms_t first = (ms_t)n + 2 - cap;
    if (first < 1) first = 1;
    while (first <= (ms_t)n && now - (ms_t)log_at(s, (size_t)first) >= keep) first++;
    if (first <= (ms_t)n) buf_put(out, s + (first - 1) * 6, (size_t)((ms_t)n - first + 1) * 6);
    buf_uint(out, (uint64_t)now, 6);
}

/* ---- The users seen on a device (common.lua users_after()) ---- */

typedef struct {
    ms_t t;
    const char *id;
    size_t len;
} Seen;

/* Lua's string order in the C locale: bytes, then the shorter first. */
static int lua_strcmp(const char *a, size_t al, const char *b, size_t bl) {
    int c = memcmp(a, b, al < bl ? al : bl);
    if (c) return c;
    return al < bl ? -1 : al > bl;
}

static int cmp_seen(const void *a, const void *b) {
    const Seen *x = a, *y = b;
    if (x->t != y->t) return x->t > y->t ? -1 : 1; /* the most recent first */
    return -lua_strcmp(x->id, x->len, y->id, y->len); /* then the larger id */
}

void users_after(Buf *out, Plan pl, ms_t now, const char *user, size_t ulen, const unsigned char *block,
                 size_t n) {
    ms_t cap = (ms_t)hdr(pl, H_SCAP, 2), keep = (ms_t)hdr(pl, H_SKEEP, 4);
    if (cap >= 1 && (n == 0 || (ms_t)rd_u(block, 6) < now)) {
        ms_t count = 1;
        size_t pos = 0, own = 0, own_end = 0;
        int has_own = 0;
        while (pos + 8 <= n && count < cap) {
            ms_t t = (ms_t)rd_u(block + pos, 6);
            size_t len = (size_t)rd_u(block + pos + 6, 2), at = pos + 8;
            if (now - t >= keep) break;
            size_t nxt = at + len;
            if (nxt > n) break; /* (a truncated entry: never read past the value) */
            if (len == ulen && memcmp(block + at, user, len) == 0) {
                own = pos;
                own_end = nxt;
                has_own = 1;
            } else {
                count++;
            }
            pos = nxt;
        }
        buf_uint(out, (uint64_t)now, 6);
        buf_uint(out, ulen, 2);
        buf_put(out, user, ulen);
        if (has_own) {
            buf_put(out, block, own);
            buf_put(out, block + own_end, pos - own_end);
        } else {
            buf_put(out, block, pos);
        }
        return;
    }
    /* A clock step (or no cap): rebuilt from a table of id -> last seen, as the script does. */
    size_t most = n / 8 + 1, m = 0;
    Seen *seen = RedisModule_Alloc(most * sizeof *seen);
    for (size_t pos = 0; pos + 8 <= n;) {
        ms_t t = (ms_t)rd_u(block + pos, 6);
        size_t len = (size_t)rd_u(block + pos + 6, 2);
        const char *id = (const char *)block + pos + 8;
        if (pos + 8 + len > n) break;
        size_t i = 0;
        while (i < m && !(seen[i].len == len && memcmp(seen[i].id, id, len) == 0)) i++;
        seen[i].t = t; /* a later entry of the same id wins, as a table assignment does */
        if (i == m) {
            seen[i].id = id;
            seen[i].len = len;
            m++;
        }
        pos += 8 + len;
    }
    size_t i = 0;
    while (i < m && !(seen[i].len == ulen && memcmp(seen[i].id, user, ulen) == 0)) i++;
    seen[i].t = now;
    if (i == m) {
        seen[i].id = user;
        seen[i].len = ulen;
        m++;
    }
    size_t kept = 0;
    for (size_t k = 0; k < m; k++)
        if (now - seen[k].t < keep) seen[kept++] = seen[k];
    qsort(seen, kept, sizeof *seen, cmp_seen);
    for (size_t k = 0; k < kept && (ms_t)k < cap; k++) {
        buf_uint(out, (uint64_t)seen[k].t, 6);
        buf_uint(out, seen[k].len, 2);
        buf_put(out, seen[k].id, seen[k].len);
    }
    RedisModule_Free(seen);
}
