/* RISK.OUTCOME: outcome.lua. */

#include "riskdecide.h"

/* ---- A share's outcome (outcome.lua) ---- */

/* Lua 5.1's tonumber(s, 16) of at most the first 8 bytes of `s` (string.sub(id, 1, 8)), or 0 for nil. */
static uint32_t id_tag(const char *s, size_t len) {
    const unsigned char *u = (const unsigned char *)s;
    size_t hex = 0;
    while (hex < 8 && hex < len && isxdigit(u[hex])) hex++;
    if (hex == 8) { /* the previous release's ids: 8 hex digits, their value */
        uint32_t v = 0;
        for (int i = 0; i < 8; i++) v = v << 4 | (uint32_t)(isdigit(u[i]) ? u[i] - '0' : (tolower(u[i]) - 'a' + 10));
        return v;
    }
    size_t i = 1; /* ... or a slot tag, "s<n>-": 0 */
    while (i < len && isdigit(u[i])) i++;
    if (len > 0 && u[0] == 's' && i > 1 && i < len && u[i] == '-') return 0;
    if (len < 8) return 0;
    /* This release's: random base64url characters, the first 8 bytes folded into 32 bits. */
    return ((uint32_t)u[0] << 24 | (uint32_t)u[1] << 16 | (uint32_t)u[2] << 8 | u[3]) ^
           ((uint32_t)u[4] << 24 | (uint32_t)u[5] << 16 | (uint32_t)u[6] << 8 | u[7]);
}

/* Lua's '^(%d+),(%d+),(%d+)': three runs of digits, comma separated, at the start. */
static int three_counts(const char *s, size_t len, double out[3]) {
    size_t pos = 0;
    for (int i = 0; i < 3; i++) {
        size_t start = pos;
        while (pos < len && isdigit((unsigned char)s[pos])) pos++;
        if (pos == start || !lua_number(s + start, pos - start, &out[i])) return 0;
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
    /* decided, results, tail: 0-based offsets of the parts (tail: what follows the results, a
     * challenged share's position, kept as it is; the length when none) */
    size_t id_len, decided, results, tail;
    double r, t;
    int dec, consumed, cs;
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
    rec->consumed = s[pos + 8];
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
    rec->tail = pos;
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
static int outcome(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, long long numkeys, Effects *e) {
    if (argc != 12 || numkeys != 3)
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: expects outcome.lua's keys and arguments");
    RedisModuleString *k_rec = argv[2], *k_log = argv[3], *k_events = argv[4], **a = argv + 5;
    size_t len;
    int wrong;
    const char *s = read_string(ctx, k_rec, &len, &wrong);
    /* (The service sends outcome.lua again on this error, which names no failure of the module.) */
    if (wrong) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: lua only: a record of the previous release");
    if (!s) return reply_status(ctx, "not_found", NULL, 0);
    Record rec = {0};
    if (!read_record((const unsigned char *)s, len, &rec)) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: record");
    /* (a pass reported while a ban blocked the device counted nothing: no share to report on) */
    if (!(rec.dec == 0 || (rec.cs == 1 && rec.consumed == 1))) return reply_status(ctx, "not_a_share", s, len);
    size_t cl[3];
    const char *counts[3];
    double n[3];
    for (int i = 0; i < 3; i++) {
        counts[i] = RedisModule_StringPtrLen(a[1 + i], &cl[i]);
        if (!lua_number(counts[i], cl[i], &n[i])) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: counts");
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
    } else if (!lua_number(now_arg, now_len, &now)) {
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: clock");
    }
    BUF(o);
    for (int i = 0; i < 3; i++) {
        buf_put(&o, counts[i], cl[i]);
        buf_put(&o, ",", 1);
    }
    buf_put(&o, now_arg, now_len);
    /* save_results(): the record up to its results, then the results packed, then what followed
     * them (KEEPTTL). */
    BUF(saved);
    buf_put(&saved, s, rec.results);
    buf_uint(&saved, (uint64_t)(rec.cs == 1 || rec.cs == 2 ? rec.cs : 0), 1);
    buf_uint(&saved, (uint64_t)(rec.cs > 0 ? rec.ct : 0), 6);
    buf_uint(&saved, o.len & 0xffff, 2);
    buf_put(&saved, o.p, o.len);
    buf_put(&saved, s + rec.tail, len - rec.tail);
    RedisModuleKey *rk = RedisModule_OpenKey(ctx, k_rec, REDISMODULE_READ | REDISMODULE_WRITE);
    RedisModule_StringTruncate(rk, saved.len); /* in place: the key keeps its time to live */
    size_t dma_len;
    char *dma = RedisModule_StringDMA(rk, &dma_len, REDISMODULE_WRITE);
    memcpy(dma, saved.p, saved.len);
    RedisModule_CloseKey(rk);
    RedisModuleString *record = RedisModule_CreateString(ctx, saved.p, saved.len);
    RedisModuleString *keepttl[2] = {record, W[W_KEEPTTL]};
    effect(ctx, e, W_SET, k_rec, 2, keepttl);

    /* The success-rate log: one entry per share with an outcome. */
    int success = n[2] >= 1;
    int was = has_old ? old[2] >= 1 : -1;
    double win, cap;
    size_t wl, capl;
    const char *ws = RedisModule_StringPtrLen(a[4], &wl), *cs = RedisModule_StringPtrLen(a[5], &capl);
    if (!lua_number(ws, wl, &win) || !lua_number(cs, capl, &cap))
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
        RedisModuleString *value = RedisModule_CreateString(ctx, kept.len ? kept.p : "", kept.len);
        RedisModuleKey *lk = RedisModule_OpenKey(ctx, k_log, REDISMODULE_READ | REDISMODULE_WRITE);
        RedisModule_StringSet(lk, value);
        RedisModuleString *set[3] = {value, W[W_PXAT], expire_in(ctx, e, lk, (mstime_t)win)};
        RedisModule_CloseKey(lk);
        effect(ctx, e, W_SET, k_log, 3, set);
        buf_free(&kept);
    }
    size_t retention_len;
    const char *retention_s = RedisModule_StringPtrLen(a[6], &retention_len);
    double retention;
    if (!lua_number(retention_s, retention_len, &retention)) retention = 0;
    RedisModuleString *fields[12] = {
        W[W_K], W[W_OUTCOME], W[W_ID], RedisModule_CreateString(ctx, rec.id, logged_len(rec.id_len)), W[W_T],
        RedisModule_CreateString(ctx, now_arg, now_len), W[W_DL], a[1], W[W_OP], a[2], W[W_CL], a[3]};
    append_event(ctx, e, k_events, (ms_t)now, (ms_t)retention, rec.id, rec.id_len, fields);
    RedisModule_ReplyWithArray(ctx, 2);
    RedisModule_ReplyWithStringBuffer(ctx, "ok", 2);
    RedisModule_ReplyWithStringBuffer(ctx, saved.p, saved.len);
    buf_free(&o);
    buf_free(&saved);
    return REDISMODULE_OK;
}

/* The writes of an outcome, replicated once when it returns (effects.c). */
int Outcome(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    return with_effects(ctx, argv, argc, outcome);
}
