/* What the parts of riskdecide share (riskdecide.c says what the module is).
 *
 * One header for the module's translation units: the contract with Python and the scripts, the
 * byte and buffer helpers every command uses (inline: they are the hot path), the findings' types,
 * and the functions one part calls in another. Redis' module header declares its API as function
 * pointers: riskdecide.c defines them (RISKDECIDE_MAIN), the other parts refer to them (extern). */
#ifndef RISKDECIDE_H
#define RISKDECIDE_H

#ifndef RISKDECIDE_MAIN
#define REDISMODULE_API extern
#endif
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

extern const char *const CODES[RULE_COUNT + 1];
/* The `:sig` hash's fields of rules 11-15 (contract.SIGNAL_FIELDS), the sharer's with "|<user>". */
extern const char SIGNAL_FIELD[5];
extern const int SIGNAL_PER_USER[5];

/* settle.lua's ONCE_MS: far longer than a write is retried (riskservice/limits/settles.py). */
static const long long ONCE_MS = 600000;
static const long long DAY_MS = 86400000, FLAGS_TTL_MS = 2592000000LL; /* a position: a day; refusal counts: 30 days */
/* The record's flag (contract.RECORD_POSITION): a challenged share's position follows the results. */
enum { RECORD_POSITION = 4 };

/* The words every decision writes, made once at load (a string made per call costs an allocation,
 * and a replicated command's words are kept until the call ends). */
enum {
    W_K, W_DECISION, W_ID, W_T, W_DEC, W_RC, W_REQ, W_DEC0, W_DEC1, W_DEC2, W_PXAT,
    W_GT, W_MINID, W_EQ, W_POINTS, W_FIRST, W_LAST, W_STATUS, W_UNTIL, W_REASON, W_CODE, W_SIG_R, W_ONE,
    W_OUTCOME, W_DL, W_OP, W_CL, W_KEEPTTL,
    /* the replicated script (effects.c) and the commands it makes */
    W_APPLY, W_SET, W_HSET, W_HDEL, W_PEXPIREAT, W_ZADD, W_XADD, W_COUNT
};
extern RedisModuleString *W[W_COUNT];

/* Times are Lua numbers (doubles) in the scripts; they are integers below 2^53, so int64 is exact. */
typedef long long ms_t;

/* ---- Bytes: big-endian reads, and a growing buffer ---- */

static inline uint64_t rd_u(const unsigned char *p, int n) {
    uint64_t v = 0;
    for (int i = 0; i < n; i++) v = (v << 8) | p[i];
    return v;
}

static inline double rd_f64(const unsigned char *p) {
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

static inline void buf_init(Buf *b) {
    b->p = b->inline_;
    b->len = 0;
    b->cap = sizeof b->inline_;
}

static inline void buf_put(Buf *b, const void *data, size_t n) {
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

static inline void buf_uint(Buf *b, uint64_t v, int n) {
    unsigned char out[8];
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (unsigned char)(v & 0xff);
        v >>= 8;
    }
    buf_put(b, out, (size_t)n);
}

/* A NaN is "none", packed as the script packs its NONE (0/0: the x86 default NaN, sign bit set). */
static const uint64_t NONE_BITS = 0xfff8000000000000u;

static inline void buf_f64(Buf *b, double d) {
    uint64_t bits = NONE_BITS;
    if (!isnan(d)) memcpy(&bits, &d, sizeof bits);
    buf_uint(b, bits, 8);
}

static inline void buf_free(Buf *b) {
    if (b->p != b->inline_) RedisModule_Free(b->p);
    buf_init(b);
}


/* Lua's struct 'I<n>' of a Lua number: the double converted to an integer (C's conversion). */
static inline uint64_t lua_uint(double d) { return (uint64_t)(long long)d; }

/* A number as Lua 5.1 writes it in a concatenation ("%.14g"). */
static inline int lua_numstr(char *out, size_t n, double d) { return snprintf(out, n, "%.14g", d); }

/* ---- A plan's rules, read in place ---- */

typedef struct {
    const unsigned char *p;
} Plan;

static inline int rule_byte(Plan pl, int id, int f) { return pl.p[(id - 1) * RULE_SIZE + f]; }
static inline double rule_f64(Plan pl, int id, int f) { return rd_f64(pl.p + (id - 1) * RULE_SIZE + f); }
static inline uint64_t rule_u32(Plan pl, int id, int f) { return rd_u(pl.p + (id - 1) * RULE_SIZE + f, 4); }
static inline uint64_t hdr(Plan pl, int at, int n) { return rd_u(pl.p + at, n); }

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

/* The i-th entry (1-based) of a packed log. */
static inline uint64_t log_at(const unsigned char *s, size_t i) { return rd_u(s + (i - 1) * 6, 6); }

/* A part of a packed string: uint16 length, bytes; 0 when it runs past the end. */
static inline int read_part(const unsigned char *p, size_t len, size_t *pos, const char **out, size_t *out_len) {
    if (*pos + 2 > len) return 0;
    size_t n = (size_t)rd_u(p + *pos, 2);
    if (*pos + 2 + n > len) return 0;
    *out = (const char *)p + *pos + 2;
    *out_len = n;
    *pos += 2 + n;
    return 1;
}

/* ---- Writes, replicated once (effects.c) ---- */

/* Room for one command's writes: a decision makes at most nine, the refusal counts' HSET being
 * the longest (2 * (MAX_FINDINGS + 40) words). */
enum { EFFECT_WRITES = 16, EFFECT_WORDS = 320, SMALL_COUNT = EFFECT_WRITES + 1 };
typedef struct {
    RedisModuleString *keys[EFFECT_WRITES];
    int count[EFFECT_WRITES]; /* each write's words: its command's name and arguments */
    RedisModuleString *words[EFFECT_WORDS];
    int writes, n;
    long long clock; /* the server's ms when the command first set an expiry (0: not yet) */
} Effects;
extern const char APPLY_SCRIPT[];
/* "0" to "16", made once at load: the number of keys of a replicated script. */
extern RedisModuleString *SMALL[SMALL_COUNT];
/* Note a write: `command` (a W_ word) on `key` with its n arguments (kept until the command returns). */
void effect(RedisModuleCtx *ctx, Effects *e, int command, RedisModuleString *key, int n, RedisModuleString **args);
/* Replicate the writes noted, as one script; a command calls it once, before it returns. */
void effects_flush(RedisModuleCtx *ctx, Effects *e);
/* A command's body, given its number of keys (-1: argv[1] is none) and where to note its writes.
 * with_effects() is every command's common form: it answers Redis Cluster's question of where the
 * keys are, turns on automatic memory, runs the body and replicates its writes once, whichever
 * way it returns. */
typedef int (*CommandBody)(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, long long numkeys, Effects *e);
int with_effects(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, CommandBody body);

/* ---- Between the parts ---- */

size_t fmt_u64(char *out, unsigned long long v);
size_t fmt_id(char *out, unsigned long long ms, unsigned long long seq);
int lua_number(const char *s, size_t len, double *out);
int cmp_double(const void *a, const void *b);
int cmp_ms(const void *a, const void *b);
Finding *fire_at(Judge *j, int id, double limit, double window, double retry, double detail);
void fire_num(Judge *j, int id, double observed, double limit, double window, double retry, double detail);
void fire_text(Judge *j, int id, const char *observed, size_t len, double limit, double window, double retry);
void pack_findings(Buf *b, const Fired *fired);
int read_findings(const unsigned char *p, size_t len, Fired *out);
const char *read_string(RedisModuleCtx *ctx, RedisModuleString *name, size_t *len, int *wrong);
/* A string key held open to read and then rewrite (keys.c hold_string()). */
typedef struct {
    RedisModuleKey *k;
    RedisModuleString *name;
    const char *value; /* in place: valid until the key is written or released */
    size_t len;
} Held;
int hold_string(RedisModuleCtx *ctx, RedisModuleString *name, Held *h);
void write_held(RedisModuleCtx *ctx, Effects *e, Held *h, const char *value, size_t len, long long ms);
void release(Held *h);
int key_exists(RedisModuleCtx *ctx, RedisModuleString *name);
RedisModuleString *expire_in(RedisModuleCtx *ctx, Effects *e, RedisModuleKey *k, long long ms);
void set_px_buf(RedisModuleCtx *ctx, Effects *e, RedisModuleString *name, const char *value, size_t len, long long ms);
RedisModuleString *field_of(RedisModuleCtx *ctx, const char *prefix, size_t plen, const char *id, size_t len);
/* The length of the id a decision's share events carry (common.lua logged_id(), keys.logged_id):
 * the first 32 characters of an id longer than 39, older ids whole. */
static inline size_t logged_len(size_t id_len) { return id_len > 39 ? 32 : id_len; }
void append_event(RedisModuleCtx *ctx, Effects *e, RedisModuleString *stream, ms_t now, ms_t retention, const char *decision_id, size_t id_len, RedisModuleString **fields);
int hmget(RedisModuleCtx *ctx, RedisModuleString *name, int n, RedisModuleString **fields, RedisModuleString **out);
int reply_wrongtype(RedisModuleCtx *ctx);
long long command_keys(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int *asked);
int judge_log(const unsigned char *s, size_t len, ms_t now, double limit, ms_t win, ms_t *count, ms_t *retry, ms_t *reset);
void record_log(Buf *out, const unsigned char *s, size_t len, ms_t now, ms_t cap, ms_t keep);
void users_after(Buf *out, Plan pl, ms_t now, const char *user, size_t ulen, const unsigned char *block, size_t n);
int Decide(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
int Reserve(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
int Settle(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
int Outcome(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);

#endif
