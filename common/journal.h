/*
 * journal.h: the sink's durability: its two append-only NDJSON files
 * (output and dead letters), their recovery, and the acks they hold back.
 *
 * THE RULE this module keeps: an ack is released only after a sync that
 * covers its line.  Every pending ack records, when it is queued, the end
 * of everything appended to both files so far (its own line, or for a
 * duplicate the earlier copy, which lies before that end); it is released
 * once the synced length of both files has reached those ends.  Recovery
 * fdatasyncs both recovered files (and their directory when a file was
 * created) before it returns, so a re-sent duplicate of a line recovered
 * from a previous run's unsynced tail is never acknowledged on the
 * strength of a sync that did not cover that tail.  With
 * PW_JOURNAL_SYNC_NEVER (--fsync never) a "sync" is the write(2) itself:
 * acks then mean "in the page cache", which survives a process crash, not
 * a power loss.  The policy of WHEN to sync (pw_journal_tick) lives here
 * too: always = whenever the syncer is idle, batch = at most every
 * interval.
 *
 * Files: opened O_APPEND, created 0640, each locked for writing (fcntl
 * F_SETLK, process-owned) so that a second sink on the same files fails
 * at open with a log line naming the file and the holder's pid.
 *
 * Recovery: every complete line is passed to a callback with its identity
 * (pw_journal_line_identity, the one definition of "which record is this
 * line"); a torn last line (a crash mid-write) is cut.
 *
 * Failure: a write or sync error (ENOSPC, EIO, ...) is logged with the
 * file and errno text, a partly written line is cut back to the last
 * complete line (the files stay repairable: every line whole), the journal
 * turns failed (later writes and syncs return PW_EIO) and nothing pending
 * is released.  The sink then exits 1: an orchestrator restart and the
 * StageDown alert beat silent retrying against a full disk, and the
 * producers re-send everything unacknowledged to the restarted sink.
 *
 * Threads: everything is called from one thread (the sink's loop), except
 * that the syncer thread started by pw_journal_syncer_start runs
 * fdatasync and reports through an eventfd (pw_journal_event_fd) that the
 * loop polls; pw_journal_sync is the same work done synchronously (tests,
 * shutdown).  Buffers: appends are buffered in memory until
 * pw_journal_write; the caller bounds them (pw_journal_buffered).
 *
 * Owns its fds, buffers, pending acks and thread; pw_journal_close frees
 * everything WITHOUT writing what is buffered (the same as a crash, for
 * what has not been written).
 */
#ifndef PW_JOURNAL_H
#define PW_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum pw_journal_file { PW_JOURNAL_OUT, PW_JOURNAL_DEAD, PW_JOURNAL_FILES };

typedef struct pw_journal pw_journal;

enum pw_journal_policy { PW_JOURNAL_SYNC_ALWAYS, PW_JOURNAL_SYNC_BATCH, PW_JOURNAL_SYNC_NEVER };

typedef struct pw_journal_config {
    const char *path[PW_JOURNAL_FILES]; /* output, dead letters */
    enum pw_journal_policy policy;      /* default (0): always */
    uint64_t interval_ms;               /* batch: least time between two syncs */
} pw_journal_config;

/* Opens (creating) and locks both files.  PW_OK with *out set, PW_EIO
 * (cannot open, or another process holds the lock: logged). */
int pw_journal_open(const pw_journal_config *cfg, pw_journal **out);
void pw_journal_close(pw_journal *j);

/* The identity of a written line, used by recovery and nothing else:
 *   output line (a worker's pw_record_transform): the record's own
 *     "producer" (string) and "seq" (integer >= 0), and "run" as the
 *     worker appended it (the last "run" key: the worker appends it after
 *     the record's own keys); "ts" (number) is the event time;
 *   dead letter (pw_record_dead_letter): the envelope's "producer", "run"
 *     and "seq"; no event time (ts 0).
 * A line without a string producer and an integer seq (a dead letter of a
 * record without an envelope) has no identity: PW_EINVAL.  A missing run
 * is 0.  These are the same (producer, run, seq) the live path dedups on:
 * the envelope's, which the worker guarantees a valid record repeats.
 * producer points into the journal's parse tree, valid until the next call. */
typedef struct pw_line_identity {
    const char *producer;
    size_t producer_len;
    uint64_t run, seq;
    double ts;
} pw_line_identity;
int pw_journal_line_identity(pw_journal *j, const char *line, size_t len, pw_line_identity *id);

/* Called for every complete line in file order; id NULL when the line has
 * none.  A non-PW_OK return stops recovery with that status. */
typedef int (*pw_journal_line_fn)(void *ctx, enum pw_journal_file file, const char *line, size_t len,
                                  const pw_line_identity *id);
/* Reads both files (output first), cuts a torn last line, fdatasyncs both
 * (and the directory of a file this open created).  Must be called once,
 * before anything is appended.  *lines: complete lines seen. */
int pw_journal_recover(pw_journal *j, pw_journal_line_fn fn, void *ctx, uint64_t *lines);

/* Buffers one line (a '\n' is added; line must not contain one). */
void pw_journal_append(pw_journal *j, enum pw_journal_file file, const char *line, size_t len);
size_t pw_journal_buffered(const pw_journal *j);
/* Queues an ack for (stream, seq), released once everything appended so
 * far is synced.  stream is the caller's (a pw_dedup_stream), never
 * dereferenced here; it must outlive the ack. */
typedef struct pw_journal_ack {
    void *stream;
    uint64_t seq;
    uint64_t need[PW_JOURNAL_FILES];
} pw_journal_ack;
int pw_journal_queue_ack(pw_journal *j, void *stream, uint64_t seq);
size_t pw_journal_pending_acks(const pw_journal *j);

/* Writes the buffers (dead letters first).  PW_OK, PW_ENOMEM (a buffer
 * could not grow: lines lost before reaching a file; nothing of theirs is
 * acked), or PW_EIO (failed, see above). */
int pw_journal_write(pw_journal *j);
/* pw_journal_write, then fdatasync of each file with unsynced bytes, on
 * this thread.  Not while the syncer thread has a request running. */
int pw_journal_sync(pw_journal *j);

/* The syncer thread and its eventfd (readable when a request finished). */
int pw_journal_syncer_start(pw_journal *j);
int pw_journal_event_fd(const pw_journal *j);
/* Hands the syncer "make durable what is written so far" when it is idle
 * and something written is not synced; returns true when a request
 * started.  (With SYNC_NEVER the write already made them "durable".) */
bool pw_journal_request_sync(pw_journal *j);
/* The policy: requests a sync when one is due (always: the syncer is idle;
 * batch: interval_ms since the last request).  Returns how long the loop
 * may sleep before a sync falls due, at most max_ms. */
long pw_journal_tick(pw_journal *j, uint64_t now_ns, long max_ms);
bool pw_journal_syncing(const pw_journal *j);
/* After the eventfd turned readable (harmless otherwise): PW_OK, or
 * PW_EIO when the sync failed (logged; the journal is failed). */
int pw_journal_sync_done(pw_journal *j);
/* Waits for a running request to finish; PW_OK or PW_EIO. */
int pw_journal_wait_syncer(pw_journal *j);

/* Calls fn once with the prefix of pending acks covered by the synced
 * lengths (if any) and forgets them.  Nothing after a failure. */
typedef void (*pw_journal_release_fn)(void *ctx, const pw_journal_ack *acks, size_t n);
size_t pw_journal_release(pw_journal *j, pw_journal_release_fn fn, void *ctx);

/* Byte lengths per file: appended (incl. buffered), written, synced. */
uint64_t pw_journal_appended(const pw_journal *j, enum pw_journal_file file);
uint64_t pw_journal_written(const pw_journal *j, enum pw_journal_file file);
uint64_t pw_journal_synced(const pw_journal *j, enum pw_journal_file file);
bool pw_journal_failed(const pw_journal *j);
const char *pw_journal_path(const pw_journal *j, enum pw_journal_file file);

#endif
