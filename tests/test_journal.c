/*
 * test_journal: the sink's files, recovery and held-back acks
 * (common/journal.h).
 *
 * This test binary interposes fdatasync(2) and write(2) (its definitions
 * win over libc's for the statically linked library): fdatasync records
 * how much of each file is durable, which is the truth a simulated power
 * loss respects (a file keeps at least its durable prefix, possibly cut
 * mid-line), and write can be made to fail with ENOSPC after a number of
 * bytes, as on a full disk.
 *
 * The model test drives random sequences of arrivals (new and duplicate),
 * writes, syncs (on this thread or the syncer thread), ack releases and
 * crashes (process crash: written data stays; power loss: each file cut
 * to any length >= its durable length), then recovers, against a
 * reference: the set of ids the harness has seen acknowledged.
 * Invariants: a released ack's line lies in the durable prefix; after any
 * crash and recovery every acknowledged id is present, no id appears
 * twice, and no torn line is left.  PW_MODEL_ITERATIONS sets the number of
 * sequences; a failure prints the seed (PW_MODEL_SEED replays it).
 */
#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "journal.h"
#include "log.h"
#include "pw.h"
#include "support.h"


#define MUST(cond, ...) do { if (!(cond)) ck_abort_msg(__VA_ARGS__); } while (0)

/* ---- interposed system calls --------------------------------------------- */

#define TRACKED 2
static struct {
    ino_t ino;
    dev_t dev;
    off_t durable;
} tracked[TRACKED];
static unsigned fdatasync_calls;
static ino_t write_fail_ino;      /* 0: writes succeed */
static long write_fail_after;     /* bytes still accepted before ENOSPC */

int fdatasync(int fd)
{
    struct stat sb;
    fdatasync_calls++;
    if (fstat(fd, &sb) == 0)
        for (int i = 0; i < TRACKED; i++)
            if (tracked[i].ino == sb.st_ino && tracked[i].dev == sb.st_dev)
                __atomic_store_n(&tracked[i].durable, sb.st_size, __ATOMIC_SEQ_CST); /* syncer thread */
    return 0; /* the power loss is simulated: no need to wait for a disk */
}

ssize_t write(int fd, const void *buf, size_t n)
{
    if (write_fail_ino) {
        struct stat sb;
        if (fstat(fd, &sb) == 0 && sb.st_ino == write_fail_ino) {
            if (write_fail_after <= 0) {
                errno = ENOSPC;
                return -1;
            }
            if ((long)n > write_fail_after)
                n = (size_t)write_fail_after;
            write_fail_after -= (long)n;
        }
    }
    return syscall(SYS_write, fd, buf, n);
}

static void track(int i, const char *path)
{
    struct stat sb;
    ck_assert_int_eq(stat(path, &sb), 0);
    tracked[i].ino = sb.st_ino;
    tracked[i].dev = sb.st_dev;
    tracked[i].durable = 0;
}

/* ---- helpers -------------------------------------------------------------- */

typedef struct files {
    char *dir, *out, *dead;
} files;

static files files_new(void)
{
    files f;
    f.dir = pw_test_tmpdir("journal");
    ck_assert_ptr_nonnull(f.dir);
    ck_assert_int_ne(asprintf(&f.out, "%s/out.ndjson", f.dir), -1);
    ck_assert_int_ne(asprintf(&f.dead, "%s/dead.ndjson", f.dir), -1);
    return f;
}

static void files_free(files *f)
{
    pw_test_rmrf(f->dir);
    free(f->dir);
    free(f->out);
    free(f->dead);
}

static pw_journal *open_journal(const files *f)
{
    pw_journal_config cfg = { .path = { f->out, f->dead } };
    pw_journal *j = NULL;
    ck_assert_int_eq(pw_journal_open(&cfg, &j), PW_OK);
    return j;
}

static int ignore_line(void *ctx, enum pw_journal_file file, const char *line, size_t len, const pw_line_identity *id)
{
    (void)ctx, (void)file, (void)line, (void)len, (void)id;
    return PW_OK;
}

static void line_for(char *buf, size_t cap, uint64_t seq, size_t pad)
{
    char p[64];
    memset(p, 'x', pad);
    p[pad] = '\0';
    snprintf(buf, cap, "{\"producer\":\"p\",\"run\":1,\"seq\":%llu,\"pad\":\"%s\"}", (unsigned long long)seq, p);
}

static void append_seq(pw_journal *j, enum pw_journal_file file, uint64_t seq)
{
    char line[160];
    line_for(line, sizeof line, seq, seq % 40);
    pw_journal_append(j, file, line, strlen(line));
}

static long file_size(const char *path)
{
    struct stat sb;
    return stat(path, &sb) == 0 ? (long)sb.st_size : -1;
}

static size_t released_n;
static uint64_t released_seq[4096];
static void collect(void *ctx, const pw_journal_ack *acks, size_t n)
{
    (void)ctx;
    for (size_t i = 0; i < n && released_n < PW_ARRAY_LEN(released_seq); i++)
        released_seq[released_n++] = acks[i].seq;
}

/* ---- one test per property ------------------------------------------------ */

START_TEST(test_journal_identity_of_output_and_dead_letter_lines)
{
    files f = files_new();
    pw_journal *j = open_journal(&f);
    pw_line_identity id;
    /* An output line: the record's producer and seq, the run the worker appended last. */
    const char *out = "{\"id\":\"p1-42\",\"seq\":42,\"producer\":\"p1\",\"ts\":1764020000.5,\"run\":9,"
                      "\"worker\":\"w\",\"amount_cents\":1,\"run\":7}";
    ck_assert_int_eq(pw_journal_line_identity(j, out, strlen(out), &id), PW_OK);
    ck_assert_uint_eq(id.seq, 42);
    ck_assert_uint_eq(id.run, 7);
    ck_assert_uint_eq(id.producer_len, 2);
    ck_assert_mem_eq(id.producer, "p1", 2);
    ck_assert(id.ts == 1764020000.5);
    const char *dead = "{\"dead_at\":1.0,\"reason\":\"oversize\",\"detail\":\"x\",\"id\":\"p2-3\",\"producer\":\"p2\","
                       "\"run\":5,\"seq\":3,\"worker\":\"w\",\"raw_len\":1,\"raw_b64\":\"eA==\"}";
    ck_assert_int_eq(pw_journal_line_identity(j, dead, strlen(dead), &id), PW_OK);
    ck_assert_uint_eq(id.seq, 3);
    ck_assert_uint_eq(id.run, 5);
    ck_assert(id.ts == 0);
    const char *none = "{\"dead_at\":1.0,\"id\":null,\"producer\":null,\"run\":null,\"seq\":null}";
    ck_assert_int_eq(pw_journal_line_identity(j, none, strlen(none), &id), PW_EINVAL);
    ck_assert_int_eq(pw_journal_line_identity(j, "{\"producer\":\"p\"", 15, &id), PW_EINVAL);
    pw_journal_close(j);
    files_free(&f);
}
END_TEST

/* bug 3: lines a crashed run wrote but never synced are recovered; a
 * re-sent duplicate of one must not be acked before they are durable.
 * The old sink synced only files it had dirtied itself. */
START_TEST(test_journal_recovered_files_are_synced_before_any_ack)
{
    files f = files_new();
    pw_journal *j = open_journal(&f);
    uint64_t lines = 0;
    ck_assert_int_eq(pw_journal_recover(j, ignore_line, NULL, &lines), PW_OK);
    track(0, f.out);
    track(1, f.dead);
    for (uint64_t seq = 0; seq < 10; seq++)
        append_seq(j, seq % 3 ? PW_JOURNAL_OUT : PW_JOURNAL_DEAD, seq);
    ck_assert_int_eq(pw_journal_write(j), PW_OK);
    pw_journal_close(j); /* crash after write, before any sync */
    ck_assert_int_eq(tracked[0].durable, 0);

    j = open_journal(&f);
    lines = 0;
    unsigned before = fdatasync_calls;
    ck_assert_int_eq(pw_journal_recover(j, ignore_line, NULL, &lines), PW_OK);
    ck_assert_uint_eq(lines, 10);
    ck_assert_uint_ge(fdatasync_calls - before, 2);
    ck_assert_int_eq(tracked[0].durable, file_size(f.out));
    ck_assert_int_eq(tracked[1].durable, file_size(f.dead));
    ck_assert_uint_eq(pw_journal_synced(j, PW_JOURNAL_OUT), (uint64_t)file_size(f.out));
    /* The duplicate of seq 4 is acked at once: what covers it is durable. */
    ck_assert_int_eq(pw_journal_queue_ack(j, NULL, 4), PW_OK);
    released_n = 0;
    ck_assert_uint_eq(pw_journal_release(j, collect, NULL), 1);
    pw_journal_close(j);
    files_free(&f);
}
END_TEST

START_TEST(test_journal_ack_waits_for_a_covering_sync)
{
    files f = files_new();
    pw_journal *j = open_journal(&f);
    uint64_t lines = 0;
    ck_assert_int_eq(pw_journal_recover(j, ignore_line, NULL, &lines), PW_OK);
    ck_assert_int_eq(pw_journal_syncer_start(j), PW_OK);
    append_seq(j, PW_JOURNAL_OUT, 0);
    ck_assert_int_eq(pw_journal_queue_ack(j, NULL, 0), PW_OK);
    released_n = 0;
    ck_assert_uint_eq(pw_journal_release(j, collect, NULL), 0); /* buffered */
    ck_assert_int_eq(pw_journal_write(j), PW_OK);
    ck_assert_uint_eq(pw_journal_release(j, collect, NULL), 0); /* written, not synced */
    ck_assert(pw_journal_request_sync(j));
    append_seq(j, PW_JOURNAL_DEAD, 1); /* arrives while the sync runs */
    ck_assert_int_eq(pw_journal_queue_ack(j, NULL, 1), PW_OK);
    ck_assert_int_eq(pw_journal_write(j), PW_OK);
    ck_assert_int_eq(pw_journal_wait_syncer(j), PW_OK);
    ck_assert_uint_eq(pw_journal_release(j, collect, NULL), 1); /* only the covered one */
    ck_assert_uint_eq(released_seq[0], 0);
    ck_assert(pw_journal_request_sync(j));
    ck_assert_int_eq(pw_journal_wait_syncer(j), PW_OK);
    ck_assert_uint_eq(pw_journal_release(j, collect, NULL), 1);
    ck_assert_uint_eq(released_seq[1], 1);
    pw_journal_close(j);
    files_free(&f);
}
END_TEST

START_TEST(test_journal_recovery_cuts_a_torn_last_line)
{
    files f = files_new();
    FILE *fp = fopen(f.out, "w");
    fputs("{\"producer\":\"p\",\"seq\":1}\n{\"producer\":\"p\",\"se", fp);
    fclose(fp);
    pw_journal *j = open_journal(&f);
    uint64_t lines = 0;
    ck_assert_int_eq(pw_journal_recover(j, ignore_line, NULL, &lines), PW_OK);
    ck_assert_uint_eq(lines, 1);
    ck_assert_int_eq(file_size(f.out), (long)strlen("{\"producer\":\"p\",\"seq\":1}\n"));
    pw_journal_close(j);
    files_free(&f);
}
END_TEST

/* bug 9: a second sink on the same files used to interleave its writes
 * with the first one's. */
START_TEST(test_journal_second_opener_is_refused_naming_file_and_holder)
{
    files f = files_new();
    pw_journal *j = open_journal(&f);
    int pipefd[2];
    ck_assert_int_eq(pipe(pipefd), 0);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) { /* fcntl locks are per process: the other sink is another process */
        pw_log_init("sink", "second", PW_LOG_INFO, pipefd[1]);
        pw_journal_config cfg = { .path = { f.out, f.dead } };
        pw_journal *k = NULL;
        _exit(pw_journal_open(&cfg, &k) == PW_EIO && !k ? 0 : 1);
    }
    close(pipefd[1]);
    int status = 0;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    char buf[4096] = { 0 };
    ssize_t n = read(pipefd[0], buf, sizeof buf - 1);
    close(pipefd[0]);
    ck_assert_int_gt(n, 0);
    char pid[32];
    snprintf(pid, sizeof pid, "\"holder_pid\":%d", (int)getpid());
    ck_assert_msg(strstr(buf, f.out) && strstr(buf, pid) && strstr(buf, "locked"), "log: %s", buf);
    pw_journal_close(j);
    /* Released with the holder: the next sink may open them. */
    j = open_journal(&f);
    pw_journal_close(j);
    files_free(&f);
}
END_TEST

/* Disk full mid-write: the partial line is cut, nothing is acked, the
 * journal refuses to go on; a restart with space back recovers whole lines. */
START_TEST(test_journal_disk_full_cuts_the_partial_line_and_acks_nothing)
{
    files f = files_new();
    pw_journal *j = open_journal(&f);
    uint64_t lines = 0;
    ck_assert_int_eq(pw_journal_recover(j, ignore_line, NULL, &lines), PW_OK);
    for (uint64_t seq = 0; seq < 5; seq++) {
        append_seq(j, PW_JOURNAL_OUT, seq);
        pw_journal_queue_ack(j, NULL, seq);
    }
    ck_assert_int_eq(pw_journal_sync(j), PW_OK);
    long synced = file_size(f.out);
    for (uint64_t seq = 5; seq < 50; seq++) {
        append_seq(j, PW_JOURNAL_OUT, seq);
        pw_journal_queue_ack(j, NULL, seq);
    }
    struct stat sb;
    stat(f.out, &sb);
    write_fail_ino = sb.st_ino;
    write_fail_after = 700; /* some whole lines, then half of one */
    ck_assert_int_eq(pw_journal_write(j), PW_EIO);
    write_fail_ino = 0;
    ck_assert(pw_journal_failed(j));
    released_n = 0;
    ck_assert_uint_eq(pw_journal_release(j, collect, NULL), 0);
    ck_assert_int_eq(pw_journal_sync(j), PW_EIO);
    long size = file_size(f.out);
    ck_assert_int_gt(size, synced);
    ck_assert_int_lt(size, synced + 700);
    char *text = pw_test_read_file(f.out);
    ck_assert(text[size - 1] == '\n');
    free(text);
    pw_journal_close(j);
    j = open_journal(&f);
    lines = 0;
    ck_assert_int_eq(pw_journal_recover(j, ignore_line, NULL, &lines), PW_OK);
    ck_assert_uint_gt(lines, 5);
    ck_assert_int_eq(file_size(f.out), size); /* nothing torn to cut */
    pw_journal_close(j);
    files_free(&f);
}
END_TEST

/* ---- the model ------------------------------------------------------------ */

#define J_IDS 300

typedef struct jmodel {
    pw_journal *j;
    files f;
    bool known[J_IDS];            /* the harness sink's dedup: ids in the files */
    bool acked[J_IDS];            /* ever acknowledged */
    int where[J_IDS];             /* file of the id's line */
    uint64_t end[J_IDS];          /* end offset of the id's line */
    uint64_t offset[PW_JOURNAL_FILES];
    int count[J_IDS];             /* occurrences seen by the last recovery */
    uint64_t seed;
    bool threaded;
} jmodel;

static int model_line(void *ctx, enum pw_journal_file file, const char *line, size_t len, const pw_line_identity *id)
{
    jmodel *m = ctx;
    (void)line;
    m->offset[file] += len + 1;
    MUST(id && id->seq < J_IDS, "seed %llu: a recovered line without identity", (unsigned long long)m->seed);
    m->count[id->seq]++;
    m->known[id->seq] = true;
    m->where[id->seq] = file;
    m->end[id->seq] = m->offset[file];
    return PW_OK;
}

static void model_open(jmodel *m)
{
    m->j = open_journal(&m->f);
    memset(m->count, 0, sizeof m->count);
    memset(m->known, 0, sizeof m->known);
    m->offset[0] = m->offset[1] = 0;
    uint64_t lines = 0;
    (void)lines;
    MUST(pw_journal_recover(m->j, model_line, m, &lines) == PW_OK, "seed %llu: recover", (unsigned long long)m->seed);
    for (int i = 0; i < J_IDS; i++) {
        MUST(m->count[i] <= 1, "seed %llu: id %d appears %d times after recovery", (unsigned long long)m->seed, i,
             m->count[i]);
        MUST(!m->acked[i] || m->count[i] == 1, "seed %llu: acknowledged id %d lost", (unsigned long long)m->seed, i);
    }
    for (int i = 0; i < PW_JOURNAL_FILES; i++) {
        const char *path = i ? m->f.dead : m->f.out;
        MUST(file_size(path) == (long)m->offset[i], "seed %llu: a torn line was left in %s",
             (unsigned long long)m->seed, path);
    }
    if (m->threaded)
        MUST(pw_journal_syncer_start(m->j) == PW_OK, "syncer");
}

static void model_release(void *ctx, const pw_journal_ack *acks, size_t n)
{
    jmodel *m = ctx;
    for (size_t i = 0; i < n; i++) {
        uint64_t id = acks[i].seq;
        int file = m->where[id];
        off_t durable = __atomic_load_n(&tracked[file].durable, __ATOMIC_SEQ_CST);
        MUST(m->end[id] <= (uint64_t)durable,
             "seed %llu: ack of id %llu released with its line (end %llu) beyond the durable %lld",
             (unsigned long long)m->seed, (unsigned long long)id, (unsigned long long)m->end[id],
             (long long)durable);
        m->acked[id] = true;
    }
}

static void power_loss(jmodel *m, uint64_t *rng)
{
    for (int i = 0; i < PW_JOURNAL_FILES; i++) {
        const char *path = i ? m->f.dead : m->f.out;
        long size = file_size(path), keep = tracked[i].durable;
        if (size > keep)
            keep += (long)(pw_test_rng(rng) % (uint64_t)(size - keep + 1));
        MUST(truncate(path, keep) == 0, "truncate");
        tracked[i].durable = keep;
    }
}

static void model_run(uint64_t seed)
{
    static jmodel m;
    memset(&m, 0, sizeof m);
    m.seed = seed;
    uint64_t rng = seed;
    m.threaded = pw_test_rng(&rng) % 2;
    m.f = files_new();
    model_open(&m);
    track(0, m.f.out);
    track(1, m.f.dead);
    int steps = 100 + (int)(pw_test_rng(&rng) % 300);
    for (int step = 0; step < steps; step++) {
        uint64_t r = pw_test_rng(&rng) % 100;
        if (r < 55) { /* arrivals: new ones and re-sent duplicates */
            uint64_t id = pw_test_rng(&rng) % J_IDS;
            if (!m.known[id]) {
                enum pw_journal_file file = pw_test_rng(&rng) % 4 ? PW_JOURNAL_OUT : PW_JOURNAL_DEAD;
                append_seq(m.j, file, id);
                m.known[id] = true;
                m.where[id] = file;
                m.end[id] = pw_journal_appended(m.j, file);
            }
            pw_journal_queue_ack(m.j, NULL, id);
        } else if (r < 70) {
            MUST(pw_journal_write(m.j) == PW_OK, "write");
        } else if (r < 80) {
            if (m.threaded) {
                pw_journal_write(m.j);
                pw_journal_request_sync(m.j);
                if (pw_test_rng(&rng) % 2)
                    MUST(pw_journal_wait_syncer(m.j) == PW_OK, "wait");
            } else {
                MUST(pw_journal_sync(m.j) == PW_OK, "sync");
            }
        } else if (r < 92) {
            if (m.threaded)
                MUST(pw_journal_sync_done(m.j) == PW_OK, "sync done");
            pw_journal_release(m.j, model_release, &m);
        } else { /* crash: the process dies (buffers lost), maybe the machine too */
            if (m.threaded && pw_test_rng(&rng) % 2)
                pw_journal_wait_syncer(m.j); /* the syncer finished its fdatasync before the kill */
            pw_journal_close(m.j);
            if (pw_test_rng(&rng) % 2)
                power_loss(&m, &rng);
            model_open(&m);
        }
    }
    pw_journal_close(m.j);
    power_loss(&m, &rng);
    model_open(&m);
    pw_journal_close(m.j);
    files_free(&m.f);
}

START_TEST(test_journal_survives_random_crashes_and_power_losses)
{
    pw_test_model_runs("test_journal", 250, 40, model_run);
}
END_TEST

int main(void)
{
    pw_log_init("sink", "test", PW_LOG_ERROR, 2);
    Suite *s = suite_create("journal");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, test_journal_identity_of_output_and_dead_letter_lines);
    tcase_add_test(tc, test_journal_recovered_files_are_synced_before_any_ack);
    tcase_add_test(tc, test_journal_ack_waits_for_a_covering_sync);
    tcase_add_test(tc, test_journal_recovery_cuts_a_torn_last_line);
    tcase_add_test(tc, test_journal_second_opener_is_refused_naming_file_and_holder);
    tcase_add_test(tc, test_journal_disk_full_cuts_the_partial_line_and_acks_nothing);
    tcase_add_test(tc, test_journal_survives_random_crashes_and_power_losses);
    suite_add_tcase(s, tc);
    return pw_test_run(s);
}
