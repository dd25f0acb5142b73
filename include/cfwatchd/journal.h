/*
 * The incident journal: an append-only file of JSON lines in the state directory, one record
 * per line, each with a sequence number. The daemon appends (and fsyncs) the record of every
 * incident transition before announcing it, and source positions with the transitions and
 * every second; the snapshot (state.json) records the last sequence it covers, and each
 * snapshot rotates the journal (journal -> journal.1) so that the previous snapshot generation
 * plus journal.1 plus journal still describe everything.
 *
 * Replay reads journal.1 and then journal, line by line, and hands every record with a sequence
 * above the snapshot's to the caller in order. A line that does not parse (a write cut by a
 * power cut, a damaged block) is skipped and counted; a torn last line is cut off when the
 * journal is opened for appending, so that the next record starts on a line of its own.
 */
#ifndef CFWATCHD_JOURNAL_H
#define CFWATCHD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "cfwatchd/common.h"

#define CFW_JOURNAL_FILE "journal"
#define CFW_JOURNAL_PREV "journal.1"
/* A longer line is not a record of ours: skipped at replay, refused at append. */
#define CFW_JOURNAL_LINE_MAX (4u * 1024u * 1024u)
/* Past this size the owner should take a snapshot (which empties the journal). */
#define CFW_JOURNAL_COMPACT_BYTES (32ull * 1024u * 1024u)

struct cfw_journal;

struct cfw_journal_replay {
    uint64_t last_seq; /* highest sequence seen in either file (0: none) */
    size_t applied;    /* records handed to the callback */
    size_t damaged;    /* lines that did not parse or had no sequence */
    size_t files;      /* files read (0, 1 or 2) */
};

/* Called for each record newer than the snapshot, in order. */
typedef void (*cfw_journal_record_fn)(const json_t *rec, uint64_t seq, void *arg);

/*
 * Reads dir/journal.1 (when with_prev) and dir/journal and calls fn for every record whose
 * sequence is above after_seq and above every sequence before it. Missing files are empty.
 * Returns 0, or -1 with err set when a file exists but cannot be read (what was read is kept).
 */
int cfw_journal_replay(const char *dir, uint64_t after_seq, bool with_prev,
                       cfw_journal_record_fn fn, void *arg, struct cfw_journal_replay *out,
                       struct cfw_err *err);

/*
 * Opens dir/journal for appending (created mode 0600), cutting a torn last line. Records get
 * sequences from next_seq on. NULL with err set.
 */
struct cfw_journal *cfw_journal_open(const char *dir, uint64_t next_seq, struct cfw_err *err);
/* Closes the file (NULL accepted). */
void cfw_journal_close(struct cfw_journal *j);

/*
 * Appends rec (a JSON object; "seq" is set on it) as one line, fsynced when sync. Returns the
 * record's sequence, or 0 with err set (the journal stays usable: the next append retries).
 */
uint64_t cfw_journal_append(struct cfw_journal *j, json_t *rec, bool sync, struct cfw_err *err);
/* The last sequence given out (0 before the first). */
uint64_t cfw_journal_seq(const struct cfw_journal *j);
/* Bytes in the current file. */
uint64_t cfw_journal_bytes(const struct cfw_journal *j);
/* Appends that failed so far. */
uint64_t cfw_journal_failures(const struct cfw_journal *j);

/*
 * After a snapshot covering cfw_journal_seq(): renames journal to journal.1 (replacing the
 * older one) and starts an empty journal. 0, or -1 with err set (the current file stays open).
 */
int cfw_journal_rotate(struct cfw_journal *j, struct cfw_err *err);

#endif
