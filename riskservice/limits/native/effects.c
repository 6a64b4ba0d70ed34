/* A command's writes, replicated once, as one script that makes them.
 *
 * Every write a command makes is noted here as the Redis command a script would have made
 * (SET ... PX, HSET, XADD with its id, ...), and when the command returns they are replicated
 * together as one `EVAL <APPLY_SCRIPT> n key... writes`: the i-th key is the i-th write's, and
 * `writes` packs each write's command name and its arguments after the key. Replicas and the AOF
 * replay exact values (the stream entry's id, the trim's first id), so they need no module and no
 * clock; what they see is what the scripts' effects replication sends, in one command. One replicated command instead of one per write is
 * the point: each RM_Replicate costs a command look-up, an argument vector and an entry in the
 * propagation list, then a MULTI/EXEC around them all, about a seventh of a decision's
 * instructions (docs/benchmarks.md, "Where a native decision's Redis work goes"). */

#include "riskdecide.h"

/* The script replicas run (KEYS as above; ARGV[1] the writes, packed: per write, its number of
 * words (uint16, big-endian), then each word (the command's name, then its arguments after the
 * key) as a uint32 length and its bytes). One packed argument, not one per word: a replica and
 * the backlog are fed every argument with its own header and copies, which cost the master more
 * than the decision's writes themselves when each word went alone. */
const char APPLY_SCRIPT[] =
    "local blob, at = ARGV[1], 1\n"
    "for i = 1, #KEYS do\n"
    "  local n, words = 0, {}\n"
    "  n, at = struct.unpack('>H', blob, at)\n"
    "  for w = 1, n do words[w], at = struct.unpack('>I4c0', blob, at) end\n"
    "  redis.call(words[1], KEYS[i], unpack(words, 2, n))\n"
    "end\n";

RedisModuleString *SMALL[SMALL_COUNT];

static void put_be(char *out, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; i--) {
        out[i] = (char)(v & 0xff);
        v >>= 8;
    }
}

/* One write replicated as itself: `name` (a W_ word) on `key` with its n arguments. */
static void replicate_alone(RedisModuleCtx *ctx, RedisModuleString *name, RedisModuleString *key,
                            RedisModuleString **args, int n) {
    size_t len;
    RedisModule_Replicate(ctx, RedisModule_StringPtrLen(name, &len), "sv", key, args, (size_t)n);
}

void effects_flush(RedisModuleCtx *ctx, Effects *e) {
    if (e->writes == 0) return;
    if (e->writes == 1) { /* one write goes as itself */
        replicate_alone(ctx, e->words[0], e->keys[0], e->words + 1, e->count[0] - 1);
        e->writes = 0;
        e->n = 0;
        return;
    }
    size_t size = 0, lens[EFFECT_WORDS];
    const char *ptrs[EFFECT_WORDS];
    for (int i = 0; i < e->n; i++) {
        ptrs[i] = RedisModule_StringPtrLen(e->words[i], &lens[i]);
        size += 4 + lens[i];
    }
    size += 2 * (size_t)e->writes;
    char *blob = RedisModule_PoolAlloc(ctx, size), *out = blob;
    for (int w = 0, i = 0; w < e->writes; w++) {
        put_be(out, (uint64_t)e->count[w], 2);
        out += 2;
        for (int end = i + e->count[w]; i < end; i++) {
            put_be(out, lens[i], 4);
            memcpy(out + 4, ptrs[i], lens[i]);
            out += 4 + lens[i];
        }
    }
    /* EVAL script numkeys key... writes */
    RedisModuleString *v[3 + EFFECT_WRITES];
    size_t n = 0;
    v[n++] = W[W_APPLY];
    v[n++] = SMALL[e->writes];
    memcpy(v + n, e->keys, (size_t)e->writes * sizeof *v);
    n += (size_t)e->writes;
    v[n++] = RedisModule_CreateString(ctx, blob, size);
    RedisModule_Replicate(ctx, "EVAL", "v", v, n);
    e->writes = 0;
    e->n = 0;
}

void effect(RedisModuleCtx *ctx, Effects *e, int command, RedisModuleString *key, int n, RedisModuleString **args) {
    /* (A write past the room left goes in a script of its own: the order of writes is kept.) */
    if (e->writes == EFFECT_WRITES || e->n + 1 + n > EFFECT_WORDS) effects_flush(ctx, e);
    if (1 + n > EFFECT_WORDS) { /* longer than any script holds (HDEL of many expired places): alone */
        replicate_alone(ctx, W[command], key, args, n);
        return;
    }
    e->keys[e->writes] = key;
    e->count[e->writes++] = 1 + n;
    e->words[e->n++] = W[command];
    for (int i = 0; i < n; i++) e->words[e->n++] = args[i];
}

int with_effects(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, CommandBody body) {
    int asked;
    long long numkeys = command_keys(ctx, argv, argc, &asked);
    if (asked) return REDISMODULE_OK; /* Redis Cluster asked where the keys are: given */
    RedisModule_AutoMemory(ctx);
    Effects e = {.writes = 0, .n = 0, .clock = 0};
    int done = body(ctx, argv, argc, numkeys, &e);
    effects_flush(ctx, &e);
    return done;
}
