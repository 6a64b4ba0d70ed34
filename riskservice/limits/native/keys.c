/* Keys read and written through the module API, as the scripts' redis.call()s would, and the
 * commands' common form. */

#include "riskdecide.h"

/* A string key's value, copied (pool memory, freed when the command returns; NULL: none); *wrong
 * set when the key holds another type. The key is closed at once: a handle left open while
 * another one writes the key would be closed later on a value already freed. */
const char *read_string(RedisModuleCtx *ctx, RedisModuleString *name, size_t *len, int *wrong) {
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

int key_exists(RedisModuleCtx *ctx, RedisModuleString *name) {
    RedisModuleKey *k = RedisModule_OpenKey(ctx, name, REDISMODULE_READ);
    if (!k) return 0;
    int there = RedisModule_KeyType(k) != REDISMODULE_KEYTYPE_EMPTY;
    RedisModule_CloseKey(k);
    return there;
}

/* An open key set to expire `ms` from now; the time it expires at, as text. Writes are replicated
 * with that time (PXAT, PEXPIREAT), not with `ms`: a replica or the AOF replaying them later (the
 * AOF after a restart, a replica catching up) keeps the master's expiry, as Redis does when it
 * writes SET ... PX to the AOF itself. */
RedisModuleString *expire_in(RedisModuleCtx *ctx, Effects *e, RedisModuleKey *k, long long ms) {
    if (e->clock == 0) e->clock = RedisModule_Milliseconds(); /* (one reading per command) */
    long long at = e->clock + ms;
    RedisModule_SetAbsExpire(k, at);
    return RedisModule_CreateStringFromLongLong(ctx, at);
}

/* A string key the command reads and may rewrite, opened once for both: its value is read in place
 * (no copy) and a rewrite goes through the same handle. 0 when the key holds another type (then it
 * is closed); 1 otherwise, h->value NULL when there is no key. Nothing else may open the key while
 * it is held: a second handle that wrote it would leave this one's value freed. */
int hold_string(RedisModuleCtx *ctx, RedisModuleString *name, Held *h) {
    *h = (Held){.k = RedisModule_OpenKey(ctx, name, REDISMODULE_READ | REDISMODULE_WRITE), .name = name};
    int type = RedisModule_KeyType(h->k);
    if (type == REDISMODULE_KEYTYPE_STRING) {
        h->value = RedisModule_StringDMA(h->k, &h->len, REDISMODULE_READ);
    } else if (type != REDISMODULE_KEYTYPE_EMPTY) {
        release(h);
        return 0;
    }
    return 1;
}

void release(Held *h) {
    if (h->k) RedisModule_CloseKey(h->k);
    h->k = NULL;
    h->value = NULL;
    h->len = 0;
}

/* SET name value PX ms on a held key (replicated as SET ... PXAT <when>), then released. A string
 * there is rewritten in place, which spares SET's deletion of the old value and of its expiry (and
 * its reallocation when the length is kept); any other value is replaced. h->value is not valid
 * after this. */
void write_held(RedisModuleCtx *ctx, Effects *e, Held *h, const char *value, size_t len, long long ms) {
    RedisModuleString *str = RedisModule_CreateString(ctx, value, len);
    size_t n;
    char *dma;
    if (len > 0 && RedisModule_KeyType(h->k) == REDISMODULE_KEYTYPE_STRING &&
        RedisModule_StringTruncate(h->k, len) == REDISMODULE_OK &&
        (dma = RedisModule_StringDMA(h->k, &n, REDISMODULE_WRITE)) != NULL && n == len) {
        memcpy(dma, value, len);
    } else {
        RedisModule_StringSet(h->k, str);
    }
    RedisModuleString *args[3] = {str, W[W_PXAT], expire_in(ctx, e, h->k, ms)};
    RedisModuleString *name = h->name;
    release(h);
    effect(ctx, e, W_SET, name, 3, args);
}

/* SET key value PX ms, replicated as SET key value PXAT <when>: write_held() on a key opened for
 * it (a log on the user's slot, read and closed before; a record over a hash of the previous
 * release). */
void set_px_buf(RedisModuleCtx *ctx, Effects *e, RedisModuleString *name, const char *value, size_t len, long long ms) {
    Held h = {.k = RedisModule_OpenKey(ctx, name, REDISMODULE_READ | REDISMODULE_WRITE), .name = name};
    write_held(ctx, e, &h, value, len, ms);
}

/* "<prefix><id>" as a string (a hash field). */
RedisModuleString *field_of(RedisModuleCtx *ctx, const char *prefix, size_t plen, const char *id, size_t len) {
    char stack[128];
    char *out = plen + len <= sizeof stack ? stack : RedisModule_PoolAlloc(ctx, plen + len);
    memcpy(out, prefix, plen);
    memcpy(out + plen, id, len);
    return RedisModule_CreateString(ctx, out, plen + len);
}


/* ---- The share event (common.lua append_event()) ---- */

void append_event(RedisModuleCtx *ctx, Effects *e, RedisModuleString *stream, ms_t now, ms_t retention,
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
    if (id_len > 0 && (unsigned char)decision_id[0] % 16 == 0 && now > retention) {
        /* About one append in 20 (common.lua append_event(): by the first character of a decision id,
         * which is random) trims what is older than retention (approximately: whole nodes), and is
         * replicated with the resulting first id, as XADD ... MINID ~ is. A `now` past every id in the
         * stream (a caller's clock ahead of the server's) can trim every node, the new entry's too;
         * Redis then replicates a MINID past every id, and so must we: the new entry's own id would
         * leave it on the replicas (a divergence found by tests/limits/test_native_outcome.py). */
        RedisModuleStreamID min = {(uint64_t)(now - retention), 0};
        RedisModule_StreamTrimByID(k, REDISMODULE_STREAM_TRIM_APPROX, &min);
        RedisModuleStreamID first = {UINT64_MAX, UINT64_MAX};
        if (RedisModule_StreamIteratorStart(k, 0, NULL, NULL) == REDISMODULE_OK) {
            long numfields;
            if (RedisModule_StreamIteratorNextID(k, &first, &numfields) != REDISMODULE_OK)
                first = (RedisModuleStreamID){UINT64_MAX, UINT64_MAX};
            RedisModule_StreamIteratorStop(k);
        }
        size_t minlen = fmt_id(minbuf, first.ms, first.seq);
        RedisModule_CloseKey(k);
        RedisModuleString *args[16] = {W[W_MINID], W[W_EQ], RedisModule_CreateString(ctx, minbuf, minlen), ids};
        memcpy(args + 4, fields, 12 * sizeof *args);
        effect(ctx, e, W_XADD, stream, 16, args);
        return;
    }
    RedisModule_CloseKey(k);
    RedisModuleString *args[13] = {ids};
    memcpy(args + 1, fields, 12 * sizeof *args);
    effect(ctx, e, W_XADD, stream, 13, args);
}

/* ---- Hashes read and written by a decision ---- */

/* HMGET: each field's value or NULL; -1 when the key holds another type (Lua raises WRONGTYPE). */
int hmget(RedisModuleCtx *ctx, RedisModuleString *name, int n, RedisModuleString **fields,
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


int reply_wrongtype(RedisModuleCtx *ctx) {
    return RedisModule_ReplyWithError(ctx, "WRONGTYPE Operation against a key holding the wrong kind of value");
}

/* ---- The commands' form ---- */

/* Every command here is `NAME numkeys key... arg...`, as EVALSHA of its script is: the number of keys
 * (-1 when argv[1] is no count of keys there). When Redis only asks where the keys are (Redis Cluster
 * checks their slots), they are given and *asked is set. */
long long command_keys(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int *asked) {
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
