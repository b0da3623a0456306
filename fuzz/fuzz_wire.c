/*
 * fuzz_wire: the batch and ack readers on any bytes.
 *
 * The input is copied into a buffer of exactly its size, so ASan reports
 * any read past the message.  When pw_batch_read_begin accepts, every item
 * is read; each must lie inside the message, and a message read to its end
 * without error must be exactly what pw_batch_add writes for those items
 * (the format has one encoding).  The ack reader is run on the same bytes
 * and on the bytes after a producer-name prefix, so both of its entry
 * shapes are reached; a clean read must re-encode to the same bytes when
 * its ranges are not mergeable.  The greeting and credit readers run on
 * the same bytes: whatever they accept must re-encode to the same bytes.
 */
#include "buf.h"
#include "fuzz_common.h"
#include "pw.h"
#include "wire.h"

static void check_batch(const unsigned char *msg, size_t len)
{
    static pw_buf re = PW_BUF_INIT;
    pw_batch_reader r;
    if (pw_batch_read_begin(&r, msg, len) != PW_OK)
        return;
    FUZZ_CHECK(pw_batch_is_batch(msg, len), "read_begin accepted a non-batch");
    FUZZ_CHECK(r.producer_len <= PW_WIRE_PRODUCER_MAX, "producer too long");
    FUZZ_CHECK((const unsigned char *)r.producer >= msg &&
               (const unsigned char *)r.producer + r.producer_len <= msg + len,
               "producer outside the message");
    pw_batch_writer w;
    pw_batch_begin(&w, &re, r.producer, r.producer_len, r.run);
    pw_batch_item item;
    int rc;
    uint32_t items = 0;
    while ((rc = pw_batch_read_next(&r, &item)) == 1) {
        FUZZ_CHECK((const unsigned char *)item.bytes >= msg &&
                   (const unsigned char *)item.bytes + item.len <= msg + len,
                   "item outside the message");
        items++;
        FUZZ_CHECK(items <= r.count, "more items than the count");
        pw_batch_add(&w, item.seq, item.flags, item.ts, item.bytes, item.len);
    }
    FUZZ_CHECK(rc == 0 || rc == PW_EINVAL, "read_next returned an unknown code");
    if (rc == 0) {
        FUZZ_CHECK(items == r.count, "fewer items than the count");
        FUZZ_CHECK(re.len == len && memcmp(re.data, msg, len) == 0,
                   "clean batch does not re-encode to the same bytes");
        /* after the end, the reader stays at the end */
        FUZZ_CHECK(pw_batch_read_next(&r, &item) == 0, "read_next after the end");
    }
}

static void check_ack(const unsigned char *msg, size_t len)
{
    static pw_buf re = PW_BUF_INIT;
    pw_ack_reader r;
    if (pw_ack_read_begin(&r, msg, len) != PW_OK)
        return;
    FUZZ_CHECK(r.producer_len <= PW_WIRE_PRODUCER_MAX, "producer too long");
    FUZZ_CHECK((const unsigned char *)r.producer + r.producer_len < msg + len &&
               r.producer[r.producer_len] == '\0', "producer not NUL-terminated in the message");
    pw_ack_writer w;
    pw_ack_begin(&w, &re, r.producer, r.producer_len, r.run);
    uint64_t first, prev_end = 0;
    uint32_t n;
    int rc;
    uint32_t ranges = 0;
    bool canonical = true;
    while ((rc = pw_ack_read_next(&r, &first, &n)) == 1) {
        ranges++;
        FUZZ_CHECK(ranges <= r.count, "more ranges than the count");
        /* The writer only produces ranges of n >= 1 that do not continue
         * the previous one and do not wrap; others are not re-encodable. */
        if (n == 0 || (ranges > 1 && first == prev_end) || first + n < first)
            canonical = false;
        prev_end = first + n;
        for (uint32_t i = 0; canonical && i < n && i < 64; i++)
            pw_ack_add(&w, first + i);
        if (n > 64)
            canonical = false;
    }
    FUZZ_CHECK(rc == 0 || rc == PW_EINVAL, "ack read_next returned an unknown code");
    if (rc == 0) {
        FUZZ_CHECK(ranges == r.count, "fewer ranges than the count");
        FUZZ_CHECK(pw_ack_read_next(&r, &first, &n) == 0, "ack read_next after the end");
        if (canonical) {
            pw_ack_finish(&w);
            FUZZ_CHECK(re.len == len && memcmp(re.data, msg, len) == 0,
                       "clean ack does not re-encode to the same bytes");
        }
    }
}

static void check_greeting_and_credit(const unsigned char *msg, size_t len)
{
    static pw_buf re = PW_BUF_INIT;
    const char *producer;
    size_t plen;
    uint64_t window;
    if (pw_greeting_read(msg, len, &producer, &plen, &window) == PW_OK) {
        FUZZ_CHECK(plen <= PW_WIRE_PRODUCER_MAX && (const unsigned char *)producer == msg, "greeting producer");
        pw_greeting_write(&re, producer, plen, window);
        FUZZ_CHECK(re.len == len && memcmp(re.data, msg, len) == 0, "greeting does not re-encode");
    }
    uint32_t grant, outstanding;
    if (pw_credit_read(msg, len, &grant, &outstanding) == PW_OK) {
        pw_credit_write(&re, grant, outstanding);
        FUZZ_CHECK(re.len == len && memcmp(re.data, msg, len) == 0, "credit does not re-encode");
        FUZZ_CHECK(!pw_batch_is_batch(msg, len), "a credit message reads as a batch");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    unsigned char *msg = malloc(size ? size : 1);
    if (!msg)
        abort();
    if (size)
        memcpy(msg, data, size);
    (void)pw_batch_is_batch(msg, size);
    check_batch(msg, size);
    check_ack(msg, size);
    check_greeting_and_credit(msg, size);
    /* The same bytes as an ack body behind a producer name. */
    if (size <= 4096) {
        unsigned char *ack = malloc(size + 3 + 4);
        if (!ack)
            abort();
        memcpy(ack, "p1\0PWA1", 7);
        if (size)
            memcpy(ack + 7, data, size);
        check_ack(ack, size + 7);
        free(ack);
    }
    free(msg);
    return 0;
}
