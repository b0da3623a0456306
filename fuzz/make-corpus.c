/*
 * make-corpus: writes the seed corpus of every fuzz target into
 * fuzz/corpus/<target>/ (run from the repository root; fuzz/run never
 * writes there).  Seeds are what the pipeline really exchanges, so the
 * fuzzers start from deep inside the formats instead of rediscovering
 * them: generated records of every fault kind, batches and acks built by
 * the writers, producer command lines, log fields and label values.
 *
 *   clang -I common fuzz/make-corpus.c \
 *       common/{buf,record_parse,record_write,fault,generate,wire}.c -lm \
 *       -o build-fuzz/make-corpus && build-fuzz/make-corpus
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "buf.h"
#include "pw.h"
#include "record.h"
#include "wire.h"

static void write_seed(const char *target, const char *name, const void *data, size_t len)
{
    char path[512];
    snprintf(path, sizeof path, "fuzz/corpus/%s", target);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        perror(path);
        exit(1);
    }
    snprintf(path, sizeof path, "fuzz/corpus/%s/%s", target, name);
    FILE *f = fopen(path, "wb");
    if (!f || (len && fwrite(data, 1, len, f) != len) || fclose(f) != 0) {
        perror(path);
        exit(1);
    }
}

static void seeds_record(void)
{
    pw_buf b = PW_BUF_INIT;
    char name[64];
    for (int fault = PW_FAULT_NONE; fault < PW_FAULT_COUNT; fault++) {
        /* Enough seqs to cover each kind's variants (12 invalid values, 10
         * missing fields, 5 malformed shapes, 5 invalid UTF-8 shapes). */
        int seqs = fault == PW_FAULT_OVERSIZE || fault == PW_FAULT_EMPTY ? 1 : 12;
        for (int seq = 0; seq < seqs; seq++) {
            pw_buf_reset(&b);
            pw_record_generate(&b, "p1", (uint64_t)seq, 1764020000.123456, (pw_fault)fault);
            snprintf(name, sizeof name, "%s-%02d", pw_fault_name((pw_fault)fault), seq);
            write_seed("fuzz_record", name, b.data, b.len);
        }
    }
    static const char *const extra[] = {
        "{\"id\":\"p1-1\",\"seq\":1,\"producer\":\"p1\",\"ts\":1764020000.5,\"trace_id\":"
        "\"4bf92f3577b34da6a3ce929d0e0e4736\",\"kind\":\"order\",\"payload\":{\"user_id\":1,"
        "\"amount\":0,\"items\":0},\"note\":\"caf\\u00e9 \\ud83d\\ude00 \\\"q\\\"\\n\"}",
        " \r\n{\"id\":\"\xc3\xa9\",\"seq\":0,\"producer\":\"\xf0\x9f\x98\x80\",\"ts\":1e9,\"trace_id\":"
        "\"00000000000000000000000000000000\",\"kind\":\"k\",\"payload\":{\"user_id\":"
        "9223372036854775807,\"amount\":1.5e-3,\"items\":10000}}\n",
        "{}",
        "[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]",
        "{\"a\":[1,-0.5e+3,true,false,null,\"x\"]}",
        "   ",
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(extra); i++) {
        snprintf(name, sizeof name, "extra-%zu", i);
        write_seed("fuzz_record", name, extra[i], strlen(extra[i]));
    }
    pw_buf_free(&b);
}

static void seeds_dead_letter(void)
{
    pw_buf b = PW_BUF_INIT;
    static const struct { double at; int reason; int flags; const char *s; size_t len; } s[] = {
        { 1764020000.5, PW_REC_MALFORMED_JSON, 0, "not a valid JSON text\0p1\0worker-1\0{\"id\":", 41 },
        { 0.0, PW_REC_INVALID_UTF8, 0, "bad \xff\0p\"\\\n1\0w\x01\0caf\xc3\x28", 25 },
        { -1.0, PW_REC_EMPTY, 1, "record is empty\0\0\0", 18 },
        { 1e300, PW_REC_ERROR_COUNT + 1, 6, "\0\0\0\0\0", 5 },
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(s); i++) {
        pw_buf_reset(&b);
        uint64_t run = 1764020000123456u + i, seq = 42 * i;
        pw_buf_append(&b, &s[i].at, 8);
        pw_buf_append(&b, &run, 8);
        pw_buf_append(&b, &seq, 8);
        pw_buf_append_char(&b, (char)s[i].reason);
        pw_buf_append_char(&b, (char)s[i].flags);
        pw_buf_append(&b, s[i].s, s[i].len);
        char name[32];
        snprintf(name, sizeof name, "seed-%zu", i);
        write_seed("fuzz_dead_letter", name, b.data, b.len);
    }
    pw_buf_free(&b);
}

static void seeds_options(void)
{
    /* argv words separated by NUL, argv[0] excluded */
    static const struct { const char *s; size_t len; } s[] = {
#define W(lit) { lit, sizeof lit - 1 }
        W("--bind\0tcp://127.0.0.1:5557\0--ack\0tcp://127.0.0.1:5559\0--id\0p1\0--rate\0001000"),
        W("--count=10\0--fault-rate\0000.25\0--fault-kinds\0all\0--ack-timeout\000500"),
        W("--batch\000100\0--max-in-flight\0001000\0--drain-timeout=0\0--fsync\0batch\0--flag"),
        W("--pushgateway\0http://127.0.0.1:9091\0--push-interval\0000.5\0--job\0pipeline"),
        W("--instance\0producer-1\0--log-level\0debug\0--delete-on-exit"),
        W("--push-auth-file\0/dev/null\0--push-ca-file\0/etc/ssl/certs/ca-certificates.crt"),
        W("--curve-secret-file\0a.key\0--curve-public-file\0a.pub\0--curve-server-file\0s.pub"
          "\0--curve-allow-file\0allow"),
        W("--help"),
        W("--version"),
        W("--rate\0-1"),
        W("--rate\00012abc"),
        W("--fault-rate\0nan"),
        W("--fault-rate\0001e999"),
        W("--bin\0x"),
        W("--bind"),
        W("--bind\0--ack"),
        W("--flag=1"),
        W("stray"),
        W("--pushgateway="),
        W("--push-interval\0000"),
        W("--log-level\0loud"),
        W("--"),
        W("-x"),
#undef W
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(s); i++) {
        char name[32];
        snprintf(name, sizeof name, "argv-%02zu", i);
        write_seed("fuzz_options", name, s[i].s, s[i].len);
    }
}

static void seeds_log(void)
{
    static const struct { const char *s; size_t len; } s[] = {
#define W(lit) { lit, sizeof lit - 1 }
        /* cap lo, cap hi, level, types, then instance, msg, field values */
        W("\x00\x20\x01\x00worker-1\0started\0tcp://127.0.0.1:5557"),
        W("\x00\x20\x02\x55w\0record rejected\0" "4bf92f3577b34da6a3ce929d0e0e4736\0malformed_json"),
        W("\x40\x00\x03\x00inst\0quote \" backslash \\ newline \n tab \t ctl \x01\0caf\xc3\xa9 \xff\xfe"),
        W("\x00\x01\x00\xaaw\0m\0\x00\x00\x00\x00\x00\x00\xf0\x7f\0\x01\x02\x03\x04\x05\x06\x07\x08"),
        W("\xff\xff\x01\xff\xe2\x82\xac\0\xf0\x9f\x98\x80\0a\0b\0c\0d\0e\0f\0g\0h"),
#undef W
    };
    for (size_t i = 0; i < PW_ARRAY_LEN(s); i++) {
        char name[32];
        snprintf(name, sizeof name, "seed-%zu", i);
        write_seed("fuzz_log", name, s[i].s, s[i].len);
    }
    /* A long message that must be cut. */
    pw_buf b = PW_BUF_INIT;
    pw_buf_append(&b, "\x00\x20\x01\x00worker-1\0", 13);
    for (int i = 0; i < 3000; i++)
        pw_buf_append_str(&b, "\"\\\x01\xc3\xa9");
    pw_buf_append(&b, "\0short reason", 13);
    write_seed("fuzz_log", "long-msg", b.data, b.len);
    pw_buf_free(&b);
}

static void seeds_metrics(void)
{
    static const struct { const char *s; size_t len; } words[] = {
#define W(lit) { lit, sizeof lit - 1 }
        W("Records or operations that failed, by reason.\0" "0.1.0\0malformed_json\0missing_field\0"
          "invalid_value\0oversize\0invalid_utf8\0empty\0processing\0push_failed"),
        W("help with \\ backslash\nand newline\0v\"1\"\\\n\0a\"b\0c\\d\0e\nf\0\xc3\xa9\0{}=,\0 "),
        W("\0\0x"),
        W("h\0\xff\0dup\0dup"),
#undef W
    };
    const double values[][2] = { { 1.0, 0.25 }, { -0.0, 1e308 }, { 1e-300, INFINITY }, { NAN, 0 } };
    pw_buf b = PW_BUF_INIT;
    for (size_t i = 0; i < PW_ARRAY_LEN(words); i++) {
        pw_buf_reset(&b);
        pw_buf_append(&b, &values[i][0], 8);
        pw_buf_append(&b, &values[i][1], 8);
        pw_buf_append_char(&b, (char)(i == 0));
        pw_buf_append(&b, words[i].s, words[i].len);
        char name[32];
        snprintf(name, sizeof name, "seed-%zu", i);
        write_seed("fuzz_metrics", name, b.data, b.len);
    }
    pw_buf_free(&b);
}

static void seeds_wire(void)
{
    pw_buf b = PW_BUF_INIT, rec = PW_BUF_INIT;
    pw_batch_writer w;
    pw_batch_begin(&w, &b, "p1", 2, 1764020000123456u);
    for (uint64_t seq = 0; seq < 4; seq++) {
        pw_buf_reset(&rec);
        pw_record_generate(&rec, "p1", seq, 1764020000.5, seq == 3 ? PW_FAULT_EMPTY : PW_FAULT_NONE);
        pw_batch_add(&w, seq, PW_ITEM_RECORD, 1764020000.5, rec.data, rec.len);
    }
    write_seed("fuzz_wire", "batch-records", b.data, b.len);
    pw_batch_begin(&w, &b, "inject-1764020000", 17, 7);
    pw_batch_add(&w, 9, PW_ITEM_OUTPUT, 1764020000.5, "{\"a\":1}", 7);
    pw_batch_add(&w, 10, PW_ITEM_DEAD, 0, "{\"reason\":\"empty\"}", 18);
    write_seed("fuzz_wire", "batch-sink", b.data, b.len);
    pw_batch_begin(&w, &b, "", 0, 0);
    write_seed("fuzz_wire", "batch-empty", b.data, b.len);

    pw_ack_writer a;
    pw_ack_begin(&a, &b, "p1", 2, 1764020000123456u);
    static const uint64_t seqs[] = { 0, 1, 2, 3, 7, 9, 10, 1000000 };
    for (size_t i = 0; i < PW_ARRAY_LEN(seqs); i++)
        pw_ack_add(&a, seqs[i]);
    pw_ack_finish(&a);
    write_seed("fuzz_wire", "ack-ranges", b.data, b.len);
    pw_ack_begin(&a, &b, "inject-1", 8, 3);
    pw_ack_finish(&a);
    write_seed("fuzz_wire", "ack-empty", b.data, b.len);
    pw_greeting_write(&b, "p1", 2, 262144);
    write_seed("fuzz_wire", "greeting", b.data, b.len);
    pw_credit_write(&b, 256, 1024);
    write_seed("fuzz_wire", "credit", b.data, b.len);
    write_seed("fuzz_wire", "bare-record", "{\"id\":\"x\"}", 10);
    pw_buf_free(&b);
    pw_buf_free(&rec);
}

int main(void)
{
    if (mkdir("fuzz/corpus", 0755) != 0 && errno != EEXIST) {
        perror("fuzz/corpus (run from the repository root)");
        return 1;
    }
    seeds_record();
    seeds_dead_letter();
    seeds_options();
    seeds_log();
    seeds_metrics();
    seeds_wire();
    return 0;
}
