/*
 * bench_js.c: the NATS JetStream peer of cpx-bench, the replicated
 * messaging users would pick instead of cpx: a cluster of nats-server
 * processes (run.sh starts three on loopback), one stream ALERTS over
 * alerts.> with three replicas in file storage, clients from libnats over
 * mutual TLS with the nodes' certificates.
 *
 * The same signed 1 KiB alerts as the cpx and Mosquitto publishers
 * (bench_sign), published on alerts.<CC>.<category>.<severity> with the
 * alert id as Nats-Msg-Id (JetStream's duplicate detection, as the cpx
 * broker refuses a repeated id), acknowledged by the stream once stored on
 * a majority of its replicas: asynchronously with up to WINDOW in flight
 * (W1; W2 at its offered rate, as the cpx publishers do), or with -s one
 * synchronous js_Publish at a time (W2, each awaited). Each subscriber
 * has one ordered push consumer per subject filter of its feed (the
 * Mosquitto peer's topic filters, bench_topics) and verifies every
 * delivery as a cpx node does (bench_verify).
 *
 * libnats calls the ack and message handlers on its own threads: the
 * worker's mutex makes one subscriber verify one delivery at a time (as
 * its single Mosquitto or cpx connection would), the condition variable
 * wakes a publisher waiting for room in its window.
 *
 * nats_Close() is never called: every connection is closed and destroyed
 * before main returns, and libnats 3.4's nats_Close() releases OpenSSL
 * state that OpenSSL's own exit handler then frees again (a crash in
 * OPENSSL_cleanup at exit).
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <nats/nats.h>

#include "sign.h"
#include "tlsctx.h"
#include "bench.h"

#define JS_STREAM	"ALERTS"
#define JS_MAXBYTES	(2LL * 1024 * 1024 * 1024)	/* per replica */
#define JS_INIT_S	60	/* the cluster elects its meta leader */

/* "alerts/SI/+/#" (MQTT) as a NATS subject "alerts.SI.*.>". */
static void
js_subject(char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '/')
			*s = '.';
		else if (*s == '+')
			*s = '*';
		else if (*s == '#')
			*s = '>';
	}
}

static void
js_error(const char *who, const char *what, natsStatus s, jsErrCode jerr)
{
	natsStatus ls;
	const char *last = nats_GetLastError(&ls);

	fprintf(stderr, "%s: JetStream %s: %s (JetStream error %d)%s%s\n",
	    who, what, natsStatus_GetText(s), (int)jerr,
	    last != NULL ? ": " : "", last != NULL ? last : "");
}

/*
 * Connect node (its certificate and key from the PKI) to the cluster,
 * trying the servers from endpoint k on. The caller owns *ncp. 0 or -1.
 */
static int
js_connect(struct bench *b, const char *node, int k, natsConnection **ncp)
{
	natsOptions *o = NULL;
	const char *urls[MAXBROKER];
	char cert[512], key[512], ca[512];
	natsStatus s;
	int i;

	*ncp = NULL;
	bench_node_paths(b, node, cert, key, sizeof(cert));
	snprintf(ca, sizeof(ca), "%s/ca.pem", b->pki);
	for (i = 0; i < b->nendpoints; i++)
		urls[i] = b->endpoints[(k + i) % b->nendpoints];
	if ((s = natsOptions_Create(&o)) != NATS_OK ||
	    (s = natsOptions_SetServers(o, urls, b->nendpoints)) != NATS_OK ||
	    (s = natsOptions_SetNoRandomize(o, true)) != NATS_OK ||
	    (s = natsOptions_SetName(o, node)) != NATS_OK ||
	    (s = natsOptions_SetSecure(o, true)) != NATS_OK ||
	    (s = natsOptions_LoadCATrustedCertificates(o, ca)) != NATS_OK ||
	    (s = natsOptions_LoadCertificatesChain(o, cert, key)) !=
	    NATS_OK ||
	    /* The broker certificate names localhost and 127.0.0.1. */
	    (s = natsOptions_SetExpectedHostname(o, "localhost")) !=
	    NATS_OK ||
	    (s = natsOptions_SetTimeout(o, 10000)) != NATS_OK ||
	    (s = natsConnection_Connect(ncp, o)) != NATS_OK) {
		js_error(node, "connect", s, 0);
		natsOptions_Destroy(o);
		return -1;
	}
	natsOptions_Destroy(o);
	return 0;
}

static void
js_close(natsConnection **ncp)
{
	if (*ncp == NULL)
		return;
	natsConnection_Close(*ncp);
	natsConnection_Destroy(*ncp);
	*ncp = NULL;
}

/*
 * jsinit: the stream every run publishes to, three replicas in file
 * storage (JetStream's defaults otherwise: the file store writes through
 * the page cache and syncs every two minutes; the acknowledgement means
 * "stored on a majority of the replicas"). Retried while the cluster
 * elects its leaders.
 */
int
bench_js_init(struct bench *b)
{
	const char *subjects[] = { "alerts.>" };
	natsConnection *nc = NULL;
	jsStreamConfig cfg;
	jsStreamInfo *si = NULL;
	jsCtx *js = NULL;
	jsErrCode jerr = 0;
	natsStatus s = NATS_OK;
	int64_t until;
	int rc = -1;

	until = bench_now_ns() + JS_INIT_S * 1000000000LL;
	while (js_connect(b, bench_pubs[0][0], 0, &nc) == -1) {
		if (bench_now_ns() > until)
			return -1;
		bench_sleep_ms(500);
	}
	if ((s = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK) {
		js_error("jsinit", "context", s, 0);
		goto done;
	}
	jsStreamConfig_Init(&cfg);
	cfg.Name = JS_STREAM;
	cfg.Subjects = subjects;
	cfg.SubjectsLen = 1;
	cfg.Storage = js_FileStorage;
	cfg.Replicas = 3;
	cfg.MaxBytes = JS_MAXBYTES;
	cfg.Discard = js_DiscardOld;
	while ((s = js_AddStream(&si, js, &cfg, NULL, &jerr)) != NATS_OK) {
		if (bench_now_ns() > until) {
			js_error("jsinit", "add stream " JS_STREAM, s, jerr);
			goto done;
		}
		bench_sleep_ms(500);
	}
	printf("R js_replicas %" PRId64 "\n", si->Config->Replicas);
	printf("R js_cluster %s\n", si->Cluster != NULL &&
	    si->Cluster->Name != NULL ? si->Cluster->Name : "-");
	printf("R js_leader %s\n", si->Cluster != NULL &&
	    si->Cluster->Leader != NULL ? si->Cluster->Leader : "-");
	rc = 0;
done:
	jsStreamInfo_Destroy(si);
	jsCtx_Destroy(js);
	js_close(&nc);
	return rc;
}

/* ---- subscribers ---------------------------------------------------- */

static void
js_on_msg(natsConnection *nc, natsSubscription *sub, natsMsg *msg,
    void *arg)
{
	struct worker *w = arg;

	(void)nc;
	(void)sub;
	pthread_mutex_lock(&w->mu);
	bench_verify(w, natsMsg_GetData(msg),
	    (size_t)natsMsg_GetDataLength(msg));
	pthread_mutex_unlock(&w->mu);
	natsMsg_Destroy(msg);
}

void *
bench_js_sub_thread(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	const struct subspec *s = &bench_subs[w->idx];
	natsSubscription *subs[MAXTOPICS] = { NULL };
	natsConnection *nc = NULL;
	jsSubOptions so;
	jsCtx *js = NULL;
	jsErrCode jerr = 0;
	natsStatus st;
	char topics[MAXTOPICS][TOPICLEN], ca[512], crl[512], err[256];
	int n = 0, i, ok = 0;

	snprintf(ca, sizeof(ca), "%s/ca.pem", b->pki);
	snprintf(crl, sizeof(crl), "%s/crl.pem", b->pki);
	if ((w->trust = trust_new(ca, crl, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto done;
	}
	if (js_connect(b, s->node, w->idx, &nc) == -1)
		goto done;
	if ((st = natsConnection_JetStream(&js, nc, NULL)) != NATS_OK) {
		js_error(s->node, "context", st, 0);
		goto done;
	}
	n = bench_topics(s, topics, MAXTOPICS);
	for (i = 0; i < n; i++) {
		js_subject(topics[i]);
		jsSubOptions_Init(&so);
		so.Stream = JS_STREAM;
		so.Ordered = true;
		so.Config.DeliverPolicy = js_DeliverNew;
		if ((st = js_Subscribe(&subs[i], js, topics[i], js_on_msg, w,
		    NULL, &so, &jerr)) != NATS_OK) {
			js_error(s->node, topics[i], st, jerr);
			goto done;
		}
	}
	ok = 1;
	atomic_fetch_add(&b->ready, 1);
	while (!atomic_load(&b->stop_all))
		bench_sleep_ms(20);
done:
	if (!ok) {
		fprintf(stderr, "%s: JetStream subscriber failed\n", s->node);
		atomic_store(&b->failed, 1);
	}
	for (i = 0; i < n; i++)
		if (subs[i] != NULL) {
			natsSubscription_Unsubscribe(subs[i]);
			natsSubscription_Destroy(subs[i]);
		}
	jsCtx_Destroy(js);
	js_close(&nc);
	trust_free(&w->trust);
	return NULL;
}

/* ---- publishers ----------------------------------------------------- */

/*
 * The stream's answer to an asynchronous publish. W2 meters it: the
 * alert's index is the last part of its id, the message's Nats-Msg-Id.
 */
static void
js_on_ack(jsCtx *js, natsMsg *msg, jsPubAck *pa, jsPubAckErr *pae,
    void *arg)
{
	struct worker *w = arg;
	const char *id = NULL, *dash;
	uint64_t i = 0;

	(void)js;
	if (w->b->alat != NULL &&
	    natsMsgHeader_Get(msg, "Nats-Msg-Id", &id) == NATS_OK &&
	    id != NULL && (dash = strrchr(id, '-')) != NULL)
		i = strtoull(dash + 1, NULL, 10);
	if (pa != NULL)
		bench_acked(w->b, w, i);
	else if (atomic_fetch_add(&w->b->refused, 1) < 5)
		fprintf(stderr, "%s: JetStream refused: %s\n",
		    bench_pubs[w->idx][0], pae != NULL && pae->ErrText != NULL ?
		    pae->ErrText : "?");
	natsMsg_Destroy(msg);
	pthread_mutex_lock(&w->mu);
	w->js_inflight--;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->mu);
}

/* Wait, at most 1 ms at a time, for room in the window; 1 if there is. */
static int
js_room(struct worker *w)
{
	struct bench *b = w->b;
	struct timespec ts;
	int room;

	pthread_mutex_lock(&w->mu);
	room = w->js_inflight < WINDOW && bench_backlog_ok(b);
	if (!room) {
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += 1000000;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_cond_timedwait(&w->cv, &w->mu, &ts);
		room = w->js_inflight < WINDOW && bench_backlog_ok(b);
	}
	pthread_mutex_unlock(&w->mu);
	return room;
}

/*
 * Publish alert i: asynchronously (js_on_ack counts the ack) or, with
 * sync, waiting for the stream's ack (js_Publish). 0, or -1 if the client
 * library failed.
 */
static int
js_send_one(struct bench *b, struct worker *w, jsCtx *js,
    struct sign_key *sk, uint64_t i, int sync)
{
	jsPubOptions po;
	jsPubAck *pa = NULL;
	jsErrCode jerr = 0;
	natsStatus s;
	uint8_t *buf = NULL;
	char topic[TOPICLEN], id[64];
	size_t len;
	int64_t t = bench_now_ns();
	int rc = -1;

	if (bench_sign(b, w, sk, i, t, &buf, &len, topic,
	    sizeof(topic)) == -1)
		return -1;
	js_subject(topic);
	bench_alert_id(b, w->idx, i, id, sizeof(id));
	jsPubOptions_Init(&po);
	po.MsgId = id;
	bench_expect(b, w->idx, i);
	atomic_fetch_add(&b->sent, 1);
	if (w->ring != NULL)
		w->ring[i % RING] = t;
	if (!sync) {
		pthread_mutex_lock(&w->mu);
		w->js_inflight++;
		pthread_mutex_unlock(&w->mu);
		if ((s = js_PublishAsync(js, topic, buf, (int)len, &po)) !=
		    NATS_OK) {
			js_error(bench_pubs[w->idx][0], "publish", s, 0);
			goto done;
		}
		rc = 0;
		goto done;
	}
	po.MaxWait = 10000;
	if ((s = js_Publish(&pa, js, topic, buf, (int)len, &po, &jerr)) ==
	    NATS_OK)
		bench_acked(b, w, i);
	else if (atomic_fetch_add(&b->refused, 1) < 5)
		js_error(bench_pubs[w->idx][0], "publish", s, jerr);
	rc = 0;
done:
	jsPubAck_Destroy(pa);
	free(buf);
	return rc;
}

void *
bench_js_pub_thread(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	const char *node = bench_pubs[w->idx][0];
	natsConnection *nc = NULL;
	jsOptions jo;
	jsPubOptions po;
	jsCtx *js = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct sign_key *sk = NULL;
	natsStatus s;
	char cpath[512], kpath[512], err[256];
	uint64_t i = 0, total;
	int64_t next, step, now;
	int ok = 0;

	bench_node_paths(b, node, cpath, kpath, sizeof(cpath));
	if ((key = tlsctx_load_key(kpath, err, sizeof(err))) == NULL ||
	    (cert = tlsctx_load_cert(cpath, err, sizeof(err))) == NULL ||
	    (sk = sign_key_new(key, cert, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto done;
	}
	if (js_connect(b, node, w->idx, &nc) == -1)
		goto done;
	jsOptions_Init(&jo);
	jo.PublishAsync.MaxPending = 2 * WINDOW;
	jo.PublishAsync.AckHandler = js_on_ack;
	jo.PublishAsync.AckHandlerClosure = w;
	if ((s = natsConnection_JetStream(&js, nc, &jo)) != NATS_OK) {
		js_error(node, "context", s, 0);
		goto done;
	}
	bench_ready_go(b);
	if (strcmp(b->mode, "w2") == 0) {
		/* Open loop: alert k is due at t0 + k / rate. */
		bench_w2_plan(b, w->idx, &total, &step, &next);
		while (i < total) {
			if ((now = bench_now_ns()) < next) {
				struct timespec ts = { 0,
				    (long)(next - now) };

				nanosleep(&ts, NULL);
				continue;
			}
			if (js_send_one(b, w, js, sk, i++,
			    b->js_sync) == -1)
				goto done;
			next += step;
		}
	} else {
		while (!atomic_load(&b->stop_pub))
			if (js_room(w) && js_send_one(b, w, js, sk,
			    i++, 0) == -1)
				goto done;
	}
	jsPubOptions_Init(&po);
	po.MaxWait = DRAIN_NS / 1000000;
	if ((s = js_PublishAsyncComplete(js, &po)) != NATS_OK)
		js_error(node, "waiting for the last acks", s, 0);
	ok = 1;
done:
	if (!ok) {
		fprintf(stderr, "%s: JetStream publisher failed\n", node);
		atomic_store(&b->failed, 1);
	}
	jsCtx_Destroy(js);
	js_close(&nc);
	sign_key_free(&sk);
	EVP_PKEY_free(key);
	X509_free(cert);
	return NULL;
}
