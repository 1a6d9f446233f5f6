/*
 * bench.h: what the parts of cpx-bench share. cpx_bench.c holds the
 * workloads, the cpx clients and main; bench_mosq.c the Mosquitto peer;
 * bench_js.c the NATS JetStream peer (built only when libnats is found).
 * Every peer runs the same alerts (bench_alert_fill), signed the same way
 * (bench_sign), to the same subscriber table (bench_subs, bench_topics),
 * verified the same way (bench_verify), counted by the same meters
 * (bench_expect, bench_delivered, bench_acked).
 */
#ifndef CPX_BENCH_H
#define CPX_BENCH_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "proto/cpx.pb-c.h"
#include "cpx_limits.h"
#include "trace.h"

#define NSUB		10
#define MAXPUB		4
#define MAXBROKER	4	/* processes metered (-b), endpoints (-e) */
#define ALERT_BYTES	1024	/* serialized Alert, what is signed */
#define WINDOW		256	/* publishes in flight per publisher */
#define LAG		2000	/* alerts a subscriber may be behind */
#define RING		65536
#define DRAIN_NS	(20LL * 1000000000LL)
#define MAXTOPICS	64	/* topic filters of one subscriber */
#define TOPICLEN	96

/*
 * W2's stage breakdown (a CPX_TRACE build, lib/trace.h): one sample per
 * Ack or Delivery, the benchmark's stamps around the broker's.
 */
enum {
	ST_SEND = 0,			/* publisher: before signing */
	ST_SIGNED,			/* cpx_publish_send returned */
	ST_B0,				/* broker's stamps: ST_B0 + TRACE_* */
	ST_RX = ST_B0 + TRACE_BROKER_N,	/* node decoded the frame */
	ST_DONE,			/* callback: verified (deliveries) */
	ST_N
};

struct tsample {
	int64_t	 t[ST_N];
};

struct subspec {
	const char	*node;
	const char	*origins[4];
	const char	*region;
	int		 cats[4];
	int		 min_sev;
};

/* The subscribing nodes and the publishing nodes (node, country). */
extern const struct subspec bench_subs[NSUB];
extern const char *const bench_pubs[MAXPUB][2];

struct bench {
	const char	*mode;
	const char	*target;
	const char	*endpoint;
	/* -e split at commas: worker k uses endpoints[k % nendpoints] */
	char		*endpoints[MAXBROKER];
	int		 nendpoints;
	const char	*pki;
	const char	*audit_dir;
	const char	*outdir;
	char		 host[64];
	int		 port;
	pid_t		 broker_pid;		/* the first of broker_pids */
	pid_t		 broker_pids[MAXBROKER];	/* CPU: their sum */
	int		 nbrokers;
	int		 npub;
	int		 nsub;
	int		 duration;
	int		 rate;
	int		 js_sync;	/* -s: JetStream W2 awaits each ack */
	int		 sessions;
	uint64_t	 nrecords;
	char		 tag[16];
	size_t		 pad;		/* summary length for ALERT_BYTES */
	int64_t		 t0;
	_Atomic int	 ready;
	_Atomic int	 failed;
	_Atomic int	 go;
	_Atomic int	 stop_pub;
	_Atomic int	 stop_all;
	_Atomic int64_t	 expected[NSUB];
	_Atomic int64_t	 received[NSUB];
	_Atomic int64_t	 bad[NSUB];
	_Atomic int64_t	 last_rx;
	_Atomic int64_t	 last_ack;
	_Atomic int64_t	 sent;
	_Atomic int64_t	 acked;
	_Atomic int64_t	 refused;
	int64_t		*dlat[NSUB];	/* W2: publish to delivery, ns */
	size_t		 ndlat[NSUB];
	int64_t		*alat;		/* W2: publish to ack, ns */
	_Atomic size_t	 nalat;
	size_t		 latcap;
	/* W2 stage breakdown (CPX_TRACE builds; else never filled) */
	struct tsample	*dtrace[NSUB];
	size_t		 ndtrace[NSUB];
	struct tsample	*atrace;
	_Atomic size_t	 natrace;
	_Atomic int64_t	*signed_at[MAXPUB];	/* by alert index */
};

struct worker {
	struct bench	*b;
	int		 idx;
	void		*client;	/* cpx_client or mosquitto */
	struct trust	*trust;		/* mosq and JetStream subscribers */
	int64_t		*ring;		/* send time by request id / mid */
	int64_t		*ring_signed;	/* W2: time signed and queued */
	int		 subscribed;
	int		 connected;
	int		 nsubscribed;
	int		 ntopics;
	int		 inflight;	/* mosq publisher */
	/* JetStream: callbacks run on the library's threads */
	_Atomic int	 js_inflight;
	pthread_mutex_t	 mu;		/* one subscriber verifies at a time */
	pthread_cond_t	 cv;		/* publisher: an ack came back */
};

struct alertbuf {
	Cpx__Alert	a;
	char		id[64];
	char		origin[3];
	char		summary[CPX_MAX_SUMMARY + 1];
};

int64_t	bench_now_ns(void);
void	bench_sleep_ms(int);
/* A worker is set up: say so, then wait for the start signal. */
void	bench_ready_go(struct bench *);
/*
 * W2's open loop for publisher idx: alert k of it is due at t0 + k /
 * rate, spread over the publishers. *total: alerts it sends, *step: ns
 * between two of them, *next: when its first is due.
 */
void	bench_w2_plan(const struct bench *, int, uint64_t *, int64_t *,
	    int64_t *);
void	bench_node_paths(const struct bench *, const char *, char *, char *,
	    size_t);
int	bench_alert_cat(uint64_t);
int	bench_alert_sev(uint64_t);
/* The id of alert i of publisher p: TAG-P-INDEX. */
void	bench_alert_id(const struct bench *, int, uint64_t, char *, size_t);
void	bench_alert_fill(const struct bench *, struct alertbuf *, int,
	    uint64_t, int64_t, size_t);
int	bench_backlog_ok(struct bench *);
void	bench_expect(struct bench *, int, uint64_t);
void	bench_delivered(struct bench *, int, const Cpx__Alert *);
void	bench_acked(struct bench *, struct worker *, uint64_t);
int	bench_topics(const struct subspec *, char [][TOPICLEN], int);

/*
 * bench_sign: alert i of publisher w, sent at t, signed with sk (the
 * publisher's sign_key, made once) as cpx_publish_send signs it, packed as a SignedAlert into *buf (the
 * caller frees it) of *len bytes, with the MQTT topic
 * alerts/<CC>/<category>/<severity> in topic. 0, or -1.
 */
int	bench_sign(struct bench *, struct worker *, struct sign_key *,
	    uint64_t, int64_t, uint8_t **, size_t *, char *, size_t)
	    __attribute__((warn_unused_result));
/*
 * bench_verify: what a cpx subscriber does to each delivery of a peer:
 * unpack the SignedAlert, verify it end to end against w->trust, count it
 * for subscriber w (or count it bad).
 */
void	bench_verify(struct worker *, const void *, size_t);

void	*bench_mosq_sub_thread(void *);
void	*bench_mosq_pub_thread(void *);
int	bench_mosq_conf(struct bench *) __attribute__((warn_unused_result));

#ifdef CPX_BENCH_JS
void	*bench_js_sub_thread(void *);
void	*bench_js_pub_thread(void *);
int	bench_js_init(struct bench *) __attribute__((warn_unused_result));
#endif

#endif
