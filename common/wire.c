/*
 * wire.c: encoding and bounds-checked decoding of batch and ack messages
 * (format in wire.h).  Integers are copied with memcpy: messages carry no
 * alignment promise.
 */
#include "wire.h"

#include <string.h>

#include "pw.h"

static const char batch_magic[4] = { 'P', 'W', 'B', '1' };
static const char ack_magic[4] = { 'P', 'W', 'A', '1' };
static const char greeting_magic[4] = { 'P', 'W', 'G', '1' };
static const char credit_magic[4] = { 'P', 'W', 'C', '1' };

/* item header: u64 seq | u8 flags | f64 ts | u32 len */
#define ITEM_HEADER 21

static void put_u32_at(pw_buf *b, size_t at, uint32_t v)
{
    if (!b->failed && at + 4 <= b->len)
        memcpy(b->data + at, &v, 4);
}

/* Every message starts from an empty buffer and a producer name cut at
 * PW_WIRE_PRODUCER_MAX; returns the name's length. */
static size_t message_start(pw_buf *buf, size_t producer_len)
{
    pw_buf_reset(buf);
    return producer_len > PW_WIRE_PRODUCER_MAX ? PW_WIRE_PRODUCER_MAX : producer_len;
}

void pw_batch_begin(pw_batch_writer *w, pw_buf *buf, const char *producer, size_t producer_len,
                    uint64_t run)
{
    producer_len = message_start(buf, producer_len);
    w->buf = buf;
    w->count = 0;
    uint8_t plen = (uint8_t)producer_len;
    pw_buf_append(buf, batch_magic, 4);
    pw_buf_append(buf, &plen, 1);
    pw_buf_append(buf, producer, producer_len);
    pw_buf_append(buf, &run, 8);
    w->count_offset = buf->len;
    uint32_t zero = 0;
    pw_buf_append(buf, &zero, 4);
}

size_t pw_batch_item_start(pw_batch_writer *w, uint64_t seq, uint8_t flags, double ts)
{
    unsigned char h[ITEM_HEADER];
    uint32_t zero = 0;
    memcpy(h, &seq, 8);
    h[8] = flags;
    memcpy(h + 9, &ts, 8);
    memcpy(h + 17, &zero, 4);
    pw_buf_append(w->buf, h, sizeof h);
    return w->buf->len;
}

void pw_batch_item_end(pw_batch_writer *w, size_t start)
{
    put_u32_at(w->buf, start - 4, (uint32_t)(w->buf->len - start));
    w->count++;
    put_u32_at(w->buf, w->count_offset, w->count);
}

void pw_batch_item_cancel(pw_batch_writer *w, size_t start)
{
    if (start >= ITEM_HEADER && start <= w->buf->len) {
        w->buf->len = start - ITEM_HEADER;
        if (w->buf->data)
            w->buf->data[w->buf->len] = '\0';
    }
}

void pw_batch_add(pw_batch_writer *w, uint64_t seq, uint8_t flags, double ts, const void *bytes,
                  size_t len)
{
    size_t start = pw_batch_item_start(w, seq, flags, ts);
    pw_buf_append(w->buf, bytes, len);
    pw_batch_item_end(w, start);
}

bool pw_batch_is_batch(const void *msg, size_t len)
{
    return len >= 4 && memcmp(msg, batch_magic, 4) == 0;
}

int pw_batch_read_begin(pw_batch_reader *r, const void *msg, size_t len)
{
    const unsigned char *p = msg, *end = p + len;
    if (!pw_batch_is_batch(msg, len) || len < 5)
        return PW_EINVAL;
    size_t plen = p[4];
    if (plen > PW_WIRE_PRODUCER_MAX || (size_t)(end - p) < 5 + plen + 8 + 4)
        return PW_EINVAL;
    r->producer = (const char *)p + 5;
    r->producer_len = plen;
    memcpy(&r->run, p + 5 + plen, 8);
    memcpy(&r->count, p + 5 + plen + 8, 4);
    r->pos = p + 5 + plen + 12;
    r->end = end;
    r->read = 0;
    /* Each item needs at least its header: a count that cannot fit is a lie. */
    if (r->count > (size_t)(end - r->pos) / ITEM_HEADER)
        return PW_EINVAL;
    return PW_OK;
}

int pw_batch_read_next(pw_batch_reader *r, pw_batch_item *item)
{
    if (r->read == r->count)
        return r->pos == r->end ? 0 : PW_EINVAL;
    if ((size_t)(r->end - r->pos) < ITEM_HEADER)
        return PW_EINVAL;
    uint32_t len;
    memcpy(&item->seq, r->pos, 8);
    item->flags = r->pos[8];
    memcpy(&item->ts, r->pos + 9, 8);
    memcpy(&len, r->pos + 17, 4);
    r->pos += ITEM_HEADER;
    if (len > (size_t)(r->end - r->pos))
        return PW_EINVAL;
    item->bytes = (const char *)r->pos;
    item->len = len;
    r->pos += len;
    r->read++;
    return 1;
}

bool pw_batch_valid(const void *msg, size_t len)
{
    pw_batch_reader r;
    pw_batch_item item;
    int rc;
    if (pw_batch_read_begin(&r, msg, len) != PW_OK)
        return false;
    while ((rc = pw_batch_read_next(&r, &item)) == 1) {
    }
    return rc == 0;
}

void pw_ack_begin(pw_ack_writer *w, pw_buf *buf, const char *producer, size_t producer_len,
                  uint64_t run)
{
    producer_len = message_start(buf, producer_len);
    w->buf = buf;
    w->count = 0;
    w->open = false;
    pw_buf_append(buf, producer, producer_len);
    pw_buf_append_char(buf, '\0');
    pw_buf_append(buf, ack_magic, 4);
    pw_buf_append(buf, &run, 8);
    w->count_offset = buf->len;
    uint32_t zero = 0;
    pw_buf_append(buf, &zero, 4);
}

static void ack_flush_range(pw_ack_writer *w)
{
    if (!w->open)
        return;
    pw_buf_append(w->buf, &w->last_first, 8);
    pw_buf_append(w->buf, &w->last_n, 4);
    w->count++;
    w->open = false;
}

void pw_ack_add(pw_ack_writer *w, uint64_t seq)
{
    if (w->open && seq == w->last_first + w->last_n && w->last_n < UINT32_MAX) {
        w->last_n++;
        return;
    }
    ack_flush_range(w);
    w->last_first = seq;
    w->last_n = 1;
    w->open = true;
}

void pw_ack_finish(pw_ack_writer *w)
{
    ack_flush_range(w);
    put_u32_at(w->buf, w->count_offset, w->count);
}

int pw_ack_read_begin(pw_ack_reader *r, const void *msg, size_t len)
{
    if (len == 0)
        return PW_EINVAL; /* memchr must not see a NULL msg, even for 0 bytes */
    const unsigned char *p = msg, *end = p + len;
    const unsigned char *nul = memchr(p, '\0', len < PW_WIRE_PRODUCER_MAX + 1 ? len : PW_WIRE_PRODUCER_MAX + 1);
    if (!nul)
        return PW_EINVAL;
    r->producer = (const char *)p;
    r->producer_len = (size_t)(nul - p);
    const unsigned char *q = nul + 1;
    if ((size_t)(end - q) < 4 + 8 + 4 || memcmp(q, ack_magic, 4) != 0)
        return PW_EINVAL;
    memcpy(&r->run, q + 4, 8);
    memcpy(&r->count, q + 12, 4);
    r->pos = q + 16;
    r->end = end;
    r->read = 0;
    if ((size_t)(end - r->pos) != (size_t)r->count * 12)
        return PW_EINVAL;
    return PW_OK;
}

int pw_ack_read_next(pw_ack_reader *r, uint64_t *first, uint32_t *n)
{
    if (r->read == r->count)
        return 0;
    memcpy(first, r->pos, 8);
    memcpy(n, r->pos + 8, 4);
    r->pos += 12;
    r->read++;
    return 1;
}

void pw_greeting_write(pw_buf *buf, const char *producer, size_t producer_len, uint64_t dedup_window)
{
    producer_len = message_start(buf, producer_len);
    pw_buf_append(buf, producer, producer_len);
    pw_buf_append_char(buf, '\0');
    pw_buf_append(buf, greeting_magic, 4);
    pw_buf_append(buf, &dedup_window, 8);
}

int pw_greeting_read(const void *msg, size_t len, const char **producer, size_t *producer_len,
                     uint64_t *dedup_window)
{
    if (len == 0)
        return PW_EINVAL;
    const unsigned char *p = msg;
    const unsigned char *nul = memchr(p, '\0', len < PW_WIRE_PRODUCER_MAX + 1 ? len : PW_WIRE_PRODUCER_MAX + 1);
    if (!nul)
        return PW_EINVAL;
    size_t head = (size_t)(nul - p) + 1;
    if (len - head != 4 + 8 || memcmp(p + head, greeting_magic, 4) != 0)
        return PW_EINVAL;
    *producer = (const char *)p;
    *producer_len = head - 1;
    memcpy(dedup_window, p + head + 4, 8);
    return PW_OK;
}

void pw_credit_write(pw_buf *buf, uint32_t grant, uint32_t outstanding)
{
    pw_buf_reset(buf);
    pw_buf_append(buf, credit_magic, 4);
    pw_buf_append(buf, &grant, 4);
    pw_buf_append(buf, &outstanding, 4);
}

int pw_credit_read(const void *msg, size_t len, uint32_t *grant, uint32_t *outstanding)
{
    if (len != PW_WIRE_CREDIT_LEN || memcmp(msg, credit_magic, 4) != 0)
        return PW_EINVAL;
    memcpy(grant, (const unsigned char *)msg + 4, 4);
    memcpy(outstanding, (const unsigned char *)msg + 8, 4);
    return PW_OK;
}
