/* RISK.DECIDE: decide.lua (see riskdecide.c). */

#include "riskdecide.h"

/* ---- Keys ---- */

enum {
    K_EVENT, K_DEVICE_STATE, K_DEVICE_BAN, K_USER_LOG, K_USER_BAN, K_IP_BAN, K_DEVICE_OUTCOMES, K_DEVICE_GEO,
    K_EVENTS, K_GRAPH, K_ALLOWLIST, K_FLAGS, K_QUEUE, K_REVIEW, K_SIGNALS, K_COUNT
};
enum { A_PLAN, A_CALL, A_RECORD, A_REQUEST, A_USER_SIDE, A_USER_GRAPH };

/* ---- The replay check (common.lua earlier()) ---- */

/* 1 when the reply was sent (an earlier answer, or an error), 0 to decide. `rec`: the record's key,
 * held (NULL when it holds another type, `key`). */
static int reply_earlier(RedisModuleCtx *ctx, const Held *rec, RedisModuleString *key, const char *fp, size_t fp_len) {
    size_t len = rec ? rec->len : 0;
    const char *stored = rec ? rec->value : NULL;
    if (stored) {
        size_t n = len >= 2 ? (size_t)rd_u((const unsigned char *)stored, 2) : 0;
        int same = len >= 2 + n && n == fp_len && memcmp(stored + 2, fp, n) == 0;
        RedisModule_ReplyWithArray(ctx, 2);
        RedisModule_ReplyWithStringBuffer(ctx, same ? "replay" : "conflict", same ? 6 : 8);
        RedisModule_ReplyWithStringBuffer(ctx, stored, len);
        return 1;
    }
    if (rec) return 0;
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

/* ---- Travel ---- */

static double haversine_km(double lat1, double lon1, double lat2, double lon2) {
    double r = M_PI / 180;
    double dlat = (lat2 - lat1) * r, dlon = (lon2 - lon1) * r;
    double a = pow(sin(dlat / 2), 2) + cos(lat1 * r) * cos(lat2 * r) * pow(sin(dlon / 2), 2);
    return 2 * 6371.0088 * asin(fmin(1, sqrt(a)));
}

/* Fields and values a decision set in the flags hash, replicated as one HSET of their final values. */
typedef struct {
    Effects *e;
    RedisModuleString *v[2 * (MAX_FINDINGS + 40)];
    int n;
} HashWrites;

static void wrote(RedisModuleCtx *ctx, RedisModuleString *key, HashWrites *w, RedisModuleString *field,
                  RedisModuleString *value) {
    if (w->n + 2 > (int)(sizeof w->v / sizeof w->v[0])) { /* (more fields than any policy has rules) */
        effect(ctx, w->e, W_HSET, key, w->n, w->v);
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
    if (w->n) effect(ctx, w->e, W_HSET, key, w->n, w->v);
    return RedisModule_ReplyWithError(ctx, "ERR hash value is not an integer");
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

/* ---- RISK.DECIDE ---- */

typedef struct {
    ms_t now, deadline, ttl_ms, retention_ms;
    int static_block, static_challenge;
    const char *device_id, *arms, *static_codes, *position;
    size_t device_id_len, arms_len, static_codes_len, position_len;
} Call;

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

static int decide(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, long long numkeys, Effects *e) {
    if (numkeys < 0) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: numkeys");
    if (numkeys < K_SIGNALS || numkeys > K_COUNT)
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: expects decide.lua's keys");
    RedisModuleString *key[K_COUNT];
    for (int i = 0; i < K_COUNT; i++) key[i] = i < numkeys ? argv[2 + i] : NULL;
    RedisModuleString **arg = argv + 2 + numkeys;
    int nargs = argc - 2 - (int)numkeys;
    if (nargs < 4) return RedisModule_ReplyWithError(ctx, "ERR riskdecide: expects decide.lua's arguments");
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
    /* The record's key, held from the replay check to its writing. */
    Held rec_key;
    int rec_held = hold_string(ctx, key[K_EVENT], &rec_key);
    if (reply_earlier(ctx, rec_held ? &rec_key : NULL, key[K_EVENT], fp, fp_len)) return REDISMODULE_OK;

    Judge j = {.plan = {(const unsigned char *)plan_raw}, .arms = c.arms, .arms_len = c.arms_len};
    Plan pl = j.plan;
    if (split && !read_findings((const unsigned char *)user_side + 1, user_side_len - 1, &j.fired))
        return RedisModule_ReplyWithError(ctx, "ERR riskdecide: user side");

    /* The device state: its share log, then the users seen (common.lua read_state()). It and the
     * user's log are held open, read in place, until an admitted share rewrites them. */
    size_t state_len, ulog_len;
    Held dev_state = {0}, user_log = {0};
    if (!hold_string(ctx, key[K_DEVICE_STATE], &dev_state)) return reply_wrongtype(ctx);
    const char *state = dev_state.value;
    state_len = dev_state.len;
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
        if (!hold_string(ctx, key[K_USER_LOG], &user_log)) return reply_wrongtype(ctx);
        ulog = user_log.value ? user_log.value : "";
        ulog_len = user_log.len;
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
        int wrong;
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

    /* Impossible travel from the position of the device's last counted share (written below once
     * this share is admitted, or by challenge.lua when a challenge of it is passed: a refused attempt
     * does not move the device, or a retry from the far place would pass). */
    if (has_position && rule_byte(pl, 6, F_ENABLED) == 1) {
        size_t geo_len = 0;
        int wrong = 0;
        const char *last = read_string(ctx, key[K_DEVICE_GEO], &geo_len, &wrong);
        if (wrong) return reply_wrongtype(ctx);
        if (last && geo_len >= 22) {
            const unsigned char *l = (const unsigned char *)last;
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
                !lua_number(da, dal, &dav) || !lua_number(ua, ual, &uav) || ukl > 64)
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
            if (!digits || !lua_number(v, (size_t)(at - v), &observed) ||
                !lua_number(at + 1, (size_t)(v + len - at - 1), &until))
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
                if (!lua_number(u, n, &untl)) untl = 0;
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
        write_held(ctx, e, &dev_state, st.p, st.len, dkeep > skeep ? dkeep : skeep);
        if (!split) { /* (on Redis Cluster settle.lua counts it on the user's slot) */
            record_log(&ul, (const unsigned char *)ulog, ulog_len, now, (ms_t)hdr(pl, H_UCAP, 2),
                       (ms_t)hdr(pl, H_UKEEP, 4));
            write_held(ctx, e, &user_log, ul.p, ul.len, (ms_t)hdr(pl, H_UKEEP, 4));
        }
        buf_free(&st);
        buf_free(&kept);
        buf_free(&ul);
        if (has_position) { /* the device's position moves with its counted shares only */
            BUF(position);
            buf_uint(&position, (uint64_t)now, 6);
            buf_f64(&position, lat);
            buf_f64(&position, lon);
            set_px_buf(ctx, e, key[K_DEVICE_GEO], position.p, position.len, DAY_MS);
            buf_free(&position);
        }
    } else {
        release(&dev_state);
        release(&user_log);
        /* Evidence for analysts: refusals by rule; past the policy's threshold an open device enters
         * the review queue, worst (most refusal points) first. */
        RedisModuleKey *flags = RedisModule_OpenKey(ctx, key[K_FLAGS], REDISMODULE_READ | REDISMODULE_WRITE);
        int ft = RedisModule_KeyType(flags);
        if (ft != REDISMODULE_KEYTYPE_EMPTY && ft != REDISMODULE_KEYTYPE_HASH) {
            RedisModule_CloseKey(flags);
            return reply_wrongtype(ctx);
        }
        long long points = 0;
        HashWrites hw = {.e = e, .n = 0};
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
        RedisModuleString *flags_at = expire_in(ctx, e, flags, FLAGS_TTL_MS);
        effect(ctx, e, W_HSET, key[K_FLAGS], hw.n, hw.v);
        effect(ctx, e, W_PEXPIREAT, key[K_FLAGS], 1, &flags_at);
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
                RedisModuleString *zadd[3] = {W[W_GT], RedisModule_CreateStringFromLongLong(ctx, points), member};
                effect(ctx, e, W_ZADD, key[K_QUEUE], 3, zadd);
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

    /* The record: the caller's part as sent, then the script's. A challenged share keeps its
     * position, after empty results (contract.RECORD_POSITION_FORMAT): a passed challenge counts
     * the share and moves the device there (challenge.lua). */
    int keeps_position = has_position && decision == 1;
    buf_uint(&decided, (uint64_t)now, 6);
    buf_uint(&decided, (uint64_t)decision, 1);
    buf_uint(&decided, (uint64_t)chal, 1);
    buf_uint(&decided, (uint64_t)consumed, 1);
    buf_uint(&decided, (uint64_t)(allowlisted | (keeps_position ? RECORD_POSITION : 0)), 1);
    buf_uint(&decided, windows.len, 2);
    buf_put(&decided, windows.p, windows.len);
    buf_uint(&decided, findings.len, 2);
    buf_put(&decided, findings.p, findings.len);
    buf_uint(&decided, graph_len, 2);
    buf_put(&decided, graph, graph_len);
    if (keeps_position) {
        buf_uint(&decided, 0, 1); /* no result, */
        buf_uint(&decided, 0, 6); /* no result time, */
        buf_uint(&decided, 0, 2); /* no outcome */
        buf_f64(&decided, lat);
        buf_f64(&decided, lon);
    }
    buf_put(&rec, record, record_len);
    buf_put(&rec, decided.p, decided.len);
    if (rec_held) write_held(ctx, e, &rec_key, rec.p, rec.len, c.ttl_ms);
    else set_px_buf(ctx, e, key[K_EVENT], rec.p, rec.len, c.ttl_ms); /* over an old hash */

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
        W[W_K], W[W_DECISION], W[W_ID], RedisModule_CreateString(ctx, decision_id, logged_len(decision_id_len)), W[W_T],
        RedisModule_CreateString(ctx, now_s, (size_t)now_s_len), W[W_DEC], W[W_DEC0 + decision], W[W_RC],
        RedisModule_CreateString(ctx, codes.len ? codes.p : "", codes.len), W[W_REQ], arg[A_REQUEST]};
    append_event(ctx, e, key[K_EVENTS], now, c.retention_ms, decision_id, decision_id_len, fields);

    /* Only what the caller does not already know (it sent the rest). */
    RedisModule_ReplyWithStringBuffer(ctx, decided.p, decided.len);
    buf_free(&windows);
    buf_free(&findings);
    buf_free(&decided);
    buf_free(&rec);
    buf_free(&codes);
    return REDISMODULE_OK;
}

/* Every write of a decision, replicated once when it returns, on every path (effects.c). */
int Decide(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    return with_effects(ctx, argv, argc, decide);
}
