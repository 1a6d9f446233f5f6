/*
 * cpx_client.c: the client library (see cpx_client.h). Owns the node's
 * key and certificate, the TLS context, the trust store used to verify
 * deliveries, one ZMQ_STREAM socket connected to the broker (watched by a
 * monitor while cpx_client_connect waits, so a refused TCP connect is
 * reported at once), the current TLS connection, the publishes not yet
 * acknowledged (resent after a reconnect), and the current subscription
 * (resumed after a reconnect from the last sequence delivered, so nothing
 * is missed and nothing repeated). Given several broker endpoints, it
 * owns one TLS context per endpoint (each checks its own broker's name and
 * pin) and moves to the next endpoint when a session is lost or cannot be
 * had (docs/failover.md).
 */
#include <sys/socket.h>

#include <errno.h>
#include <inttypes.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <zmq.h>

#include "alert.h"
#include "clock.h"
#include "cpx_client.h"
#include "cpx_limits.h"
#include "endpoints.h"
#include "log.h"
#include "sign.h"
#include "streamio.h"
#include "tlsconn.h"
#include "tlsctx.h"
#include "wire.h"
#include "witness_int.h"
#include "trace.h"
#include "workpool.h"

#define RID_MAX			256
#define DEFAULT_PING_MS		30000
#define QUEUE_MAX		4096	/* received, not yet handed over */
#define REPLAYS_MAX		16	/* replays of ours awaiting their end */
#define ENDPOINT_WAIT_MS	5000	/* for a Welcome before the next one */
#define ROUND_MIN_MS		1000	/* between rounds of the whole list */

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

/* The verification pool's side (defined with the queue, below). */
static workpool_init_fn	pool_init;
static workpool_run_fn	pool_run;
static workpool_fini_fn	pool_fini;
static void		queued_free(struct queued **);
static void		settle(struct cpx_client *);
static void		lost(struct cpx_client *, const char *, int);

static int64_t
now_ms(void)
{
	return clock_mono_ms();
}

/*
 * While cpx_client_connect waits, a monitor on the socket tells it when a
 * TCP connect has failed: ZeroMQ itself only retries, silently, so a
 * broker that is not running would otherwise cost the whole timeout.
 */
static void
monitor_stop(struct cpx_client *c)
{
	if (c->mon == NULL)
		return;
	if (c->sock != NULL)
		(void)zmq_socket_monitor(c->sock, NULL, 0);
	zmq_close(c->mon);
	c->mon = NULL;
}

static void
monitor_start(struct cpx_client *c)
{
	char ep[64];
	int linger = 0;

	monitor_stop(c);
	snprintf(ep, sizeof(ep), "inproc://cpx-connect-%p-%u", (void *)c,
	    c->mon_n++);
	/* Without a monitor the wait is only slower: not an error. */
	if (zmq_socket_monitor(c->sock, ep, ZMQ_EVENT_CONNECT_RETRIED) == -1)
		return;
	if ((c->mon = zmq_socket(c->zctx, ZMQ_PAIR)) == NULL)
		return;
	if (zmq_setsockopt(c->mon, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_connect(c->mon, ep) == -1)
		monitor_stop(c);
}

/* 1 if the monitor reported a failed TCP connect since last asked. */
static int
monitor_failed(struct cpx_client *c)
{
	zmq_msg_t m;
	int failed = 0;

	while (c->mon != NULL) {
		zmq_msg_init(&m);
		if (zmq_msg_recv(&m, c->mon, ZMQ_DONTWAIT) == -1) {
			zmq_msg_close(&m);
			break;
		}
		/* [u16 event, u32 value] then the endpoint, in two parts. */
		if (zmq_msg_size(&m) >= 2) {
			uint16_t ev;

			memcpy(&ev, zmq_msg_data(&m), sizeof(ev));
			if (ev == ZMQ_EVENT_CONNECT_RETRIED)
				failed = 1;
		}
		zmq_msg_close(&m);
	}
	return failed;
}

/*
 * Why TCP to endpoint fails: one plain connect, waited for at most
 * wait_ms. Returns 0 if it connects after all (the broker has just
 * come up; the connection is closed again at once), else -1 with why[]
 * ("Connection refused", "No route to host", ...) and *refused set if
 * nothing listens there.
 */
static int
probe_tcp(const char *endpoint, int wait_ms, char *why, size_t whylen,
    int *refused)
{
	struct addrinfo hints, *res = NULL, *ai;
	struct pollfd pfd;
	char host[256];
	const char *port;
	socklen_t sl;
	int fd = -1, e = 0, rc = -1, r;

	snprintf(why, whylen, "cannot connect");
	*refused = 0;
	if (tlsctx_endpoint_host(endpoint, host, sizeof(host)) == -1 ||
	    (port = strrchr(endpoint, ':')) == NULL)
		return -1;
	port++;
	memset(&hints, 0, sizeof(hints));
	hints.ai_socktype = SOCK_STREAM;
	if ((r = getaddrinfo(host, port, &hints, &res)) != 0) {
		snprintf(why, whylen, "%.100s: %s", host, gai_strerror(r));
		return -1;
	}
	for (ai = res; ai != NULL && rc == -1; ai = ai->ai_next) {
		if ((fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK |
		    SOCK_CLOEXEC, ai->ai_protocol)) == -1) {
			e = errno;
			continue;
		}
		if (connect(fd, ai->ai_addr, ai->ai_addrlen) == 0)
			rc = 0;
		else if (errno != EINPROGRESS)
			e = errno;
		else {
			pfd.fd = fd;
			pfd.events = POLLOUT;
			sl = sizeof(e);
			if (poll(&pfd, 1, wait_ms) == 1 && getsockopt(fd,
			    SOL_SOCKET, SO_ERROR, &e, &sl) == 0 && e == 0)
				rc = 0;
			else if (e == 0)
				e = ETIMEDOUT;
		}
		close(fd);
	}
	freeaddrinfo(res);
	if (rc == -1) {
		snprintf(why, whylen, "%s", strerror(e ? e : ECONNREFUSED));
		*refused = e == ECONNREFUSED || e == 0;
	}
	return rc;
}

static int
open_socket(struct cpx_client *c, char *err, size_t errlen)
{
	int one = 1, linger = 500, ivl = 200, ivl_max = 2000, idle = 60;

	if ((c->sock = zmq_socket(c->zctx, ZMQ_STREAM)) == NULL) {
		snprintf(err, errlen, "zmq_socket: %s", zmq_strerror(errno));
		return -1;
	}
	if (zmq_setsockopt(c->sock, ZMQ_STREAM_NOTIFY, &one, sizeof(one)) ||
	    zmq_setsockopt(c->sock, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL, &ivl, sizeof(ivl)) ||
	    zmq_setsockopt(c->sock, ZMQ_RECONNECT_IVL_MAX, &ivl_max,
	    sizeof(ivl_max)) ||
	    zmq_setsockopt(c->sock, ZMQ_TCP_KEEPALIVE, &one, sizeof(one)) ||
	    zmq_setsockopt(c->sock, ZMQ_TCP_KEEPALIVE_IDLE, &idle,
	    sizeof(idle)) ||
	    zmq_setsockopt(c->sock, ZMQ_IPV6, &one, sizeof(one))) {
		snprintf(err, errlen, "zmq_setsockopt: %s",
		    zmq_strerror(errno));
		return -1;
	}
	/* Before the connect, or its first failure goes unseen. */
	if (c->wait_welcome || c->ep.n > 1)
		monitor_start(c);
	c->ep_since_ms = now_ms();
	if (zmq_connect(c->sock, c->endpoint) == -1) {
		snprintf(err, errlen, "cannot connect to %s: %s", c->endpoint,
		    zmq_strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * The TLS context of endpoint i: any certificate of the network CA
 * chains, so only the name (and the pin, if any) tells this endpoint's
 * broker from another holder of one. Returns 0, or -1 with err[].
 */
static int
endpoint_ctx(struct cpx_client *c, size_t i,
    const struct cpx_client_config *cfg, char *err, size_t errlen)
{
	/* The CRL also checks the broker's certificate, not only alerts. */
	struct tls_files files = { cfg->ca, cfg->cert, cfg->key, cfg->crl };
	char name[256], pin[128], why[300];

	if ((c->ctxs[i] = tlsctx_new(&files, 0, err, errlen)) == NULL)
		return -1;
	if (cfg->broker_name != NULL) {
		if (endpoints_item(cfg->broker_name, i, c->ep.n, "broker name",
		    name, sizeof(name), err, errlen) == -1)
			return -1;
	} else if (tlsctx_endpoint_host(c->ep.eps[i], name, sizeof(name)) == -1) {
		snprintf(err, errlen, "%s: no host in the broker endpoint to "
		    "check its certificate against; give the broker name",
		    c->ep.eps[i]);
		return -1;
	}
	if (cfg->broker_pin != NULL && endpoints_item(cfg->broker_pin, i,
	    c->ep.n, "broker pin", pin, sizeof(pin), err, errlen) == -1)
		return -1;
	if (tlsctx_expect_broker(c->ctxs[i], name, cfg->broker_pin != NULL ?
	    pin : NULL, why, sizeof(why)) == -1) {
		if (c->ep.n > 1)
			snprintf(err, errlen, "%s: %s", c->ep.eps[i], why);
		else
			snprintf(err, errlen, "%s", why);
		return -1;
	}
	return 0;
}

struct cpx_client *
cpx_client_new(const struct cpx_client_config *cfg, char *err, size_t errlen)
{
	struct cpx_client *c = NULL;
	char why[160];
	size_t i;

	if (cfg->endpoint == NULL || cfg->ca == NULL || cfg->cert == NULL ||
	    cfg->key == NULL) {
		snprintf(err, errlen, "endpoint, CA, certificate and key are "
		    "all required");
		return NULL;
	}
	/*
	 * Without the CRL a revoked node's signature still verifies: a
	 * stolen key could speak for its country. Only an explicit choice
	 * runs without one.
	 */
	if (cfg->crl == NULL && !cfg->no_crl) {
		snprintf(err, errlen, "no CRL given: without the network's "
		    "CRL an alert signed by a revoked node would be shown as "
		    "verified; give the CRL file, or choose no_crl to run "
		    "without one");
		return NULL;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (endpoints_parse(&c->ep, cfg->endpoint, err, errlen) == -1)
		goto fail;
	c->endpoint = c->ep.eps[0];
	c->reconnect = cfg->reconnect;
	c->ping_cfg_ms = cfg->ping_ms;
	c->next_request = 1;
	if ((c->key = tlsctx_load_key(cfg->key, err, errlen)) == NULL ||
	    (c->cert = tlsctx_load_cert(cfg->cert, err, errlen)) == NULL)
		goto fail;
	if (identity_from_cert(c->cert, &c->self, why, sizeof(why)) == -1) {
		snprintf(err, errlen, "%s: not a node certificate: %s",
		    cfg->cert, why);
		goto fail;
	}
	for (i = 0; i < c->ep.n; i++)
		if (endpoint_ctx(c, i, cfg, err, errlen) == -1)
			goto fail;
	c->ctx = c->ctxs[0];
	if ((c->trust = trust_new(cfg->ca, cfg->crl, err, errlen)) == NULL)
		goto fail;
	if ((c->zctx = zmq_ctx_new()) == NULL) {
		snprintf(err, errlen, "zmq_ctx_new: %s", zmq_strerror(errno));
		goto fail;
	}
	if (cfg->verify_threads > 0) {
		if ((c->ca = strdup(cfg->ca)) == NULL ||
		    (cfg->crl != NULL && (c->crl = strdup(cfg->crl)) == NULL) ||
		    (c->q = calloc(QUEUE_MAX, sizeof(*c->q))) == NULL) {
			snprintf(err, errlen, "out of memory");
			goto fail;
		}
		c->pool_ops.init = pool_init;
		c->pool_ops.run = pool_run;
		c->pool_ops.fini = pool_fini;
		if ((c->pool = workpool_new(c->zctx, cfg->verify_threads,
		    &c->pool_ops, c, err, errlen)) == NULL)
			goto fail;
	}
	return c;
fail:
	cpx_client_free(&c);
	return NULL;
}

static void
drop_connection(struct cpx_client *c)
{
	tlsconn_free(&c->tls);
	c->rid_len = 0;
	/* Replays and catch-ups die with the connection that asked. */
	memset(c->replays, 0, sizeof(c->replays));
	c->catchup_rid = 0;
	c->catchup_to = 0;
	if (c->welcome != NULL) {
		cpx__envelope__free_unpacked(c->welcome, NULL);
		c->welcome = NULL;
	}
}

void
cpx_client_free(struct cpx_client **cp)
{
	struct cpx_client *c;
	size_t i;

	if (cp == NULL || (c = *cp) == NULL)
		return;
	if (c->tls != NULL && tlsconn_state(c->tls) == TLSCONN_OPEN &&
	    c->sock != NULL && c->rid_len > 0) {
		const uint8_t *p;
		size_t len;

		tlsconn_shutdown(c->tls);
		tlsconn_out(c->tls, &p, &len);
		if (len > 0 && zmq_send(c->sock, c->rid, c->rid_len,
		    ZMQ_SNDMORE | ZMQ_DONTWAIT) == (int)c->rid_len)
			(void)zmq_send(c->sock, p, len, ZMQ_DONTWAIT);
	}
	drop_connection(c);
	/* Every job is also in the queue, which frees it below. */
	workpool_free(&c->pool, NULL);
	while (c->q != NULL && c->qlen > 0) {
		queued_free(&c->q[c->qhead]);
		c->qhead = (c->qhead + 1) % QUEUE_MAX;
		c->qlen--;
	}
	free(c->q);
	free(c->ca);
	free(c->crl);
	for (i = 0; i < c->ninflight; i++)
		OPENSSL_clear_free(c->inflight[i].frame, c->inflight[i].len);
	free(c->inflight);
	free(c->sub);
	monitor_stop(c);
	if (c->wit_reply != NULL)
		cpx__envelope__free_unpacked(c->wit_reply, NULL);
	if (c->sock != NULL)
		zmq_close(c->sock);
	if (c->zctx != NULL)
		zmq_ctx_term(c->zctx);
	trust_free(&c->trust);
	for (i = 0; i < c->ep.n; i++)
		SSL_CTX_free(c->ctxs[i]);
	EVP_PKEY_free(c->key);
	X509_free(c->cert);
	endpoints_clear(&c->ep);
	free(c);
	*cp = NULL;
}

static void
emit(struct cpx_client *c, struct cpx_event *ev)
{
	if (c->cb != NULL)
		c->cb(ev, c->cb_arg);
}

/*
 * Push queued ciphertext to ZeroMQ; what it does not take stays queued.
 * A broker that is gone shows up as a disconnect notification, which
 * on_message handles, so a failed send needs nothing more here.
 */
static void
flush(struct cpx_client *c)
{
	if (c->tls != NULL && c->rid_len > 0 &&
	    stream_flush(c->sock, c->rid, c->rid_len, c->tls, 65536) == -1)
		log_debug("broker connection not writable; its disconnect "
		    "follows");
}

static int
send_frame(struct cpx_client *c, const uint8_t *buf, size_t len)
{
	if (c->tls == NULL || c->welcome == NULL)
		return 0;	/* kept by the caller, sent once welcomed */
	if (tlsconn_write(c->tls, buf, len) == -1)
		return -1;
	flush(c);
	return 0;
}

static int
send_env(struct cpx_client *c, const Cpx__Envelope *env)
{
	uint8_t *buf = NULL;
	size_t len = 0;
	int rc;

	if (wire_encode(env, &buf, &len) == -1)
		return -1;
	rc = send_frame(c, buf, len);
	OPENSSL_clear_free(buf, len);
	return rc;
}

/* Endpoints not refused by this node (see failover). */
static size_t
usable_endpoints(const struct cpx_client *c)
{
	size_t i, n = 0;

	for (i = 0; i < c->ep.n; i++)
		n += !c->ep_bad[i];
	return n;
}

/* A fresh socket to the current endpoint. 0, or -1 (dead, c->error). */
static int
reopen(struct cpx_client *c)
{
	char err[256];

	/*
	 * A fresh socket: a connection closed from our side is not
	 * reconnected by ZeroMQ, and a stale one must not linger.
	 */
	monitor_stop(c);
	if (c->sock != NULL)
		zmq_close(c->sock);
	c->sock = NULL;
	c->ep_failed = 0;
	if (open_socket(c, err, sizeof(err)) == -1) {
		snprintf(c->error, sizeof(c->error), "%s", err);
		c->dead = 1;
		return -1;
	}
	return 0;
}

/*
 * Several endpoints, and the current one failed (TCP refused, no Welcome
 * in time, or the session lost): take the next one this node has not
 * refused. At once while this round of the list lasts; a new round only
 * ROUND_MIN_MS after the last began, so brokers that are all down are
 * not hammered, and never while cpx_client_connect waits (it reports a
 * round that failed whole). Returns 1 if it moved, 0 if not yet, -1 if
 * no socket could be opened.
 */
static int
failover(struct cpx_client *c)
{
	size_t i, n = c->cur;

	/* A broker this node refused is left at once, round or not. */
	if (c->round_tried >= usable_endpoints(c) && !c->ep_bad[c->cur]) {
		if (c->wait_welcome ||
		    now_ms() - c->round_start_ms < ROUND_MIN_MS)
			return 0;
		c->round_tried = 0;
		c->round_start_ms = now_ms();
	}
	for (i = 1; i <= c->ep.n; i++) {
		n = (c->cur + i) % c->ep.n;
		if (!c->ep_bad[n])
			break;
	}
	if (n != c->cur)
		log_info("broker %s failed (%s); trying %s", c->endpoint,
		    c->ep_why[c->cur], c->ep.eps[n]);
	c->cur = n;
	c->endpoint = c->ep.eps[n];
	c->ctx = c->ctxs[n];
	c->round_tried++;
	return reopen(c) == -1 ? -1 : 1;
}

/*
 * While there is no session, with several endpoints: has the current
 * one failed? TCP refused (the monitor, then a probe for the reason), or
 * no Welcome within ENDPOINT_WAIT_MS (a host that drops packets, a
 * broker that does not answer). If so, move on (failover).
 */
static void
check_endpoint(struct cpx_client *c)
{
	char why[160], msg[128];
	int refused;

	if (c->ep.n < 2 || c->welcome != NULL || c->dead || c->sock == NULL)
		return;
	if (!c->ep_failed && c->rid_len == 0 && monitor_failed(c) &&
	    probe_tcp(c->endpoint, 1000, why, sizeof(why), &refused) == -1) {
		snprintf(c->ep_why[c->cur], sizeof(c->ep_why[c->cur]),
		    "TCP connect failed: %.100s%s", why, refused ? " (is "
		    "cpx-broker running and listening on that port?)" : "");
		c->ep_failed = 1;
	}
	if (!c->ep_failed && now_ms() - c->ep_since_ms > ENDPOINT_WAIT_MS) {
		snprintf(msg, sizeof(msg), "no Welcome from the broker within "
		    "%d ms", ENDPOINT_WAIT_MS);
		if (c->rid_len > 0) {
			lost(c, msg, 0);	/* it moves on itself */
			return;
		}
		snprintf(c->ep_why[c->cur], sizeof(c->ep_why[c->cur]), "%s",
		    msg);
		c->ep_failed = 1;
	}
	if (c->ep_failed)
		(void)failover(c);
}

/* Fatal for this session; retried later only if reconnect is on. */
static void
lost(struct cpx_client *c, const char *why, int final)
{
	struct cpx_event ev;
	uint64_t gen = c->conn_gen;
	int welcomed = c->welcome != NULL;

	/*
	 * First hand over, in order, everything received before the break:
	 * the broker's fatal Error may be queued behind deliveries still
	 * being verified, and it is the reason the user must see, not
	 * "connection lost". It may itself end the connection.
	 */
	settle(c);
	if (c->conn_gen != gen)
		return;
	c->conn_gen++;
	snprintf(c->error, sizeof(c->error), "%s", why);
	if (c->welcome != NULL) {
		memset(&ev, 0, sizeof(ev));
		ev.kind = CPX_EV_DISCONNECTED;
		ev.text = c->error;
		emit(c, &ev);
	}
	drop_connection(c);
	snprintf(c->ep_why[c->cur], sizeof(c->ep_why[c->cur]), "%s", why);
	if (final)
		c->refused = 1;
	/* Without reconnect, cpx_client_connect still tries the list. */
	if (final || (!c->reconnect && !(c->wait_welcome && c->ep.n > 1))) {
		c->dead = 1;
		return;
	}
	if (welcomed) {
		/* A session was had: a new round of the list starts. */
		c->round_tried = 0;
		c->round_start_ms = now_ms();
	}
	if (c->ep.n < 2 || failover(c) == 0) {
		(void)reopen(c);
		/* Still to leave, when the next round may begin. */
		c->ep_failed = c->ep.n > 1;
	}
}

static void
resend_state(struct cpx_client *c)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Subscribe *sub;
	size_t i;

	if (c->sub != NULL) {
		sub = cpx__subscribe__unpack(NULL, c->sub_len, c->sub);
		if (sub != NULL) {
			/*
			 * Resume after the last verified delivery: the queue
			 * was handed over before the connection was dropped
			 * (lost), so nothing is repeated, and a delivery that
			 * failed verification is asked for again.
			 */
			if (c->sub_resume || c->last_seq > 0) {
				sub->resume = 1;
				if (c->last_seq > sub->resume_after)
					sub->resume_after = c->last_seq;
			}
			c->catchup_rid = sub->resume ? sub->request_id : 0;
			c->catchup_to = 0;
			env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
			env.subscribe = sub;
			(void)send_env(c, &env);
			cpx__subscribe__free_unpacked(sub, NULL);
		}
	}
	for (i = 0; i < c->ninflight; i++)
		(void)send_frame(c, c->inflight[i].frame, c->inflight[i].len);
}

static void
inflight_done(struct cpx_client *c, uint64_t request_id)
{
	size_t i;

	for (i = 0; i < c->ninflight; i++) {
		if (c->inflight[i].request_id != request_id)
			continue;
		OPENSSL_clear_free(c->inflight[i].frame, c->inflight[i].len);
		c->inflight[i] = c->inflight[--c->ninflight];
		return;
	}
}

/*
 * End to end: trust the network CA, not the broker. Returns 1 with *a
 * (owned by the caller) and *signer if the delivery verifies, else 0 with
 * why[]. Runs on the caller's thread or a pool worker (own trust each).
 */
static int
verify_delivery(struct trust *t, const Cpx__Delivery *d, int history,
    Cpx__Alert **a, struct identity *signer, char *why, size_t whylen)
{
	int reason;

	*a = NULL;
	if (d->alert == NULL) {
		snprintf(why, whylen, "delivery without an alert");
		return 0;
	}
	/*
	 * history is our own decision (classify), never the broker's
	 * `replayed` flag: otherwise a broker could pass off an alert
	 * signed with an expired key as old history.
	 */
	if ((history ? sign_verify_alert_history : sign_verify_alert)(t,
	    d->alert, a, signer, &reason, why, whylen) == 0 &&
	    sign_verify_alert_origin(*a, signer, &reason, why, whylen) == 0 &&
	    alert_validate(*a, 0, 0, &reason, why, whylen) == 0)
		return 1;
	cpx__alert__free_unpacked(*a, NULL);
	*a = NULL;
	return 0;
}

/*
 * Hand a verified (or not) delivery to the callback. Only a verified,
 * plausible live delivery moves the resume point, and only forward: a
 * forged or absurd sequence number must not make us skip what follows.
 */
static void
emit_delivery(struct cpx_client *c, const Cpx__Delivery *d, Cpx__Alert *a,
    int verified, int plausible, const struct identity *signer,
    const char *why)
{
	struct cpx_event ev;
	char bad[200];

	if (verified && !plausible) {
		snprintf(bad, sizeof(bad), "sequence %" PRIu64 " is not "
		    "plausible: more than %" PRIu64 " past the newest sequence "
		    "the broker announced", d->seq,
		    (uint64_t)CPX_SEQ_AHEAD_MAX);
		verified = 0;
		why = bad;
	}
	memset(&ev, 0, sizeof(ev));
	ev.kind = CPX_EV_DELIVERY;
	ev.seq = d->seq;
	ev.request_id = d->request_id;
	ev.accepted_at = d->accepted_at;
	ev.replayed = d->replayed;
	ev.signed_alert = d->alert;
	ev.signer = *signer;
	ev.verified = verified;
	ev.alert = verified ? a : NULL;
	ev.verify_error = verified ? NULL : why;
	if (verified && d->request_id == 0 && d->seq > c->last_seq)
		c->last_seq = d->seq;
	emit(c, &ev);
}

static void
on_delivery(struct cpx_client *c, const Cpx__Delivery *d, int history,
    int plausible)
{
	struct identity signer;
	Cpx__Alert *a = NULL;
	char why[256] = "";
	int ok;

	memset(&signer, 0, sizeof(signer));
	ok = verify_delivery(c->trust, d, history, &a, &signer, why,
	    sizeof(why));
	emit_delivery(c, d, a, ok, plausible, &signer, why);
	cpx__alert__free_unpacked(a, NULL);
}

static int
auth_reason(int reason)
{
	return reason == CPX__REASON__REASON_NOT_AUTHORIZED ||
	    reason == CPX__REASON__REASON_CERT_REVOKED ||
	    reason == CPX__REASON__REASON_BAD_SIGNER;
}

/* The request a witness answer (or a non-fatal Error) is for, else 0. */
static uint64_t
witness_reply_id(const Cpx__Envelope *env)
{
	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WITNESS_CHECKPOINT:
		return env->witness_checkpoint->request_id;
	case CPX__ENVELOPE__BODY_COSIGN_ACK:
		return env->cosign_ack->request_id;
	case CPX__ENVELOPE__BODY_ERROR:
		return env->error->fatal ? 0 : env->error->request_id;
	default:
		return 0;
	}
}

static void
on_envelope(struct cpx_client *c, Cpx__Envelope **envp)
{
	Cpx__Envelope *env = *envp;
	struct cpx_event ev;

	/* The answer client_witness_call waits for: its, not an event. */
	if (c->wit_rid != 0 && c->wit_reply == NULL &&
	    witness_reply_id(env) == c->wit_rid) {
		c->wit_reply = env;
		*envp = NULL;
		c->wake = 1;
		return;
	}
	memset(&ev, 0, sizeof(ev));
	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WELCOME:
		if (c->welcome != NULL)
			break;
		c->welcome = env;
		*envp = NULL;
		tlsconn_set_max_frame(c->tls, CPX_MAX_FRAME);
		c->error[0] = '\0';
		c->fatal_reason = 0;
		c->ep_failed = 0;
		c->ep_why[c->cur][0] = '\0';
		c->round_tried = 1;
		c->round_start_ms = now_ms();
		if (!c->wait_welcome)
			monitor_stop(c);
		if (c->wait_welcome)
			c->wake = 1;
		ev.kind = CPX_EV_CONNECTED;
		ev.seq = c->welcome->welcome->last_seq;
		emit(c, &ev);
		resend_state(c);
		break;
	case CPX__ENVELOPE__BODY_ACK:
		inflight_done(c, env->ack->request_id);
		ev.kind = CPX_EV_ACK;
		ev.request_id = env->ack->request_id;
		ev.seq = env->ack->seq;
		ev.duplicate = env->ack->duplicate;
		ev.alert_id = env->ack->alert_id;
		emit(c, &ev);
		break;
	case CPX__ENVELOPE__BODY_ERROR:
		inflight_done(c, env->error->request_id);
		ev.kind = CPX_EV_ERROR;
		ev.request_id = env->error->request_id;
		ev.reason = env->error->reason;
		ev.fatal = env->error->fatal;
		ev.text = env->error->text;
		emit(c, &ev);
		if (env->error->fatal) {
			char why[320];

			snprintf(why, sizeof(why), "broker closed the session "
			    "(%s): %s", alert_reason_name(env->error->reason),
			    env->error->text);
			c->fatal_reason = env->error->reason;
			lost(c, why, auth_reason(env->error->reason));
		}
		break;
	case CPX__ENVELOPE__BODY_SUBSCRIBED:
		ev.kind = CPX_EV_SUBSCRIBED;
		ev.request_id = env->subscribed->request_id;
		ev.seq = env->subscribed->live_from;
		emit(c, &ev);
		break;
	case CPX__ENVELOPE__BODY_AUDIT_RECORD:
		ev.kind = CPX_EV_AUDIT_RECORD;
		ev.record = env->audit_record;
		ev.seq = env->audit_record->seq;
		emit(c, &ev);
		break;
	case CPX__ENVELOPE__BODY_REPLAY_END:
		ev.kind = CPX_EV_REPLAY_END;
		ev.request_id = env->replay_end->request_id;
		ev.seq = env->replay_end->last_seq;
		ev.count = env->replay_end->count;
		emit(c, &ev);
		break;
	default:
		break;	/* Pong, and kinds only nodes send */
	}
}

static void
queued_free(struct queued **qp)
{
	struct queued *q;

	if (qp == NULL || (q = *qp) == NULL)
		return;
	if (q->env != NULL)
		cpx__envelope__free_unpacked(q->env, NULL);
	if (q->alert != NULL)
		cpx__alert__free_unpacked(q->alert, NULL);
	free(q);
	*qp = NULL;
}

/* Pool workers: each verifies with a trust store of its own. */
static void *
pool_init(void *arg, char *err, size_t errlen)
{
	struct cpx_client *c = arg;

	return trust_new(c->ca, c->crl, err, errlen);
}

static void
pool_run(void *state, void *job)
{
	struct queued *q = job;

	q->verified = verify_delivery(state, q->env->delivery, q->history,
	    &q->alert, &q->signer, q->why, sizeof(q->why));
}

static void
pool_fini(void *state)
{
	struct trust *t = state;

	trust_free(&t);
}

/* Hand over, in arrival order, everything at the head that is ready. */
static void
drain_queue(struct cpx_client *c)
{
	struct queued *q;

	while (c->qlen > 0 && (q = c->q[c->qhead])->done) {
		c->q[c->qhead] = NULL;
		c->qhead = (c->qhead + 1) % QUEUE_MAX;
		c->qlen--;
		if (q->is_delivery)
			emit_delivery(c, q->env->delivery, q->alert,
			    q->verified, q->plausible, &q->signer, q->why);
		else
			on_envelope(c, &q->env);
		queued_free(&q);
	}
}

/* Collect what the pool verified, then hand over what is ready. */
static void
take_verified(struct cpx_client *c)
{
	struct queued *q;

	if (c->pool == NULL)
		return;
	while ((q = workpool_take(c->pool)) != NULL)
		q->done = 1;	/* the job is the main thread's again */
	drain_queue(c);
}

/*
 * Block, handing over what the pool verifies, until at most max messages
 * wait in the queue. The pool's socket wakes us as each job comes back.
 */
static void
wait_queue(struct cpx_client *c, size_t max)
{
	zmq_pollitem_t it;

	take_verified(c);
	while (c->qlen > max) {
		it.socket = workpool_socket(c->pool);
		it.fd = 0;
		it.events = ZMQ_POLLIN;
		it.revents = 0;
		(void)zmq_poll(&it, 1, 1000);
		take_verified(c);
	}
}

/* Hand over everything queued: before a break is reported (lost). */
static void
settle(struct cpx_client *c)
{
	if (c->pool != NULL)
		wait_queue(c, 0);
}

/*
 * Queue env behind what is waiting; a delivery goes to the pool. Takes
 * *envp on success. 0, or -1 if it could not (the caller handles env).
 */
static int
enqueue(struct cpx_client *c, Cpx__Envelope **envp, int history,
    int plausible)
{
	struct queued *q;

	/* Never drop what the broker sent: wait for room. */
	if (c->qlen >= QUEUE_MAX)
		wait_queue(c, QUEUE_MAX - 1);
	if ((q = calloc(1, sizeof(*q))) == NULL)
		return -1;
	q->env = *envp;
	q->is_delivery = q->env->body_case == CPX__ENVELOPE__BODY_DELIVERY;
	q->history = history;
	q->plausible = plausible;
	q->done = !q->is_delivery;
	c->q[(c->qhead + c->qlen) % QUEUE_MAX] = q;
	if (q->is_delivery &&
	    workpool_submit(c->pool, c->pool_rr++, q) == -1) {
		c->q[(c->qhead + c->qlen) % QUEUE_MAX] = NULL;
		free(q);
		return -1;
	}
	c->qlen++;
	*envp = NULL;
	return 0;
}

/* Is rid one of our replays still running? forget: it just ended. */
static int
replay_ours(struct cpx_client *c, uint64_t rid, int forget)
{
	size_t i;

	if (rid == 0)
		return 0;
	for (i = 0; i < REPLAYS_MAX; i++) {
		if (c->replays[i] != rid)
			continue;
		if (forget)
			c->replays[i] = 0;
		return 1;
	}
	return 0;
}

static void
announce(struct cpx_client *c, uint64_t seq)
{
	if (seq > c->announced)
		c->announced = seq;
}

/*
 * Note what the broker announced and judge a delivery, in arrival order
 * and before it goes to a verifier thread: a later message must not
 * change how an earlier one is judged. *history: it answers a replay of
 * ours, or is at or below live_from during a resume of ours, so an
 * alert whose signer certificate expired since may be accepted as of its
 * issue time; anything else gets the strict check, whatever the broker's
 * `replayed` flag says. *plausible: see CPX_SEQ_AHEAD_MAX.
 */
static void
classify(struct cpx_client *c, const Cpx__Envelope *env, int *history,
    int *plausible)
{
	const Cpx__Delivery *d;

	*history = 0;
	*plausible = 1;
	switch (env->body_case) {
	case CPX__ENVELOPE__BODY_WELCOME:
		announce(c, env->welcome->last_seq);
		break;
	case CPX__ENVELOPE__BODY_ACK:
		announce(c, env->ack->seq);
		break;
	case CPX__ENVELOPE__BODY_SUBSCRIBED:
		announce(c, env->subscribed->live_from);
		if (c->catchup_rid != 0 &&
		    env->subscribed->request_id == c->catchup_rid)
			c->catchup_to = env->subscribed->live_from;
		break;
	case CPX__ENVELOPE__BODY_REPLAY_END:
		announce(c, env->replay_end->last_seq);
		(void)replay_ours(c, env->replay_end->request_id, 1);
		break;
	case CPX__ENVELOPE__BODY_ERROR:
		(void)replay_ours(c, env->error->request_id, 1);
		if (env->error->request_id == c->catchup_rid) {
			c->catchup_rid = 0;
			c->catchup_to = 0;
		}
		break;
	case CPX__ENVELOPE__BODY_DELIVERY:
		d = env->delivery;
		*plausible = d->seq != UINT64_MAX && (d->seq <= c->announced ||
		    d->seq - c->announced <= CPX_SEQ_AHEAD_MAX);
		if (d->request_id != 0)
			*history = replay_ours(c, d->request_id, 0);
		else
			*history = c->catchup_rid != 0 && c->catchup_to != 0 &&
			    d->seq <= c->catchup_to;
		break;
	default:
		break;
	}
}

/* One message from the broker: now, or behind deliveries being verified. */
static void
dispatch(struct cpx_client *c, Cpx__Envelope **envp)
{
	int history, plausible, is_delivery;

	classify(c, *envp, &history, &plausible);
	is_delivery = (*envp)->body_case == CPX__ENVELOPE__BODY_DELIVERY;
	if (c->pool != NULL && (c->qlen > 0 || is_delivery) &&
	    enqueue(c, envp, history, plausible) == 0)
		return;
	if (c->qlen > 0)
		drain_queue(c);	/* out of memory: keep what order we can */
	if (is_delivery)
		on_delivery(c, (*envp)->delivery, history, plausible);
	else
		on_envelope(c, envp);
}

/*
 * Say in plain words who refused whom before the Welcome: our own check
 * of the broker's certificate (its text already begins "the broker's" or
 * names our CRL), or the broker's TLS alert about ours, whose OpenSSL
 * name ("sslv3 alert certificate revoked") is kept in brackets. Returns
 * 1 if this node refused this broker's certificate, else 0.
 */
static int
refusal_words(const char *tls, char *out, size_t len)
{
	static const struct {
		const char	*alert;
		const char	*words;
	} alerts[] = {
		{ "certificate revoked", "this node's certificate has been "
		    "revoked" },
		{ "certificate expired", "this node's certificate has "
		    "expired" },
		{ "unknown ca", "this node's certificate is not from the "
		    "network's CA" },
		{ "certificate required", "this node sent no certificate" },
		{ "bad certificate", "this node's certificate was not "
		    "accepted" },
		{ "unsupported certificate", "this node's certificate is not "
		    "a node certificate" },
	};
	size_t i;

	if (strstr(tls, "the broker's") != NULL ||
	    strstr(tls, "our CRL") != NULL) {
		snprintf(out, len, "this node refuses the broker: %s", tls);
		/* Our CRL is at fault for every broker, not this one. */
		return strstr(tls, "the broker's") != NULL;
	}
	for (i = 0; i < sizeof(alerts) / sizeof(alerts[0]); i++)
		if (strstr(tls, alerts[i].alert) != NULL) {
			snprintf(out, len, "the broker refused this node: %s "
			    "(%s)", alerts[i].words, tls);
			return 0;
		}
	snprintf(out, len, "the broker refused this node: %s", tls);
	return 0;
}

/*
 * With several endpoints, this node refused the current one's broker
 * (why[] says why: another name, key or a revoked certificate): it is
 * not an endpoint of this network, and is never tried again by this
 * client. why[] gets the endpoint. Returns 1 if that was the last
 * endpoint left (the refusal is final), else 0: the next is tried.
 */
static int
refuse_endpoint(struct cpx_client *c, char *why, size_t len)
{
	char copy[320];

	snprintf(copy, sizeof(copy), "%s", why);
	snprintf(why, len, "%.200s (at %.100s)", copy, c->endpoint);
	c->ep_bad[c->cur] = 1;
	if (usable_endpoints(c) == 0)
		return 1;
	log_warnx("%s; not using that endpoint again", why);
	return 0;
}

#ifdef CPX_TRACE
/* The broker's stamps of an Ack or live Delivery, and when it came. */
static void
trace_note(struct cpx_client *c, const Cpx__Envelope *env)
{
	c->trace_ns = NULL;
	c->n_trace_ns = 0;
	c->trace_rx_ns = trace_now();
	if (env->body_case == CPX__ENVELOPE__BODY_DELIVERY) {
		c->trace_ns = env->delivery->trace_ns;
		c->n_trace_ns = env->delivery->n_trace_ns;
	} else if (env->body_case == CPX__ENVELOPE__BODY_ACK) {
		c->trace_ns = env->ack->trace_ns;
		c->n_trace_ns = env->ack->n_trace_ns;
	}
}

const uint64_t *
cpx_client_trace(const struct cpx_client *c, size_t *n, uint64_t *rx_ns)
{
	*n = c->n_trace_ns;
	*rx_ns = c->trace_rx_ns;
	return c->trace_ns;
}
#endif

static void
on_data(struct cpx_client *c, const uint8_t *p, size_t len)
{
	Cpx__Envelope *env;
	const uint8_t *body;
	size_t blen;
	char why[320];
	int r, reason, failed, final;

	c->last_rx_ms = now_ms();
	/*
	 * Frames decrypted before a TLS failure or close are still taken:
	 * the last one may be the broker's Error saying why it ends.
	 */
	failed = tlsconn_feed(c->tls, p, len) == -1;
	flush(c);
	while (c->tls != NULL &&
	    (r = tlsconn_next_frame(c->tls, &body, &blen)) != 0) {
		if (r == -1) {
			lost(c, tlsconn_error(c->tls), 0);
			return;
		}
		if ((env = wire_decode(body, blen, &reason, why,
		    sizeof(why))) == NULL) {
			char msg[400];

			snprintf(msg, sizeof(msg), "bad frame from broker: %s",
			    why);
			lost(c, msg, 0);
			return;
		}
#ifdef CPX_TRACE
		trace_note(c, env);
#endif
		dispatch(c, &env);
#ifdef CPX_TRACE
		c->trace_ns = NULL;
		c->n_trace_ns = 0;
#endif
		if (env != NULL)
			cpx__envelope__free_unpacked(env, NULL);
	}
	drain_queue(c);
	if (c->tls == NULL)
		return;		/* a fatal Error ended the connection */
	if (failed) {
		/*
		 * Before the Welcome, a TLS alert is the broker refusing our
		 * certificate (TLS 1.3: our handshake "succeeded" before it
		 * judged us), or our own check refusing the broker's. Both
		 * are final, not a reason to retry; but of several endpoints
		 * a broker we refused is only dropped (refuse_endpoint).
		 */
		final = c->welcome == NULL;
		if (c->welcome != NULL)
			snprintf(why, sizeof(why), "TLS session failed: %s",
			    tlsconn_error(c->tls));
		else if (refusal_words(tlsconn_error(c->tls), why,
		    sizeof(why)) && c->ep.n > 1)
			final = refuse_endpoint(c, why, sizeof(why));
		lost(c, why, final);
	} else if (tlsconn_state(c->tls) == TLSCONN_CLOSED)
		lost(c, "broker closed the connection", 0);
}

static void
on_message(struct cpx_client *c, zmq_msg_t *rid, zmq_msg_t *data)
{
	size_t rl = zmq_msg_size(rid);

	if (rl == 0 || rl > RID_MAX)
		return;
	if (zmq_msg_size(data) == 0) {
		if (c->rid_len == rl && memcmp(c->rid, zmq_msg_data(rid),
		    rl) == 0) {
			lost(c, c->welcome ? "connection to the broker lost" :
			    "broker closed the connection during the TLS "
			    "handshake", 0);
			return;
		}
		if (c->rid_len > 0 || c->dead)
			return;
		/* A new TCP connection: start a fresh handshake. */
		memcpy(c->rid, zmq_msg_data(rid), rl);
		c->rid_len = rl;
		c->tls = tlsconn_new(c->ctx, 0, CPX_MAX_FRAME_PREAUTH);
		if (c->tls == NULL || tlsconn_start(c->tls) == -1) {
			lost(c, "cannot start TLS", 0);
			c->dead = 1;
			return;
		}
		c->last_rx_ms = now_ms();
		flush(c);
		return;
	}
	if (c->rid_len != rl || memcmp(c->rid, zmq_msg_data(rid), rl) != 0 ||
	    c->tls == NULL)
		return;
	on_data(c, zmq_msg_data(data), zmq_msg_size(data));
}

static void
keepalive(struct cpx_client *c)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Ping ping = CPX__PING__INIT;
	int64_t now = now_ms(), ping_ms;

	if (c->welcome == NULL)
		return;
	ping_ms = c->ping_cfg_ms > 0 ? c->ping_cfg_ms :
	    c->welcome->welcome->ping_interval > 0 ?
	    (int64_t)c->welcome->welcome->ping_interval * 1000 :
	    DEFAULT_PING_MS;
	if (now - c->last_rx_ms > 3 * ping_ms) {
		lost(c, "broker silent for three keepalive periods", 0);
		return;
	}
	if (now - c->last_ping_ms >= ping_ms) {
		c->last_ping_ms = now;
		ping.nonce = (uint64_t)now;
		env.body_case = CPX__ENVELOPE__BODY_PING;
		env.ping = &ping;
		(void)send_env(c, &env);
	}
}

int
cpx_client_run(struct cpx_client *c, int timeout_ms)
{
	zmq_pollitem_t items[2];
	zmq_msg_t rid, data;
	int64_t until = now_ms() + timeout_ms, left;
	int i, nitems = 1;

	c->stopped = 0;
	c->wake = 0;
	for (;;) {
		if (c->dead)
			return -1;
		if (c->stopped)
			return 1;
		if (c->wake)
			return 0;
		left = until - now_ms();
		if (left < 0)
			left = 0;
		if (left > 1000)
			left = 1000;	/* keepalive granularity */
		memset(items, 0, sizeof(items));
		items[0].socket = c->sock;
		/* A full queue reads no more until the pool catches up. */
		items[0].events = c->qlen < QUEUE_MAX / 2 ? ZMQ_POLLIN : 0;
		if (c->pool != NULL) {
			items[1].socket = workpool_socket(c->pool);
			items[1].events = ZMQ_POLLIN;
			nitems = 2;
		}
		if (c->tls != NULL && tlsconn_out_pending(c->tls) > 0 &&
		    left > 5)
			left = 5;
		if (zmq_poll(items, nitems, (long)left) == -1 &&
		    errno != EINTR) {
			snprintf(c->error, sizeof(c->error), "zmq_poll: %s",
			    zmq_strerror(errno));
			c->dead = 1;
			return -1;
		}
		take_verified(c);
		/*
		 * An internal wait (wake) returns as soon as what it awaits
		 * was handled, not at the end of a poll period.
		 */
		for (i = 0; i < 1024 && !c->dead && !c->wake &&
		    c->qlen < QUEUE_MAX / 2; i++) {
			zmq_msg_init(&rid);
			zmq_msg_init(&data);
			if (zmq_msg_recv(&rid, c->sock, ZMQ_DONTWAIT) == -1) {
				zmq_msg_close(&rid);
				zmq_msg_close(&data);
				break;
			}
			if (zmq_msg_more(&rid) &&
			    zmq_msg_recv(&data, c->sock, 0) != -1)
				on_message(c, &rid, &data);
			zmq_msg_close(&rid);
			zmq_msg_close(&data);
			if (c->stopped)
				break;
		}
		flush(c);
		keepalive(c);
		check_endpoint(c);
		if (now_ms() >= until || c->wake)
			return c->dead ? -1 : c->stopped ? 1 : 0;
	}
}

void
cpx_client_stop(struct cpx_client *c)
{
	c->stopped = 1;
}

int
cpx_client_refused(const struct cpx_client *c)
{
	return c->refused;
}

const char *
cpx_client_endpoint(const struct cpx_client *c)
{
	return c->endpoint;
}

const char *
cpx_client_error(const struct cpx_client *c)
{
	return c->error[0] ? c->error : "no error";
}

int
cpx_client_error_reason(const struct cpx_client *c)
{
	return c->fatal_reason;
}

/*
 * cpx_client_connect with several endpoints: each in turn from the
 * current one (check_endpoint moves on), until a Welcome or until every
 * endpoint not refused has failed once in this call, which err[] then
 * tells endpoint by endpoint. Returns 0 or -1.
 */
static int
connect_list(struct cpx_client *c, int timeout_ms, char *err, size_t errlen)
{
	int64_t until = now_ms() + timeout_ms, left;
	size_t i, used;
	int n;

	c->round_tried = 1;
	c->round_start_ms = now_ms();
	c->ep_failed = 0;
	for (i = 0; i < c->ep.n; i++)
		c->ep_why[i][0] = '\0';
	if (c->sock == NULL && open_socket(c, err, errlen) == -1)
		return -1;
	c->ep_since_ms = now_ms();
	while (c->welcome == NULL) {
		if (c->dead) {
			snprintf(err, errlen, "%s", c->error);
			return -1;
		}
		left = until - now_ms();
		if ((c->ep_failed && c->round_tried >= usable_endpoints(c)) ||
		    left <= 0) {
			n = snprintf(err, errlen, "no session with any of the "
			    "%zu brokers%s", c->ep.n, left <= 0 ? " in time" :
			    "");
			for (i = 0; i < c->ep.n && n >= 0 &&
			    (size_t)n < errlen; i++) {
				used = (size_t)n;
				n += snprintf(err + used, errlen - used,
				    "%s %s: %s", i ? ";" : ":", c->ep.eps[i],
				    c->ep_why[i][0] ? c->ep_why[i] :
				    c->ep_bad[i] ? "refused earlier by this "
				    "node" : "not tried");
			}
			return -1;
		}
		(void)cpx_client_run(c, left > 50 ? 50 : (int)left);
	}
	return 0;
}

int
cpx_client_connect(struct cpx_client *c, int timeout_ms, char *err,
    size_t errlen)
{
	int64_t until = now_ms() + timeout_ms, left;
	char why[160];
	int rc = -1, refused;

	/* The Welcome wakes cpx_client_run: no poll period is waited out. */
	c->wait_welcome = 1;
	if (c->ep.n > 1) {
		rc = connect_list(c, timeout_ms, err, errlen);
		goto done;
	}
	if (c->sock == NULL && open_socket(c, err, errlen) == -1)
		goto done;
	while (c->welcome == NULL) {
		/*
		 * Nothing listening (or no route) is known at once: say so
		 * now rather than after the whole timeout. The probe tells
		 * which error; if it connects, the broker has just come up
		 * and ZeroMQ's next retry will find it.
		 */
		if (c->rid_len == 0 && monitor_failed(c) &&
		    probe_tcp(c->endpoint, 1000, why, sizeof(why),
		    &refused) == -1) {
			snprintf(err, errlen, "no session with the broker at "
			    "%s: TCP connect failed: %s%s", c->endpoint, why,
			    refused ? " (is cpx-broker running and listening "
			    "on that port?)" : "");
			goto done;
		}
		if ((left = until - now_ms()) <= 0) {
			if (c->error[0])
				snprintf(err, errlen, "no session with the "
				    "broker at %s within %d ms: %s",
				    c->endpoint, timeout_ms, c->error);
			else
				snprintf(err, errlen, "no session with the "
				    "broker at %s within %d ms (is it running "
				    "and reachable?)", c->endpoint, timeout_ms);
			goto done;
		}
		/* Short turns until TCP is up, so the monitor is heard. */
		if (c->rid_len == 0 && c->mon != NULL && left > 50)
			left = 50;
		if (cpx_client_run(c, (int)left) == -1 || c->dead) {
			snprintf(err, errlen, "%s", c->error);
			goto done;
		}
	}
	rc = 0;
done:
	monitor_stop(c);
	c->wait_welcome = 0;
	return rc;
}

const struct identity *
cpx_client_identity(const struct cpx_client *c)
{
	return &c->self;
}

const Cpx__Welcome *
cpx_client_welcome(const struct cpx_client *c)
{
	return c->welcome ? c->welcome->welcome : NULL;
}

void
cpx_client_on_event(struct cpx_client *c, cpx_event_cb *cb, void *arg)
{
	c->cb = cb;
	c->cb_arg = arg;
}

static void
make_uuid(char out[37])
{
	uint8_t u[16];

	if (RAND_bytes(u, sizeof(u)) != 1)
		abort();	/* no randomness: an invariant is broken */
	u[6] = (u[6] & 0x0f) | 0x40;
	u[8] = (u[8] & 0x3f) | 0x80;
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
	    "%02x%02x%02x%02x%02x%02x", u[0], u[1], u[2], u[3], u[4], u[5],
	    u[6], u[7], u[8], u[9], u[10], u[11], u[12], u[13], u[14], u[15]);
}

/* Queue a signed alert as a Publish, kept until its ACK or ERROR. */
static int
send_signed(struct cpx_client *c, Cpx__SignedAlert *sa, const char *alert_id,
    uint64_t *request_id, char *err, size_t errlen)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Publish pub = CPX__PUBLISH__INIT;
	struct inflight *in, *grown;
	uint8_t *frame = NULL;
	size_t flen = 0, cap;

	pub.request_id = c->next_request++;
	pub.alert = sa;
	env.body_case = CPX__ENVELOPE__BODY_PUBLISH;
	env.publish = &pub;
	if (wire_encode(&env, &frame, &flen) == -1) {
		snprintf(err, errlen, "alert too large to send");
		return -1;
	}
	if (c->ninflight == c->inflight_cap) {
		cap = c->inflight_cap ? c->inflight_cap * 2 : 64;
		if ((grown = reallocarray(c->inflight, cap,
		    sizeof(*grown))) == NULL) {
			snprintf(err, errlen, "out of memory");
			free(frame);
			return -1;
		}
		c->inflight = grown;
		c->inflight_cap = cap;
	}
	in = &c->inflight[c->ninflight++];
	in->request_id = pub.request_id;
	in->frame = frame;
	in->len = flen;
	snprintf(in->alert_id, sizeof(in->alert_id), "%s", alert_id);
	if (send_frame(c, in->frame, in->len) == -1) {
		snprintf(err, errlen, "TLS write failed");
		c->ninflight--;
		OPENSSL_clear_free(in->frame, in->len);
		return -1;
	}
	*request_id = pub.request_id;
	return 0;
}

int
cpx_publish_signed(struct cpx_client *c, Cpx__SignedAlert *sa,
    uint64_t *request_id, char *err, size_t errlen)
{
	*request_id = 0;
	return send_signed(c, sa, "", request_id, err, errlen);
}

int
cpx_publish_send(struct cpx_client *c, Cpx__Alert *a, uint64_t *request_id,
    char *err, size_t errlen)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	uint8_t *bytes = NULL;
	size_t len;
	int rc = -1;

	*request_id = 0;
	if (a->id == NULL || a->id[0] == '\0') {
		make_uuid(c->id_buf);
		a->id = c->id_buf;
	}
	if (a->origin == NULL || a->origin[0] == '\0') {
		memcpy(c->origin_buf, c->self.country, 3);
		a->origin = c->origin_buf;
	}
	if (a->issued_at == 0)
		a->issued_at = alert_now_ms();
	len = cpx__alert__get_packed_size(a);
	if (len > CPX_MAX_ALERT) {
		snprintf(err, errlen, "alert is %zu bytes, over the limit of "
		    "%u", len, CPX_MAX_ALERT);
		return -1;
	}
	if ((bytes = malloc(len ? len : 1)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	cpx__alert__pack(a, bytes);
	if (sign_alert(c->key, c->cert, bytes, len, &sa) == -1) {
		snprintf(err, errlen, "cannot sign the alert with this node's "
		    "key");
		goto done;
	}
	rc = send_signed(c, &sa, a->id, request_id, err, errlen);
done:
	sign_signed_alert_clear(&sa);
	free(bytes);
	return rc;
}

size_t
cpx_publish_inflight(const struct cpx_client *c)
{
	return c->ninflight;
}

struct wait_ctx {
	struct cpx_client	*c;
	uint64_t		 request_id;
	int			 done;
	struct cpx_result	*res;
	cpx_event_cb		*cb;
	void			*arg;
};

static void
wait_cb(const struct cpx_event *ev, void *arg)
{
	struct wait_ctx *w = arg;

	if (ev->request_id == w->request_id && (ev->kind == CPX_EV_ACK ||
	    (ev->kind == CPX_EV_ERROR && ev->request_id != 0))) {
		w->done = 1;
		w->c->wake = 1;	/* cpx_client_run returns at once */
		w->res->seq = ev->seq;
		w->res->duplicate = ev->duplicate;
		w->res->reason = ev->kind == CPX_EV_ERROR ? ev->reason : 0;
		snprintf(w->res->text, sizeof(w->res->text), "%s",
		    ev->text ? ev->text : "");
		return;
	}
	if (w->cb != NULL)
		w->cb(ev, w->arg);
}

int
cpx_publish(struct cpx_client *c, Cpx__Alert *a, int timeout_ms,
    struct cpx_result *res)
{
	struct wait_ctx w;
	int64_t until = now_ms() + timeout_ms, left;
	int rc = 0;

	memset(res, 0, sizeof(*res));
	memset(&w, 0, sizeof(w));
	w.c = c;
	w.res = res;
	w.cb = c->cb;
	w.arg = c->cb_arg;
	if (cpx_publish_send(c, a, &w.request_id, res->text,
	    sizeof(res->text)) == -1) {
		res->reason = CPX__REASON__REASON_INTERNAL;
		return -1;
	}
	c->cb = wait_cb;
	c->cb_arg = &w;
	while (!w.done && rc != -1 && (left = until - now_ms()) > 0)
		rc = cpx_client_run(c, (int)left);
	c->cb = w.cb;
	c->cb_arg = w.arg;
	if (!w.done) {
		/* The session's own end (a fatal Error) says why. */
		res->reason = rc == -1 && c->fatal_reason != 0 ?
		    c->fatal_reason : CPX__REASON__REASON_INTERNAL;
		snprintf(res->text, sizeof(res->text), "%s", rc == -1 ?
		    c->error : "no acknowledgement from the broker in time");
		return -1;
	}
	return res->reason == 0 ? 0 : -1;
}

int
cpx_subscribe(struct cpx_client *c, Cpx__Filter *const *filters,
    size_t nfilters, int resume, uint64_t after, uint64_t *request_id)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__Subscribe sub = CPX__SUBSCRIBE__INIT;
	uint8_t *packed;
	size_t len;

	sub.request_id = c->next_request++;
	sub.filters = (Cpx__Filter **)filters;
	sub.n_filters = nfilters;
	sub.resume = resume;
	sub.resume_after = after;
	len = cpx__subscribe__get_packed_size(&sub);
	if ((packed = malloc(len ? len : 1)) == NULL)
		return -1;
	cpx__subscribe__pack(&sub, packed);
	free(c->sub);
	c->sub = packed;
	c->sub_len = len;
	c->sub_resume = resume;
	if (resume && after > c->last_seq)
		c->last_seq = after;
	c->catchup_rid = resume ? sub.request_id : 0;
	c->catchup_to = 0;
	*request_id = sub.request_id;
	env.body_case = CPX__ENVELOPE__BODY_SUBSCRIBE;
	env.subscribe = &sub;
	return send_env(c, &env);
}

int
cpx_replay(struct cpx_client *c, const Cpx__ReplayRequest *rq,
    uint64_t *request_id)
{
	Cpx__Envelope env = CPX__ENVELOPE__INIT;
	Cpx__ReplayRequest copy = *rq;
	size_t i;

	*request_id = 0;
	if (c->welcome == NULL)
		return -1;
	/* Remembered so its deliveries, and only they, are history. */
	for (i = 0; i < REPLAYS_MAX && c->replays[i] != 0; i++)
		;
	if (i == REPLAYS_MAX)
		return -1;
	copy.request_id = c->next_request++;
	env.body_case = CPX__ENVELOPE__BODY_REPLAY;
	env.replay = &copy;
	if (send_env(c, &env) == -1)
		return -1;
	c->replays[i] = copy.request_id;
	*request_id = copy.request_id;
	return 0;
}

uint64_t
cpx_client_last_seq(const struct cpx_client *c)
{
	return c->last_seq;
}

/* --- for the witness (client/witness.c, witness_int.h) ------------------ */

int
client_witness_call(struct cpx_client *c, Cpx__Envelope *req,
    uint64_t *request_id, int timeout_ms, Cpx__Envelope **reply, char *err,
    size_t errlen)
{
	cpx_event_cb *cb = c->cb;
	void *arg = c->cb_arg;
	int64_t until = now_ms() + timeout_ms, left;
	int rc = 0;

	*reply = NULL;
	if (c->welcome == NULL || c->tls == NULL) {
		snprintf(err, errlen, "not connected to the broker");
		return -1;
	}
	*request_id = c->next_request++;
	switch (req->body_case) {
	case CPX__ENVELOPE__BODY_WITNESS_REQUEST:
		req->witness_request->request_id = *request_id;
		break;
	case CPX__ENVELOPE__BODY_COSIGN:
		req->cosign->request_id = *request_id;
		break;
	case CPX__ENVELOPE__BODY_WITNESS_ALARM:
		req->witness_alarm->request_id = *request_id;
		break;
	default:
		snprintf(err, errlen, "not a witness request");
		return -1;
	}
	c->wit_rid = *request_id;
	if (send_env(c, req) == -1) {
		c->wit_rid = 0;
		snprintf(err, errlen, "cannot send to the broker");
		return -1;
	}
	while (c->wit_reply == NULL && rc != -1 &&
	    (left = until - now_ms()) > 0)
		rc = cpx_client_run(c, (int)left);
	c->cb = cb;
	c->cb_arg = arg;
	c->wit_rid = 0;
	if (c->wit_reply == NULL) {
		snprintf(err, errlen, "%s", rc == -1 ? c->error :
		    "no answer from the broker in time");
		return -1;
	}
	*reply = c->wit_reply;
	c->wit_reply = NULL;
	return 0;
}

int
client_witness_sign(struct cpx_client *c, const uint8_t *msg, size_t len,
    uint8_t **sig, size_t *siglen)
{
	return sign_bytes(c->key, c->cert, msg, len, sig, siglen);
}

struct trust *
client_witness_trust(struct cpx_client *c)
{
	return c->trust;
}

const uint8_t *
client_witness_broker_cert(const struct cpx_client *c, size_t *len)
{
	*len = 0;
	return c->tls != NULL ? tlsconn_peer_cert_der(c->tls, len) : NULL;
}
