/*
 * riskdecide: decide.lua as a Redis module command.
 *
 *     RISK.DECIDE numkeys key... arg...
 *
 * The same KEYS and ARGV as `EVALSHA <decide.lua> numkeys ...`
 * (riskservice/limits/keys.py DecisionKeys, riskservice/limits/decide_args.py
 * DecideArgv), the same reply and the same writes, byte for byte: a test runs
 * random traffic through both and compares every answer and every key
 * (tests/limits/test_native_equivalence.py). decide.lua is the reference;
 * a change to it is a change here and a RISKDECIDE_VERSION step, which the
 * service checks before it sends a decision here.
 *
 * Why a module: a Lua call costs about 50 us of Redis CPU before it judges
 * anything (Redis 6.2 builds every argument as a Lua string and re-runs the
 * script's prelude per call; each redis.call converts its arguments and its
 * reply), and every decision makes 10-20 of them. Here the keys are read and
 * written through the module key API, in place.
 *
 * On Redis Cluster it is the second step of a split decision, on the
 * device's slot, as decide.lua is there: with user_side (the user side's
 * findings, judged by reserve.lua on the user's slot, packed after the mark
 * "S") and user_graph, the user's log and bans are not read or written.
 * RISK.RESERVE and RISK.SETTLE do the user's slot's steps, reserve.lua and
 * settle.lua, with their KEYS and ARGV and replies
 * (tests/limits/test_native_user_slot.py holds them equal).
 * Writes are replicated as the commands decide.lua makes (effects, wrapped
 * in MULTI/EXEC by Redis), so replicas and the AOF see what a script's
 * effects replication would send.
 */
#define RISKDECIDE_VERSION 4

/* M_PI, as the travel rule uses it (strict C11 does not declare it). */
#define _DEFAULT_SOURCE

#include "redismodule.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- The contract (riskservice/limits/contract.py; common.lua) ---- */

enum { RULE_SIZE = 24, RULE_COUNT = 15 };
/* A rule's fields, as 0-based offsets into its 24 bytes (RULE_FORMAT 'BdIBBBd'). */
enum { F_ENABLED = 0, F_LIMIT = 1, F_WINDOW = 9, F_SEVERITY = 13, F_SHADOW = 14, F_CHALLENGE = 15, F_EXTRA = 16 };
/* The header after the rules (PLAN_HEADER_FORMAT 'HIHIHIHBBBHII'), 0-based offsets. */
enum {
    H_BASE = RULE_SIZE * RULE_COUNT,
    H_DCAP = H_BASE + 0, H_DKEEP = H_BASE + 2, H_UCAP = H_BASE + 6, H_UKEEP = H_BASE + 8,
    H_SCAP = H_BASE + 12, H_SKEEP = H_BASE + 14, H_REVIEW = H_BASE + 18,
    H_CD_SEVERITY = H_BASE + 20, H_CD_SHADOW = H_BASE + 21, H_CD_CHALLENGE = H_BASE + 22,
    PLAN_SIZE = H_BASE + 33
};
enum { R_GRAPH = 7, FIRST_SIGNAL = 11, MAX_FINDINGS = 32 };

static const char *const CODES[RULE_COUNT + 1] = {
    "", "device_velocity", "device_daily_cap", "user_daily_cap", "device_many_users",
    "low_success_rate", "impossible_travel", "graph_anomaly",
    "device_blocklist", "user_blocklist", "ip_blocklist",
    "device_rotation", "lockstep", "sink_feeder", "dead_recipients", "coupon_repeat"};
/* The `:sig` hash's fields of rules 11-15 (contract.SIGNAL_FIELDS), the sharer's with "|<user>". */
static const char SIGNAL_FIELD[5] = {'r', 'l', 'f', 'd', 'c'};
static const int SIGNAL_PER_USER[5] = {0, 1, 1, 1, 1};

/* settle.lua's ONCE_MS: far longer than a write is retried (riskservice/limits/settles.py). */
static const long long ONCE_MS = 600000;
static const long long DAY_MS = 86400000, FLAGS_TTL_MS = 2592000000LL; /* a position: a day; refusal counts: 30 days */

/* The words every decision writes, made once at load (a string made per call costs an allocation,
 * and a replicated command's words are kept until the call ends). */
enum {
    W_K, W_DECISION, W_ID, W_T, W_DEC, W_RC, W_REQ, W_DEC0, W_DEC1, W_DEC2, W_PX, W_DAY_MS, W_FLAGS_TTL_MS,
    W_GT, W_MINID, W_EQ, W_POINTS, W_FIRST, W_LAST, W_STATUS, W_UNTIL, W_REASON, W_CODE, W_SIG_R, W_ONE, W_ONCE_MS,
    W_OUTCOME, W_DL, W_OP, W_CL, W_COUNT
};
static const char *const WORD_TEXT[W_COUNT] = {
    "k", "decision", "id", "t", "dec", "rc", "req", "0", "1", "2", "PX", "86400000", "2592000000",
    "GT", "MINID", "=", "_points", "_first", "_last", "status", "until", "reason", "code", "r", "1", "600000",
    "outcome", "dl", "op", "cl"};
static RedisModuleString *W[W_COUNT];

/* ---- Bytes: big-endian reads, and a growing buffer ---- */

static uint64_t rd_u(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static double rd_f64(const unsigned char *p) {
    uint64_t bits = rd_u(p, 8);
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

/* Small parts are built on the stack; only a longer one (a full log, many findings) allocates. */
typedef struct {
    char *p;
    size_t len, cap;
    char inline_[512];
} Buf;

#define BUF(b) Buf b; buf_init(&b)

static void buf_init(Buf *b) {
    b->p = b->inline_;
    b->len = 0;
    b->cap = sizeof b->inline_;
}

static void buf_put(Buf *b, const void *data, size_t n) {
    if (b->len + n > b->cap) {
        size_t cap = b->cap * 2;
        while (cap < b->len + n) cap *= 2;
        if (b->p == b->inline_) {
            b->p = RedisModule_Alloc(cap);
            memcpy(b->p, b->inline_, b->len);
        } else {
            b->p = RedisModule_Realloc(b->p, cap);
        }
        b->cap = cap;
    }
    if (n) memcpy(b->p + b->len, data, n);
    b->len += n;
}

static void buf_uint(Buf *b, uint64_t v, int n) {
    unsigned char out[8];
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    buf_put(b, out, (size_t)n);
}

/* A NaN is "none", packed as the script packs its NONE (0/0: the x86 default NaN, sign bit set). */
static const uint64_t NONE_BITS = 0xfff8000000000000u;

static void buf_f64(Buf *b, double d) {
    uint64_t bits = NONE_BITS;
    if (!isnan(d)) memcpy(&bits, &d, sizeof bits);
    buf_uint(b, bits, 8);
}

static void buf_free(Buf *b) {
    if (b->p != b->inline_) RedisModule_Free(b->p);
    buf_init(b);
}

/* The decimal digits of v (snprintf's formatting machinery costs more than the rest of a field). */
static size_t fmt_u64(char *out, unsigned long long v) {
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
static size_t fmt_id(char *out, unsigned long long ms, unsigned long long seq) {
    size_t n = fmt_u64(out, ms);
    out[n++] = '-';
    return n + fmt_u64(out + n, seq);
}

/* Lua's struct 'I<n>' of a Lua number: the double converted to an integer (C's conversion). */
static uint64_t lua_uint(double d) { return (uint64_t)(long long)d; }

/* ---- Lua's number semantics, where the script's results depend on them ---- */

/* tonumber() of a string, as Lua 5.1 reads it: strtod, then only trailing spaces. */
static int lua_tonumber(const char *s, size_t len, double *out) {
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

/* A number as Lua 5.1 writes it in a concatenation ("%.14g"). */
static int lua_numstr(char *out, size_t n, double d) { return snprintf(out, n, "%.14g", d); }

/* ---- A plan's rules, read in place ---- */

typedef struct {
    const unsigned char *p;
} Plan;

static int rule_byte(Plan pl, int id, int f) { return pl.p[(id - 1) * RULE_SIZE + f]; }
static double rule_f64(Plan pl, int id, int f) { return rd_f64(pl.p + (id - 1) * RULE_SIZE + f); }
static uint64_t rule_u32(Plan pl, int id, int f) { return rd_u(pl.p + (id - 1) * RULE_SIZE + f, 4); }
static uint64_t hdr(Plan pl, int at, int n) { return rd_u(pl.p + at, n); }

/* ---- Findings (contract.FINDING_FORMAT) ---- */

typedef struct {
    const char *code;
    size_t code_len;
    int severity, shadow, challenge; /* challenge: index in CHALLENGES */
    int text;                        /* 1: observed is text */
    double number;                   /* observed, when a number */
    const char *observed;            /* observed, when text */
    size_t observed_len;
    double limit, window, retry, detail; /* NaN: none */
} Finding;

typedef struct {
    Finding f[MAX_FINDINGS];
    int n;
} Fired;

#define NONE NAN

typedef struct {
    Plan plan;
    const char *arms;
    size_t arms_len;
    Fired fired;
} Judge;

static Finding *fire_at(Judge *j, int id, double limit, double window, double retry, double detail) {
    if (j->fired.n >= MAX_FINDINGS) return NULL;
    Finding *f = &j->fired.f[j->fired.n++];
    f->code = CODES[id];
    f->code_len = strlen(CODES[id]);
    f->severity = rule_byte(j->plan, id, F_SEVERITY);
    f->shadow = rule_byte(j->plan, id, F_SHADOW);
    f->challenge = rule_byte(j->plan, id, F_CHALLENGE);
    if (j->arms_len > 0) f->shadow = (id <= (int)j->arms_len ? (unsigned char)j->arms[id - 1] : 0) - 48;
    f->limit = limit;
    f->window = window;
    f->retry = retry;
    f->detail = detail;
    f->text = 0;
    f->number = 0;
    f->observed = "";
    f->observed_len = 0;
    return f;
}

static void fire_num(Judge *j, int id, double observed, double limit, double window, double retry, double detail) {
    Finding *f = fire_at(j, id, limit, window, retry, detail);
    if (f) f->number = observed;
}

static void fire_text(Judge *j, int id, const char *observed, size_t len, double limit, double window,
                      double retry) {
    Finding *f = fire_at(j, id, limit, window, retry, NONE);
    if (f) {
        f->text = 1;
        f->observed = observed;
        f->observed_len = len;
    }
}

static void pack_findings(Buf *b, const Fired *fired) {
    for (int i = 0; i < fired->n; i++) {
        const Finding *f = &fired->f[i];
        buf_uint(b, f->code_len, 1);
        buf_put(b, f->code, f->code_len);
        buf_uint(b, (uint64_t)f->severity, 1);
        buf_uint(b, (uint64_t)f->shadow, 1);
        buf_uint(b, (uint64_t)f->challenge, 1);
        buf_uint(b, (uint64_t)f->text, 1);
        buf_f64(b, f->text ? NONE : f->number);
        buf_uint(b, f->text ? f->observed_len : 0, 2);
        if (f->text) buf_put(b, f->observed, f->observed_len);
        buf_f64(b, f->limit);
        buf_f64(b, f->window);
        buf_f64(b, f->retry);
        buf_f64(b, f->detail);
    }
}

/* The user side's findings on Redis Cluster (contract.user_side: the mark "S", then findings packed
 * as pack_findings() packs them), appended to `out` pointing into `p`, which outlives the command
 * (an argument). 0 when malformed. */
static int read_findings(const unsigned char *p, size_t len, Fired *out) {
    size_t pos = 0;
    while (pos < len) {
        if (out->n >= MAX_FINDINGS) return 0;
        Finding *f = &out->f[out->n];
        size_t code_len = p[pos++];
        if (pos + code_len + 14 > len) return 0;
        f->code = (const char *)p + pos;
        f->code_len = code_len;
        pos += code_len;
        f->severity = p[pos];
        f->shadow = p[pos + 1];
        f->challenge = p[pos + 2];
        f->text = p[pos + 3];
        /* (Only what decide.lua can judge the same way: a severity, a shadow flag and a kind it knows.) */
        if (f->severity > 2 || f->shadow > 1 || f->challenge > 2 || f->text > 1) return 0;
        f->number = f->text ? NONE : rd_f64(p + pos + 4);
        size_t text_len = (size_t)rd_u(p + pos + 12, 2);
        pos += 14;
        if (pos + text_len + 32 > len) return 0;
        f->observed = f->text ? (const char *)p + pos : "";
        f->observed_len = f->text ? text_len : 0;
        pos += text_len;
        f->limit = rd_f64(p + pos);
        f->window = rd_f64(p + pos + 8);
        f->retry = rd_f64(p + pos + 16);
        f->detail = rd_f64(p + pos + 24);
        pos += 32;
        out->n++;
    }
    return 1;
}

/* ---- Keys ---- */

enum {
    K_EVENT, K_DEVICE_STATE, K_DEVICE_BAN, K_USER_LOG, K_USER_BAN, K_IP_BAN, K_DEVICE_OUTCOMES, K_DEVICE_GEO,
    K_POINTER, K_EVENTS, K_GRAPH, K_ALLOWLIST, K_FLAGS, K_QUEUE, K_REVIEW, K_SIGNALS, K_COUNT
};
enum { A_PLAN, A_CALL, A_RECORD, A_REQUEST, A_POINTER, A_USER_SIDE, A_USER_GRAPH };

/* A string key's value, copied (pool memory, freed when the command returns; NULL: none); *wrong
 * set when the key holds another type. The key is closed at once: a handle left open while
 * another one writes the key would be closed later on a value already freed. */
static const char *read_string(RedisModuleCtx *ctx, RedisModuleString *name, size_t *len, int *wrong) {
    RedisModuleKey *k = RedisModule_OpenKey(ctx, name, REDISMODULE_READ);
    *len = 0;
    if (wrong) *wrong = 0;
    if (!k) return NULL;
    int type = RedisModule_KeyType(k);
    if (type != REDISMODULE_KEYTYPE_STRING) {
        if (wrong && type != REDISMODULE_KEYTYPE_EMPTY) *wrong = 1;
        RedisModule_CloseKey(k);
        return NULL;
    }
    size_t n;
    const char *dma = RedisModule_StringDMA(k, &n, REDISMODULE_READ);
    char *copy = RedisModule_PoolAlloc(ctx, n + 1);
    memcpy(copy, dma, n);
    RedisModule_CloseKey(k);
    *len = n;
    return copy;
}

static int key_exists(RedisModuleCtx *ctx, RedisModuleString *name) {
    RedisModuleKey *k = RedisModule_OpenKey(ctx, name, REDISMODULE_READ);
    if (!k) return 0;
    int there = RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_EMPTY;
    RedisModule_CloseKey(k);
    return there;
}

/* SET key value PX ms, replicated as that command (px: the ms as text). */
static void set_px(RedisModuleCtx *ctx, RedisModuleString *name, RedisModuleString *value, long long ms,
                   RedisModuleString *px) {
    RedisModuleKey *k = RedisModule_OpenKey(ctx, name, REDISMODULE_READ | REDISMODULE_WRITE);
    RedisModule_StringSet(k, value);
    RedisModule_SetExpire(k, ms);
    RedisModule_CloseKey(k);
    RedisModule_Replicate(ctx, "SET", "ssss", name, value, W[W_PX], px);
}

static void set_px_buf(RedisModuleCtx *ctx, RedisModuleString *name, const char *value, size_t len, long long ms) {
    set_px(ctx, name, RedisModule_CreateString(ctx, value, len), ms,
           ms == DAY_MS ? W[W_DAY_MS] : RedisModule_CreateStringFromLongLong(ctx, ms));
}

/* "<prefix><id>" as a string (a hash field). */
static RedisModuleString *field_of(RedisModuleCtx *ctx, const char *prefix, size_t plen, const char *id, size_t len) {
    char stack[128];
    char *out = plen + len <= sizeof stack ? stack : RedisModule_PoolAlloc(ctx, plen + len);
    memcpy(out, prefix, plen);
    memcpy(out + plen, id, len);
    return RedisModule_CreateString(ctx, out, plen + len);
}


/* ---- The replay check (common.lua earlier()) ---- */

/* 1 when the reply was sent (an earlier answer, or an error), 0 to decide. */
static int reply_earlier(RedisModuleCtx *ctx, RedisModuleString *key, const char *fp, size_t fp_len) {
    size_t len;
    int wrong;
    const char *stored = read_string(ctx, key, &len, &wrong);
    if (stored) {
        size_t n = len >= 2 ? (size_t)rd_u((const unsigned char *)stored, 2) : 0;
        int same = len >= 2 + n && n == fp_len && memcmp(stored + 2, fp, n) == 0;
        RedisModule_ReplyWithArray(ctx, 2);
        RedisModule_ReplyWithStringBuffer(ctx, same ? "replay" : "conflict", same ? 6 : 8);
        RedisModule_ReplyWithStringBuffer(ctx, stored, len);
        return 1;
    }
    if (!wrong) return 0;
    /* A hash: the previous release's record. */
    RedisModuleCallReply *f = RedisModule_Call(ctx, "HGET", "sc", key, "fp");
    if (RedisModule_CallReplyType(f) == REDISMODULE_REPLY_ERROR) {
        RedisModule_ReplyWithCallReply(ctx, f);
        return 1;
    }
    if (RedisModule_CallReplyType(f) != REDISMODULE_REPLY_STRING) return 0;
    size_t flen;
    const char *fv = RedisModule_CallReplyStringPtr(f, &flen);
    int same = flen == fp_len && memcmp(fv, fp, flen) == 0;
    RedisModuleCallReply *all = RedisModule_Call(ctx, "HGETALL", "s", key);
    RedisModule_ReplyWithArray(ctx, 2);
    RedisModule_ReplyWithStringBuffer(ctx, same ? "replay" : "conflict", same ? 6 : 8);
    RedisModule_ReplyWithCallReply(ctx, all);
    return 1;
}

/* ---- Count windows over packed logs (6-byte big-endian ms, oldest first) ---- */

static uint64_t log_at(const unsigned char *s, size_t i) { return rd_u(s + (i - 1) * 6, 6); } /* 1-based */

/* Times are Lua numbers (doubles) in the script; they are integers below 2^53, so int64 is exact. */
typedef long long ms_t;

/* 0 when the entry the retry needs is not in the log (a limit under 1: the script fails there too). */
static int judge_log(const unsigned char *s, size_t len, ms_t now, double limit, ms_t win, ms_t *count,
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

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static int cmp_ms(const void *a, const void *b) {
    ms_t x = *(const ms_t *)a, y = *(const ms_t *)b;
    return x < y ? -1 : x > y;
}

/* record_log(): the log after an admitted share at `now`, kept to `cap` entries inside `keep`. */
static void record_log(Buf *out, const unsigned char *s, size_t len, ms_t now, ms_t cap, ms_t keep) {
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

static void users_after(Buf *out, Plan pl, ms_t now, const char *user, size_t ulen, const unsigned char *block,
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

/* ---- Travel ---- */

static double haversine_km(double lat1, double lon1, double lat2, double lon2) {
    double r = M_PI / 180;
    double dlat = (lat2 - lat1) * r, dlon = (lon2 - lon1) * r;
    double a = pow(sin(dlat / 2), 2) + cos(lat1 * r) * cos(lat2 * r) * pow(sin(dlon / 2), 2);
    return 2 * 6371.0088 * asin(fmin(1, sqrt(a)));
}

/* ---- The share event (common.lua append_event()) ---- */

static void append_event(RedisModuleCtx *ctx, RedisModuleString *stream, ms_t now, ms_t retention,
                         const char *decision_id, size_t id_len, RedisModuleString **fields) {
    RedisModuleKey *k = RedisModule_OpenKey(ctx, stream, REDISMODULE_READ | REDISMODULE_WRITE);
    int type = RedisModule_KeyType(k);
    if (type != REDISMODULE_KEYTYPE_EMPTY && type != REDISMODULE_KEYTYPE_STREAM) {
        RedisModule_CloseKey(k);
        return;
    }
    RedisModuleStreamID id;
    if (RedisModule_StreamAdd(k, REDISMODULE_STREAM_ADD_AUTOID, &id, fields, 6) != REDISMODULE_OK) {
        RedisModule_CloseKey(k);
        return;
    }
    char idbuf[48], minbuf[48];
    RedisModuleString *ids = RedisModule_CreateString(ctx, idbuf, fmt_id(idbuf, id.ms, id.seq));
    if (id_len > 0 && decision_id[id_len - 1] == '0') {
        /* One append in 16 trims what is older than retention (approximately: whole nodes), and is
         * replicated with the resulting first id, as XADD ... MINID ~ is. */
        RedisModuleStreamID min = {(uint64_t)(now - retention), 0};
        RedisModule_StreamTrimByID(k, REDISMODULE_STREAM_TRIM_APPROX, &min);
        RedisModuleStreamID first = id;
        if (RedisModule_StreamIteratorStart(k, 0, NULL, NULL) == REDISMODULE_OK) {
            long numfields;
            if (RedisModule_StreamIteratorNextID(k, &first, &numfields) != REDISMODULE_OK) first = id;
            RedisModule_StreamIteratorStop(k);
        }
        size_t minlen = fmt_id(minbuf, first.ms, first.seq);
        RedisModule_CloseKey(k);
        RedisModule_Replicate(ctx, "XADD", "sssssssssssssssss", stream, W[W_MINID], W[W_EQ], RedisModule_CreateString(ctx, minbuf, minlen),
                              ids, fields[0], fields[1], fields[2], fields[3], fields[4], fields[5], fields[6],
                              fields[7], fields[8], fields[9], fields[10], fields[11]);
        return;
    }
    RedisModule_CloseKey(k);
    RedisModule_Replicate(ctx, "XADD", "ssssssssssssss", stream, ids, fields[0], fields[1], fields[2], fields[3],
                          fields[4], fields[5], fields[6], fields[7], fields[8], fields[9], fields[10], fields[11]);
}

/* ---- Hashes read and written by a decision ---- */

/* HMGET: each field's value or NULL; -1 when the key holds another type (Lua raises WRONGTYPE). */
static int hmget(RedisModuleCtx *ctx, RedisModuleString *name, int n, RedisModuleString **fields,
                 RedisModuleString **out) {
    for (int i = 0; i < n; i++) out[i] = NULL;
    RedisModuleKey *k = RedisModule_OpenKey(ctx, name, REDISMODULE_READ);
    if (!k) return 0;
    int type = RedisModule_KeyType(k);
    if (type == REDISMODULE_KEYTYPE_EMPTY) {
        RedisModule_CloseKey(k);
        return 0;
    }
    if (type != REDISMODULE_KEYTYPE_HASH) {
        RedisModule_CloseKey(k);
        return -1;
    }
    for (int i = 0; i < n; i++) RedisModule_HashGet(k, REDISMODULE_HASH_NONE, fields[i], &out[i], NULL);
    RedisModule_CloseKey(k);
    return 0;
}

/* Fields and values a decision set in the flags hash, replicated as one HSET of their final values. */
typedef struct {
    RedisModuleString *v[2 * (MAX_FINDINGS + 40)];
    size_t n;
} HashWrites;

static void wrote(RedisModuleCtx *ctx, RedisModuleString *key, HashWrites *w, RedisModuleString *field,
                  RedisModuleString *value) {
    if (w->n + 2 > sizeof w->v / sizeof w->v[0]) { /* (more fields than any policy has rules) */
        RedisModule_Replicate(ctx, "HSET", "sv", key, w->v, w->n);
        w->n = 0;
    }
    w->v[w->n++] = field;
    w->v[w->n++] = value;
}

/* HINCRBY field by on an open hash key; -1 on a value that is not an integer. */
static int hincrby(RedisModuleCtx *ctx, RedisModuleKey *k, RedisModuleString *key, HashWrites *w,
                   RedisModuleString *field, long long by, long long *result) {
    RedisModuleString *old = NULL;
    long long v = 0;
    if (RedisModule_KeyType(k) == REDISMODULE_KEYTYPE_HASH)
        RedisModule_HashGet(k, REDISMODULE_HASH_NONE, field, &old, NULL);
    if (old && RedisModule_StringToLongLong(old, &v) != REDISMODULE_OK) return -1;
    v += by;
    RedisModuleString *value = RedisModule_CreateStringFromLongLong(ctx, v);
    RedisModule_HashSet(k, REDISMODULE_HASH_NONE, field, value, NULL);
    wrote(ctx, key, w, field, value);
    *result = v;
    return 0;
}

/* A refusal count that is not an integer: what was counted before it stays (as the script's writes
 * before its error do, and are replicated). */
static int not_integer(RedisModuleCtx *ctx, RedisModuleKey *flags, RedisModuleString *key, HashWrites *w) {
    RedisModule_CloseKey(flags);
    if (w->n) RedisModule_Replicate(ctx, "HSET", "sv", key, w->v, w->n);
    return RedisModule_ReplyWithError(ctx, "ERR hash value is not an integer");
}

static int reply_wrongtype(RedisModuleCtx *ctx) {
    return RedisModule_ReplyWithError(ctx, "WRONGTYPE Operation against a key holding the wrong kind of value");
}

/* Lua's '^([^,]+),' and '^([^,]+),([^,]+)': the part before the first comma (non-empty), and the
 * one after it up to the next comma or the end (non-empty). */
static int split_score(const char *s, size_t len, const char **a, size_t *alen, const char **b, size_t *blen) {
    const char *comma = memchr(s, ',', len);
    if (!comma || comma == s) return 0;
    *a = s;
    *alen = (size_t)(comma - s);
    if (b) {
        const char *rest = comma + 1, *end = s + len;
        const char *next = memchr(rest, ',', (size_t)(end - rest));
        *b = rest;
        *blen = (size_t)((next ? next : end) - rest);
        if (*blen == 0) return 0;
    }
    return 1;
}

/* ---- The commands' form ---- */

/* Every command here is `NAME numkeys key... arg...`, as EVALSHA of its script is: the number of keys
 * (-1 when argv[1] is no count of keys there). When Redis only asks where the keys are (Redis Cluster
 * checks their slots), they are given and *asked is set. */
static long long command_keys(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int *asked) {
    long long numkeys;
    *asked = 0;
    if (argc < 2 || RedisModule_StringToLongLong(argv[1], &numkeys) != REDISMODULE_OK || numkeys < 0 ||
        numkeys > argc - 2)
        return -1;
    if (RedisModule_IsKeysPositionRequest(ctx)) {
        for (int i = 0; i < numkeys; i++) RedisModule_KeyAtPos(ctx, 2 + i);
        *asked = 1;
    }
    return numkeys;
}

/* ---- RISK.DECIDE ---- */

typedef struct {
    ms_t now, deadline, ttl_ms, retention_ms;
    int static_block, static_challenge;
    const char *device_id, *arms, *static_codes, *position;
    size_t device_id_len, arms_len, static_codes_len, position_len;
} Call;

static int read_part(const unsigned char *p, size_t len, size_t *pos, const char **out, size_t *out_len) {
    if (*pos + 2 > len) return 0;
    size_t n = (size_t)rd_u(p + *pos, 2);
    if (*pos + 2 + n > len) return 0;
    *out = (const char *)p + *pos + 2;
    *out_len = n;
    *pos += 2 + n;
    return 1;
}

static int read_call(const char *raw, size_t len, Call *c) {
    const unsigned char *p = (const unsigned char *)raw;
    if (len < 26) return 0;
    c->now = (ms_t)rd_u(p, 6);
    c->deadline = (ms_t)rd_u(p + 6, 6);
    c->ttl_ms = (ms_t)rd_u(p + 12, 6);
    c->retention_ms = (ms_t)rd_u(p + 18, 6);
    c->static_block = p[24];
    c->static_challenge = p[25];
    size_t pos = 26;
    return read_part(p, len, &pos, &c->device_id, &c->device_id_len) &&
           read_part(p, len, &pos, &c->arms, &c->arms_len) &&
           read_part(p, len, &pos, &c->static_codes, &c->static_codes_len) &&
           read_part(p, len, &pos, &c->position, &c->position_len);
}

static int Decide(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    int asked;
    long long numkeys = command_keys(ctx, argv, argc, &asked);
    if (numkeys < 0) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: numkeys");
    if (asked) return REDISMODULE_OK;
    RedisModule_AutoMemory(ctx);
    if (numkeys < K_SIGNALS || numkeys > K_COUNT)
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: expects decide.lua's keys");
    RedisModuleString *key[K_COUNT];
    for (int i = 0; i < K_COUNT; i++) key[i] = i < numkeys ? argv[2 + i] : NULL;
    RedisModuleString **arg = argv + 2 + numkeys;
    int nargs = argc - 2 - (int)numkeys;
    if (nargs < 5) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: expects decide.lua's arguments");
    /* Redis Cluster: the user side was judged on the user's slot (see the top of this file). */
    size_t user_side_len = 0, user_graph_len = 0;
    const char *user_side = nargs > A_USER_SIDE ? RedisModule_StringPtrLen(arg[A_USER_SIDE], &user_side_len) : "";
    if (nargs > A_USER_GRAPH) RedisModule_StringPtrLen(arg[A_USER_GRAPH], &user_graph_len);
    int split = user_side_len > 0;
    if (split && user_side[0] != 'S') return RedisModule_ReplyWithError(ctx, "ERR riskdecide: user side");
    size_t plan_len, call_len, record_len;
    const char *plan_raw = RedisModule_StringPtrLen(arg[A_PLAN], &plan_len);
    const char *call_raw = RedisModule_StringPtrLen(arg[A_CALL], &call_len);
    const char *record = RedisModule_StringPtrLen(arg[A_RECORD], &record_len);
    Call c;
    if (plan_len < PLAN_SIZE) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: plan");
    if (!read_call(call_raw, call_len, &c)) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: call");

    /* The clock (common.lua clock()): given, or the server's; past the deadline nothing changes. */
    ms_t now = c.now;
    if (c.now == 0 || c.deadline > 0) {
        ms_t server = (ms_t)RedisModule_Milliseconds();
        if (c.deadline > 0 && server > c.deadline) {
            RedisModule_ReplyWithArray(ctx, 2);
            RedisModule_ReplyWithStringBuffer(ctx, "late", 4);
            return RedisModule_ReplyWithArray(ctx, 0);
        }
        if (c.now == 0) now = server;
    }
    char now_s[24];
    int now_s_len = now < 0 ? snprintf(now_s, sizeof now_s, "%lld", now) : (int)fmt_u64(now_s, (unsigned long long)now);

    const char *fp, *decision_id, *user;
    size_t fp_len, decision_id_len, user_len, rpos = 0;
    if (!read_part((const unsigned char *)record, record_len, &rpos, &fp, &fp_len) ||
        !read_part((const unsigned char *)record, record_len, &rpos, &decision_id, &decision_id_len) ||
        !read_part((const unsigned char *)record, record_len, &rpos, &user, &user_len))
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: record");
    if (reply_earlier(ctx, key[K_EVENT], fp, fp_len)) return REDISMODULE_OK;

    Judge j = {.plan = {(const unsigned char *)plan_raw}, .arms = c.arms, .arms_len = c.arms_len};
    Plan pl = j.plan;
    if (split && !read_findings((const unsigned char *)user_side + 1, user_side_len - 1, &j.fired))
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: user side");

    /* The device state: its share log, then the users seen (common.lua read_state()). */
    size_t state_len, ulog_len;
    int wrong;
    const char *state = read_string(ctx, key[K_DEVICE_STATE], &state_len, &wrong);
    if (wrong) return reply_wrongtype(ctx);
    const unsigned char *dlog = (const unsigned char *)"", *users = (const unsigned char *)"";
    size_t dlog_len = 0, users_len = 0;
    if (state && state_len >= 2) {
        size_t n = (size_t)rd_u((const unsigned char *)state, 2) * 6;
        if (2 + n > state_len) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: device state");
        dlog = (const unsigned char *)state + 2;
        dlog_len = n;
        users = dlog + n;
        users_len = state_len - 2 - n;
    }
    const char *ulog = "";
    ulog_len = 0;
    if (!split) {
        ulog = read_string(ctx, key[K_USER_LOG], &ulog_len, &wrong);
        if (wrong) return reply_wrongtype(ctx);
        if (!ulog) ulog = "";
    }
    int has_position = c.position_len == 16;
    double lat = 0, lon = 0;
    if (has_position) {
        lat = rd_f64((const unsigned char *)c.position);
        lon = rd_f64((const unsigned char *)c.position + 8);
    }

    /* Count windows (rules 1-4). */
    ms_t counted[5] = {0}, reset_in[5] = {0};
    int has_count[5] = {0}, user_seen = 0;
    for (int id = 1; id <= 4; id++) {
        if (rule_byte(pl, id, F_ENABLED) != 1 || (split && id == 3)) continue;
        double limit = rule_f64(pl, id, F_LIMIT);
        ms_t win = (ms_t)rule_u32(pl, id, F_WINDOW);
        ms_t count, retry, reset;
        int over;
        if (id == 4) {
            /* Distinct users: the share's own user, if seen in the window, is not new. */
            size_t most = users_len / 8 + 1, n_others = 0;
            ms_t *others = RedisModule_PoolAlloc(ctx, most * sizeof *others);
            for (size_t pos = 0; pos + 8 <= users_len;) {
                ms_t t = (ms_t)rd_u(users + pos, 6);
                size_t len = (size_t)rd_u(users + pos + 6, 2), at = pos + 8;
                pos = at + len;
                if (pos > users_len) break;
                if (now - t < win) {
                    if (len == user_len && memcmp(users + at, user, len) == 0) user_seen = 1;
                    else others[n_others++] = t;
                }
            }
            qsort(others, n_others, sizeof *others, cmp_ms);
            count = (ms_t)n_others;
            retry = 0;
            reset = 0;
            if ((double)count >= limit) {
                if (count - (ms_t)limit < 0 || count - (ms_t)limit >= count)
                    return RedisModule_ReplyWithError(ctx, "ERR riskdecide: a count limit under 1");
                retry = others[count - (ms_t)limit] + win - now;
            }
            if (count > 0) reset = others[0] + win - now;
            over = !user_seen && (double)count >= limit;
            if (user_seen) count++;
        } else {
            const unsigned char *s = id == 3 ? (const unsigned char *)ulog : dlog;
            if (!judge_log(s, id == 3 ? ulog_len : dlog_len, now, limit, win, &count, &retry, &reset))
                return RedisModule_ReplyWithError(ctx, "ERR riskdecide: a count limit under 1");
            over = (double)count >= limit;
        }
        /* Observed: what the count would be with this share. */
        if (over) fire_num(&j, id, (double)(count + 1), limit, (double)win / 1000, (double)retry, NONE);
        counted[id] = count;
        reset_in[id] = reset;
        has_count[id] = 1;
    }

    /* Success rate over the shares of the window that have an outcome. */
    if (rule_byte(pl, 5, F_ENABLED) == 1) {
        size_t raw_len;
        const char *raw = read_string(ctx, key[K_DEVICE_OUTCOMES], &raw_len, &wrong);
        if (wrong) return reply_wrongtype(ctx);
        if (raw) {
            ms_t win = (ms_t)rule_u32(pl, 5, F_WINDOW);
            double min_samples = rule_f64(pl, 5, F_LIMIT), threshold = rule_f64(pl, 5, F_EXTRA);
            long long samples = 0, successes = 0;
            for (size_t i = 0; i + 7 <= raw_len; i += 11) {
                ms_t t = (ms_t)rd_u((const unsigned char *)raw + i, 6);
                if (now - t < win) {
                    samples++;
                    successes += (unsigned char)raw[i + 6];
                }
            }
            if ((double)samples >= min_samples && (double)successes < threshold * (double)samples)
                fire_num(&j, 5, floor((double)successes / (double)samples * 1000 + 0.5) / 1000, threshold,
                         (double)win / 1000, 0, (double)samples);
        }
    }

    /* Impossible travel from the device's last position (the new one written, the last read). */
    if (has_position) {
        BUF(position);
        buf_uint(&position, (uint64_t)now, 6);
        buf_f64(&position, lat);
        buf_f64(&position, lon);
        /* SET ... GET: the key is written either way, so one handle reads and writes it. */
        unsigned char l[22];
        int has_last = 0;
        RedisModuleKey *geo = RedisModule_OpenKey(ctx, key[K_DEVICE_GEO], REDISMODULE_READ | REDISMODULE_WRITE);
        int gt = RedisModule_KeyType(geo);
        if (gt != REDISMODULE_KEYTYPE_EMPTY && gt != REDISMODULE_KEYTYPE_STRING) {
            RedisModule_CloseKey(geo);
            buf_free(&position);
            return reply_wrongtype(ctx);
        }
        if (gt == REDISMODULE_KEYTYPE_STRING && rule_byte(pl, 6, F_ENABLED) == 1) {
            size_t last_len;
            const char *last = RedisModule_StringDMA(geo, &last_len, REDISMODULE_READ);
            if (last_len >= 22) {
                memcpy(l, last, 22);
                has_last = 1;
            }
        }
        RedisModuleString *value = RedisModule_CreateString(ctx, position.p, position.len);
        RedisModule_StringSet(geo, value);
        RedisModule_SetExpire(geo, DAY_MS);
        RedisModule_CloseKey(geo);
        RedisModule_Replicate(ctx, "SET", "ssss", key[K_DEVICE_GEO], value, W[W_PX], W[W_DAY_MS]);
        buf_free(&position);
        if (has_last) {
            ms_t t = (ms_t)rd_u(l, 6);
            double km = haversine_km(rd_f64(l + 6), rd_f64(l + 14), lat, lon);
            /* At least a second apart, so that two shares in the same ms are not infinitely fast. */
            double kmh = km / ((double)(now - t > 1000 ? now - t : 1000) / 3600000);
            if (km >= rule_f64(pl, 6, F_EXTRA) && kmh > rule_f64(pl, 6, F_LIMIT))
                fire_num(&j, 6, floor(kmh + 0.5), rule_f64(pl, 6, F_LIMIT), NONE, 0, floor(km * 10 + 0.5) / 10);
        }
    }

    /* Graph scores of the device and the sharer: the anomaly is the worse of the two, the KOL score
     * the sharer's. */
    char graph[128];
    size_t graph_len = 0;
    {
        RedisModuleString *fields[2], *scored[2];
        fields[0] = field_of(ctx, "d:", 2, c.device_id, c.device_id_len);
        fields[1] = field_of(ctx, "u:", 2, user, user_len);
        if (hmget(ctx, key[K_GRAPH], 2, fields, scored) < 0) return reply_wrongtype(ctx);
        if (user_graph_len > 0) scored[1] = arg[A_USER_GRAPH]; /* Redis Cluster: read on the user's slot */
        if (scored[0] || scored[1]) {
            size_t dl = 3, ul = 3, dal, ual, ukl;
            const char *d = scored[0] ? RedisModule_StringPtrLen(scored[0], &dl) : "0,0";
            const char *u = scored[1] ? RedisModule_StringPtrLen(scored[1], &ul) : "0,0";
            const char *da, *ua, *uk;
            double dav, uav;
            if (!split_score(d, dl, &da, &dal, NULL, NULL) || !split_score(u, ul, &ua, &ual, &uk, &ukl) ||
                !lua_tonumber(da, dal, &dav) || !lua_tonumber(ua, ual, &uav) || ukl > 64)
                return RedisModule_ReplyWithError(ctx, "ERR riskdecide: graph scores");
            double anomaly = uav > dav ? uav : dav;
            int n = lua_numstr(graph, 32, anomaly);
            graph[n] = ',';
            memcpy(graph + n + 1, uk, ukl);
            graph_len = (size_t)n + 1 + ukl;
            if (rule_byte(pl, R_GRAPH, F_ENABLED) == 1 && anomaly >= rule_f64(pl, R_GRAPH, F_LIMIT))
                fire_num(&j, R_GRAPH, anomaly, rule_f64(pl, R_GRAPH, F_LIMIT), NONE, 0, NONE);
        }
    }

    /* Real-time signals (rules 11-15) from the device's `:sig` hash: "<observed>@<until ms>". A signal
     * and the batch's graph anomaly are one explanation: only the stronger (observed / limit) is given. */
    size_t sig_name_len = 0;
    if (key[K_SIGNALS]) RedisModule_StringPtrLen(key[K_SIGNALS], &sig_name_len);
    RedisModuleKey *sk = sig_name_len > 0 ? RedisModule_OpenKey(ctx, key[K_SIGNALS], REDISMODULE_READ) : NULL;
    int st = sk ? RedisModule_KeyType(sk) : REDISMODULE_KEYTYPE_EMPTY;
    if (st != REDISMODULE_KEYTYPE_EMPTY && st != REDISMODULE_KEYTYPE_HASH) {
        RedisModule_CloseKey(sk);
        return reply_wrongtype(ctx);
    }
    if (st == REDISMODULE_KEYTYPE_HASH) { /* (most devices have none: one look-up, no fields built) */
        RedisModuleString *sig[5];
        for (int i = 0; i < 5; i++) {
            char prefix[2] = {SIGNAL_FIELD[i], '|'};
            sig[i] = NULL;
            RedisModule_HashGet(sk, REDISMODULE_HASH_NONE,
                                SIGNAL_PER_USER[i] ? field_of(ctx, prefix, 2, user, user_len) : W[W_SIG_R], &sig[i], NULL);
        }
        RedisModule_CloseKey(sk);
        sk = NULL;
        int first = j.fired.n;
        for (int i = 0; i < 5; i++) {
            if (!sig[i]) continue;
            size_t len;
            const char *v = RedisModule_StringPtrLen(sig[i], &len);
            const char *at = memchr(v, '@', len);
            if (!at || at == v || at + 1 == v + len) continue;
            int digits = 1;
            for (const char *p = at + 1; p < v + len; p++) digits &= isdigit((unsigned char)*p) != 0;
            double observed, until;
            if (!digits || !lua_tonumber(v, (size_t)(at - v), &observed) ||
                !lua_tonumber(at + 1, (size_t)(v + len - at - 1), &until))
                continue;
            int id = FIRST_SIGNAL + i;
            if ((double)now < until && rule_byte(pl, id, F_ENABLED) == 1 && observed >= rule_f64(pl, id, F_LIMIT)) {
                ms_t win = (ms_t)rule_u32(pl, id, F_WINDOW);
                fire_num(&j, id, observed, rule_f64(pl, id, F_LIMIT), win > 0 ? (double)win / 1000 : NONE, 0, NONE);
            }
        }
        int g = -1;
        for (int i = 0; i < first; i++)
            if (strcmp(j.fired.f[i].code, CODES[R_GRAPH]) == 0) g = i;
        if (g >= 0 && j.fired.n > first) {
            int gshadow = j.fired.f[g].shadow;
            double gstrength = j.fired.f[g].number / j.fired.f[g].limit, best = -1;
            for (int i = first; i < j.fired.n; i++)
                if (j.fired.f[i].shadow == gshadow) {
                    double s = j.fired.f[i].number / j.fired.f[i].limit;
                    if (s > best) best = s;
                }
            if (best >= 0) {
                int kept = 0;
                for (int i = 0; i < j.fired.n; i++) {
                    int signal = i >= first && j.fired.f[i].shadow == gshadow;
                    if (!((i == g && best > gstrength) || (signal && best <= gstrength))) j.fired.f[kept++] = j.fired.f[i];
                }
                j.fired.n = kept;
            }
        }
    }

    if (sk) RedisModule_CloseKey(sk);

    /* Bans (rules 8-10) and the allowlist: looked at only when one of their keys is there. */
    int allowlisted = 0;
    if (key_exists(ctx, key[K_ALLOWLIST]) || key_exists(ctx, key[K_DEVICE_BAN]) || key_exists(ctx, key[K_USER_BAN]) ||
        key_exists(ctx, key[K_IP_BAN])) {
        RedisModuleString *ban_keys[3] = {key[K_DEVICE_BAN], key[K_USER_BAN], key[K_IP_BAN]};
        RedisModuleString *fields[3] = {W[W_UNTIL], W[W_REASON], W[W_CODE]};
        for (int id = 8; id <= 10; id++) {
            if (rule_byte(pl, id, F_ENABLED) != 1 || (split && id >= 9)) continue;
            RedisModuleString *ban[3];
            if (hmget(ctx, ban_keys[id - 8], 3, fields, ban) < 0) return reply_wrongtype(ctx);
            if (!ban[0] && !ban[1]) continue;
            double untl = 0;
            if (ban[0]) {
                size_t n;
                const char *u = RedisModule_StringPtrLen(ban[0], &n);
                if (!lua_tonumber(u, n, &untl)) untl = 0;
            }
            if (!(untl == 0 || untl > (double)now)) continue;
            double retry = untl > 0 ? untl - (double)now : 0;
            size_t reason_len = 0, code_len = 0;
            const char *reason = ban[1] ? RedisModule_StringPtrLen(ban[1], &reason_len) : "";
            const char *code = ban[2] ? RedisModule_StringPtrLen(ban[2], &code_len) : "";
            if (code_len == 18 && memcmp(code, "challenge_failures", 18) == 0) {
                /* The cool-down after failed challenges, reported as its own rule. */
                if (j.fired.n < MAX_FINDINGS) {
                    Finding *f = &j.fired.f[j.fired.n++];
                    int ch = (int)hdr(pl, H_CD_CHALLENGE, 1);
                    *f = (Finding){.code = "challenge_failures", .code_len = 18,
                                   .severity = (int)hdr(pl, H_CD_SEVERITY, 1), .shadow = (int)hdr(pl, H_CD_SHADOW, 1),
                                   .challenge = ch <= 2 ? ch : 0, .text = 1, .observed = reason,
                                   .observed_len = reason_len, .limit = NONE, .window = NONE, .retry = retry,
                                   .detail = NONE};
                }
            } else {
                fire_text(&j, id, reason, reason_len, NONE, NONE, retry);
            }
        }
        /* An allowlisted device skips challenge rules: they are reported under shadow instead. */
        allowlisted = key_exists(ctx, key[K_ALLOWLIST]);
    }
    if (allowlisted)
        for (int i = 0; i < j.fired.n; i++)
            if (j.fired.f[i].severity == 1) j.fired.f[i].shadow = 1;

    /* Severity: block (2) > challenge (1) > allow (0); among challenges sms > captcha. */
    int decision = 0, chal = 0;
    if (c.static_block == 1) decision = 2;
    if (!allowlisted && c.static_challenge != 0) {
        if (decision < 1) decision = 1;
        chal = c.static_challenge;
    }
    for (int i = 0; i < j.fired.n; i++) {
        const Finding *f = &j.fired.f[i];
        if (f->shadow != 0) continue;
        if (f->severity > decision) decision = f->severity;
        if (f->severity == 1) {
            int rank = f->challenge == 2 ? 2 : (f->challenge == 1 ? 1 : 0);
            if (rank > chal) chal = rank;
        }
    }
    if (decision != 1) chal = 0;

    int consumed = 0;
    if (decision == 0) {
        /* Count the admitted share: the device log, the user's log and the users seen. */
        consumed = 1;
        BUF(st);
        BUF(kept);
        BUF(ul);
        record_log(&kept, dlog, dlog_len, now, (ms_t)hdr(pl, H_DCAP, 2), (ms_t)hdr(pl, H_DKEEP, 4));
        buf_uint(&st, kept.len / 6, 2);
        buf_put(&st, kept.p, kept.len);
        users_after(&st, pl, now, user, user_len, users, users_len);
        ms_t dkeep = (ms_t)hdr(pl, H_DKEEP, 4), skeep = (ms_t)hdr(pl, H_SKEEP, 4);
        set_px_buf(ctx, key[K_DEVICE_STATE], st.p, st.len, dkeep > skeep ? dkeep : skeep);
        if (!split) { /* (on Redis Cluster settle.lua counts it on the user's slot) */
            record_log(&ul, (const unsigned char *)ulog, ulog_len, now, (ms_t)hdr(pl, H_UCAP, 2),
                       (ms_t)hdr(pl, H_UKEEP, 4));
            set_px_buf(ctx, key[K_USER_LOG], ul.p, ul.len, (ms_t)hdr(pl, H_UKEEP, 4));
        }
        buf_free(&st);
        buf_free(&kept);
        buf_free(&ul);
    } else {
        /* Evidence for analysts: refusals by rule; past the policy's threshold an open device enters
         * the review queue, worst (most refusal points) first. */
        RedisModuleKey *flags = RedisModule_OpenKey(ctx, key[K_FLAGS], REDISMODULE_READ | REDISMODULE_WRITE);
        int ft = RedisModule_KeyType(flags);
        if (ft != REDISMODULE_KEYTYPE_EMPTY && ft != REDISMODULE_KEYTYPE_HASH) {
            RedisModule_CloseKey(flags);
            return reply_wrongtype(ctx);
        }
        long long points = 0;
        HashWrites hw = {.n = 0};
        const char *codes = c.static_codes, *end = c.static_codes + c.static_codes_len;
        while (codes < end) {
            const char *comma = memchr(codes, ',', (size_t)(end - codes));
            const char *stop = comma ? comma : end;
            size_t len = (size_t)(stop - codes);
            int shadow = 0;
            for (size_t i = 0; len >= 7 && i + 7 <= len; i++) shadow |= memcmp(codes + i, ":shadow", 7) == 0;
            if (len > 0 && !shadow) {
                int challenge = codes[len - 1] == '?';
                if (!challenge || !allowlisted) {
                    long long v;
                    if (hincrby(ctx, flags, key[K_FLAGS], &hw, RedisModule_CreateString(ctx, codes, len - (size_t)challenge),
                                1, &v) < 0)
                        return not_integer(ctx, flags, key[K_FLAGS], &hw);
                }
            }
            codes = stop + 1;
        }
        for (int i = 0; i < j.fired.n; i++) {
            if (j.fired.f[i].shadow != 0) continue;
            long long v;
            if (hincrby(ctx, flags, key[K_FLAGS], &hw, RedisModule_CreateString(ctx, j.fired.f[i].code, j.fired.f[i].code_len),
                        1, &v) < 0)
                return not_integer(ctx, flags, key[K_FLAGS], &hw);
        }
        if (hincrby(ctx, flags, key[K_FLAGS], &hw, W[W_POINTS], decision, &points) < 0)
            return not_integer(ctx, flags, key[K_FLAGS], &hw);
        RedisModuleString *at = RedisModule_CreateString(ctx, now_s, (size_t)now_s_len);
        if (points == decision) { /* the first refusal the hash holds */
            RedisModule_HashSet(flags, REDISMODULE_HASH_NONE, W[W_FIRST], at, W[W_LAST], at, NULL);
            wrote(ctx, key[K_FLAGS], &hw, W[W_FIRST], at);
        } else {
            RedisModule_HashSet(flags, REDISMODULE_HASH_NONE, W[W_LAST], at, NULL);
        }
        wrote(ctx, key[K_FLAGS], &hw, W[W_LAST], at);
        RedisModule_SetExpire(flags, FLAGS_TTL_MS);
        RedisModule_Replicate(ctx, "HSET", "sv", key[K_FLAGS], hw.v, hw.n);
        RedisModule_Replicate(ctx, "PEXPIRE", "ss", key[K_FLAGS], W[W_FLAGS_TTL_MS]);
        RedisModule_CloseKey(flags);
        if (points >= (long long)hdr(pl, H_REVIEW, 2)) {
            RedisModuleString *status_field[1] = {W[W_STATUS]}, *status[1];
            if (hmget(ctx, key[K_REVIEW], 1, status_field, status) < 0) return reply_wrongtype(ctx);
            size_t sl = 0;
            const char *sv = status[0] ? RedisModule_StringPtrLen(status[0], &sl) : NULL;
            if (!sv || (sl == 4 && memcmp(sv, "open", 4) == 0)) {
                /* GT: a higher priority from the graph scores is not lowered by points. */
                RedisModuleKey *q = RedisModule_OpenKey(ctx, key[K_QUEUE], REDISMODULE_READ | REDISMODULE_WRITE);
                int qt = RedisModule_KeyType(q);
                if (qt != REDISMODULE_KEYTYPE_EMPTY && qt != REDISMODULE_KEYTYPE_ZSET) {
                    RedisModule_CloseKey(q);
                    return reply_wrongtype(ctx);
                }
                RedisModuleString *member = RedisModule_CreateString(ctx, c.device_id, c.device_id_len);
                int zflags = REDISMODULE_ZADD_GT;
                RedisModule_ZsetAdd(q, (double)points, member, &zflags);
                RedisModule_CloseKey(q);
                RedisModule_Replicate(ctx, "ZADD", "ssls", key[K_QUEUE], W[W_GT], points, member);
            }
        }
    }

    /* Window counts after this decision, packed (contract.decode_windows). */
    BUF(windows);
    BUF(findings);
    BUF(decided);
    BUF(rec);
    BUF(codes);
    for (int id = 1; id <= 4; id++) {
        if (!has_count[id]) continue;
        ms_t count = counted[id], reset = reset_in[id];
        if (consumed && (id != 4 || !user_seen)) {
            count++;
            if (reset == 0) reset = (ms_t)rule_u32(pl, id, F_WINDOW);
        }
        buf_uint(&windows, (uint64_t)id, 1);
        buf_uint(&windows, lua_uint((double)count) & 0xffffffffu, 4);
        buf_uint(&windows, lua_uint((double)reset) & 0xffffffffu, 4);
    }
    pack_findings(&findings, &j.fired);

    /* The record: the caller's part as sent, then the script's. */
    buf_uint(&decided, (uint64_t)now, 6);
    buf_uint(&decided, (uint64_t)decision, 1);
    buf_uint(&decided, (uint64_t)chal, 1);
    buf_uint(&decided, (uint64_t)consumed, 1);
    buf_uint(&decided, (uint64_t)allowlisted, 1);
    buf_uint(&decided, windows.len, 2);
    buf_put(&decided, windows.p, windows.len);
    buf_uint(&decided, findings.len, 2);
    buf_put(&decided, findings.p, findings.len);
    buf_uint(&decided, graph_len, 2);
    buf_put(&decided, graph, graph_len);
    buf_put(&rec, record, record_len);
    buf_put(&rec, decided.p, decided.len);
    RedisModuleString *ttl = RedisModule_CreateStringFromLongLong(ctx, c.ttl_ms);
    set_px(ctx, key[K_EVENT], RedisModule_CreateString(ctx, rec.p, rec.len), c.ttl_ms, ttl);
    set_px(ctx, key[K_POINTER], arg[A_POINTER], c.ttl_ms, ttl);

    /* The share event's reason codes: the stateless ones ('?' after an enforced challenge, which the
     * allowlist turns into shadow), then the stateful ones. */
    for (size_t i = 0; i < c.static_codes_len; i++) {
        if (c.static_codes[i] == '?') {
            if (allowlisted) buf_put(&codes, ":shadow", 7);
        } else {
            buf_put(&codes, &c.static_codes[i], 1);
        }
    }
    for (int i = 0; i < j.fired.n; i++) {
        if (codes.len > 0 || i > 0 || c.static_codes_len > 0) buf_put(&codes, ",", 1);
        buf_put(&codes, j.fired.f[i].code, j.fired.f[i].code_len);
        if (j.fired.f[i].shadow == 1) buf_put(&codes, ":shadow", 7);
    }
    RedisModuleString *fields[12] = {
        W[W_K], W[W_DECISION], W[W_ID], RedisModule_CreateString(ctx, decision_id, decision_id_len), W[W_T],
        RedisModule_CreateString(ctx, now_s, (size_t)now_s_len), W[W_DEC], W[W_DEC0 + decision], W[W_RC],
        RedisModule_CreateString(ctx, codes.len ? codes.p : "", codes.len), W[W_REQ], arg[A_REQUEST]};
    append_event(ctx, key[K_EVENTS], now, c.retention_ms, decision_id, decision_id_len, fields);

    /* Only what the caller does not already know (it sent the rest). */
    RedisModule_ReplyWithStringBuffer(ctx, decided.p, decided.len);
    buf_free(&windows);
    buf_free(&findings);
    buf_free(&decided);
    buf_free(&rec);
    buf_free(&codes);
    return REDISMODULE_OK;
}

/* ---- Redis Cluster: the user's slot (reserve.lua and settle.lua) ---- */

/* The judging time of the user's steps (common.lua clock()): `now` as sent ("" for the server's),
 * and whether the call came after `deadline` ("" for none). 0 when a number does not read. */
static int user_clock(RedisModuleString *now_arg, RedisModuleString *deadline_arg, double *now, int *late) {
    size_t nl, dl;
    const char *n = RedisModule_StringPtrLen(now_arg, &nl);
    const char *d = RedisModule_StringPtrLen(deadline_arg, &dl);
    double server = (double)RedisModule_Milliseconds(), deadline = 0;
    *late = 0;
    if (dl > 0) {
        if (!lua_tonumber(d, dl, &deadline)) return 0;
        *late = server > deadline;
    }
    if (nl == 0) {
        *now = server;
        return 1;
    }
    return lua_tonumber(n, nl, now);
}

/* "<digits>,<digits>" as reserve.lua reads a place (held at, expires). */
static int read_place(const char *s, size_t len, double *at, double *expires) {
    const char *comma = memchr(s, ',', len);
    if (!comma || comma == s || comma + 1 == s + len) return 0;
    for (const char *p = s; p < s + len; p++)
        if (p != comma && !isdigit((unsigned char)*p)) return 0;
    return lua_tonumber(s, (size_t)(comma - s), at) && lua_tonumber(comma + 1, (size_t)(s + len - comma - 1), expires);
}

typedef struct {
    RedisModuleCtx *ctx;
    RedisModuleString **fields, **values;
    size_t n, cap;
} Places;

static void collect_place(RedisModuleKey *key, RedisModuleString *field, RedisModuleString *value, void *data) {
    REDISMODULE_NOT_USED(key);
    Places *p = data;
    if (p->n == p->cap) {
        size_t cap = p->cap ? p->cap * 2 : 8;
        RedisModuleString **f = RedisModule_PoolAlloc(p->ctx, cap * sizeof *f), **v = RedisModule_PoolAlloc(p->ctx, cap * sizeof *v);
        if (p->n) {
            memcpy(f, p->fields, p->n * sizeof *f);
            memcpy(v, p->values, p->n * sizeof *v);
        }
        p->fields = f;
        p->values = v;
        p->cap = cap;
    }
    /* (The scan's strings are freed after the callback: kept as copies.) */
    p->fields[p->n] = RedisModule_CreateStringFromString(p->ctx, field);
    p->values[p->n++] = RedisModule_CreateStringFromString(p->ctx, value);
}

/* RISK.RESERVE numkeys user_log user_ban user_pending now deadline event plan hold_ms arms: reserve.lua. */
static int Reserve(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    int asked;
    long long numkeys = command_keys(ctx, argv, argc, &asked);
    if (asked) return REDISMODULE_OK;
    if (argc != 11 || numkeys != 3)
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: expects reserve.lua's keys and arguments");
    RedisModule_AutoMemory(ctx);
    RedisModuleString *k_log = argv[2], *k_ban = argv[3], *k_pending = argv[4], *event = argv[7];
    size_t plan_len, arms_len, hold_len;
    const char *plan_raw = RedisModule_StringPtrLen(argv[8], &plan_len);
    const char *arms = RedisModule_StringPtrLen(argv[10], &arms_len);
    const char *hold_s = RedisModule_StringPtrLen(argv[9], &hold_len);
    double now, hold;
    int late;
    if (!user_clock(argv[5], argv[6], &now, &late)) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: clock");
    if (late) {
        RedisModule_ReplyWithArray(ctx, 3);
        RedisModule_ReplyWithStringBuffer(ctx, "late", 4);
        RedisModule_ReplyWithStringBuffer(ctx, "", 0);
        return RedisModule_ReplyWithLongLong(ctx, 0);
    }
    if (plan_len < PLAN_SIZE) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: plan");
    if (!lua_tonumber(hold_s, hold_len, &hold)) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: hold");
    Judge j = {.plan = {(const unsigned char *)plan_raw}, .arms = arms, .arms_len = arms_len};
    Plan pl = j.plan;

    /* Places still held (expired ones are dropped), and this event's own. */
    RedisModuleKey *pk = RedisModule_OpenKey(ctx, k_pending, REDISMODULE_READ | REDISMODULE_WRITE);
    int pt = RedisModule_KeyType(pk);
    if (pt != REDISMODULE_KEYTYPE_EMPTY && pt != REDISMODULE_KEYTYPE_HASH) {
        RedisModule_CloseKey(pk);
        return reply_wrongtype(ctx);
    }
    Places places = {.ctx = ctx};
    if (pt == REDISMODULE_KEYTYPE_HASH) {
        RedisModuleScanCursor *cursor = RedisModule_ScanCursorCreate();
        while (RedisModule_ScanKey(pk, cursor, collect_place, &places)) {}
        RedisModule_ScanCursorDestroy(cursor);
    }
    size_t event_len, n_pending = 0, n_expired = 0;
    const char *event_s = RedisModule_StringPtrLen(event, &event_len);
    double *pending = RedisModule_PoolAlloc(ctx, (places.n + 1) * sizeof *pending), own = 0;
    RedisModuleString **expired = RedisModule_PoolAlloc(ctx, (places.n + 1) * sizeof *expired);
    int has_own = 0;
    for (size_t i = 0; i < places.n; i++) {
        size_t vl, fl;
        const char *v = RedisModule_StringPtrLen(places.values[i], &vl);
        const char *f = RedisModule_StringPtrLen(places.fields[i], &fl);
        double at, expires;
        if (!read_place(v, vl, &at, &expires)) {
            RedisModule_CloseKey(pk);
            return RedisModule_ReplyWithError(ctx, "ERR riskdecide: a place held");
        }
        if (expires <= now) expired[n_expired++] = places.fields[i];
        else if (fl == event_len && memcmp(f, event_s, fl) == 0) own = at, has_own = 1;
        else pending[n_pending++] = at;
    }
    if (n_expired) {
        for (size_t i = 0; i < n_expired; i++)
            RedisModule_HashSet(pk, REDISMODULE_HASH_NONE, expired[i], REDISMODULE_HASH_DELETE, NULL);
        RedisModule_Replicate(ctx, "HDEL", "sv", k_pending, expired, n_expired);
    }
    (void)own;

    if (rule_byte(pl, 9, F_ENABLED) == 1) {
        RedisModuleString *fields[2] = {W[W_UNTIL], W[W_REASON]}, *ban[2];
        if (hmget(ctx, k_ban, 2, fields, ban) < 0) {
            RedisModule_CloseKey(pk);
            return reply_wrongtype(ctx);
        }
        if (ban[0] || ban[1]) {
            double untl = 0;
            if (ban[0]) {
                size_t ul;
                const char *u = RedisModule_StringPtrLen(ban[0], &ul);
                if (!lua_tonumber(u, ul, &untl)) untl = 0;
            }
            if (untl == 0 || untl > now) {
                size_t rl = 0;
                const char *reason = ban[1] ? RedisModule_StringPtrLen(ban[1], &rl) : "";
                fire_text(&j, 9, reason, rl, NONE, NONE, untl > 0 ? untl - now : 0);
            }
        }
    }
    if (rule_byte(pl, 3, F_ENABLED) == 1 && !has_own) {
        /* The window counts admitted shares and the places other shares hold (see reserve.lua). */
        double limit = rule_f64(pl, 3, F_LIMIT);
        ms_t win = (ms_t)rule_u32(pl, 3, F_WINDOW);
        size_t log_len;
        int wrong;
        const char *log = read_string(ctx, k_log, &log_len, &wrong);
        if (wrong) {
            RedisModule_CloseKey(pk);
            return reply_wrongtype(ctx);
        }
        const unsigned char *s = (const unsigned char *)(log ? log : "");
        size_t n = log_len / 6, lo = 1, hi = n + 1;
        double bound = now - (double)win;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;
            if ((double)log_at(s, mid) > bound) hi = mid; else lo = mid + 1;
        }
        double count = (double)(n - lo + 1);
        for (size_t i = 0; i < n_pending; i++)
            if (now - pending[i] < (double)win) count++;
        if (count >= limit) {
            /* Refused: every time, sorted, to say when it may retry (judge()). */
            size_t m = n + n_pending;
            double *times = RedisModule_PoolAlloc(ctx, (m + 1) * sizeof *times);
            for (size_t i = 0; i < n; i++) times[i] = (double)log_at(s, i + 1);
            memcpy(times + n, pending, n_pending * sizeof *times);
            qsort(times, m, sizeof *times, cmp_double);
            size_t first = m + 1;
            while (first > 1 && now - times[first - 2] < (double)win) first--;
            double inside = (double)(m - first + 1), retry = 0;
            if (inside >= limit) {
                double at = (double)first + inside - limit;
                if (at < 1 || at > (double)m) {
                    RedisModule_CloseKey(pk);
                    return RedisModule_ReplyWithError(ctx, "ERR riskdecide: a count limit under 1");
                }
                retry = times[(size_t)at - 1] + (double)win - now;
            }
            fire_num(&j, 3, inside + 1, limit, (double)win / 1000, retry, NONE);
        }
    }

    int blocked = 0;
    for (int i = 0; i < j.fired.n; i++) blocked |= j.fired.f[i].shadow == 0 && j.fired.f[i].severity > 0;
    long long reserved = 0;
    if (has_own) {
        reserved = 2; /* a replay: the earlier call holds the place and settles it */
    } else if (!blocked) {
        char place[64], ms[32];
        int a = lua_numstr(place, 32, now);
        place[a++] = ',';
        a += lua_numstr(place + a, sizeof place - (size_t)a, now + hold);
        RedisModuleString *value = RedisModule_CreateString(ctx, place, (size_t)a);
        RedisModule_HashSet(pk, REDISMODULE_HASH_NONE, event, value, NULL);
        double keep = (double)hdr(pl, H_UKEEP, 4), ttl = hold > keep ? hold : keep;
        RedisModule_SetExpire(pk, (mstime_t)ttl);
        int ml = lua_numstr(ms, sizeof ms, ttl);
        RedisModule_Replicate(ctx, "HSET", "sss", k_pending, event, value);
        RedisModule_Replicate(ctx, "PEXPIRE", "sb", k_pending, ms, (size_t)ml);
        reserved = 1;
    }
    RedisModule_CloseKey(pk);
    BUF(findings);
    pack_findings(&findings, &j.fired);
    RedisModule_ReplyWithArray(ctx, 3);
    RedisModule_ReplyWithStringBuffer(ctx, "ok", 2);
    RedisModule_ReplyWithStringBuffer(ctx, findings.len ? findings.p : "", findings.len);
    RedisModule_ReplyWithLongLong(ctx, reserved);
    buf_free(&findings);
    return REDISMODULE_OK;
}

/* RISK.SETTLE numkeys user_log user_pending [once] event counted plan [place]: settle.lua. */
static int Settle(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    int asked;
    long long numkeys = command_keys(ctx, argv, argc, &asked);
    if (asked) return REDISMODULE_OK;
    if (!((numkeys == 2 && argc == 7) || (numkeys == 3 && argc == 9)))
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: expects settle.lua's keys and arguments");
    RedisModule_AutoMemory(ctx);
    RedisModuleString *k_log = argv[2], *k_pending = argv[3], *k_once = numkeys == 3 ? argv[4] : NULL;
    RedisModuleString **a = argv + 2 + numkeys; /* event, counted, plan[, place] */
    RedisModuleKey *pk = RedisModule_OpenKey(ctx, k_pending, REDISMODULE_READ | REDISMODULE_WRITE);
    int pt = RedisModule_KeyType(pk);
    if (pt != REDISMODULE_KEYTYPE_EMPTY && pt != REDISMODULE_KEYTYPE_HASH) {
        RedisModule_CloseKey(pk);
        return reply_wrongtype(ctx);
    }
    if (k_once) {
        /* SET once 1 NX PX ONCE_MS: a share counted after the fact is counted at most once. */
        RedisModuleKey *ok = RedisModule_OpenKey(ctx, k_once, REDISMODULE_READ | REDISMODULE_WRITE);
        int there = RedisModule_KeyType(ok) != REDISMODULE_KEYTYPE_EMPTY;
        if (!there) {
            RedisModule_StringSet(ok, W[W_ONE]);
            RedisModule_SetExpire(ok, ONCE_MS);
        }
        RedisModule_CloseKey(ok);
        if (there) {
            RedisModule_CloseKey(pk);
            return RedisModule_ReplyWithStringBuffer(ctx, "none", 4);
        }
        RedisModule_Replicate(ctx, "SET", "ssss", k_once, W[W_ONE], W[W_PX], W[W_ONCE_MS]);
        RedisModule_HashSet(pk, REDISMODULE_HASH_NONE, a[0], a[3], NULL);
        RedisModule_Replicate(ctx, "HSET", "sss", k_pending, a[0], a[3]);
    }
    RedisModuleString *held = NULL;
    if (RedisModule_KeyType(pk) == REDISMODULE_KEYTYPE_HASH)
        RedisModule_HashGet(pk, REDISMODULE_HASH_NONE, a[0], &held, NULL);
    if (!held) {
        RedisModule_CloseKey(pk);
        return RedisModule_ReplyWithStringBuffer(ctx, "none", 4);
    }
    RedisModule_HashSet(pk, REDISMODULE_HASH_NONE, a[0], REDISMODULE_HASH_DELETE, NULL);
    RedisModule_CloseKey(pk);
    RedisModule_Replicate(ctx, "HDEL", "ss", k_pending, a[0]);
    size_t cl, pl_len, hl;
    const char *counted = RedisModule_StringPtrLen(a[1], &cl);
    if (!(cl == 1 && counted[0] == '1')) return RedisModule_ReplyWithStringBuffer(ctx, "released", 8);
    const char *plan_raw = RedisModule_StringPtrLen(a[2], &pl_len);
    if (pl_len < PLAN_SIZE) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: plan");
    Plan pl = {(const unsigned char *)plan_raw};
    const char *h = RedisModule_StringPtrLen(held, &hl);
    size_t digits = 0;
    while (digits < hl && isdigit((unsigned char)h[digits])) digits++;
    double t;
    if (digits == 0 || digits == hl || h[digits] != ',' || !lua_tonumber(h, digits, &t))
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: a place held");
    size_t log_len;
    int wrong;
    const char *log = read_string(ctx, k_log, &log_len, &wrong);
    if (wrong) return reply_wrongtype(ctx);
    BUF(kept);
    ms_t keep = (ms_t)hdr(pl, H_UKEEP, 4);
    record_log(&kept, (const unsigned char *)(log ? log : ""), log_len, (ms_t)t, (ms_t)hdr(pl, H_UCAP, 2), keep);
    set_px_buf(ctx, k_log, kept.p, kept.len, keep);
    buf_free(&kept);
    return RedisModule_ReplyWithStringBuffer(ctx, "taken", 5);
}

/* ---- A share's outcome (outcome.lua) ---- */

/* Lua 5.1's tonumber(s, 16) of at most the first 8 bytes of `s` (string.sub(id, 1, 8)), or 0 for nil. */
static uint32_t id_tag(const char *s, size_t len) {
    char tmp[9];
    size_t n = len < 8 ? len : 8;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    char *end;
    unsigned long v = strtoul(tmp, &end, 16);
    if (end == tmp) return 0;
    while (*end && isspace((unsigned char)*end)) end++;
    return *end ? 0 : (uint32_t)v;
}

/* Lua's '^(%d+),(%d+),(%d+)': three runs of digits, comma separated, at the start. */
static int three_counts(const char *s, size_t len, double out[3]) {
    size_t pos = 0;
    for (int i = 0; i < 3; i++) {
        size_t start = pos;
        while (pos < len && isdigit((unsigned char)s[pos])) pos++;
        if (pos == start || !lua_tonumber(s + start, pos - start, &out[i])) return 0;
        if (i < 2) {
            if (pos >= len || s[pos] != ',') return 0;
            pos++;
        }
    }
    return 1;
}

/* A record string's parts that an outcome uses (contract.RECORD_*_FORMAT); 0 when malformed. */
typedef struct {
    const char *id;
    size_t id_len, decided, results; /* decided, results: 0-based offsets of the parts */
    double r, t;
    int dec, cs;
    ms_t ct;
    const char *o;
    size_t o_len;
} Record;

static int read_record(const unsigned char *s, size_t len, Record *rec) {
    size_t pos = 0;
    const char *part;
    size_t part_len;
    for (int i = 0; i < 5; i++) { /* fingerprint, decision id, user, policy version, merchant */
        if (!read_part(s, len, &pos, &part, &part_len)) return 0;
        if (i == 1) rec->id = part, rec->id_len = part_len;
    }
    if (pos + 8 > len) return 0;
    rec->r = (double)rd_u(s + pos, 4);
    size_t fs = (size_t)rd_u(s + pos + 4, 4);
    pos += 8 + fs;
    if (pos + 10 > len) return 0;
    rec->decided = pos;
    rec->t = (double)rd_u(s + pos, 6);
    rec->dec = s[pos + 6];
    pos += 10;
    for (int i = 0; i < 3; i++) /* windows, findings, graph */
        if (!read_part(s, len, &pos, &part, &part_len)) return 0;
    rec->results = pos;
    rec->cs = 0;
    rec->ct = 0;
    rec->o = NULL;
    rec->o_len = 0;
    if (pos < len) {
        if (pos + 9 > len) return 0;
        rec->cs = s[pos];
        rec->ct = (ms_t)rd_u(s + pos + 1, 6);
        pos += 7;
        if (!read_part(s, len, &pos, &rec->o, &rec->o_len)) return 0;
        if (rec->o_len == 0) rec->o = NULL;
    }
    return 1;
}

static int reply_status(RedisModuleCtx *ctx, const char *status, const char *record, size_t len) {
    RedisModule_ReplyWithArray(ctx, 2);
    RedisModule_ReplyWithStringBuffer(ctx, status, strlen(status));
    if (!record) return RedisModule_ReplyWithArray(ctx, 0);
    return RedisModule_ReplyWithStringBuffer(ctx, record, len);
}

/* The success-rate log after a share's outcome (outcome.lua: its entry found by its time and tag
 * and changed in place, or appended; what left the window dropped from the front; at most `cap`
 * entries). 0 when the log cannot be read as outcome.lua reads it. */
static int outcome_log(Buf *out, const unsigned char *log, size_t len, double t, uint32_t tag, int success,
                       double now, double win, double cap) {
    unsigned char t6[6], tag4[4];
    for (int i = 0; i < 6; i++) t6[i] = (unsigned char)((uint64_t)lua_uint(t) >> (8 * (5 - i)));
    for (int i = 0; i < 4; i++) tag4[i] = (unsigned char)(tag >> (8 * (3 - i)));
    size_t at = len; /* 0-based; len: not found */
    for (size_t from = 0; from + 6 <= len;) {
        const unsigned char *hit = NULL;
        for (size_t i = from; i + 6 <= len; i++)
            if (memcmp(log + i, t6, 6) == 0) { hit = log + i; break; }
        if (!hit) break;
        size_t i = (size_t)(hit - log);
        /* string.sub(log, at + 7, at + 10) == tag4: a short tail compares unequal. */
        if (i % 11 == 0 && i + 11 <= len && memcmp(log + i + 7, tag4, 4) == 0) { at = i; break; }
        from = i + 1;
    }
    BUF(full);
    if (at < len) {
        buf_put(&full, log, len);
        full.p[at + 6] = (char)success;
    } else {
        buf_put(&full, log, len);
        buf_put(&full, t6, 6);
        unsigned char b = (unsigned char)success;
        buf_put(&full, &b, 1);
        buf_put(&full, tag4, 4);
    }
    const unsigned char *f = (const unsigned char *)full.p;
    size_t n = full.len, first = 0;
    while (first + 1 < n) { /* (Lua: while first < #log, 1-based) */
        if (first + 6 > n) { buf_free(&full); return 0; }
        if (now - (double)rd_u(f + first, 6) >= win) first += 11; else break;
    }
    const unsigned char *rest = first < n ? f + first : f + n;
    size_t rest_len = first < n ? n - first : 0;
    if ((double)rest_len > cap * 11) {
        size_t kept = 0, total = 0;
        for (size_t i = 0; i < rest_len; i += 11) {
            if (i + 6 > rest_len) { buf_free(&full); return 0; }
            total += now - (double)rd_u(rest + i, 6) < win;
        }
        double from = (double)total - cap + 1;
        for (size_t i = 0; i < rest_len; i += 11) {
            if (!(now - (double)rd_u(rest + i, 6) < win)) continue;
            kept++;
            if ((double)kept >= from) buf_put(out, rest + i, i + 11 <= rest_len ? 11 : rest_len - i);
        }
    } else {
        buf_put(out, rest, rest_len);
    }
    buf_free(&full);
    return 1;
}

/* RISK.OUTCOME 3 record outcomes events now delivered opened claimed window_ms cap retention_ms:
 * outcome.lua, for records stored as one string; a record of the previous release (a hash) is
 * answered an error "lua only", for the caller to send outcome.lua instead. */
static int Outcome(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    int asked;
    long long numkeys = command_keys(ctx, argv, argc, &asked);
    if (asked) return REDISMODULE_OK;
    if (argc != 12 || numkeys != 3)
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: expects outcome.lua's keys and arguments");
    RedisModule_AutoMemory(ctx);
    RedisModuleString *k_rec = argv[2], *k_log = argv[3], *k_events = argv[4], **a = argv + 5;
    size_t len;
    int wrong;
    const char *s = read_string(ctx, k_rec, &len, &wrong);
    /* (The service sends outcome.lua again on this error, which names no failure of the module.) */
    if (wrong) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: lua only: a record of the previous release");
    if (!s) return reply_status(ctx, "not_found", NULL, 0);
    Record rec = {0};
    if (!read_record((const unsigned char *)s, len, &rec)) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: record");
    if (!(rec.dec == 0 || rec.cs == 1)) return reply_status(ctx, "not_a_share", s, len);
    size_t cl[3];
    const char *counts[3];
    double n[3];
    for (int i = 0; i < 3; i++) {
        counts[i] = RedisModule_StringPtrLen(a[1 + i], &cl[i]);
        if (!lua_tonumber(counts[i], cl[i], &n[i])) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: counts");
    }
    if (rec.r > 0 && n[0] > rec.r) return reply_status(ctx, "too_many", s, len);
    double old[3];
    int has_old = rec.o != NULL;
    if (has_old) {
        if (!three_counts(rec.o, rec.o_len, old)) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: outcome");
        if (old[0] == n[0] && old[1] == n[1] && old[2] == n[2]) return reply_status(ctx, "replay", s, len);
        if (n[0] < old[0] || n[1] < old[1] || n[2] < old[2]) return reply_status(ctx, "decreased", s, len);
    }
    /* The counts and the time are written as the strings they came as. */
    size_t now_len;
    const char *now_arg = RedisModule_StringPtrLen(a[0], &now_len);
    char now_s[24];
    double now;
    if (now_len == 0) {
        long long ms = RedisModule_Milliseconds();
        now = (double)ms;
        now_len = (size_t)snprintf(now_s, sizeof now_s, "%lld", ms);
        now_arg = now_s;
    } else if (!lua_tonumber(now_arg, now_len, &now)) {
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: clock");
    }
    BUF(o);
    for (int i = 0; i < 3; i++) {
        buf_put(&o, counts[i], cl[i]);
        buf_put(&o, ",", 1);
    }
    buf_put(&o, now_arg, now_len);
    /* save_results(): the record up to its results, then the results packed (KEEPTTL). */
    BUF(saved);
    buf_put(&saved, s, rec.results);
    buf_uint(&saved, (uint64_t)(rec.cs == 1 || rec.cs == 2 ? rec.cs : 0), 1);
    buf_uint(&saved, (uint64_t)(rec.cs > 0 ? rec.ct : 0), 6);
    buf_uint(&saved, o.len & 0xffff, 2);
    buf_put(&saved, o.p, o.len);
    RedisModuleKey *rk = RedisModule_OpenKey(ctx, k_rec, REDISMODULE_READ | REDISMODULE_WRITE);
    RedisModule_StringTruncate(rk, saved.len); /* in place: the key keeps its time to live */
    size_t dma_len;
    char *dma = RedisModule_StringDMA(rk, &dma_len, REDISMODULE_WRITE);
    memcpy(dma, saved.p, saved.len);
    RedisModule_CloseKey(rk);
    RedisModuleString *record = RedisModule_CreateString(ctx, saved.p, saved.len);
    RedisModule_Replicate(ctx, "SET", "ssc", k_rec, record, "KEEPTTL");

    /* The success-rate log: one entry per share with an outcome. */
    int success = n[2] >= 1;
    int was = has_old ? old[2] >= 1 : -1;
    double win, cap;
    size_t wl, capl;
    const char *ws = RedisModule_StringPtrLen(a[4], &wl), *cs = RedisModule_StringPtrLen(a[5], &capl);
    if (!lua_tonumber(ws, wl, &win) || !lua_tonumber(cs, capl, &cap))
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: window");
    if (success != was && now - rec.t < win) {
        size_t log_len;
        const char *log = read_string(ctx, k_log, &log_len, &wrong);
        if (wrong) return reply_wrongtype(ctx);
        BUF(kept);
        if (!outcome_log(&kept, (const unsigned char *)(log ? log : ""), log_len, rec.t, id_tag(rec.id, rec.id_len),
                         success, now, win, cap)) {
            buf_free(&kept);
            return RedisModule_ReplyWithError(ctx, "ERR riskdecide: outcome log");
        }
        char px[32];
        int pxl = lua_numstr(px, sizeof px, win);
        RedisModuleString *value = RedisModule_CreateString(ctx, kept.len ? kept.p : "", kept.len);
        RedisModuleKey *lk = RedisModule_OpenKey(ctx, k_log, REDISMODULE_READ | REDISMODULE_WRITE);
        RedisModule_StringSet(lk, value);
        RedisModule_SetExpire(lk, (mstime_t)win);
        RedisModule_CloseKey(lk);
        RedisModule_Replicate(ctx, "SET", "sscb", k_log, value, "PX", px, (size_t)pxl);
        buf_free(&kept);
    }
    size_t retention_len;
    const char *retention_s = RedisModule_StringPtrLen(a[6], &retention_len);
    double retention;
    if (!lua_tonumber(retention_s, retention_len, &retention)) retention = 0;
    RedisModuleString *fields[12] = {
        W[W_K], W[W_OUTCOME], W[W_ID], RedisModule_CreateString(ctx, rec.id, rec.id_len), W[W_T],
        RedisModule_CreateString(ctx, now_arg, now_len), W[W_DL], a[1], W[W_OP], a[2], W[W_CL], a[3]};
    append_event(ctx, k_events, (ms_t)now, (ms_t)retention, rec.id, rec.id_len, fields);
    RedisModule_ReplyWithArray(ctx, 2);
    RedisModule_ReplyWithStringBuffer(ctx, "ok", 2);
    RedisModule_ReplyWithStringBuffer(ctx, saved.p, saved.len);
    buf_free(&o);
    buf_free(&saved);
    return REDISMODULE_OK;
}

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    REDISMODULE_NOT_USED(argv);
    REDISMODULE_NOT_USED(argc);
    if (RedisModule_Init(ctx, "riskdecide", RISKDECIDE_VERSION, REDISMODULE_APIVER_1) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    for (int i = 0; i < W_COUNT; i++) W[i] = RedisModule_CreateString(NULL, WORD_TEXT[i], strlen(WORD_TEXT[i]));
    if (RedisModule_CreateCommand(ctx, "risk.decide", Decide, "write deny-oom getkeys-api", 0, 0, 0) ==
            REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "risk.reserve", Reserve, "write deny-oom getkeys-api", 0, 0, 0) ==
            REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "risk.settle", Settle, "write deny-oom getkeys-api", 0, 0, 0) == REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "risk.outcome", Outcome, "write deny-oom getkeys-api", 0, 0, 0) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
