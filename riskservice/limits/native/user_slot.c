/* RISK.RESERVE and RISK.SETTLE: reserve.lua and settle.lua, a decision's steps on the user's
 * slot of Redis Cluster. */

#include "riskdecide.h"

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
        if (!lua_number(d, dl, &deadline)) return 0;
        *late = server > deadline;
    }
    if (nl == 0) {
        *now = server;
        return 1;
    }
    return lua_number(n, nl, now);
}

/* "<digits>,<digits>" as reserve.lua reads a place (held at, expires). */
static int read_place(const char *s, size_t len, double *at, double *expires) {
    const char *comma = memchr(s, ',', len);
    if (!comma || comma == s || comma + 1 == s + len) return 0;
    for (const char *p = s; p < s + len; p++)
        if (p != comma && !isdigit((unsigned char)*p)) return 0;
    return lua_number(s, (size_t)(comma - s), at) && lua_number(comma + 1, (size_t)(s + len - comma - 1), expires);
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
static int reserve(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, long long numkeys, Effects *e) {
    if (argc != 11 || numkeys != 3)
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: expects reserve.lua's keys and arguments");
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
    if (!lua_number(hold_s, hold_len, &hold)) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: hold");
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
        effect(ctx, e, W_HDEL, k_pending, (int)n_expired, expired);
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
                if (!lua_number(u, ul, &untl)) untl = 0;
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
        char place[64];
        int a = lua_numstr(place, 32, now);
        place[a++] = ',';
        a += lua_numstr(place + a, sizeof place - (size_t)a, now + hold);
        RedisModuleString *value = RedisModule_CreateString(ctx, place, (size_t)a);
        RedisModule_HashSet(pk, REDISMODULE_HASH_NONE, event, value, NULL);
        double keep = (double)hdr(pl, H_UKEEP, 4), ttl = hold > keep ? hold : keep;
        RedisModuleString *pexpireat = expire_in(ctx, e, pk, (mstime_t)ttl);
        RedisModuleString *hset[2] = {event, value};
        effect(ctx, e, W_HSET, k_pending, 2, hset);
        effect(ctx, e, W_PEXPIREAT, k_pending, 1, &pexpireat);
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
static int settle(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, long long numkeys, Effects *e) {
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
        RedisModuleString *once_at = NULL;
        int there = RedisModule_KeyType(ok) != REDISMODULE_KEYTYPE_EMPTY;
        if (!there) {
            RedisModule_StringSet(ok, W[W_ONE]);
            once_at = expire_in(ctx, e, ok, ONCE_MS);
        }
        RedisModule_CloseKey(ok);
        if (there) {
            RedisModule_CloseKey(pk);
            return RedisModule_ReplyWithStringBuffer(ctx, "none", 4);
        }
        RedisModuleString *set[3] = {W[W_ONE], W[W_PXAT], once_at}, *hset[2] = {a[0], a[3]};
        effect(ctx, e, W_SET, k_once, 3, set);
        RedisModule_HashSet(pk, REDISMODULE_HASH_NONE, a[0], a[3], NULL);
        effect(ctx, e, W_HSET, k_pending, 2, hset);
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
    effect(ctx, e, W_HDEL, k_pending, 1, &a[0]);
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
    if (digits == 0 || digits == hl || h[digits] != ',' || !lua_number(h, digits, &t))
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: a place held");
    size_t log_len;
    int wrong;
    const char *log = read_string(ctx, k_log, &log_len, &wrong);
    if (wrong) return reply_wrongtype(ctx);
    BUF(kept);
    ms_t keep = (ms_t)hdr(pl, H_UKEEP, 4);
    record_log(&kept, (const unsigned char *)(log ? log : ""), log_len, (ms_t)t, (ms_t)hdr(pl, H_UCAP, 2), keep);
    set_px_buf(ctx, e, k_log, kept.p, kept.len, keep);
    buf_free(&kept);
    return RedisModule_ReplyWithStringBuffer(ctx, "taken", 5);
}

/* The user's slot's steps, their writes replicated once when they return (effects.c). */
int Reserve(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    return with_effects(ctx, argv, argc, reserve);
}

int Settle(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    return with_effects(ctx, argv, argc, settle);
}
