/*
 * cpx_bench.c: the load generator and meter behind bench/run.sh. One
 * program drives the cpx broker through the client library (every alert
 * signed by its publisher, every delivery verified by its subscriber) and,
 * for comparison, Mosquitto through libmosquitto (bench_mosq.c) and NATS
 * JetStream through libnats (bench_js.c) with the same signed 1 KiB
 * alerts, the same subscriber layout and the same verification.
 *
 *	cpx-bench w1 -t cpx|mosq|js -P npub -S 0|10 -d sec throughput
 *	cpx-bench w2 -t cpx|mosq|js -r rate -d sec         latency
 *	cpx-bench w3gen -a audit_dir -n records            offline audit log
 *	cpx-bench w3                                       replay everything
 *	cpx-bench w3raw                                    the same, unverified
 *	cpx-bench w4 -c sessions                           session setup
 *	cpx-bench mosqconf -o dir -m port                  mosquitto config
 *	cpx-bench jsinit -e URL[,URL...]                   JetStream stream
 *
 * -e takes several endpoints, comma-separated (several brokers on one
 * store, or the servers of a JetStream cluster): publisher k and
 * subscriber k connect to endpoint k modulo their number. -b takes
 * several process ids: the broker CPU is their sum.
 *
 * Results go to stdout as "R key value" lines for run.sh's table; notes
 * and errors go to stderr. Every run is bounded in time.
 *
 * Threads: each publisher and subscriber has its own connection in its own
 * thread (the client library is single-threaded per client); they share
 * only atomic counters. Publishers stop sending while any subscriber lags
 * more than LAG alerts behind what it should have received, so W1 measures
 * the rate the whole system sustains with every subscriber keeping up,
 * not how fast a broker can fill queues that it must later drop.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>

#include <mosquitto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "alert.h"
#include "log.h"
#include "audit.h"
#include "cpx_client.h"
#include "cpx_limits.h"
#include "sign.h"
#include "tlsctx.h"
#include "trace.h"
#include "wire.h"
#include "bench.h"

/* CPU seconds (user + system) a process has used so far; -1 if gone. */
static double
proc_cpu(pid_t pid)
{
	char path[64], buf[2048], *p;
	unsigned long ut, st;
	FILE *f;
	size_t n;

	if (pid <= 0)
		return -1;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces: count fields after its ')'. */
	if ((p = strrchr(buf, ')')) == NULL)
		return -1;
	if (sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
	    &ut, &st) != 2)
		return -1;
	return (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
}

/* Resident memory of a process in KiB; -1 if unknown. */
/* CPU seconds of every process metered (-b); -1 if one is gone. */
static double
brokers_cpu(const struct bench *b)
{
	double sum = 0, c;
	int i;

	for (i = 0; i < b->nbrokers; i++) {
		if ((c = proc_cpu(b->broker_pids[i])) < 0)
			return -1;
		sum += c;
	}
	return sum;
}

static long
proc_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld", &kib) == 1)
			break;
	fclose(f);
	return kib;
}

static double
self_cpu(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void
calibrate(struct bench *b)
{
	struct alertbuf ab;
	size_t pad = 900, len = 0;
	int k;

	for (k = 0; k < 8; k++) {
		bench_alert_fill(b, &ab, 0, 0, bench_now_ns(), pad);
		len = cpx__alert__get_packed_size(&ab.a);
		if (len == ALERT_BYTES)
			break;
		pad = pad + ALERT_BYTES - len;
	}
	if (len != ALERT_BYTES) {
		fprintf(stderr, "cannot pad an alert to %d bytes\n",
		    ALERT_BYTES);
		exit(1);
	}
	b->pad = pad;
}

#ifdef CPX_TRACE
/*
 * Fill ts from the broker's stamps of the frame c is handing over, the
 * publisher's two stamps and now. 0, or -1 if the frame carries no full
 * trace (a repeat, say).
 */
static int
trace_fill(struct cpx_client *c, struct tsample *ts, int64_t sent,
    int64_t signed_at)
{
	const uint64_t *bt;
	uint64_t rx;
	size_t n, k;

	if ((bt = cpx_client_trace(c, &n, &rx)) == NULL ||
	    n != TRACE_BROKER_N || sent <= 0 || signed_at <= 0)
		return -1;
	for (k = 0; k < TRACE_BROKER_N; k++)
		if (bt[k] == 0)
			return -1;
	ts->t[ST_SEND] = sent;
	ts->t[ST_SIGNED] = signed_at;
	for (k = 0; k < TRACE_BROKER_N; k++)
		ts->t[ST_B0 + k] = (int64_t)bt[k];
	ts->t[ST_RX] = (int64_t)rx;
	ts->t[ST_DONE] = bench_now_ns();
	return 0;
}
#endif

/* W2, traced: the stages of a verified delivery a to subscriber w. */
static void
trace_delivery(struct worker *w, const Cpx__Alert *a)
{
#ifdef CPX_TRACE
	struct bench *b = w->b;
	size_t tl = strlen(b->tag), *n = &b->ndtrace[w->idx];
	const char *dash;
	int64_t sent;
	uint64_t i;
	int pub;

	/* The alert's id is TAG-P-INDEX, its summary "t=SENT ...". */
	if (b->dtrace[w->idx] == NULL || *n >= b->latcap ||
	    a->summary == NULL || strncmp(a->summary, "t=", 2) != 0 ||
	    strlen(a->id) < tl + 4 || (dash = strrchr(a->id, '-')) == NULL)
		return;
	sent = strtoll(a->summary + 2, NULL, 10);
	pub = a->id[tl + 1] - '0';
	i = strtoull(dash + 1, NULL, 10);
	if (pub < 0 || pub >= b->npub || b->signed_at[pub] == NULL ||
	    i >= b->latcap)
		return;
	if (trace_fill(w->client, &b->dtrace[w->idx][*n], sent,
	    atomic_load(&b->signed_at[pub][i])) == 0)
		(*n)++;
#else
	(void)w;
	(void)a;
#endif
}

/* W2, traced: the stages of the Ack of request key to publisher w. */
static void
trace_ack(struct worker *w, uint64_t key)
{
#ifdef CPX_TRACE
	struct bench *b = w->b;
	size_t n;

	if (b->atrace == NULL || w->ring_signed == NULL ||
	    (n = atomic_fetch_add(&b->natrace, 1)) >= b->latcap)
		return;
	if (trace_fill(w->client, &b->atrace[n], w->ring[key % RING],
	    w->ring_signed[key % RING]) == -1)
		b->atrace[n].t[ST_SEND] = 0;	/* not a sample */
#else
	(void)w;
	(void)key;
#endif
}

/* Wait until all n workers are ready (or one failed); 0 or -1. */
static int
wait_ready(struct bench *b, int n, int timeout_ms)
{
	int64_t until = bench_now_ns() + (int64_t)timeout_ms * 1000000LL;

	while (atomic_load(&b->ready) < n) {
		if (atomic_load(&b->failed) || bench_now_ns() > until)
			return -1;
		bench_sleep_ms(5);
	}
	return 0;
}

/* ---- cpx clients ---------------------------------------------------- */

static struct cpx_client *
cpx_open(struct bench *b, const char *node, int k)
{
	struct cpx_client_config cfg;
	struct cpx_client *c;
	char cert[512], key[512], ca[512], crl[512], err[512];

	bench_node_paths(b, node, cert, key, sizeof(cert));
	snprintf(ca, sizeof(ca), "%s/ca.pem", b->pki);
	snprintf(crl, sizeof(crl), "%s/crl.pem", b->pki);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = b->endpoints[k % b->nendpoints];
	cfg.ca = ca;
	cfg.cert = cert;
	cfg.key = key;
	cfg.crl = crl;
	/* A replaying node verifies on every core, as cpx replay does. */
	if (strcmp(b->mode, "w3") == 0 && sysconf(_SC_NPROCESSORS_ONLN) > 1)
		cfg.verify_threads =
		    (unsigned int)sysconf(_SC_NPROCESSORS_ONLN);
	if ((c = cpx_client_new(&cfg, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s: %s\n", node, err);
		return NULL;
	}
	if (cpx_client_connect(c, 30000, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: connect: %s\n", node, err);
		cpx_client_free(&c);
		return NULL;
	}
	return c;
}

static void
cpx_sub_event(const struct cpx_event *ev, void *arg)
{
	struct worker *w = arg;

	switch (ev->kind) {
	case CPX_EV_SUBSCRIBED:
		w->subscribed = 1;
		break;
	case CPX_EV_DELIVERY:
		if (!ev->verified) {
			fprintf(stderr, "%s: delivery not verified: %s\n",
			    bench_subs[w->idx].node, ev->verify_error);
			atomic_fetch_add(&w->b->bad[w->idx], 1);
			break;
		}
		bench_delivered(w->b, w->idx, ev->alert);
		trace_delivery(w, ev->alert);
		break;
	case CPX_EV_ERROR:
	case CPX_EV_DISCONNECTED:
		fprintf(stderr, "%s: %s\n", bench_subs[w->idx].node,
		    ev->text ? ev->text : "error");
		break;
	default:
		break;
	}
}

static void *
cpx_sub_thread(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	const struct subspec *s = &bench_subs[w->idx];
	Cpx__Filter f = CPX__FILTER__INIT, *fp = &f;
	char *origins[4], *regs[1];
	Cpx__Category cats[4];
	struct cpx_client *c;
	uint64_t rid;
	int64_t until;
	size_t n;

	if ((c = cpx_open(b, s->node, w->idx)) == NULL)
		goto fail;
	w->client = c;
	cpx_client_on_event(c, cpx_sub_event, w);
	for (n = 0; n < 4 && s->origins[n] != NULL; n++)
		origins[n] = (char *)s->origins[n];
	f.n_origins = n;
	f.origins = origins;
	if (s->region != NULL) {
		regs[0] = (char *)s->region;
		f.n_regions = 1;
		f.regions = regs;
	}
	for (n = 0; n < 4 && s->cats[n] != 0; n++)
		cats[n] = (Cpx__Category)s->cats[n];
	f.n_categories = n;
	f.categories = cats;
	f.min_severity = (Cpx__Severity)s->min_sev;
	if (cpx_subscribe(c, &fp, 1, 0, 0, &rid) == -1)
		goto fail;
	until = bench_now_ns() + 10000000000LL;
	while (!w->subscribed && bench_now_ns() < until)
		if (cpx_client_run(c, 10) == -1)
			goto fail;
	if (!w->subscribed)
		goto fail;
	atomic_fetch_add(&b->ready, 1);
	while (!atomic_load(&b->stop_all))
		if (cpx_client_run(c, 20) == -1) {
			fprintf(stderr, "%s: %s\n", s->node,
			    cpx_client_error(c));
			break;
		}
	cpx_client_free(&c);
	return NULL;
fail:
	fprintf(stderr, "%s: subscriber failed\n", s->node);
	atomic_store(&b->failed, 1);
	cpx_client_free(&c);
	return NULL;
}

static void
cpx_pub_event(const struct cpx_event *ev, void *arg)
{
	struct worker *w = arg;

	if (ev->kind == CPX_EV_ACK) {
		bench_acked(w->b, w, ev->request_id);
		trace_ack(w, ev->request_id);
	}
	else if (ev->kind == CPX_EV_ERROR) {
		if (atomic_fetch_add(&w->b->refused, 1) < 5)
			fprintf(stderr, "%s: refused: %s\n",
			    bench_pubs[w->idx][0], ev->text);
	}
}

static int
cpx_send_one(struct bench *b, struct worker *w, struct cpx_client *c,
    uint64_t i)
{
	struct alertbuf ab;
	uint64_t rid;
	int64_t t = bench_now_ns();
	char err[256];

	bench_alert_fill(b, &ab, w->idx, i, t, b->pad);
	if (cpx_publish_send(c, &ab.a, &rid, err, sizeof(err)) == -1) {
		fprintf(stderr, "%s: publish: %s\n", bench_pubs[w->idx][0],
		    err);
		return -1;
	}
	if (w->ring != NULL)
		w->ring[rid % RING] = t;
	if (w->ring_signed != NULL) {
		w->ring_signed[rid % RING] = bench_now_ns();
		if (b->signed_at[w->idx] != NULL && i < b->latcap)
			atomic_store(&b->signed_at[w->idx][i],
			    w->ring_signed[rid % RING]);
	}
	atomic_fetch_add(&b->sent, 1);
	bench_expect(b, w->idx, i);
	return 0;
}

static void *
cpx_pub_thread(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	struct cpx_client *c;
	uint64_t i = 0, total;
	int64_t next, step, until;

	if ((c = cpx_open(b, bench_pubs[w->idx][0], w->idx)) == NULL)
		goto fail;
	w->client = c;
	cpx_client_on_event(c, cpx_pub_event, w);
	bench_ready_go(b);
	if (strcmp(b->mode, "w2") == 0) {
		/* Open loop: alert k is due at t0 + k / rate. */
		bench_w2_plan(b, w->idx, &total, &step, &next);
		while (i < total) {
			if (bench_now_ns() >= next) {
				if (cpx_send_one(b, w, c, i++) == -1)
					goto fail;
				next += step;
				if (cpx_client_run(c, 0) == -1)
					goto fail;
				continue;
			}
			if (cpx_client_run(c, 1) == -1)
				goto fail;
		}
	} else {
		while (!atomic_load(&b->stop_pub)) {
			while (cpx_publish_inflight(c) < WINDOW &&
			    bench_backlog_ok(b) && !atomic_load(&b->stop_pub))
				if (cpx_send_one(b, w, c, i++) == -1)
					goto fail;
			if (cpx_client_run(c, 1) == -1)
				goto fail;
		}
	}
	until = bench_now_ns() + DRAIN_NS;
	while (cpx_publish_inflight(c) > 0 && bench_now_ns() < until)
		if (cpx_client_run(c, 5) == -1)
			goto fail;
	cpx_client_free(&c);
	return NULL;
fail:
	fprintf(stderr, "%s: publisher failed: %s\n", bench_pubs[w->idx][0],
	    c ? cpx_client_error(c) : "no connection");
	atomic_store(&b->failed, 1);
	cpx_client_free(&c);
	return NULL;
}

/* ---- W1, W2: orchestration ------------------------------------------ */

static int
cmp_i64(const void *x, const void *y)
{
	int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;

	return (a > b) - (a < b);
}

/* Print p50, p99, p99.9 and max of v[0..n) in ms. */
static void
percentiles(const char *key, int64_t *v, size_t n)
{
	static const struct { const char *name; double q; } qs[] = {
		{ "p50", 0.50 }, { "p99", 0.99 }, { "p999", 0.999 },
		{ "max", 1.0 }
	};
	size_t i, k;

	if (n == 0) {
		printf("R %s.n 0\n", key);
		return;
	}
	qsort(v, n, sizeof(*v), cmp_i64);
	printf("R %s.n %zu\n", key, n);
	for (i = 0; i < sizeof(qs) / sizeof(qs[0]); i++) {
		k = (size_t)(qs[i].q * (double)n + 0.999999);
		k = k == 0 ? 0 : k - 1;
		if (k >= n)
			k = n - 1;
		printf("R %s.%s %.3f\n", key, qs[i].name, (double)v[k] / 1e6);
	}
}

/*
 * W2's stages, each from one stamp to the next (lib/trace.h): p50, p99
 * and p99.9 of each over the samples, in microseconds, as
 * "R key.stage.pNN value". Sums of percentiles are not percentiles of
 * sums: "total" is measured on its own.
 */
static void
trace_report(const char *key, struct tsample *const *sets,
    const size_t *counts, int nsets, int deliveries)
{
	static const struct {
		const char	*name;
		int		 from, to;
	} st[] = {
		{ "sign", ST_SEND, ST_SIGNED },
		{ "to_broker", ST_SIGNED, ST_B0 + TRACE_DECODED },
		{ "admit", ST_B0 + TRACE_DECODED, ST_B0 + TRACE_SUBMITTED },
		{ "verifier_wait", ST_B0 + TRACE_SUBMITTED,
		    ST_B0 + TRACE_VERIFY_START },
		{ "verify", ST_B0 + TRACE_VERIFY_START,
		    ST_B0 + TRACE_VERIFY_END },
		{ "result_wait", ST_B0 + TRACE_VERIFY_END,
		    ST_B0 + TRACE_TAKEN },
		{ "append", ST_B0 + TRACE_TAKEN, ST_B0 + TRACE_APPENDED },
		{ "commit_wait", ST_B0 + TRACE_APPENDED,
		    ST_B0 + TRACE_COMMIT_START },
		{ "fsync", ST_B0 + TRACE_COMMIT_START,
		    ST_B0 + TRACE_FSYNC_END },
		{ "queue", ST_B0 + TRACE_FSYNC_END, ST_B0 + TRACE_QUEUED },
		{ "to_node", ST_B0 + TRACE_QUEUED, ST_RX },
		{ "node_verify", ST_RX, ST_DONE },
		{ "total", ST_SEND, ST_DONE },
	};
	static const struct { const char *name; double q; } qs[] = {
		{ "p50", 0.50 }, { "p99", 0.99 }, { "p999", 0.999 }
	};
	int64_t *v;
	size_t total = 0, n, i, k, q;
	int set;

	for (set = 0; set < nsets; set++)
		total += counts[set];
	if (total == 0 || (v = calloc(total, sizeof(*v))) == NULL)
		return;
	for (k = 0; k < sizeof(st) / sizeof(st[0]); k++) {
		if (!deliveries && strcmp(st[k].name, "node_verify") == 0)
			continue;
		for (n = 0, set = 0; set < nsets; set++)
			for (i = 0; i < counts[set]; i++)
				if (sets[set][i].t[ST_SEND] != 0)
					v[n++] = sets[set][i].t[st[k].to] -
					    sets[set][i].t[st[k].from];
		if (n == 0)
			break;
		qsort(v, n, sizeof(*v), cmp_i64);
		if (k == 0)
			printf("R %s.n %zu\n", key, n);
		for (q = 0; q < sizeof(qs) / sizeof(qs[0]); q++) {
			i = (size_t)(qs[q].q * (double)n + 0.999999);
			i = i == 0 ? 0 : i - 1;
			printf("R %s.%s.%s %.1f\n", key, st[k].name, qs[q].name,
			    (double)v[i < n ? i : n - 1] / 1e3);
		}
	}
	free(v);
}

static int
run_pubsub(struct bench *b)
{
	struct worker wp[MAXPUB], ws[NSUB];
	pthread_t tp[MAXPUB], ts[NSUB];
	void *(*sub_fn)(void *) = cpx_sub_thread;
	void *(*pub_fn)(void *) = cpx_pub_thread;
	int peer = strcmp(b->target, "cpx") != 0;
	int w2 = strcmp(b->mode, "w2") == 0;
	int64_t exp_total = 0, rx_total = 0, bad_total = 0, t_end, until;
	double bcpu0, bcpu1, scpu0, scpu1, wall, ack_wall, rx_wall;
	size_t nd = 0;
	int64_t *all = NULL;
	int i, done, rc = 0;

	if (strcmp(b->target, "mosq") == 0) {
		sub_fn = bench_mosq_sub_thread;
		pub_fn = bench_mosq_pub_thread;
	} else if (strcmp(b->target, "js") == 0) {
#ifdef CPX_BENCH_JS
		sub_fn = bench_js_sub_thread;
		pub_fn = bench_js_pub_thread;
#else
		fprintf(stderr, "-t js: this cpx-bench was built without "
		    "libnats (install libnats-dev and configure again)\n");
		return -1;
#endif
	} else if (peer) {
		fprintf(stderr, "-t %s: not cpx, mosq or js\n", b->target);
		return -1;
	}
	memset(wp, 0, sizeof(wp));
	memset(ws, 0, sizeof(ws));
	for (i = 0; i < MAXPUB; i++) {
		pthread_mutex_init(&wp[i].mu, NULL);
		pthread_cond_init(&wp[i].cv, NULL);
	}
	for (i = 0; i < NSUB; i++) {
		pthread_mutex_init(&ws[i].mu, NULL);
		pthread_cond_init(&ws[i].cv, NULL);
	}
	if (w2) {
		b->latcap = (size_t)b->rate * (size_t)b->duration + 1000;
		for (i = 0; i < b->nsub; i++)
			if ((b->dlat[i] = calloc(b->latcap,
			    sizeof(int64_t))) == NULL)
				return -1;
		if ((b->alat = calloc(b->latcap, sizeof(int64_t))) == NULL)
			return -1;
#ifdef CPX_TRACE
		for (i = 0; !peer && i < b->nsub; i++)
			if ((b->dtrace[i] = calloc(b->latcap,
			    sizeof(struct tsample))) == NULL)
				return -1;
		for (i = 0; !peer && i < b->npub; i++)
			if ((b->signed_at[i] = calloc(b->latcap,
			    sizeof(int64_t))) == NULL)
				return -1;
		if (!peer && (b->atrace = calloc(b->latcap,
		    sizeof(struct tsample))) == NULL)
			return -1;
#endif
	}
	for (i = 0; i < b->nsub; i++) {
		ws[i].b = b;
		ws[i].idx = i;
		pthread_create(&ts[i], NULL, sub_fn, &ws[i]);
	}
	if (wait_ready(b, b->nsub, 60000) == -1) {
		fprintf(stderr, "subscribers not ready\n");
		rc = -1;
		goto join;
	}
	for (i = 0; i < b->npub; i++) {
		wp[i].b = b;
		wp[i].idx = i;
		if ((wp[i].ring = calloc(RING, sizeof(int64_t))) == NULL)
			abort();
		if (b->signed_at[i] != NULL &&
		    (wp[i].ring_signed = calloc(RING, sizeof(int64_t))) == NULL)
			abort();
		pthread_create(&tp[i], NULL, pub_fn, &wp[i]);
	}
	if (wait_ready(b, b->nsub + b->npub, 60000) == -1) {
		fprintf(stderr, "publishers not ready\n");
		atomic_store(&b->stop_pub, 1);
		rc = -1;
	}
	bcpu0 = brokers_cpu(b);
	scpu0 = self_cpu();
	b->t0 = bench_now_ns();
	atomic_store(&b->go, 1);
	if (!w2 && rc == 0) {
		until = b->t0 + (int64_t)b->duration * 1000000000LL;
		while (bench_now_ns() < until && !atomic_load(&b->failed))
			bench_sleep_ms(10);
		atomic_store(&b->stop_pub, 1);
	}
	for (i = 0; i < b->npub; i++)
		pthread_join(tp[i], NULL);
	/* Let every subscriber receive what it should, within DRAIN_NS. */
	until = bench_now_ns() + DRAIN_NS;
	do {
		for (done = 1, i = 0; i < b->nsub; i++)
			if (atomic_load(&b->received[i]) <
			    atomic_load(&b->expected[i]))
				done = 0;
		if (!done)
			bench_sleep_ms(5);
	} while (!done && bench_now_ns() < until && !atomic_load(&b->failed));
	t_end = bench_now_ns();
	bcpu1 = brokers_cpu(b);
	scpu1 = self_cpu();
join:
	atomic_store(&b->stop_all, 1);
	for (i = 0; i < b->nsub; i++)
		pthread_join(ts[i], NULL);
	if (rc == -1)
		goto out;
	for (i = 0; i < b->nsub; i++) {
		exp_total += b->expected[i];
		rx_total += b->received[i];
		bad_total += b->bad[i];
	}
	wall = (double)(t_end - b->t0) / 1e9;
	ack_wall = (double)(b->last_ack - b->t0) / 1e9;
	rx_wall = (double)(b->last_rx - b->t0) / 1e9;
	printf("R sent %" PRId64 "\n", (int64_t)b->sent);
	printf("R accepted %" PRId64 "\n", (int64_t)b->acked);
	printf("R refused %" PRId64 "\n", (int64_t)b->refused);
	printf("R expected_deliveries %" PRId64 "\n", exp_total);
	printf("R deliveries %" PRId64 "\n", rx_total);
	printf("R bad_deliveries %" PRId64 "\n", bad_total);
	printf("R missing_deliveries %" PRId64 "\n", exp_total - rx_total);
	printf("R wall_s %.3f\n", wall);
	printf("R accepted_per_s %.1f\n", ack_wall > 0 ?
	    (double)b->acked / ack_wall : 0.0);
	printf("R deliveries_per_s %.1f\n", rx_wall > 0 && rx_total > 0 ?
	    (double)rx_total / rx_wall : 0.0);
	printf("R broker_cpu_s %.2f\n", bcpu1 - bcpu0);
	printf("R broker_cpu_util %.2f\n", (bcpu1 - bcpu0) / wall);
	printf("R broker_cpu_s_per_1000 %.4f\n", b->acked ?
	    (bcpu1 - bcpu0) * 1000.0 / (double)b->acked : 0.0);
	printf("R bench_cpu_s %.2f\n", scpu1 - scpu0);
	if (w2) {
		for (i = 0; i < b->nsub; i++)
			nd += b->ndlat[i];
		if ((all = calloc(nd + 1, sizeof(int64_t))) == NULL)
			abort();
		for (nd = 0, i = 0; i < b->nsub; i++) {
			memcpy(all + nd, b->dlat[i],
			    b->ndlat[i] * sizeof(int64_t));
			nd += b->ndlat[i];
		}
		percentiles("delivery_ms", all, nd);
		percentiles("ack_ms", b->alat, b->nalat < b->latcap ?
		    b->nalat : b->latcap);
		trace_report("trace.delivery", b->dtrace, b->ndtrace, b->nsub,
		    1);
		nd = b->natrace < b->latcap ? b->natrace : b->latcap;
		trace_report("trace.ack", &b->atrace, &nd, 1, 0);
		printf("R offered_per_s %d\n", b->rate);
	}
	if (b->refused > 0 || bad_total > 0 || exp_total != rx_total ||
	    b->acked != b->sent)
		fprintf(stderr, "WARNING: %" PRId64 " refused, %" PRId64
		    " bad, %" PRId64 " missing deliveries, %" PRId64
		    " unacknowledged\n", (int64_t)b->refused, bad_total,
		    exp_total - rx_total, (int64_t)(b->sent - b->acked));
out:
	free(all);
	for (i = 0; i < b->npub; i++) {
		free(wp[i].ring);
		free(wp[i].ring_signed);
		free((void *)b->signed_at[i]);
	}
	for (i = 0; i < NSUB; i++) {
		free(b->dlat[i]);
		free(b->dtrace[i]);
	}
	for (i = 0; i < MAXPUB; i++) {
		pthread_mutex_destroy(&wp[i].mu);
		pthread_cond_destroy(&wp[i].cv);
	}
	for (i = 0; i < NSUB; i++) {
		pthread_mutex_destroy(&ws[i].mu);
		pthread_cond_destroy(&ws[i].cv);
	}
	free(b->alat);
	free(b->atrace);
	return rc;
}

/* ---- W3: an audit log written offline, and its replay ---------------- */

/*
 * Write nrecords accepted alerts, signed by si-ncp, into a fresh audit
 * log through the broker's own audit API (hash chain, group commit every
 * 1000 records with fsync, signed checkpoint every 10000 as the broker's
 * default checkpoint_records): the same bytes the broker would have
 * written had they been published through it.
 */
static int
run_w3gen(struct bench *b)
{
	Cpx__AuditRecord rec;
	Cpx__SignedAlert sa;
	struct audit *a = NULL;
	struct alertbuf ab;
	EVP_PKEY *bkey = NULL, *nkey = NULL;
	X509 *bcert = NULL, *ncert = NULL;
	struct sign_key *sk = NULL;
	uint8_t abytes[ALERT_BYTES];
	char p1[512], p2[512], err[512];
	uint64_t i, seq;
	int64_t t0;
	int rc = -1;

	snprintf(p1, sizeof(p1), "%s/broker.key", b->pki);
	snprintf(p2, sizeof(p2), "%s/broker.pem", b->pki);
	if ((bkey = tlsctx_load_key(p1, err, sizeof(err))) == NULL ||
	    (bcert = tlsctx_load_cert(p2, err, sizeof(err))) == NULL)
		goto fail;
	bench_node_paths(b, "si-ncp", p2, p1, sizeof(p1));
	if ((nkey = tlsctx_load_key(p1, err, sizeof(err))) == NULL ||
	    (ncert = tlsctx_load_cert(p2, err, sizeof(err))) == NULL ||
	    (sk = sign_key_new(nkey, ncert, err, sizeof(err))) == NULL)
		goto fail;
	if ((a = audit_open(b->audit_dir, bkey, bcert, err,
	    sizeof(err))) == NULL)
		goto fail;
	t0 = bench_now_ns();
	for (i = 0; i < b->nrecords; i++) {
		bench_alert_fill(b, &ab, 0, i, 0, b->pad);
		cpx__alert__pack(&ab.a, abytes);
		cpx__signed_alert__init(&sa);
		if (sign_key_alert(sk, abytes, ALERT_BYTES, &sa) == -1) {
			snprintf(err, sizeof(err), "sign_key_alert failed");
			goto fail;
		}
		cpx__audit_record__init(&rec);
		rec.kind = CPX__RECORD_KIND__RECORD_ALERT_ACCEPTED;
		rec.peer_country = "SI";
		rec.peer_node = "si-ncp";
		rec.peer_address = "127.0.0.1";
		rec.session_id = 1;
		rec.alert = &sa;
		rec.alert_id = ab.id;
		rec.text = "";
		if (audit_append(a, &rec, &seq) == -1) {
			snprintf(err, sizeof(err), "audit_append failed");
			sign_signed_alert_clear(&sa);
			goto fail;
		}
		sign_signed_alert_clear(&sa);
		if ((i + 1) % 10000 == 0 && audit_checkpoint(a) == -1) {
			snprintf(err, sizeof(err), "audit_checkpoint failed");
			goto fail;
		}
		if (((i + 1) % 1000 == 0 || i + 1 == b->nrecords) &&
		    audit_commit(a, err, sizeof(err)) == -1)
			goto fail;
	}
	printf("R records %" PRIu64 "\n", b->nrecords);
	printf("R gen_s %.2f\n", (double)(bench_now_ns() - t0) / 1e9);
	printf("R last_seq %" PRIu64 "\n", audit_last_seq(a));
	rc = 0;
fail:
	if (rc == -1)
		fprintf(stderr, "w3gen: %s\n", err);
	audit_close(&a);
	sign_key_free(&sk);
	EVP_PKEY_free(bkey);
	EVP_PKEY_free(nkey);
	X509_free(bcert);
	X509_free(ncert);
	return rc;
}

/*
 * W5: one session publishing one alert at a time and waiting for its Ack
 * (cpx_publish), as a node's program that needs each sequence number
 * does. Each call costs a signature, a round trip, the broker's verify
 * and one fsync: no poll period of the library may add to it.
 */
static int
run_w5(struct bench *b)
{
	struct alertbuf ab;
	struct cpx_result res;
	struct cpx_client *c;
	int64_t *lat = NULL, t, t0;
	uint64_t i, n = b->nrecords, ok = 0, refused = 0;
	double bcpu0, bcpu1, scpu0, scpu1, wall;
	int rc = -1;

	if ((lat = calloc(n, sizeof(*lat))) == NULL)
		return -1;
	if ((c = cpx_open(b, bench_pubs[0][0], 0)) == NULL)
		goto done;
	bcpu0 = proc_cpu(b->broker_pid);
	scpu0 = self_cpu();
	t0 = bench_now_ns();
	for (i = 0; i < n; i++) {
		t = bench_now_ns();
		bench_alert_fill(b, &ab, 0, i, t, b->pad);
		if (cpx_publish(c, &ab.a, 10000, &res) == 0)
			ok++;
		else if (refused++ < 5)
			fprintf(stderr, "w5: refused: %s\n", res.text);
		lat[i] = bench_now_ns() - t;
	}
	wall = (double)(bench_now_ns() - t0) / 1e9;
	bcpu1 = proc_cpu(b->broker_pid);
	scpu1 = self_cpu();
	printf("R sent %" PRIu64 "\n", n);
	printf("R accepted %" PRIu64 "\n", ok);
	printf("R refused %" PRIu64 "\n", refused);
	printf("R wall_s %.3f\n", wall);
	printf("R accepted_per_s %.1f\n", (double)ok / wall);
	printf("R broker_cpu_s %.2f\n", bcpu1 - bcpu0);
	printf("R bench_cpu_s %.2f\n", scpu1 - scpu0);
	percentiles("call_ms", lat, (size_t)n);
	rc = refused == 0 ? 0 : -1;
done:
	cpx_client_free(&c);
	free(lat);
	return rc;
}

struct replay_state {
	uint64_t	count;
	uint64_t	bad;
	uint64_t	end_count;
	int		done;
};

static void
replay_event(const struct cpx_event *ev, void *arg)
{
	struct replay_state *st = arg;

	if (ev->kind == CPX_EV_DELIVERY) {
		if (ev->verified)
			st->count++;
		else
			st->bad++;
	} else if (ev->kind == CPX_EV_REPLAY_END) {
		st->end_count = ev->count;
		st->done = 1;
	} else if (ev->kind == CPX_EV_ERROR) {
		fprintf(stderr, "replay: %s\n", ev->text);
		st->done = 1;
	}
}

static int
run_w3(struct bench *b)
{
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	struct replay_state st;
	struct cpx_client *c;
	uint64_t rid;
	int64_t t0, until;
	double bcpu0, bcpu1, scpu0, scpu1, wall;

	memset(&st, 0, sizeof(st));
	if ((c = cpx_open(b, "hu-ncp", 0)) == NULL)
		return -1;
	cpx_client_on_event(c, replay_event, &st);
	bcpu0 = proc_cpu(b->broker_pid);
	scpu0 = self_cpu();
	t0 = bench_now_ns();
	until = t0 + (int64_t)b->duration * 1000000000LL;
	if (cpx_replay(c, &rq, &rid) == -1) {
		cpx_client_free(&c);
		return -1;
	}
	while (!st.done && bench_now_ns() < until)
		if (cpx_client_run(c, 20) == -1) {
			fprintf(stderr, "replay: %s\n", cpx_client_error(c));
			break;
		}
	wall = (double)(bench_now_ns() - t0) / 1e9;
	bcpu1 = proc_cpu(b->broker_pid);
	scpu1 = self_cpu();
	cpx_client_free(&c);
	printf("R replayed %" PRIu64 "\n", st.count);
	printf("R replay_bad %" PRIu64 "\n", st.bad);
	printf("R replay_end_count %" PRIu64 "\n", st.end_count);
	printf("R replay_complete %d\n", st.done);
	printf("R replay_s %.2f\n", wall);
	printf("R replay_per_s %.1f\n", (double)st.count / wall);
	printf("R broker_cpu_s %.2f\n", bcpu1 - bcpu0);
	printf("R broker_cpu_util %.2f\n", (bcpu1 - bcpu0) / wall);
	printf("R bench_cpu_s %.2f\n", scpu1 - scpu0);
	return st.done && st.bad == 0 ? 0 : -1;
}

/*
 * W3 raw: the broker's own replay rate. The reader is a plain TLS 1.3
 * client that decodes every frame but verifies no signature, so what it
 * measures is the broker streaming the log, not the node checking it (w3
 * measures that, with the client library, which always verifies).
 */
static int
ssl_read_full(SSL *ssl, uint8_t *p, size_t len)
{
	size_t got;

	while (len > 0) {
		if (SSL_read_ex(ssl, p, len, &got) != 1)
			return -1;
		p += got;
		len -= got;
	}
	return 0;
}

/* One frame body into buf (at most cap bytes); its length, or -1. */
static ssize_t
ssl_read_frame(SSL *ssl, uint8_t *buf, size_t cap)
{
	uint8_t hdr[4];
	size_t len;

	if (ssl_read_full(ssl, hdr, 4) == -1)
		return -1;
	len = (size_t)hdr[0] << 24 | (size_t)hdr[1] << 16 |
	    (size_t)hdr[2] << 8 | hdr[3];
	if (len > cap || ssl_read_full(ssl, buf, len) == -1)
		return -1;
	return (ssize_t)len;
}

static int
run_w3raw(struct bench *b)
{
	Cpx__ReplayRequest rq = CPX__REPLAY_REQUEST__INIT;
	Cpx__Envelope env = CPX__ENVELOPE__INIT, *in;
	struct tls_files files;
	struct sockaddr_in sin;
	char cert[512], key[512], ca[512], crl[512], err[512], why[128];
	static uint8_t buf[CPX_MAX_FRAME];
	uint64_t count = 0;
	uint8_t *out = NULL;
	size_t outlen;
	ssize_t n;
	SSL_CTX *ctx;
	SSL *ssl = NULL;
	int fd = -1, done = 0, reason, rc = -1;
	int64_t t0;
	double bcpu0, bcpu1, wall;

	bench_node_paths(b, "hu-ncp", cert, key, sizeof(cert));
	snprintf(ca, sizeof(ca), "%s/ca.pem", b->pki);
	snprintf(crl, sizeof(crl), "%s/crl.pem", b->pki);
	files.ca = ca;
	files.cert = cert;
	files.key = key;
	files.crl = crl;
	if ((ctx = tlsctx_new(&files, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "w3raw: %s\n", err);
		return -1;
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)b->port);
	inet_pton(AF_INET, b->host, &sin.sin_addr);
	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    (ssl = SSL_new(ctx)) == NULL || SSL_set_fd(ssl, fd) != 1 ||
	    SSL_connect(ssl) != 1) {
		fprintf(stderr, "w3raw: cannot connect\n");
		goto out;
	}
	if ((n = ssl_read_frame(ssl, buf, sizeof(buf))) < 0 ||
	    (in = wire_decode(buf, (size_t)n, &reason, why,
	    sizeof(why))) == NULL) {
		fprintf(stderr, "w3raw: no welcome\n");
		goto out;
	}
	cpx__envelope__free_unpacked(in, NULL);
	rq.request_id = 1;
	env.body_case = CPX__ENVELOPE__BODY_REPLAY;
	env.replay = &rq;
	bcpu0 = proc_cpu(b->broker_pid);
	t0 = bench_now_ns();
	if (wire_encode(&env, &out, &outlen) == -1 ||
	    SSL_write(ssl, out, (int)outlen) != (int)outlen)
		goto out;
	while (!done && (n = ssl_read_frame(ssl, buf, sizeof(buf))) >= 0) {
		if ((in = wire_decode(buf, (size_t)n, &reason, why,
		    sizeof(why))) == NULL)
			break;
		if (in->body_case == CPX__ENVELOPE__BODY_DELIVERY)
			count++;
		else if (in->body_case == CPX__ENVELOPE__BODY_REPLAY_END)
			done = 1;
		cpx__envelope__free_unpacked(in, NULL);
	}
	wall = (double)(bench_now_ns() - t0) / 1e9;
	bcpu1 = proc_cpu(b->broker_pid);
	printf("R raw_replayed %" PRIu64 "\n", count);
	printf("R raw_replay_complete %d\n", done);
	printf("R raw_replay_s %.2f\n", wall);
	printf("R raw_replay_per_s %.1f\n", (double)count / wall);
	printf("R raw_broker_cpu_s %.2f\n", bcpu1 - bcpu0);
	rc = done ? 0 : -1;
out:
	free(out);
	if (ssl != NULL)
		SSL_free(ssl);
	if (fd != -1)
		close(fd);
	SSL_CTX_free(ctx);
	return rc;
}

/* ---- W4: many sessions, raw TLS ------------------------------------- */

enum conn_state { C_CONNECTING, C_HANDSHAKE, C_WELCOME, C_DONE, C_FAILED };

struct conn {
	int		 fd;
	SSL		*ssl;
	enum conn_state	 st;
	uint8_t		 buf[4096];
	size_t		 len;
};

/*
 * Drive one connection as far as it goes without blocking: TCP connect,
 * TLS 1.3 handshake with the node certificate, then the broker's Welcome,
 * the only proof that the broker accepted the certificate.
 */
static void
conn_step(struct conn *c, short *events)
{
	Cpx__Envelope *env;
	const uint8_t *body;
	size_t blen, used;
	int r, e, reason, soerr;
	socklen_t sl = sizeof(soerr);
	char why[128];

	*events = 0;
	if (c->st == C_CONNECTING) {
		if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &soerr, &sl) ==
		    -1 || soerr != 0) {
			c->st = C_FAILED;
			return;
		}
		c->st = C_HANDSHAKE;
	}
	if (c->st == C_HANDSHAKE) {
		if ((r = SSL_do_handshake(c->ssl)) != 1) {
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				*events = POLLIN;
			else if (e == SSL_ERROR_WANT_WRITE)
				*events = POLLOUT;
			else
				c->st = C_FAILED;
			return;
		}
		c->st = C_WELCOME;
	}
	while (c->st == C_WELCOME) {
		r = SSL_read(c->ssl, c->buf + c->len, sizeof(c->buf) - c->len);
		if (r <= 0) {
			e = SSL_get_error(c->ssl, r);
			if (e == SSL_ERROR_WANT_READ)
				*events = POLLIN;
			else if (e == SSL_ERROR_WANT_WRITE)
				*events = POLLOUT;
			else
				c->st = C_FAILED;
			return;
		}
		c->len += (size_t)r;
		if (wire_frame_next(c->buf, c->len, sizeof(c->buf), &body,
		    &blen, &used) != WIRE_FRAME) {
			if (c->len == sizeof(c->buf))
				c->st = C_FAILED;
			continue;
		}
		env = wire_decode(body, blen, &reason, why, sizeof(why));
		c->st = env != NULL &&
		    env->body_case == CPX__ENVELOPE__BODY_WELCOME ? C_DONE :
		    C_FAILED;
		if (env != NULL)
			cpx__envelope__free_unpacked(env, NULL);
	}
}

static int
conn_start(struct conn *c, SSL_CTX *ctx, const struct sockaddr_in *sin)
{
	int one = 1;

	memset(c, 0, sizeof(*c));
	if ((c->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0)) == -1)
		return -1;
	setsockopt(c->fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(c->fd, (const struct sockaddr *)sin, sizeof(*sin)) == -1 &&
	    errno != EINPROGRESS)
		return -1;
	if ((c->ssl = SSL_new(ctx)) == NULL ||
	    SSL_set_fd(c->ssl, c->fd) != 1)
		return -1;
	SSL_set_connect_state(c->ssl);
	c->st = C_CONNECTING;
	return 0;
}

static int
run_w4(struct bench *b)
{
	static const char *nodes[] = { "si-ncp", "hr-ncp", "at-ncp", "hu-ncp",
	    "it-ncp", "ba-ncp", "rs-ncp", "me-ncp", "mk-ncp", "al-ncp",
	    "xk-ncp" };
	enum { NNODES = 11, CONCURRENT = 100 };
	SSL_CTX *ctx[NNODES] = { NULL };
	struct tls_files files;
	struct sockaddr_in sin;
	struct conn *cs = NULL;
	struct pollfd *pfd = NULL;
	int *pidx = NULL;
	struct rlimit rl;
	char cert[512], key[512], ca[512], err[512];
	int i, n = b->sessions, next = 0, active, ok = 0, failed = 0, np;
	int rc = -1;
	short ev;
	int64_t t0, t1, until;
	long rss0, rss1, rss2;
	double bcpu0, bcpu1;

	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 &&
	    rl.rlim_cur < (rlim_t)n + 100) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", b->pki);
	for (i = 0; i < NNODES; i++) {
		bench_node_paths(b, nodes[i], cert, key, sizeof(cert));
		files.ca = ca;
		files.cert = cert;
		files.key = key;
		files.crl = NULL;
		if ((ctx[i] = tlsctx_new(&files, 0, err, sizeof(err))) ==
		    NULL) {
			fprintf(stderr, "%s\n", err);
			goto out;
		}
	}
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)b->port);
	inet_pton(AF_INET, b->host, &sin.sin_addr);
	if ((cs = calloc((size_t)n, sizeof(*cs))) == NULL ||
	    (pfd = calloc((size_t)n, sizeof(*pfd))) == NULL ||
	    (pidx = calloc((size_t)n, sizeof(*pidx))) == NULL)
		goto out;
	for (i = 0; i < n; i++)
		cs[i].fd = -1;
	rss0 = proc_rss_kib(b->broker_pid);
	bcpu0 = proc_cpu(b->broker_pid);
	t0 = bench_now_ns();
	until = t0 + 120000000000LL;
	/*
	 * At most CONCURRENT handshakes in progress at once, like nodes
	 * coming back after a broker restart without overflowing the
	 * listen backlog (which would add TCP's 1 s SYN retry).
	 */
	while (ok + failed < n && bench_now_ns() < until) {
		for (active = 0, i = 0; i < next; i++)
			if (cs[i].st < C_DONE)
				active++;
		while (active < CONCURRENT && next < n) {
			if (conn_start(&cs[next], ctx[next % NNODES],
			    &sin) == -1)
				cs[next].st = C_FAILED, failed++;
			else {
				conn_step(&cs[next], &ev);
				if (cs[next].st == C_DONE)
					ok++;
				else if (cs[next].st == C_FAILED)
					failed++;
				else
					active++;
			}
			next++;
		}
		for (np = 0, i = 0; i < next; i++) {
			if (cs[i].st >= C_DONE)
				continue;
			pfd[np].fd = cs[i].fd;
			pfd[np].events = cs[i].st == C_CONNECTING ? POLLOUT :
			    POLLIN;
			if (cs[i].st == C_HANDSHAKE || cs[i].st == C_WELCOME) {
				conn_step(&cs[i], &ev);
				if (cs[i].st == C_DONE) {
					ok++;
					continue;
				}
				if (cs[i].st == C_FAILED) {
					failed++;
					continue;
				}
				pfd[np].events = ev ? ev : POLLIN;
			}
			pidx[np++] = i;
		}
		if (np == 0)
			continue;
		if (poll(pfd, (nfds_t)np, 100) <= 0)
			continue;
		for (i = 0; i < np; i++) {
			if (pfd[i].revents == 0)
				continue;
			conn_step(&cs[pidx[i]], &ev);
			if (cs[pidx[i]].st == C_DONE)
				ok++;
			else if (cs[pidx[i]].st == C_FAILED)
				failed++;
		}
	}
	t1 = bench_now_ns();
	bcpu1 = proc_cpu(b->broker_pid);
	/* Idle for a while: what the broker keeps per session. */
	bench_sleep_ms(2000);
	rss1 = proc_rss_kib(b->broker_pid);
	printf("R sessions_ok %d\n", ok);
	printf("R sessions_failed %d\n", failed);
	printf("R connect_s %.3f\n", (double)(t1 - t0) / 1e9);
	printf("R connect_per_s %.1f\n", ok / ((double)(t1 - t0) / 1e9));
	printf("R broker_cpu_s %.2f\n", bcpu1 - bcpu0);
	printf("R broker_cpu_ms_per_session %.3f\n", ok ?
	    (bcpu1 - bcpu0) * 1000.0 / ok : 0.0);
	printf("R rss_before_kib %ld\n", rss0);
	printf("R rss_idle_kib %ld\n", rss1);
	printf("R rss_per_session_kib %.1f\n", ok ?
	    (double)(rss1 - rss0) / ok : 0.0);
	for (i = 0; i < n; i++) {
		if (cs[i].ssl != NULL)
			SSL_free(cs[i].ssl);
		if (cs[i].fd != -1)
			close(cs[i].fd);
	}
	bench_sleep_ms(1000);
	rss2 = proc_rss_kib(b->broker_pid);
	printf("R rss_after_close_kib %ld\n", rss2);
	rc = ok == n ? 0 : -1;
out:
	for (i = 0; i < NNODES; i++)
		SSL_CTX_free(ctx[i]);
	free(cs);
	free(pfd);
	free(pidx);
	return rc;
}

/* ---- main ----------------------------------------------------------- */

static void
usage(void)
{
	fprintf(stderr,
"usage: cpx-bench MODE [-t cpx|mosq|js] [-e ENDPOINT[,ENDPOINT...]] [-m PORT]\n"
"           -k PKI [-b PID[,PID...]] [-P npub] [-S 0|10] [-d seconds]\n"
"           [-r rate] [-n records] [-a audit_dir] [-c sessions] [-o dir]\n"
"           [-s (-t js w2: each publish awaits its ack)]\n"
"MODE: w1 (throughput), w2 (latency), w3gen (offline audit log),\n"
"      w3 (replay), w3raw (replay, no verification), w4 (sessions),\n"
"      w5 (blocking publish, one at a time; -n alerts, default 5000),\n"
"      mosqconf (write mosquitto config),\n"
"      jsinit (create the JetStream stream on the servers of -e)\n"
"Several endpoints: worker k connects to endpoint k modulo their number;\n"
"several PIDs: broker CPU is their sum.\n"
"See bench/run.sh and BENCHMARKS.md.\n");
	exit(2);
}

int
main(int argc, char *argv[])
{
	struct bench *b;
	const char *p, *pids = NULL;
	char *eps = NULL, *save, *tok;
	int ch, rc = -1, n_given = 0;
	uint8_t r[4];
	FILE *f;

	if (argc < 2)
		usage();
	if ((b = calloc(1, sizeof(*b))) == NULL)
		return 1;
	b->mode = argv[1];
	b->target = "cpx";
	b->endpoint = "tcp://127.0.0.1:7443";
	b->npub = 1;
	b->nsub = NSUB;
	b->duration = 15;
	b->rate = 1000;
	b->sessions = 1000;
	b->nrecords = 1000000;
	b->outdir = ".";
	b->port = 0;
	optind = 2;
	while ((ch = getopt(argc, argv, "t:e:m:k:b:P:S:d:r:n:a:c:o:s")) != -1) {
		switch (ch) {
		case 't': b->target = optarg; break;
		case 'e': b->endpoint = optarg; break;
		case 'm': b->port = atoi(optarg); break;
		case 'k': b->pki = optarg; break;
		case 'b': pids = optarg; break;
		case 'P': b->npub = atoi(optarg); break;
		case 'S': b->nsub = atoi(optarg); break;
		case 'd': b->duration = atoi(optarg); break;
		case 'r': b->rate = atoi(optarg); break;
		case 'n':
			b->nrecords = strtoull(optarg, NULL, 10);
			n_given = 1;
			break;
		case 'a': b->audit_dir = optarg; break;
		case 'c': b->sessions = atoi(optarg); break;
		case 'o': b->outdir = optarg; break;
		case 's': b->js_sync = 1; break;
		default: usage();
		}
	}
	if (strcmp(b->mode, "w5") == 0 && !n_given)
		b->nrecords = 5000;
	if (b->pki == NULL || b->npub < 1 || b->npub > MAXPUB ||
	    b->nrecords < 1 ||
	    (b->nsub != 0 && b->nsub != NSUB) || b->duration < 1 ||
	    b->rate < 1 || b->sessions < 1)
		usage();
	if ((eps = strdup(b->endpoint)) == NULL)
		return 1;
	for (tok = strtok_r(eps, ",", &save); tok != NULL;
	    tok = strtok_r(NULL, ",", &save)) {
		if (b->nendpoints == MAXBROKER)
			usage();
		b->endpoints[b->nendpoints++] = tok;
	}
	for (p = pids; p != NULL && *p != '\0'; p = strchr(p, ',') ?
	    strchr(p, ',') + 1 : NULL) {
		if (b->nbrokers == MAXBROKER)
			usage();
		b->broker_pids[b->nbrokers++] = (pid_t)atoi(p);
	}
	if (b->nendpoints == 0)
		usage();
	b->broker_pid = b->nbrokers > 0 ? b->broker_pids[0] : 0;
	/* host and port from the endpoint, for MQTT and raw TLS. */
	snprintf(b->host, sizeof(b->host), "127.0.0.1");
	if (b->port == 0 && (p = strrchr(b->endpoints[0], ':')) != NULL)
		b->port = atoi(p + 1);
	/* A tag per run: alert ids never repeat across runs. */
	if ((f = fopen("/dev/urandom", "r")) == NULL ||
	    fread(r, 1, sizeof(r), f) != sizeof(r))
		return 1;
	fclose(f);
	snprintf(b->tag, sizeof(b->tag), "b%02x%02x%02x%02x", r[0], r[1],
	    r[2], r[3]);
	calibrate(b);
	log_init("cpx-bench", LOG_LEVEL_WARN);
	mosquitto_lib_init();
	if (strcmp(b->mode, "w1") == 0 || strcmp(b->mode, "w2") == 0)
		rc = run_pubsub(b);
	else if (strcmp(b->mode, "w3gen") == 0 && b->audit_dir != NULL)
		rc = run_w3gen(b);
	else if (strcmp(b->mode, "w3") == 0)
		rc = run_w3(b);
	else if (strcmp(b->mode, "w3raw") == 0)
		rc = run_w3raw(b);
	else if (strcmp(b->mode, "w4") == 0)
		rc = run_w4(b);
	else if (strcmp(b->mode, "w5") == 0)
		rc = run_w5(b);
	else if (strcmp(b->mode, "mosqconf") == 0)
		rc = bench_mosq_conf(b);
#ifdef CPX_BENCH_JS
	else if (strcmp(b->mode, "jsinit") == 0)
		rc = bench_js_init(b);
#endif
	else
		usage();
	mosquitto_lib_cleanup();
	fflush(stdout);
	free(eps);
	free(b);
	return rc == 0 ? 0 : 1;
}
