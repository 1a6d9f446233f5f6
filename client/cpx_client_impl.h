/*
 * cpx_client_impl.h: the client library's insides, shared by
 * client/cpx_client*.c and nothing else: struct cpx_client and what it
 * holds, and the functions one of those files calls in another. Not
 * installed; none of it is exported from libcpx.so (hidden visibility).
 */
#ifndef CPX_CLIENT_IMPL_H
#define CPX_CLIENT_IMPL_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/ssl.h>

#include "cpx_client.h"
#include "endpoints.h"
#include "identity.h"
#include "proto/cpx.pb-c.h"
#include "workpool.h"

struct tlsconn;
struct trust;

#define RID_MAX			256
#define QUEUE_MAX		4096	/* received, not yet handed over */
#define REPLAYS_MAX		16	/* replays of ours awaiting their end */

/*
 * One message from the broker waiting its turn to reach the callback:
 * deliveries are verified on the pool's threads, and everything is handed
 * over in the order it arrived.
 */
struct queued {
	Cpx__Envelope	*env;		/* owned */
	int		 is_delivery;
	int		 done;		/* verified (or nothing to verify) */
	int		 history;	/* answers a replay or resume we asked */
	int		 plausible;	/* seq within the announced bound */
	/* results of the worker, for a delivery */
	Cpx__Alert	*alert;		/* owned, when verified */
	int		 verified;
	struct identity	 signer;
	char		 why[256];
};

struct inflight {
	uint64_t	 request_id;
	uint8_t		*frame;		/* encoded Publish, prefix included */
	size_t		 len;
	char		 alert_id[CPX_MAX_ID + 1];
};

struct cpx_client {
	const char		*endpoint;	/* ep.eps[cur] */
	struct endpoints	 ep;		/* the list, owned */
	SSL_CTX			*ctxs[ENDPOINTS_MAX]; /* owned, one a broker */
	int			 ep_bad[ENDPOINTS_MAX]; /* we refused it */
	char			 ep_why[ENDPOINTS_MAX][320]; /* last failure */
	size_t			 cur;
	int64_t			 ep_since_ms;	/* when cur was taken */
	int			 ep_failed;	/* cur failed: move on */
	size_t			 round_tried;	/* endpoints tried this round */
	int64_t			 round_start_ms;
	int			 reconnect;
	int			 ping_cfg_ms;
	SSL_CTX			*ctx;		/* ctxs[cur] */
	struct trust		*trust;
	EVP_PKEY		*key;
	X509			*cert;
	struct sign_key		*signer;	/* key + cert, at first publish */
	struct identity		 self;
	void			*zctx;
	void			*sock;
	uint8_t			 rid[RID_MAX];
	size_t			 rid_len;	/* 0: not connected */
	struct tlsconn		*tls;
	Cpx__Envelope		*welcome;	/* owned, NULL until welcomed */
	cpx_event_cb		*cb;
	void			*cb_arg;
	int			 stopped;
	int			 wake;		/* an awaited event was handled */
	int			 wait_welcome;	/* cpx_client_connect waits */
	void			*mon;		/* its TCP monitor, or NULL */
	unsigned int		 mon_n;		/* monitors made, for names */
	int			 dead;		/* refused: do not retry */
	int			 refused;	/* the broker refused this node */
	int			 fatal_reason;	/* of the Error that ended it */
	uint64_t		 conn_gen;	/* bumped when a connection ends */
	char			 error[320];
	uint64_t		 next_request;
	struct inflight		*inflight;
	size_t			 ninflight;
	size_t			 inflight_cap;
	uint8_t			*sub;		/* packed Subscribe, or NULL */
	size_t			 sub_len;
	int			 sub_resume;
	uint64_t		 last_seq;	/* resume point: verified, live */
	uint64_t		 announced;	/* highest seq the broker announced */
	uint64_t		 catchup_rid;	/* our resuming Subscribe, 0: none */
	uint64_t		 catchup_to;	/* its Subscribed.live_from */
	uint64_t		 replays[REPLAYS_MAX]; /* our replays, 0: free */
	struct workpool		*pool;		/* NULL: verify inline */
	struct workpool_ops	 pool_ops;
	uint64_t		 pool_rr;
	char			*ca;
	char			*crl;
	struct queued		**q;		/* ring of QUEUE_MAX */
	size_t			 qhead;
	size_t			 qlen;
	int64_t			 last_rx_ms;
	int64_t			 last_ping_ms;
	char			 id_buf[40];
	char			 origin_buf[3];
	uint64_t		 wit_rid;	/* witness call awaited, or 0 */
	Cpx__Envelope		*wit_reply;	/* its answer, owned */
#ifdef CPX_TRACE
	/* The frame being handed over (benchmark builds, lib/trace.h). */
	const uint64_t		*trace_ns;
	size_t			 n_trace_ns;
	uint64_t		 trace_rx_ns;
#endif
};

/* cpx_client.c */
int64_t	client_now_ms(void);
/* Free the TLS connection and what dies with it (Welcome, replays). */
void	client_drop_connection(struct cpx_client *);

/* cpx_client_conn.c */
void	client_monitor_stop(struct cpx_client *);
int	client_monitor_failed(struct cpx_client *)
	    __attribute__((warn_unused_result));
int	client_probe_tcp(const char *, int, char *, size_t, int *)
	    __attribute__((warn_unused_result));
int	client_open_socket(struct cpx_client *, char *, size_t)
	    __attribute__((warn_unused_result));

/* cpx_client_failover.c */
size_t	client_usable_endpoints(const struct cpx_client *);
void	client_check_endpoint(struct cpx_client *);
void	client_lost(struct cpx_client *, const char *, int);
int	client_refuse_endpoint(struct cpx_client *, char *, size_t)
	    __attribute__((warn_unused_result));

/* cpx_client_run.c */
void	client_emit(struct cpx_client *, struct cpx_event *);
int	client_send_frame(struct cpx_client *, const uint8_t *, size_t);
int	client_send_env(struct cpx_client *, const Cpx__Envelope *);

/* cpx_client_recv.c */
workpool_init_fn client_pool_init;
workpool_run_fn	client_pool_run;
workpool_fini_fn client_pool_fini;
void	client_queued_free(struct queued **);
void	client_drain_queue(struct cpx_client *);
void	client_take_verified(struct cpx_client *);
void	client_settle(struct cpx_client *);
void	client_dispatch(struct cpx_client *, Cpx__Envelope **);

/* cpx_client_sub.c */
void	client_resend_state(struct cpx_client *);
void	client_classify(struct cpx_client *, const Cpx__Envelope *, int *,
	    int *);

/* cpx_client_publish.c */
void	client_inflight_done(struct cpx_client *, uint64_t);

#endif
