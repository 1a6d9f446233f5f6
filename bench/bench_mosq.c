/*
 * bench_mosq.c: the Mosquitto peer of cpx-bench. MQTT 3.1.1 over mutual
 * TLS 1.3 with the nodes' certificates, QoS 1, persistence on; the same
 * signed 1 KiB alerts as the cpx publishers (bench_sign), the same
 * subscriber feeds as topic filters (bench_topics), every delivery
 * verified as a cpx node verifies it (bench_verify). Also writes the
 * mosquitto.conf and ACL run.sh starts Mosquitto with.
 */
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <mosquitto.h>

#include "sign.h"
#include "tlsctx.h"
#include "bench.h"

static struct mosquitto *
mosq_open(struct bench *b, const char *node, const char *role, void *w)
{
	struct mosquitto *m;
	char cert[512], key[512], ca[512], id[96];
	int rc;

	bench_node_paths(b, node, cert, key, sizeof(cert));
	snprintf(ca, sizeof(ca), "%s/ca.pem", b->pki);
	snprintf(id, sizeof(id), "%s-%s-%s", node, role, b->tag);
	if ((m = mosquitto_new(id, true, w)) == NULL)
		return NULL;
	mosquitto_int_option(m, MOSQ_OPT_PROTOCOL_VERSION,
	    MQTT_PROTOCOL_V311);
	if ((rc = mosquitto_tls_set(m, ca, NULL, cert, key, NULL)) != 0 ||
	    (rc = mosquitto_tls_opts_set(m, 1, "tlsv1.3", NULL)) != 0 ||
	    (rc = mosquitto_max_inflight_messages_set(m, WINDOW)) != 0) {
		fprintf(stderr, "%s: mosquitto TLS: %s\n", node,
		    mosquitto_strerror(rc));
		mosquitto_destroy(m);
		return NULL;
	}
	return m;
}

static int
mosq_connect(struct bench *b, struct mosquitto *m, struct worker *w,
    const char *node)
{
	int64_t until;
	int rc;

	if ((rc = mosquitto_connect(m, b->host, b->port, 60)) != 0) {
		fprintf(stderr, "%s: mosquitto connect: %s\n", node,
		    mosquitto_strerror(rc));
		return -1;
	}
	until = bench_now_ns() + 10000000000LL;
	while (!w->connected && bench_now_ns() < until)
		if ((rc = mosquitto_loop(m, 10, 1)) != 0) {
			fprintf(stderr, "%s: mosquitto: %s\n", node,
			    mosquitto_strerror(rc));
			return -1;
		}
	return w->connected ? 0 : -1;
}

static void
mosq_on_connect(struct mosquitto *m, void *arg, int rc)
{
	struct worker *w = arg;

	(void)m;
	if (rc == 0)
		w->connected = 1;
	else
		fprintf(stderr, "mosquitto CONNACK refused: %s\n",
		    mosquitto_connack_string(rc));
}

static void
mosq_on_subscribe(struct mosquitto *m, void *arg, int mid, int qos_count,
    const int *granted)
{
	struct worker *w = arg;
	int i;

	(void)m;
	(void)mid;
	for (i = 0; i < qos_count; i++)
		if (granted[i] > 2)
			fprintf(stderr, "%s: subscription refused\n",
			    bench_subs[w->idx].node);
	w->nsubscribed++;
}

/* What a cpx subscriber does to each delivery: verify it end to end. */
static void
mosq_on_message(struct mosquitto *m, void *arg,
    const struct mosquitto_message *msg)
{
	(void)m;
	bench_verify(arg, msg->payload, (size_t)msg->payloadlen);
}

void *
bench_mosq_sub_thread(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	const struct subspec *s = &bench_subs[w->idx];
	struct mosquitto *m = NULL;
	char topics[MAXTOPICS][TOPICLEN], ca[512], crl[512], err[256];
	int64_t until;
	int n, i;

	snprintf(ca, sizeof(ca), "%s/ca.pem", b->pki);
	snprintf(crl, sizeof(crl), "%s/crl.pem", b->pki);
	if ((w->trust = trust_new(ca, crl, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto fail;
	}
	if ((m = mosq_open(b, s->node, "sub", w)) == NULL)
		goto fail;
	mosquitto_connect_callback_set(m, mosq_on_connect);
	mosquitto_subscribe_callback_set(m, mosq_on_subscribe);
	mosquitto_message_callback_set(m, mosq_on_message);
	if (mosq_connect(b, m, w, s->node) == -1)
		goto fail;
	n = bench_topics(s, topics, MAXTOPICS);
	for (i = 0; i < n; i++)
		if (mosquitto_subscribe(m, NULL, topics[i], 1) != 0)
			goto fail;
	until = bench_now_ns() + 10000000000LL;
	while (w->nsubscribed < n && bench_now_ns() < until)
		if (mosquitto_loop(m, 10, 1) != 0)
			goto fail;
	if (w->nsubscribed < n)
		goto fail;
	atomic_fetch_add(&b->ready, 1);
	while (!atomic_load(&b->stop_all))
		if (mosquitto_loop(m, 20, 1) != 0) {
			fprintf(stderr, "%s: mosquitto connection lost\n",
			    s->node);
			break;
		}
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
	trust_free(&w->trust);
	return NULL;
fail:
	fprintf(stderr, "%s: mosquitto subscriber failed\n", s->node);
	atomic_store(&b->failed, 1);
	if (m != NULL)
		mosquitto_destroy(m);
	trust_free(&w->trust);
	return NULL;
}

static void
mosq_on_publish(struct mosquitto *m, void *arg, int mid)
{
	struct worker *w = arg;

	(void)m;
	w->inflight--;
	bench_acked(w->b, w, (uint64_t)mid);
}

/* Sign as cpx_publish_send does, publish the SignedAlert at QoS 1. */
static int
mosq_send_one(struct bench *b, struct worker *w, struct mosquitto *m,
    struct sign_key *sk, uint64_t i)
{
	uint8_t *buf = NULL;
	char topic[TOPICLEN];
	size_t len;
	int64_t t = bench_now_ns();
	int mid, rc = -1;

	if (bench_sign(b, w, sk, i, t, &buf, &len, topic,
	    sizeof(topic)) == -1)
		return -1;
	if (mosquitto_publish(m, &mid, topic, (int)len, buf, 1, false) != 0)
		goto done;
	w->inflight++;
	if (w->ring != NULL)
		w->ring[(uint64_t)mid % RING] = t;
	atomic_fetch_add(&b->sent, 1);
	bench_expect(b, w->idx, i);
	rc = 0;
done:
	free(buf);
	return rc;
}

void *
bench_mosq_pub_thread(void *arg)
{
	struct worker *w = arg;
	struct bench *b = w->b;
	const char *node = bench_pubs[w->idx][0];
	struct mosquitto *m = NULL;
	EVP_PKEY *key = NULL;
	X509 *cert = NULL;
	struct sign_key *sk = NULL;
	char cpath[512], kpath[512], err[256];
	uint64_t i = 0, total;
	int64_t next, step, until;

	bench_node_paths(b, node, cpath, kpath, sizeof(cpath));
	if ((key = tlsctx_load_key(kpath, err, sizeof(err))) == NULL ||
	    (cert = tlsctx_load_cert(cpath, err, sizeof(err))) == NULL ||
	    (sk = sign_key_new(key, cert, err, sizeof(err))) == NULL) {
		fprintf(stderr, "%s\n", err);
		goto fail;
	}
	if ((m = mosq_open(b, node, "pub", w)) == NULL)
		goto fail;
	mosquitto_connect_callback_set(m, mosq_on_connect);
	mosquitto_publish_callback_set(m, mosq_on_publish);
	if (mosq_connect(b, m, w, node) == -1)
		goto fail;
	bench_ready_go(b);
	if (strcmp(b->mode, "w2") == 0) {
		bench_w2_plan(b, w->idx, &total, &step, &next);
		while (i < total) {
			if (bench_now_ns() >= next) {
				if (mosq_send_one(b, w, m, sk,
				    i++) == -1)
					goto fail;
				next += step;
			}
			if (mosquitto_loop(m, bench_now_ns() >= next ? 0 : 1,
			    1) != 0)
				goto fail;
		}
	} else {
		while (!atomic_load(&b->stop_pub)) {
			while (w->inflight < WINDOW && bench_backlog_ok(b) &&
			    !atomic_load(&b->stop_pub))
				if (mosq_send_one(b, w, m, sk,
				    i++) == -1)
					goto fail;
			if (mosquitto_loop(m, 1, 1) != 0)
				goto fail;
		}
	}
	until = bench_now_ns() + DRAIN_NS;
	while (w->inflight > 0 && bench_now_ns() < until)
		if (mosquitto_loop(m, 5, 1) != 0)
			goto fail;
	mosquitto_disconnect(m);
	mosquitto_destroy(m);
	sign_key_free(&sk);
	EVP_PKEY_free(key);
	X509_free(cert);
	return NULL;
fail:
	fprintf(stderr, "%s: mosquitto publisher failed\n", node);
	atomic_store(&b->failed, 1);
	if (m != NULL)
		mosquitto_destroy(m);
	sign_key_free(&sk);
	EVP_PKEY_free(key);
	X509_free(cert);
	return NULL;
}

/*
 * mosquitto.conf and its ACL from the same subscriber table: each node
 * writes its own country's topics and reads the topics of its feed.
 */
int
bench_mosq_conf(struct bench *b)
{
	char path[600], topics[MAXTOPICS][TOPICLEN];
	FILE *f;
	int i, j, n;

	snprintf(path, sizeof(path), "%s/acl", b->outdir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	/* One block per user: a node may both publish and subscribe. */
	for (i = 0; i < NSUB; i++) {
		fprintf(f, "user %s\n", bench_subs[i].node);
		for (j = 0; j < MAXPUB; j++)
			if (strcmp(bench_pubs[j][0], bench_subs[i].node) == 0)
				fprintf(f, "topic write alerts/%s/#\n",
				    bench_pubs[j][1]);
		n = bench_topics(&bench_subs[i], topics, MAXTOPICS);
		for (j = 0; j < n; j++)
			fprintf(f, "topic read %s\n", topics[j]);
		fprintf(f, "\n");
	}
	for (i = 0; i < MAXPUB; i++) {
		for (j = 0; j < NSUB; j++)
			if (strcmp(bench_pubs[i][0], bench_subs[j].node) == 0)
				break;
		if (j == NSUB)
			fprintf(f, "user %s\ntopic write alerts/%s/#\n\n",
			    bench_pubs[i][0], bench_pubs[i][1]);
	}
	fclose(f);
	snprintf(path, sizeof(path), "%s/mosquitto.conf", b->outdir);
	if ((f = fopen(path, "w")) == NULL)
		return -1;
	fprintf(f,
	    "# Written by cpx-bench mosqconf.\n"
	    "per_listener_settings false\n"
	    "user root\n"
	    "listener %d %s\n"
	    "cafile %s/ca.pem\n"
	    "certfile %s/broker.pem\n"
	    "keyfile %s/broker.key\n"
	    "crlfile %s/crl.pem\n"
	    "tls_version tlsv1.3\n"
	    "require_certificate true\n"
	    "use_identity_as_username true\n"
	    "allow_anonymous false\n"
	    "acl_file %s/acl\n"
	    "persistence true\n"
	    "persistence_location %s/data/\n"
	    "max_inflight_messages %d\n"
	    "max_queued_messages 100000\n"
	    "set_tcp_nodelay true\n"
	    "log_dest stderr\n"
	    "log_type error\n"
	    "log_type warning\n",
	    b->port, b->host, b->pki, b->pki, b->pki, b->pki, b->outdir,
	    b->outdir, WINDOW);
	fclose(f);
	snprintf(path, sizeof(path), "%s/data", b->outdir);
	mkdir(path, 0700);
	return 0;
}
