/* A command's writes, replicated once, as one script that makes them.
 *
 * Every write a command makes is noted here as the Redis command a script would have made
 * (SET ... PX, HSET, XADD with its id, ...), and when the command returns they are replicated
 * together as one `EVAL <APPLY_SCRIPT> n key... name count arg...`: the i-th key is the i-th
 * write's, and ARGV holds, per write, the command's name, the number of its arguments after the
 * key, and those arguments. Replicas and the AOF replay exact values (the stream entry's id, the
 * trim's first id), so they need no module and no clock; what they see is what the scripts'
 * effects replication sends, in one command. One replicated command instead of one per write is
 * the point: each RM_Replicate costs a command look-up, an argument vector and an entry in the
 * propagation list, then a MULTI/EXEC around them all, about a seventh of a decision's
 * instructions (docs/benchmarks.md, "Where a native decision's Redis work goes"). */

#include "riskdecide.h"

/* The script replicas run (KEYS and ARGV as above). Lua's unpack() takes the arguments of one
 * write, at most EFFECT_ARGS. */
const char APPLY_SCRIPT[] =
    "local a = 1\n"
    "for i = 1, #KEYS do\n"
    "  local n = tonumber(ARGV[a + 1])\n"
    "  redis.call(ARGV[a], KEYS[i], unpack(ARGV, a + 2, a + 1 + n))\n"
    "  a = a + 2 + n\n"
    "end\n";

RedisModuleString *SMALL[SMALL_COUNT];

static RedisModuleString *count_of(RedisModuleCtx *ctx, long long n) {
    return n >= 0 && n < SMALL_COUNT ? SMALL[n] : RedisModule_CreateStringFromLongLong(ctx, n);
}

void effects_flush(RedisModuleCtx *ctx, Effects *e) {
    if (e->writes == 0) return;
    /* EVAL script numkeys key... then the writes' words: one vector, its references counted. */
    size_t n = 0;
    RedisModuleString **v = RedisModule_PoolAlloc(ctx, (size_t)(2 + e->writes + e->n) * sizeof *v);
    v[n++] = W[W_APPLY];
    v[n++] = count_of(ctx, e->writes);
    memcpy(v + n, e->keys, (size_t)e->writes * sizeof *v);
    n += (size_t)e->writes;
    memcpy(v + n, e->words, (size_t)e->n * sizeof *v);
    n += (size_t)e->n;
    RedisModule_Replicate(ctx, "EVAL", "v", v, n);
    e->writes = 0;
    e->n = 0;
}

void effect(RedisModuleCtx *ctx, Effects *e, int command, RedisModuleString *key, int n, RedisModuleString **args) {
    /* (A write past the room left goes in a script of its own: the order of writes is kept.) */
    if (e->writes == EFFECT_WRITES || e->n + 2 + n > EFFECT_WORDS) effects_flush(ctx, e);
    e->keys[e->writes++] = key;
    e->words[e->n++] = W[command];
    e->words[e->n++] = count_of(ctx, n);
    for (int i = 0; i < n; i++) e->words[e->n++] = args[i];
}
