/*
 * riskdecide: decide.lua as a Redis module command (and reserve.lua, settle.lua and outcome.lua).
 *
 * This file registers the commands; decide.c, user_slot.c and outcome.c hold them; riskdecide.h,
 * findings.c, keys.c, windows.c and numbers.c what they share.
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
 * Writes are replicated as the commands decide.lua makes, with their final
 * values (as a script's effects replication sends them), all of one call in
 * one script (effects.c): replicas and the AOF need no module.
 */
#define RISKDECIDE_VERSION 9

/* The module's API pointers are defined here (riskdecide.h). */
#define RISKDECIDE_MAIN
#include "riskdecide.h"

const char *const CODES[RULE_COUNT + 1] = {
    "", "device_velocity", "device_daily_cap", "user_daily_cap", "device_many_users",
    "low_success_rate", "impossible_travel", "graph_anomaly",
    "device_blocklist", "user_blocklist", "ip_blocklist",
    "device_rotation", "lockstep", "sink_feeder", "dead_recipients", "coupon_repeat"};
const char SIGNAL_FIELD[5] = {'r', 'l', 'f', 'd', 'c'};
const int SIGNAL_PER_USER[5] = {0, 1, 1, 1, 1};

static const char *const WORD_TEXT[W_COUNT] = {
    "k", "decision", "id", "t", "dec", "rc", "req", "0", "1", "2", "PXAT",
    "GT", "MINID", "=", "_points", "_first", "_last", "status", "until", "reason", "code", "r", "1",
    "outcome", "dl", "op", "cl", "KEEPTTL",
    APPLY_SCRIPT, "SET", "HSET", "HDEL", "PEXPIREAT", "ZADD", "XADD"};
RedisModuleString *W[W_COUNT];

/* The one symbol Redis looks up (the build hides every other). */
__attribute__((visibility("default"))) int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    REDISMODULE_NOT_USED(argv);
    REDISMODULE_NOT_USED(argc);
    if (RedisModule_Init(ctx, "riskdecide", RISKDECIDE_VERSION, REDISMODULE_APIVER_1) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    for (int i = 0; i < W_COUNT; i++) W[i] = RedisModule_CreateString(NULL, WORD_TEXT[i], strlen(WORD_TEXT[i]));
    for (int i = 0; i < SMALL_COUNT; i++) SMALL[i] = RedisModule_CreateStringFromLongLong(NULL, i);
    if (RedisModule_CreateCommand(ctx, "risk.decide", Decide, "write deny-oom getkeys-api", 0, 0, 0) ==
            REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "risk.reserve", Reserve, "write deny-oom getkeys-api", 0, 0, 0) ==
            REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "risk.settle", Settle, "write deny-oom getkeys-api", 0, 0, 0) == REDISMODULE_ERR ||
        RedisModule_CreateCommand(ctx, "risk.outcome", Outcome, "write deny-oom getkeys-api", 0, 0, 0) == REDISMODULE_ERR)
        return REDISMODULE_ERR;
    return REDISMODULE_OK;
}
