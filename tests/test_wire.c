/*
 * test_wire.c: batch and ack framing (wire.h).
 *
 * Readers face the network: read_batch and read_ack below, and every test
 * that drives a reader by hand, hand it a heap block of exactly the message
 * size, so that under AddressSanitizer a read one byte past the end fails
 * the test.
 */
#include <check.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "pw.h"
#include "record.h"
#include "wire.h"
#include "support.h"

static uint64_t rng_state = 0x13198A2E03707344ull;

static uint64_t rng(void) { return pw_test_rng(&rng_state); }

static unsigned char *exact_copy(const void *data, size_t len)
{
    unsigned char *p = pw_test_exact_copy(data, len);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* Reads a whole batch from an exact-size copy of data[0..len); returns
 * PW_OK with *items counted, or PW_EINVAL. */
static int read_batch(const void *data, size_t len, uint32_t *items)
{
    unsigned char *msg = exact_copy(data, len);
    pw_batch_reader r;
    int rc = pw_batch_read_begin(&r, msg, len) == PW_OK ? 1 : -1;
    uint32_t n = 0;
    pw_batch_item it;
    while (rc == 1 && (rc = pw_batch_read_next(&r, &it)) == 1) {
        /* Whatever the reader hands out lies inside the message. */
        ck_assert((const unsigned char *)it.bytes >= msg);
        ck_assert((const unsigned char *)it.bytes + it.len <= msg + len);
        n++;
    }
    free(msg);
    if (rc != 0)
        return PW_EINVAL;
    if (items)
        *items = n;
    return PW_OK;
}

/* Reads a whole ack from an exact-size copy of data[0..len); returns PW_OK
 * with *ranges counted, or PW_EINVAL. */
static int read_ack(const void *data, size_t len, uint32_t *ranges)
{
    unsigned char *msg = exact_copy(data, len);
    pw_ack_reader r;
    int rc = pw_ack_read_begin(&r, msg, len) == PW_OK ? 1 : -1;
    uint64_t first;
    uint32_t n, count = 0;
    while (rc == 1 && (rc = pw_ack_read_next(&r, &first, &n)) == 1)
        count++;
    free(msg);
    if (rc != 0)
        return PW_EINVAL;
    if (ranges)
        *ranges = count;
    return PW_OK;
}

/* A batch of three items with different sizes, one of them empty. */
static void sample_batch(pw_buf *buf)
{
    pw_batch_writer w;
    pw_batch_begin(&w, buf, "p1", 2, 77);
    pw_batch_add(&w, 10, PW_ITEM_RECORD, 1764020000.5, "{\"a\":1}", 7);
    pw_batch_add(&w, 11, PW_ITEM_OUTPUT, 0.0, "", 0);
    pw_batch_add(&w, 12, PW_ITEM_DEAD, 1.25, "0123456789", 10);
}

/* ---- batches ----------------------------------------------------------------- */

START_TEST(test_wire_batch_round_trips_many_items)
{
    enum { N = 2000 };
    static uint64_t seqs[N];
    static uint8_t flags[N];
    static double tss[N];
    static size_t lens[N];
    pw_buf buf = PW_BUF_INIT;
    char payload[512];
    pw_batch_writer w;
    pw_batch_begin(&w, &buf, "producer-1", 10, 0xDEADBEEFCAFEull);
    for (uint32_t i = 0; i < N; i++) {
        seqs[i] = rng();
        flags[i] = (uint8_t)(i % 3);
        tss[i] = 1764020000.0 + i / 1000.0;
        lens[i] = rng() % sizeof payload;
        for (size_t k = 0; k < lens[i]; k++)
            payload[k] = (char)(i + k);
        pw_batch_add(&w, seqs[i], flags[i], tss[i], payload, lens[i]);
    }
    ck_assert(pw_buf_ok(&buf));
    ck_assert_uint_eq(w.count, N);
    ck_assert(pw_batch_is_batch(buf.data, buf.len));

    unsigned char *msg = exact_copy(buf.data, buf.len);
    pw_batch_reader r;
    ck_assert_int_eq(pw_batch_read_begin(&r, msg, buf.len), PW_OK);
    ck_assert_uint_eq(r.producer_len, 10);
    ck_assert_int_eq(memcmp(r.producer, "producer-1", 10), 0);
    ck_assert_uint_eq(r.run, 0xDEADBEEFCAFEull);
    ck_assert_uint_eq(r.count, N);
    for (uint32_t i = 0; i < N; i++) {
        pw_batch_item it;
        ck_assert_int_eq(pw_batch_read_next(&r, &it), 1);
        ck_assert_uint_eq(it.seq, seqs[i]);
        ck_assert_uint_eq(it.flags, flags[i]);
        ck_assert(it.ts == tss[i]);
        ck_assert_uint_eq(it.len, lens[i]);
        for (size_t k = 0; k < it.len; k++)
            ck_assert_int_eq(it.bytes[k], (char)(i + k));
    }
    pw_batch_item it;
    ck_assert_int_eq(pw_batch_read_next(&r, &it), 0);
    ck_assert_int_eq(pw_batch_read_next(&r, &it), 0);
    free(msg);
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_batch_builds_items_in_place)
{
    pw_buf buf = PW_BUF_INIT, rec = PW_BUF_INIT;
    pw_batch_writer w;
    pw_batch_begin(&w, &buf, "p1", 2, 5);
    for (uint64_t seq = 0; seq < 100; seq++) {
        if (seq % 4 == 3) {
            pw_batch_add(&w, seq, PW_ITEM_RECORD, 2.0, "plain", 5);
            continue;
        }
        size_t start = pw_batch_item_start(&w, seq, PW_ITEM_RECORD, 1764020000.5);
        pw_record_generate(w.buf, "p1", seq, 1764020000.5,
                           seq % 10 == 0 ? PW_FAULT_OVERSIZE : PW_FAULT_NONE);
        pw_batch_item_end(&w, start);
    }
    ck_assert_uint_eq(w.count, 100);

    pw_batch_reader r;
    ck_assert_int_eq(pw_batch_read_begin(&r, buf.data, buf.len), PW_OK);
    for (uint64_t seq = 0; seq < 100; seq++) {
        pw_batch_item it;
        ck_assert_int_eq(pw_batch_read_next(&r, &it), 1);
        ck_assert_uint_eq(it.seq, seq);
        if (seq % 4 == 3) {
            ck_assert_uint_eq(it.len, 5);
            ck_assert_int_eq(memcmp(it.bytes, "plain", 5), 0);
            continue;
        }
        pw_buf_reset(&rec);
        pw_record_generate(&rec, "p1", seq, 1764020000.5,
                           seq % 10 == 0 ? PW_FAULT_OVERSIZE : PW_FAULT_NONE);
        ck_assert_uint_eq(it.len, rec.len);
        ck_assert_int_eq(memcmp(it.bytes, rec.data, rec.len), 0);
    }
    pw_batch_item it;
    ck_assert_int_eq(pw_batch_read_next(&r, &it), 0);
    pw_buf_free(&buf);
    pw_buf_free(&rec);
}
END_TEST

START_TEST(test_wire_batch_begin_resets_the_buffer_and_an_empty_batch_reads_as_empty)
{
    pw_buf buf = PW_BUF_INIT;
    pw_buf_append_str(&buf, "old contents");
    pw_batch_writer w;
    pw_batch_begin(&w, &buf, "", 0, 0);
    ck_assert_uint_eq(buf.len, 4 + 1 + 0 + 8 + 4);
    uint32_t items = 99;
    ck_assert_int_eq(read_batch(buf.data, buf.len, &items), PW_OK);
    ck_assert_uint_eq(items, 0);
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_batch_producer_name_is_cut_at_the_maximum)
{
    char name[100];
    memset(name, 'n', sizeof name);
    pw_buf buf = PW_BUF_INIT;
    pw_batch_writer w;
    pw_batch_begin(&w, &buf, name, sizeof name, 1);
    pw_batch_add(&w, 1, 0, 1.0, "x", 1);
    pw_batch_reader r;
    ck_assert_int_eq(pw_batch_read_begin(&r, buf.data, buf.len), PW_OK);
    ck_assert_uint_eq(r.producer_len, PW_WIRE_PRODUCER_MAX);
    pw_batch_item it;
    ck_assert_int_eq(pw_batch_read_next(&r, &it), 1);
    ck_assert_uint_eq(it.len, 1);
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_bare_records_are_not_batches)
{
    static const char *const bare[] = { "", "P", "PW", "PWB", "PWB2xxxxxxxxxxxxxxxx", "{\"id\":1}", "PWA1" };
    for (size_t i = 0; i < PW_ARRAY_LEN(bare); i++) {
        size_t len = strlen(bare[i]);
        unsigned char *msg = exact_copy(bare[i], len);
        ck_assert(!pw_batch_is_batch(msg, len));
        pw_batch_reader r;
        ck_assert_int_eq(pw_batch_read_begin(&r, msg, len), PW_EINVAL);
        free(msg);
    }
    ck_assert(pw_batch_is_batch("PWB1", 4));
}
END_TEST

START_TEST(test_wire_batch_reader_rejects_every_truncation)
{
    pw_buf buf = PW_BUF_INIT;
    sample_batch(&buf);
    ck_assert_int_eq(read_batch(buf.data, buf.len, NULL), PW_OK);
    for (size_t len = 0; len < buf.len; len++) {
        ck_assert_msg(read_batch(buf.data, len, NULL) == PW_EINVAL, "prefix of %zu bytes accepted", len);
    }
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_batch_reader_rejects_trailing_bytes)
{
    pw_buf buf = PW_BUF_INIT;
    sample_batch(&buf);
    pw_buf_append_char(&buf, 'x');
    ck_assert_int_eq(read_batch(buf.data, buf.len, NULL), PW_EINVAL);
    pw_buf_free(&buf);
}
END_TEST

static void put_u32(pw_buf *b, size_t at, uint32_t v) { memcpy(b->data + at, &v, 4); }

START_TEST(test_wire_batch_reader_rejects_lying_counts_and_lengths)
{
    pw_buf buf = PW_BUF_INIT;
    /* header: magic 4 | plen 1 | "p1" 2 | run 8 | count 4 -> count at 15 */
    const size_t count_at = 15, first_len_at = 19 + 17, first_bytes = 19 + 21;
    static const uint32_t counts[] = { 0, 1, 2, 4, 5, 1000, UINT32_MAX / 21, UINT32_MAX };
    for (size_t i = 0; i < PW_ARRAY_LEN(counts); i++) {
        sample_batch(&buf);
        put_u32(&buf, count_at, counts[i]);
        ck_assert_msg(read_batch(buf.data, buf.len, NULL) == PW_EINVAL, "count %u accepted", counts[i]);
    }
    static const uint32_t lens[] = { 0, 6, 8, 100, 0x7FFFFFFF, UINT32_MAX };
    for (size_t i = 0; i < PW_ARRAY_LEN(lens); i++) {
        sample_batch(&buf);
        ck_assert_int_eq(memcmp(buf.data + first_bytes, "{\"a\":1}", 7), 0);
        put_u32(&buf, first_len_at, lens[i]);
        ck_assert_msg(read_batch(buf.data, buf.len, NULL) == PW_EINVAL, "len %u accepted", lens[i]);
    }
    /* A producer length beyond the maximum or beyond the message. */
    static const unsigned char plens[] = { PW_WIRE_PRODUCER_MAX + 1, 200, 255 };
    for (size_t i = 0; i < PW_ARRAY_LEN(plens); i++) {
        sample_batch(&buf);
        buf.data[4] = (char)plens[i];
        ck_assert_int_eq(read_batch(buf.data, buf.len, NULL), PW_EINVAL);
    }
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_batch_reader_survives_random_damage)
{
    pw_buf buf = PW_BUF_INIT;
    for (int round = 0; round < 20000; round++) {
        sample_batch(&buf);
        int flips = 1 + (int)(rng() % 4);
        for (int k = 0; k < flips; k++)
            buf.data[4 + rng() % (buf.len - 4)] = (char)rng();
        size_t len = buf.len - (size_t)(rng() % 3 == 0 ? rng() % buf.len : 0);
        (void)read_batch(buf.data, len, NULL); /* any answer, but no bad read */
    }
    pw_buf_free(&buf);
}
END_TEST

/* ---- acks ---------------------------------------------------------------------- */

START_TEST(test_wire_ack_writer_merges_consecutive_seqs_into_ranges)
{
    pw_buf buf = PW_BUF_INIT;
    pw_ack_writer w;
    pw_ack_begin(&w, &buf, "p1", 2, 9);
    static const uint64_t seqs[] = { 1, 2, 3, 5, 6, 10, 9, 9, 11, 0 };
    for (size_t i = 0; i < PW_ARRAY_LEN(seqs); i++)
        pw_ack_add(&w, seqs[i]);
    pw_ack_finish(&w);
    ck_assert(pw_buf_ok(&buf));
    /* The topic is the producer name and a NUL, so SUB filters by stream. */
    ck_assert_int_eq(memcmp(buf.data, "p1\0PWA1", 7), 0);

    static const struct { uint64_t first; uint32_t n; } want[] = {
        { 1, 3 }, { 5, 2 }, { 10, 1 }, { 9, 1 }, { 9, 1 }, { 11, 1 }, { 0, 1 },
    };
    unsigned char *msg = exact_copy(buf.data, buf.len);
    pw_ack_reader r;
    ck_assert_int_eq(pw_ack_read_begin(&r, msg, buf.len), PW_OK);
    ck_assert_uint_eq(r.producer_len, 2);
    ck_assert_int_eq(memcmp(r.producer, "p1", 2), 0);
    ck_assert_uint_eq(r.run, 9);
    ck_assert_uint_eq(r.count, PW_ARRAY_LEN(want));
    for (size_t i = 0; i < PW_ARRAY_LEN(want); i++) {
        uint64_t first;
        uint32_t n;
        ck_assert_int_eq(pw_ack_read_next(&r, &first, &n), 1);
        ck_assert_uint_eq(first, want[i].first);
        ck_assert_uint_eq(n, want[i].n);
    }
    uint64_t first;
    uint32_t n;
    ck_assert_int_eq(pw_ack_read_next(&r, &first, &n), 0);
    free(msg);
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_ack_round_trips_many_ranges)
{
    pw_buf buf = PW_BUF_INIT;
    pw_ack_writer w;
    pw_ack_begin(&w, &buf, "producer-x", 10, UINT64_MAX);
    /* 100000 seqs with a gap after every 7th: each run of 7 is one range. */
    uint64_t total = 0;
    for (uint64_t seq = 0; seq < 114286; seq++) {
        if (seq % 8 == 7)
            continue;
        pw_ack_add(&w, seq);
        total++;
    }
    pw_ack_finish(&w);
    pw_ack_reader r;
    ck_assert_int_eq(pw_ack_read_begin(&r, buf.data, buf.len), PW_OK);
    ck_assert_uint_eq(r.run, UINT64_MAX);
    uint64_t first, expect_first = 0, seen = 0;
    uint32_t n;
    int rc;
    while ((rc = pw_ack_read_next(&r, &first, &n)) == 1) {
        ck_assert_uint_eq(first, expect_first);
        ck_assert_uint_le(n, 7);
        seen += n;
        expect_first += 8;
    }
    ck_assert_int_eq(rc, 0);
    ck_assert_uint_eq(seen, total);
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_ack_with_no_seqs_is_valid_and_empty)
{
    pw_buf buf = PW_BUF_INIT;
    pw_ack_writer w;
    pw_ack_begin(&w, &buf, "p1", 2, 1);
    pw_ack_finish(&w);
    uint32_t ranges = 99;
    ck_assert_int_eq(read_ack(buf.data, buf.len, &ranges), PW_OK);
    ck_assert_uint_eq(ranges, 0);
    pw_buf_free(&buf);
}
END_TEST

static void sample_ack(pw_buf *buf, const char *producer)
{
    pw_ack_writer w;
    pw_ack_begin(&w, buf, producer, strlen(producer), 3);
    pw_ack_add(&w, 1);
    pw_ack_add(&w, 2);
    pw_ack_add(&w, 7);
    pw_ack_finish(&w);
}

START_TEST(test_wire_ack_reader_rejects_every_truncation)
{
    pw_buf buf = PW_BUF_INIT;
    sample_ack(&buf, "p1");
    ck_assert_int_eq(read_ack(buf.data, buf.len, NULL), PW_OK);
    for (size_t len = 0; len < buf.len; len++) {
        ck_assert_msg(read_ack(buf.data, len, NULL) == PW_EINVAL, "prefix of %zu bytes accepted", len);
    }
    /* An empty ZeroMQ message may come with no data pointer at all. */
    pw_ack_reader r;
    ck_assert_int_eq(pw_ack_read_begin(&r, NULL, 0), PW_EINVAL);
    pw_batch_reader br;
    ck_assert_int_eq(pw_batch_read_begin(&br, NULL, 0), PW_EINVAL);
    /* ...and one byte too many. */
    pw_buf_append_char(&buf, 0);
    ck_assert_int_eq(read_ack(buf.data, buf.len, NULL), PW_EINVAL);
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_ack_reader_rejects_lying_counts_and_bad_headers)
{
    pw_buf buf = PW_BUF_INIT;
    /* "p1\0" 3 | magic 4 | run 8 -> count at 15 */
    static const uint32_t counts[] = { 0, 1, 3, 100, UINT32_MAX };
    for (size_t i = 0; i < PW_ARRAY_LEN(counts); i++) {
        sample_ack(&buf, "p1");
        put_u32(&buf, 15, counts[i]);
        ck_assert_msg(read_ack(buf.data, buf.len, NULL) == PW_EINVAL, "count %u accepted", counts[i]);
    }
    /* Wrong magic. */
    sample_ack(&buf, "p1");
    buf.data[6] = '2';
    ck_assert_int_eq(read_ack(buf.data, buf.len, NULL), PW_EINVAL);
    /* No NUL within the longest producer name. */
    char name[PW_WIRE_PRODUCER_MAX + 20];
    memset(name, 'n', sizeof name);
    ck_assert_int_eq(read_ack(name, sizeof name, NULL), PW_EINVAL);
    /* The longest name is fine. */
    name[PW_WIRE_PRODUCER_MAX] = '\0';
    sample_ack(&buf, name);
    uint32_t ranges;
    ck_assert_int_eq(read_ack(buf.data, buf.len, &ranges), PW_OK);
    ck_assert_uint_eq(ranges, 2);
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_ack_reader_survives_random_damage)
{
    pw_buf buf = PW_BUF_INIT;
    for (int round = 0; round < 20000; round++) {
        sample_ack(&buf, "p1");
        int flips = 1 + (int)(rng() % 3);
        for (int k = 0; k < flips; k++)
            buf.data[rng() % buf.len] = (char)rng();
        size_t len = buf.len - (size_t)(rng() % 3 == 0 ? rng() % buf.len : 0);
        (void)read_ack(buf.data, len, NULL);
    }
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_greeting_round_trips_and_rejects_acks_and_truncation)
{
    pw_buf buf = PW_BUF_INIT;
    pw_greeting_write(&buf, "p1", 2, 262144);
    const char *producer;
    size_t plen;
    uint64_t window = 0;
    ck_assert_int_eq(pw_greeting_read(buf.data, buf.len, &producer, &plen, &window), PW_OK);
    ck_assert_uint_eq(plen, 2);
    ck_assert_int_eq(memcmp(producer, "p1", 2), 0);
    ck_assert_uint_eq(window, 262144);
    for (size_t n = 0; n < buf.len; n++)
        ck_assert_int_eq(pw_greeting_read(buf.data, n, &producer, &plen, &window), PW_EINVAL);
    pw_ack_writer w;
    pw_ack_begin(&w, &buf, "p1", 2, 0);
    pw_ack_finish(&w);
    ck_assert_int_eq(pw_greeting_read(buf.data, buf.len, &producer, &plen, &window), PW_EINVAL);
    pw_ack_reader r;
    pw_greeting_write(&buf, "p1", 2, 64);
    ck_assert_int_eq(pw_ack_read_begin(&r, buf.data, buf.len), PW_EINVAL);
    pw_buf_free(&buf);
}
END_TEST

START_TEST(test_wire_credit_round_trips_and_rejects_other_messages)
{
    pw_buf buf = PW_BUF_INIT;
    pw_credit_write(&buf, 256, 1024);
    uint32_t grant = 0, outstanding = 0;
    ck_assert_uint_eq(buf.len, PW_WIRE_CREDIT_LEN);
    ck_assert_int_eq(pw_credit_read(buf.data, buf.len, &grant, &outstanding), PW_OK);
    ck_assert_uint_eq(grant, 256);
    ck_assert_uint_eq(outstanding, 1024);
    ck_assert_int_eq(pw_credit_read(buf.data, buf.len - 1, &grant, &outstanding), PW_EINVAL);
    pw_batch_writer w;
    pw_batch_begin(&w, &buf, "p1", 2, 7);
    ck_assert_int_eq(pw_credit_read(buf.data, buf.len, &grant, &outstanding), PW_EINVAL);
    ck_assert(!pw_batch_is_batch("PWC1", 4));
    pw_buf_free(&buf);
}
END_TEST

int main(void)
{
    Suite *s = suite_create("wire");
    TCase *tc = tcase_create("wire");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_wire_batch_round_trips_many_items);
    tcase_add_test(tc, test_wire_batch_builds_items_in_place);
    tcase_add_test(tc, test_wire_batch_begin_resets_the_buffer_and_an_empty_batch_reads_as_empty);
    tcase_add_test(tc, test_wire_batch_producer_name_is_cut_at_the_maximum);
    tcase_add_test(tc, test_wire_bare_records_are_not_batches);
    tcase_add_test(tc, test_wire_batch_reader_rejects_every_truncation);
    tcase_add_test(tc, test_wire_batch_reader_rejects_trailing_bytes);
    tcase_add_test(tc, test_wire_batch_reader_rejects_lying_counts_and_lengths);
    tcase_add_test(tc, test_wire_batch_reader_survives_random_damage);
    tcase_add_test(tc, test_wire_ack_writer_merges_consecutive_seqs_into_ranges);
    tcase_add_test(tc, test_wire_ack_round_trips_many_ranges);
    tcase_add_test(tc, test_wire_ack_with_no_seqs_is_valid_and_empty);
    tcase_add_test(tc, test_wire_ack_reader_rejects_every_truncation);
    tcase_add_test(tc, test_wire_ack_reader_rejects_lying_counts_and_bad_headers);
    tcase_add_test(tc, test_wire_ack_reader_survives_random_damage);
    tcase_add_test(tc, test_wire_greeting_round_trips_and_rejects_acks_and_truncation);
    tcase_add_test(tc, test_wire_credit_round_trips_and_rejects_other_messages);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}
