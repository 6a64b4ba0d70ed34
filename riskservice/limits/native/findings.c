/* Stateful findings: fired by the rules, packed as the scripts pack them (contract.FINDING_FORMAT),
 * and read back (the user side of a split decision on Redis Cluster). */

#include "riskdecide.h"

Finding *fire_at(Judge *j, int id, double limit, double window, double retry, double detail) {
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

void fire_num(Judge *j, int id, double observed, double limit, double window, double retry, double detail) {
    Finding *f = fire_at(j, id, limit, window, retry, detail);
    if (f) f->number = observed;
}

void fire_text(Judge *j, int id, const char *observed, size_t len, double limit, double window,
               double retry) {
    Finding *f = fire_at(j, id, limit, window, retry, NONE);
    if (f) {
        f->text = 1;
        f->observed = observed;
        f->observed_len = len;
    }
}

void pack_findings(Buf *b, const Fired *fired) {
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
int read_findings(const unsigned char *p, size_t len, Fired *out) {
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
