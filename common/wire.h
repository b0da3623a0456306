/*
 * wire.h: framing of ZeroMQ messages between the stages.
 *
 * docs/contract.md "Wire": several records travel per message; batching is
 * what makes the pipeline fast (fewer messages, fewer wake-ups).  Every
 * record travels with an envelope that names its stream (producer name and
 * run, a number the producer picks at start so that a restarted producer's
 * records are new records) and its sequence number.  The envelope is what
 * the sink deduplicates and acknowledges on, so even a record whose bytes
 * are garbage (a fault) is delivered exactly once.
 *
 * Batch message (producer -> worker, worker -> sink), little-endian:
 *   "PWB1" | u8 producer_len | producer | u64 run | u32 count |
 *   count x ( u64 seq | u8 flags | f64 ts | u32 len | len bytes )
 * producer -> worker: flags 0, ts = event time, bytes = the record.
 * worker -> sink: flags PW_ITEM_OUTPUT or PW_ITEM_DEAD, ts = event time
 * (0 when unknown), bytes = the finished NDJSON line without newline.
 *
 * A message that does not start with "PWB1" is a bare record (contract: one
 * message, one record) from some other client; workers accept it without
 * an envelope.
 *
 * Ack message (sink PUB -> producer SUB, topic = producer name + '\0'):
 *   producer | '\0' | "PWA1" | u64 run | u32 count | count x ( u64 first | u32 n )
 * acknowledging seqs first..first+n-1 of that stream.
 *
 * Greeting (sink PUB -> producer SUB, answer to each subscription):
 *   producer | '\0' | "PWG1" | u64 dedup_window
 * Until a producer has seen it, its acks would be dropped (PUB sends
 * nothing to a subscriber it has not heard from); dedup_window is the
 * number of seqs the sink remembers above a stream's contiguous mark, and
 * the producer never lets its in-flight span exceed it.
 *
 * Credit (worker DEALER -> producer ROUTER):
 *   "PWC1" | u32 grant | u32 outstanding
 * grant: records the worker asks for on top of what it asked before;
 * outstanding: the worker's own count, after this grant, of records it has
 * asked this producer for and not yet received.  A producer that does not
 * know the worker (it restarted, or had declared the worker lost) starts
 * from `outstanding`; one that does adds `grant`.  A worker sends one at
 * least every PW_WIRE_HEARTBEAT_MS, with grant 0 when it has nothing to ask.
 *
 * Readers check every length against the message size: a truncated or
 * lying message yields PW_EINVAL, never a read past the end.
 * Writers append to a reusable pw_buf (no allocation once warm).
 */
#ifndef PW_WIRE_H
#define PW_WIRE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "buf.h"

#define PW_WIRE_PRODUCER_MAX 64

/* The largest producer -> worker message, and so the byte limit of a batch
 * the producer builds (it stops adding records before crossing it) and the
 * ZMQ_MAXMSGSIZE of the worker's input sockets.  A single record larger
 * than this (only a hostile client sends one) makes the receiving worker
 * drop that peer's connection; it never reaches a pipewatch producer. */
#define PW_WIRE_MAX_MESSAGE (16u * 1024 * 1024)
/* The largest worker -> sink message.  A worker ends a result batch once it
 * reaches PW_WIRE_MAX_MESSAGE; the item that crossed the limit is at most
 * one dead letter of a whole input message: its bytes in base64 (4/3) plus
 * the JSON around them.  So MAX + 4/3 MAX + 64 KiB < 3 MAX. */
#define PW_WIRE_MAX_RESULT (3u * PW_WIRE_MAX_MESSAGE)

enum pw_item_flags {
    PW_ITEM_RECORD = 0,
    PW_ITEM_OUTPUT = 1,
    PW_ITEM_DEAD = 2,
};

typedef struct pw_batch_writer {
    pw_buf *buf;
    size_t count_offset;
    uint32_t count;
} pw_batch_writer;

/* Resets buf and writes the header.  producer is at most PW_WIRE_PRODUCER_MAX bytes. */
void pw_batch_begin(pw_batch_writer *w, pw_buf *buf, const char *producer, size_t producer_len,
                    uint64_t run);
void pw_batch_add(pw_batch_writer *w, uint64_t seq, uint8_t flags, double ts,
                  const void *bytes, size_t len);
/* Builds an item in place: item_start writes the item header and returns a
 * mark; the caller appends the item's bytes to w->buf; item_end patches the
 * length.  Saves a copy when the bytes are produced by an encoder. */
size_t pw_batch_item_start(pw_batch_writer *w, uint64_t seq, uint8_t flags, double ts);
void pw_batch_item_end(pw_batch_writer *w, size_t start);
/* Drops an item begun with pw_batch_item_start (and anything appended since). */
void pw_batch_item_cancel(pw_batch_writer *w, size_t start);

typedef struct pw_batch_item {
    uint64_t seq;
    uint8_t flags;
    double ts;
    const char *bytes;
    size_t len;
} pw_batch_item;

typedef struct pw_batch_reader {
    const char *producer;   /* not NUL-terminated */
    size_t producer_len;
    uint64_t run;
    uint32_t count;
    const unsigned char *pos, *end;
    uint32_t read;
} pw_batch_reader;

/* True when the message starts with the batch magic. */
bool pw_batch_is_batch(const void *msg, size_t len);
/* PW_OK or PW_EINVAL (not a batch or truncated header). */
int pw_batch_read_begin(pw_batch_reader *r, const void *msg, size_t len);
/* 1 with *item filled, 0 at the end, PW_EINVAL when the message is corrupt. */
int pw_batch_read_next(pw_batch_reader *r, pw_batch_item *item);
/* True when the message is a batch whose every item is well-framed and
 * nothing follows the last one: check before acting on any item, so a
 * corrupt batch is never half-processed. */
bool pw_batch_valid(const void *msg, size_t len);

typedef struct pw_ack_writer {
    pw_buf *buf;
    size_t count_offset;
    uint32_t count;
    uint64_t last_first;
    uint32_t last_n;
    bool open;
} pw_ack_writer;

void pw_ack_begin(pw_ack_writer *w, pw_buf *buf, const char *producer, size_t producer_len,
                  uint64_t run);
/* Adds one seq; consecutive seqs are merged into one range. */
void pw_ack_add(pw_ack_writer *w, uint64_t seq);
void pw_ack_finish(pw_ack_writer *w);

typedef struct pw_ack_reader {
    const char *producer;
    size_t producer_len;
    uint64_t run;
    uint32_t count;
    const unsigned char *pos, *end;
    uint32_t read;
} pw_ack_reader;

int pw_ack_read_begin(pw_ack_reader *r, const void *msg, size_t len);
/* 1 with a range, 0 at the end, PW_EINVAL when corrupt. */
int pw_ack_read_next(pw_ack_reader *r, uint64_t *first, uint32_t *n);

/* A worker that has sent nothing for this long is taken for lost by the
 * producer, and the records it held are re-sent. */
#define PW_WIRE_HEARTBEAT_MS 500
#define PW_WIRE_WORKER_LOST_MS 5000

void pw_greeting_write(pw_buf *buf, const char *producer, size_t producer_len, uint64_t dedup_window);
/* PW_OK with the fields filled, PW_EINVAL when msg is not a greeting. */
int pw_greeting_read(const void *msg, size_t len, const char **producer, size_t *producer_len,
                     uint64_t *dedup_window);

#define PW_WIRE_CREDIT_LEN 12
void pw_credit_write(pw_buf *buf, uint32_t grant, uint32_t outstanding);
/* PW_OK or PW_EINVAL when msg is not a credit message. */
int pw_credit_read(const void *msg, size_t len, uint32_t *grant, uint32_t *outstanding);

#endif
