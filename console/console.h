/*
 * console.h: the context of cpx-console, shared by its two threads.
 *
 * The broker thread (console_broker.c, main's thread) owns the one
 * cpx_client session: it alone calls the client library. The HTTP side
 * (console_http.c and its handlers, libmicrohttpd's threads, one per
 * connection) never touches the client: it reads the ring of recent
 * alerts and the session state, and hands publish and replay requests
 * over as jobs, all under the one mutex below, and waits on the
 * condition variable for their outcome. Everything is bounded: the ring, the job queue, the SSE
 * clients, the sessions, the request bodies.
 */
#ifndef CPX_CONSOLE_H
#define CPX_CONSOLE_H

#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#include "console_auth.h"
#include "cpx_client.h"

#define CONSOLE_RING		512	/* recent alerts in the feed */
#define CONSOLE_MAX_JOBS	32	/* publishes and replays queued */
#define CONSOLE_MAX_SSE		16	/* live-feed connections */
#define CONSOLE_MAX_REGIONS	32
#define CONSOLE_PAGE_MAX	200	/* history rows per page */
#define CONSOLE_EXPORT_MAX	10000	/* rows in one export */
#define CONSOLE_EXPORT_BYTES	(16u * 1024u * 1024u)

enum job_kind {
	JOB_PUBLISH = 1,
	JOB_REPLAY
};

enum job_state {
	JOB_QUEUED = 0,
	JOB_SENT,
	JOB_DONE
};

enum job_format {
	JOB_FMT_JSON = 0,	/* delivery lines, as cpx replay --json */
	JOB_FMT_CSV
};

/*
 * One request from an officer to the broker. The HTTP thread creates it
 * and queues it; the broker thread sends it and fills in the outcome.
 * Whoever comes last frees it: the HTTP thread once it has read a done
 * job, the broker thread when it finishes a job the HTTP thread gave up
 * waiting for (abandoned).
 */
struct job {
	struct job	*next;
	enum job_kind	 kind;
	enum job_state	 state;
	int		 abandoned;
	uint64_t	 request_id;
	char		 officer[USERS_MAX_NAME + 1];
	/* JOB_PUBLISH: the alert, owned (alert_json_free) */
	Cpx__Alert	*alert;
	/* JOB_REPLAY */
	Cpx__ReplayRequest rq;
	Cpx__Filter	 filter;
	Cpx__Filter	*filterp;
	char		*origins[1];
	char		 origin[3];
	char		*regions[1];
	char		 region[33];
	Cpx__Category	 cats[1];
	size_t		 limit;		/* rows kept */
	enum job_format	 format;
	/* outcome */
	int		 ok;
	int		 reason;	/* CPX__REASON__* when refused */
	char		 text[400];
	uint64_t	 seq;
	char		 alert_id[65];
	char		**rows;		/* JSON or CSV lines */
	size_t		 nrows;
	size_t		 bytes;
	uint64_t	 matched;	/* verified alerts, kept or not */
	uint64_t	 last_kept_seq;
	uint64_t	 unverified;
};

/* One alert in the feed ring: its delivery line (alert_json). */
struct ring_entry {
	uint64_t	 id;		/* feed event id, from 1 */
	uint64_t	 seq;
	char		*json;
};

struct console {
	pthread_mutex_t	 mu;
	pthread_cond_t	 cond;		/* any change below */
	int		 stopping;
	/* set up by main, read-only afterwards */
	const char	*users_path;
	const char	*web_dir;
	const char	*vendor_dir;
	char		*regions[CONSOLE_MAX_REGIONS];
	size_t		 nregions;
	int		 secure_cookie;
	char		 node[CPX_MAX_NODE_NAME + 1];
	char		 country[3];
	char		 cert_expiry[40];
	char		 crl_expiry[40];
	char		 broker_endpoint[256];
	char		 subscription[512];	/* filters, in words */
	struct auth	 auth;
	/* broker session state (broker thread writes, under mu) */
	int		 connected;
	int		 ended;		/* over for good: refused */
	char		 state_text[300];
	int64_t		 state_since;	/* wall clock ms */
	uint64_t	 state_version;
	char		 broker_name[CPX_MAX_NODE_NAME + 1];
	char		 broker_version[32];	/* "": before cpx 0.2 */
	int		 may_publish;
	int		 may_subscribe;
	int		 may_audit;
	uint64_t	 last_seq;
	uint64_t	 reconnects;
	uint64_t	 unverified;
	/* the feed */
	struct ring_entry ring[CONSOLE_RING];
	uint64_t	 ring_next;	/* id of the next entry */
	/*
	 * Feed event ids are "RUN-N": a browser that reconnects to a
	 * console started since (ids from 1 again) gets the whole ring,
	 * not the part after a number of the previous run.
	 */
	uint32_t	 run_id;
	/* jobs */
	struct job	*queue;		/* JOB_QUEUED, oldest first */
	struct job	*sent;		/* JOB_SENT */
	size_t		 njobs;
	/* live-feed connections */
	int		 sse_clients;
	/* signins in progress (each scrypt costs 32 MiB) */
	int		 hashing;
};

/* Wall-clock ms and monotonic ms. */
int64_t	console_now_ms(void);
int64_t	console_mono_ms(void);

/*
 * The broker thread: run the session in c until *stop is set, keeping
 * ctx's state and ring and serving its jobs. c is borrowed. Returns 0
 * when stopped, or -1 if the session ended for good.
 */
int	console_broker_run(struct console *ctx, struct cpx_client *c,
	    volatile sig_atomic_t *stop) __attribute__((warn_unused_result));
/* The event callback the broker thread installs (arg: ctx). */
void	console_broker_event(const struct cpx_event *ev, void *arg);

/*
 * Queue job for the broker thread (ctx->mu must not be held). Returns 0,
 * or -1 if the queue is full (the caller still owns job).
 */
int	console_job_submit(struct console *ctx, struct job *job)
	    __attribute__((warn_unused_result));
/*
 * Wait up to timeout_ms for job to be done. Returns 0 (the caller owns
 * and frees the job), or -1 on timeout: the job is then abandoned to the
 * broker thread, which frees it, and the caller must not touch it.
 */
int	console_job_wait(struct console *ctx, struct job *job,
	    int timeout_ms)
	    __attribute__((warn_unused_result));
void	console_job_free(struct job **job);

/* The first line of a CSV export: the columns of each row. */
extern const char console_csv_header[];

/* A plain-words sentence for an officer about a refusal reason. */
const char *console_reason_words(int reason);

/*
 * The HTTP server: start listening on addr:port (port 0: any; the port
 * chosen is put in *bound). Returns an opaque daemon, or NULL with err[].
 */
struct MHD_Daemon;
struct MHD_Daemon *console_http_start(struct console *ctx, const char *addr,
	    int port, int *bound, char *err, size_t errlen);
void	console_http_stop(struct console *ctx, struct MHD_Daemon **d);

#endif
