/*
 * audit_pg.h: internals of the PostgreSQL store of the audit log, shared
 * by its files: audit_pg.c (open, close, the connections and their
 * reconnection), audit_pg_schema.c (the schema, its version, the check of
 * the whole chain at open), audit_pg_batch.c (what appends keep, and
 * their numbering under the head lock), audit_pg_send.c (the statements
 * of a commit), audit_pg_commit.c (the commit state machine),
 * audit_pg_cursor.c (reading in order), audit_pg_read.c (the cursors'
 * connection and the pages asked of it) and
 * audit_pg_notify.c (LISTEN/NOTIFY). The public face is audit.h: every
 * function there that applies to this store begins with
 * "if (a->pg != NULL) return audit_pg_xxx(...)". Nothing here is part of
 * the store contract.
 */
#ifndef CPX_AUDIT_PG_H
#define CPX_AUDIT_PG_H

#include <stddef.h>
#include <stdint.h>

#include <libpq-fe.h>
#include <openssl/evp.h>
#include <openssl/x509.h>

#include "audit.h"
#include "cpx_limits.h"

#define PG_SCHEMA_VERSION	1
/* The INSERTs, of 1 and of PG_INSERT_N rows, prepared per connection. */
#define PG_INSERT_STMT		"cpx_insert"
#define PG_INSERT_STMT_N	"cpx_insert_n"
#define PG_INSERT_N		32
#define PG_INSERT_COLS		12
#define PG_CONNECT_TIMEOUT	"10"	/* seconds, blocking connects */
#define PG_CONNECT_TIMEOUT_MS	10000	/* the same, asynchronous ones */
#define PG_BACKOFF_MIN_MS	100
#define PG_BACKOFF_MAX_MS	2000
#define PG_COMMIT_WAIT_MS	60000	/* audit_commit gives up */
#define PG_STEP_TIMEOUT_MS	15000	/* a commit in flight gives up */
#define PG_NOTIFY_CHANNEL	"cpx_log"
/* Longest protobuf prefix of seq and time: two tags, two varints. */
#define PG_PREFIX_MAX		22u

/* A connection's state (the writer's, the LISTEN one's). */
enum pg_link {
	PG_DOWN = 0,		/* no connection; retry after retry_at */
	PG_CONNECTING,		/* PQconnectStart done, polling */
	PG_UP
};

/* Where the commit in flight is. */
enum pg_phase {
	PG_IDLE = 0,
	PG_CONNECT,		/* reconnecting first */
	PG_HEAD,		/* BEGIN, head FOR UPDATE, duplicates sent */
	PG_WRITE,		/* INSERT, UPDATE head, NOTIFY, COMMIT sent */
	PG_FAST,		/* all of it at once, on the head as known */
	PG_DONE			/* empty batch: step returns 1 */
};

/* One append of a batch, as kept until its commit numbers it. */
struct pg_entry {
	uint8_t		*body;		/* seq, time 0; NULL:
					 * checkpoint to build */
	size_t		 len;
	int64_t		 time;		/* caller's, or 0 */
	int		 kind;
	char		*alert_id;	/* ALERT_ACCEPTED: key of dedup */
	char		*origin;
	uint8_t		 sha[AUDIT_HASH_LEN];	/* alert bytes */
	char		*peer_country;
	char		*peer_node;
	/* Filled at commit. */
	int		 outcome;	/* audit_outcome; 0: to write */
	uint64_t	 seq;
	int64_t		 rtime;
	uint8_t		*full;		/* the record as stored */
	size_t		 full_len;
	uint8_t		 prev[AUDIT_HASH_LEN];
	uint8_t		 hash[AUDIT_HASH_LEN];
};

struct pg_batch {
	struct pg_entry	*v;
	size_t		 n, cap;
};

/* What a finished batch gave, per append. */
struct pg_out {
	int		 outcome;
	uint64_t	 seq;
	int64_t		 time;
};

/* Where a cursor's next page is (audit_pg_read.c). */
enum pg_ask {
	PG_ASK_NONE = 0,	/* not asked */
	PG_ASK_QUEUED,		/* asked, waiting for the connection */
	PG_ASK_SENT,		/* its query is on the connection */
	PG_ASK_READY,		/* answered: the cursor's res */
	PG_ASK_FAILED		/* the cursor's why says why */
};

struct audit_pg_cursor;

/*
 * The cursors' connection: one query at a time, for the cursors that
 * asked, in the order they asked.
 */
struct pg_reader {
	PGconn		*conn;
	enum pg_link	 state;
	int		 cpoll;		/* last PQconnectPoll */
	int		 async;		/* audit_read_async: never wait */
	int		 flushing;	/* the query is not all sent */
	int		 retried;	/* asks requeued after a loss, once */
	int		 busy;		/* a query is on the connection */
	struct audit_pg_cursor *fly;	/* its cursor; NULL: freed since */
	PGresult	*res;		/* its answer so far */
	struct audit_pg_cursor *first, *last;	/* the queued asks */
	int64_t		 deadline;	/* of the connect or the query */
	int64_t		 retry_at;	/* after a failure: asks fail till */
	char		 why[512];	/* that failure */
};

struct audit_pg {
	char		*dsn;		/* never logged: a password? */
	char		 desc[256];	/* audit_pg_describe(dsn) */
	EVP_PKEY	*key;		/* borrowed; NULL: read-only */
	X509		*cert;		/* borrowed */
	uint8_t		*cert_der;
	size_t		 cert_len;
	char		 broker[CPX_MAX_NODE_NAME + 1]; /* cert CN */
	EVP_MD		*sha256;
	EVP_MD_CTX	*md;
	int		 readonly;

	/* The writer connection (pipeline mode once up). */
	PGconn		*conn;
	enum pg_link	 cstate;
	int		 cpoll;		/* last PQconnectPoll */
	int64_t		 retry_at;	/* monotonic ms */
	int64_t		 backoff;
	char		 why_down[256];	/* last connection error */

	/* The cursors' connection, opened when first needed. */
	struct pg_reader rd;

	/* The LISTEN connection (audit_pg_notify.c). */
	PGconn		*lconn;
	enum pg_link	 lstate;
	int64_t		 lretry_at;	/* or connect deadline */
	int		 ltimer;	/* timerfd: notify fd while down */

	/* The head as last seen (open, our commits). */
	uint64_t	 head_seq;
	uint8_t		 head_hash[AUDIT_HASH_LEN];
	int64_t		 head_time;

	struct pg_batch	 pend;		/* appended, not begun */
	struct pg_batch	 fly;		/* in flight */
	enum pg_phase	 phase;
	int64_t		 deadline;	/* of the phase (mono ms) */
	int		 flushing;	/* PQflush has output pending */
	int		 prepared;	/* PG_INSERT_STMT is ready */
	size_t		 hoff;		/* PREPARE sent first: 1 */
	size_t		 nresults;	/* queries answered */
	size_t		 nexpect;	/* queries sent in this phase */
	int		 head_ok;	/* the head row was read */
	uint64_t	 lock_seq;	/* the head under our lock */
	uint8_t		 lock_hash[AUDIT_HASH_LEN];
	int64_t		 lock_time;
	int		 fast_failed;	/* PG_FAST: the head had moved */
	int		 fast_skip;	/* commits to make the long way */
	int		 rollback;	/* the head phase ends a failed one */
	uint64_t	 others_seq;	/* highest seq others announced */
	uint64_t	 commit_seq;	/* the head after our batch */
	uint8_t		 commit_hash[AUDIT_HASH_LEN];
	int64_t		 commit_time;
	struct pg_out	*done;
	size_t		 ndone, donecap;
	uint64_t	 since_checkpoint;
};

struct audit_pg_cursor {
	struct audit_pg	*pg;
	PGresult	*res;		/* the page being read */
	int		 row, nrows;
	uint64_t	 next_seq;	/* next record wanted */
	uint8_t		 hash[AUDIT_HASH_LEN];	/* chain so far */
	int		 have_hash;
	int64_t		 from_time;	/* > 0: the first page seeks by it */
	uint64_t	 reads;
	enum pg_ask	 ask;		/* of the next page */
	struct audit_pg_cursor *qnext;	/* in the reader's queue */
	char		 why[512];	/* PG_ASK_FAILED */
};

/* --- audit_pg.c ------------------------------------------------------- */

/* "audit: postgresql (desc): " + fmt into err; returns -1. */
int	audit_pg_err(const struct audit_pg *p, char *err, size_t errlen,
	    const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* PQerrorMessage without its trailing newline, into buf. */
const char *audit_pg_msg(PGconn *c, char *buf, size_t len);
/* Open a blocking connection (cursors, open checks). NULL with err[]. */
PGconn	*audit_pg_connect(struct audit_pg *p, const char *what, char *err,
	    size_t errlen);
/* Start an asynchronous connection. NULL if libpq cannot even start. */
PGconn	*audit_pg_connect_start(struct audit_pg *p);
/* 0 if c was closed by the server (non-blocking check), else 1. */
int	audit_pg_alive(PGconn *c);
/* The writer connection is lost or unusable: drop it, back off. */
void	audit_pg_drop(struct audit_pg *p, const char *why);
/* Now, monotonic ms. */
int64_t	audit_pg_now(void);

/* --- audit_pg_schema.c ------------------------------------------------ */

/*
 * On connection c: create the schema if it is missing (create != 0) and
 * check its version. 0, or -1 with err[].
 */
int	audit_pg_schema_ensure(struct audit_pg *p, PGconn *c, int create,
	    char *err, size_t errlen) __attribute__((warn_unused_result));
/*
 * Check every record, checkpoint and the head row in one snapshot; set
 * p->head_*. 0, or -1 with err[] naming the seq.
 */
int	audit_pg_check_chain(struct audit_pg *p, PGconn *c, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
/*
 * Check row i of a binary result (seq, time, kind, prev_hash, hash,
 * record): numbers, lengths, the chain (against prev if not NULL; the
 * row's own prev_hash otherwise) and the record's own seq, time and
 * kind. On 0: *recp (owned by the caller), hash the chain after it,
 * *len and leaf (chain inputs). -1 with why[] (no prefix).
 */
int	audit_pg_row(EVP_MD_CTX *md, const PGresult *r, int i,
	    uint64_t want_seq, const uint8_t *prev, Cpx__AuditRecord **recp,
	    uint8_t hash[AUDIT_HASH_LEN], uint32_t *len,
	    uint8_t leaf[AUDIT_HASH_LEN], char *why, size_t whylen)
	    __attribute__((warn_unused_result));

/* --- audit_pg_batch.c ------------------------------------------------- */

/* Free the entries of b (b->n 0 after; the array is kept). */
void	audit_pg_batch_clear(struct pg_batch *b);
/* audit_append on the PostgreSQL store: *seq_out 0 (audit.h). */
int	audit_pg_append(struct audit_pg *p, Cpx__AuditRecord *rec,
	    uint64_t *seq_out) __attribute__((warn_unused_result));
/* Queue a checkpoint, built and signed when the batch is numbered. */
int	audit_pg_checkpoint(struct audit_pg *p)
	    __attribute__((warn_unused_result));
/*
 * Under the head lock (p->lock_*): number, time, build and chain the
 * batch in flight, skipping duplicates; *nrows the rows to insert,
 * p->commit_* the head after them. 0, or -1 (memory, signing).
 */
int	audit_pg_number(struct audit_pg *p, size_t *nrows)
	    __attribute__((warn_unused_result));
/*
 * The answers of the head phase, each a binary result: the head row
 * (into p->lock_*), the record it names (must have its hash), the
 * batch's alerts already on record (their entries become duplicates).
 * 0, or -1 with why[] (no prefix).
 */
int	audit_pg_take_head(struct audit_pg *p, const PGresult *r, char *why,
	    size_t whylen) __attribute__((warn_unused_result));
int	audit_pg_take_last(struct audit_pg *p, const PGresult *r, char *why,
	    size_t whylen) __attribute__((warn_unused_result));
int	audit_pg_take_dups(struct audit_pg *p, const PGresult *r, char *why,
	    size_t whylen) __attribute__((warn_unused_result));

/* --- audit_pg_send.c -------------------------------------------------- */

/* PQflush; p->flushing says whether output is still pending. 0 or -1. */
int	audit_pg_flush(struct audit_pg *p)
	    __attribute__((warn_unused_result));
/* Queue the head phase of p->fly, and sync. 0, or -1 (libpq, memory). */
int	audit_pg_send_head(struct audit_pg *p)
	    __attribute__((warn_unused_result));
/* Number p->fly, queue the write phase, and sync. 0, or -1. */
int	audit_pg_send_write(struct audit_pg *p)
	    __attribute__((warn_unused_result));
/*
 * The whole commit in one round trip, p->fly numbered on the head as
 * this store last knew it (audit_pg_commit.c: when it may): BEGIN, the
 * head moved only if it is still that one (else an error aborts it),
 * the rows, NOTIFY, COMMIT, and sync. 0, 1 if the batch has no row to
 * write (take the long way), or -1.
 */
int	audit_pg_send_fast(struct audit_pg *p)
	    __attribute__((warn_unused_result));

/* --- audit_pg_commit.c ------------------------------------------------ */

int	audit_pg_begin(struct audit_pg *p, int force, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
int	audit_pg_commit_fd(const struct audit_pg *p, short *events);
int	audit_pg_step(struct audit_pg *p, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
int	audit_pg_commit(struct audit_pg *p, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
int	audit_pg_outcome(const struct audit_pg *p, size_t i, uint64_t *seq,
	    int64_t *time);

/* --- audit_pg_cursor.c ------------------------------------------------ */

struct audit_pg_cursor *audit_pg_cursor_new(struct audit_pg *p,
	    uint64_t from_seq, int64_t from_time, char *err, size_t errlen);
int	audit_pg_cursor_next(struct audit_pg_cursor *c,
	    Cpx__AuditRecord **recp, uint32_t *len, uint8_t *leaf, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
void	audit_pg_cursor_free(struct audit_pg_cursor **cp);

/* --- audit_pg_read.c -------------------------------------------------- */

/*
 * Ask the next page for c (c->ask becomes QUEUED, then SENT, then READY
 * or FAILED), and drive the asks as far as they go now.
 */
void	audit_pg_read_ask(struct audit_pg *p, struct audit_pg_cursor *c);
/* c goes away: out of the queue; an answer on its way is dropped. */
void	audit_pg_read_cancel(struct audit_pg *p, struct audit_pg_cursor *c);
/* Wait (blocking) until c's ask is answered or failed. */
void	audit_pg_read_wait(struct audit_pg *p, struct audit_pg_cursor *c);
/* audit.h: audit_read_step, audit_read_fd. */
void	audit_pg_read_step(struct audit_pg *p);
int	audit_pg_read_fd(const struct audit_pg *p, short *events);
/* The cursors use c, up already (a read-only open's connection). */
void	audit_pg_read_adopt(struct audit_pg *p, PGconn *c);
void	audit_pg_read_close(struct audit_pg *p);

/* --- audit_pg_notify.c ------------------------------------------------ */

/* Open the LISTEN connection (blocking: at open). 0 or -1 with err[]. */
int	audit_pg_listen_open(struct audit_pg *p, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
/* Drive a lost LISTEN connection back (non-blocking; any time). */
void	audit_pg_listen_poll(struct audit_pg *p);
int	audit_pg_notify_fd(const struct audit_pg *p);
uint64_t audit_pg_notify_drain(struct audit_pg *p);

/* --- audit_pg.c: the public entry points audit.h dispatches to ------- */

int	audit_pg_seal(struct audit_pg *p, char *err, size_t errlen)
	    __attribute__((warn_unused_result));
void	audit_pg_free(struct audit_pg **pp);

#endif
