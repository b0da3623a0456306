/*
 * dispatch.c: worker credit bookkeeping (see dispatch.h).
 */
#include "dispatch.h"

#include <stdlib.h>
#include <string.h>

#include "pw.h"

int pw_dispatch_init(pw_dispatch *d, size_t max_workers, uint32_t heartbeat_ms, uint32_t lost_after_ms)
{
    if (max_workers == 0 || max_workers > 65535 || heartbeat_ms == 0 || lost_after_ms <= heartbeat_ms)
        return PW_EINVAL;
    *d = (pw_dispatch){ 0 };
    d->peers = calloc(max_workers, sizeof *d->peers);
    if (!d->peers)
        return PW_ENOMEM;
    d->max_workers = max_workers;
    d->lost_after_ns = (uint64_t)lost_after_ms * 1000000u;
    d->quiet_ns = 2 * (uint64_t)heartbeat_ms * 1000000u;
    return PW_OK;
}

void pw_dispatch_free(pw_dispatch *d)
{
    free(d->peers);
    d->peers = NULL;
}

int pw_dispatch_credit(pw_dispatch *d, const void *id, size_t len, uint32_t grant,
                       uint32_t outstanding, uint64_t now_ns)
{
    if (len == 0 || len > PW_WORKER_ID_MAX)
        return -1;
    int free_slot = -1;
    for (size_t i = 0; i < d->end; i++) {
        pw_worker_peer *p = &d->peers[i];
        if (!p->used) {
            if (free_slot < 0)
                free_slot = (int)i;
            continue;
        }
        if (p->id_len == len && memcmp(p->id, id, len) == 0) {
            d->credit_sum -= p->credit;
            if (now_ns - p->last_sent_ns >= d->quiet_ns)
                p->credit = outstanding;
            else
                p->credit += grant;
            d->credit_sum += p->credit;
            p->last_heard_ns = now_ns;
            return (int)i;
        }
    }
    if (free_slot < 0 && d->end < d->max_workers)
        free_slot = (int)d->end++;
    if (free_slot < 0)
        return -1;
    pw_worker_peer *p = &d->peers[free_slot];
    *p = (pw_worker_peer){ .used = true, .id_len = (uint8_t)len, .credit = outstanding,
                           .last_heard_ns = now_ns, .last_sent_ns = 0 };
    memcpy(p->id, id, len);
    d->live++;
    d->credit_sum += outstanding;
    return free_slot;
}

int pw_dispatch_pick(pw_dispatch *d)
{
    int best = -1;
    for (size_t k = 0; k < d->end; k++) {
        size_t i = (d->next_pick + k) % d->end;
        const pw_worker_peer *p = &d->peers[i];
        if (p->used && p->credit > 0 && (best < 0 || p->credit > d->peers[best].credit))
            best = (int)i;
    }
    if (best >= 0)
        d->next_pick = (size_t)best + 1;
    return best;
}

void pw_dispatch_sent(pw_dispatch *d, int i, uint64_t records, uint64_t now_ns)
{
    pw_worker_peer *p = &d->peers[i];
    uint64_t used = records < p->credit ? records : p->credit;
    p->credit -= used;
    d->credit_sum -= used;
    p->last_sent_ns = now_ns;
}

int pw_dispatch_expire(pw_dispatch *d, uint64_t now_ns)
{
    for (size_t i = 0; i < d->end; i++) {
        pw_worker_peer *p = &d->peers[i];
        if (p->used && now_ns - p->last_heard_ns > d->lost_after_ns) {
            pw_dispatch_drop(d, (int)i);
            return (int)i;
        }
    }
    return -1;
}

void pw_dispatch_drop(pw_dispatch *d, int i)
{
    if (i < 0 || (size_t)i >= d->max_workers || !d->peers[i].used)
        return;
    d->peers[i].used = false;
    d->credit_sum -= d->peers[i].credit;
    d->peers[i].credit = 0;
    d->live--;
}

uint64_t pw_dispatch_credit_total(const pw_dispatch *d)
{
    return d->credit_sum;
}
