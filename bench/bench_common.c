/*
 * bench_common.c: what every peer of cpx-bench shares: the subscriber and
 * publisher tables, the alerts (1 KiB, every category and severity, the
 * send time in the summary), their signature as cpx_publish_send makes
 * it, the subscriber's end-to-end verification, and the meters (expected,
 * received, acknowledged) the publishers and subscribers count into.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "alert.h"
#include "identity.h"
#include "sign.h"
#include "bench.h"

/*
 * Ten subscribing nodes with per-country and regional feeds, some
 * narrowed by category or severity. Regions are those of
 * broker/policy.example.ini.
 */
const struct subspec bench_subs[NSUB] = {
	{ "hr-ncp", { "SI" }, NULL, { 0 }, 0 },
	{ "at-ncp", { NULL }, "eu-neighbours", { 0 }, 0 },
	{ "hu-ncp", { NULL }, NULL, { 0 }, 0 },
	{ "it-ncp", { "SI", "AT" }, NULL, { 0 }, 3 },
	{ "ba-ncp", { NULL }, "western-balkans", { 0 }, 0 },
	{ "rs-ncp", { "SI", "RS" }, NULL, { 1, 3, 6 }, 0 },
	{ "me-ncp", { "SI", "HR", "RS" }, NULL, { 0 }, 0 },
	{ "mk-ncp", { NULL }, NULL, { 0 }, 0 },
	{ "al-ncp", { NULL }, "eu-neighbours", { 4, 5 }, 0 },
	{ "xk-ncp", { "RS", "HR" }, NULL, { 0 }, 0 },
};

const char *const bench_pubs[MAXPUB][2] = {
	{ "si-ncp", "SI" }, { "hr-ncp", "HR" }, { "at-ncp", "AT" },
	{ "rs-ncp", "RS" }
};

static const char *const regions[][7] = {
	{ "western-balkans", "AL", "BA", "ME", "MK", "RS", "XK" },
	{ "eu-neighbours", "AT", "HR", "HU", "IT", "SI", NULL },
};

int64_t
bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

void
bench_sleep_ms(int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

void
bench_ready_go(struct bench *b)
{
	atomic_fetch_add(&b->ready, 1);
	while (!atomic_load(&b->go))
		bench_sleep_ms(1);
}

void
bench_w2_plan(const struct bench *b, int idx, uint64_t *total,
    int64_t *step, int64_t *next)
{
	*total = (uint64_t)b->rate * (uint64_t)b->duration /
	    (uint64_t)b->npub;
	*step = 1000000000LL * b->npub / b->rate;
	*next = b->t0 + (int64_t)idx * *step / b->npub;
}

void
bench_node_paths(const struct bench *b, const char *node, char *cert,
    char *key, size_t len)
{
	snprintf(cert, len, "%s/nodes/%s.pem", b->pki, node);
	snprintf(key, len, "%s/nodes/%s.key", b->pki, node);
}

static int
region_has(const char *region, const char *cc)
{
	size_t r;
	int i;

	for (r = 0; r < sizeof(regions) / sizeof(regions[0]); r++) {
		if (strcmp(regions[r][0], region) != 0)
			continue;
		for (i = 1; i < 7 && regions[r][i] != NULL; i++)
			if (strcmp(regions[r][i], cc) == 0)
				return 1;
	}
	return 0;
}

/* Whether subscriber s should receive an alert (as the broker decides). */
static int
sub_matches(const struct subspec *s, const char *origin, int cat, int sev)
{
	int i, ok;

	if (s->origins[0] != NULL) {
		for (ok = 0, i = 0; i < 4 && s->origins[i] != NULL; i++)
			if (strcmp(s->origins[i], origin) == 0)
				ok = 1;
		if (!ok)
			return 0;
	}
	if (s->region != NULL && !region_has(s->region, origin))
		return 0;
	if (s->cats[0] != 0) {
		for (ok = 0, i = 0; i < 4 && s->cats[i] != 0; i++)
			if (s->cats[i] == cat)
				ok = 1;
		if (!ok)
			return 0;
	}
	return s->min_sev == 0 || sev >= s->min_sev;
}

/* Category and severity of alert i: every combination, evenly. */
int
bench_alert_cat(uint64_t i)
{
	return (int)(i % 7) + 1;
}

int
bench_alert_sev(uint64_t i)
{
	return (int)(i % 4) + 1;
}

void
bench_alert_id(const struct bench *b, int p, uint64_t i, char *id,
    size_t len)
{
	snprintf(id, len, "%s-%d-%012" PRIu64, b->tag, p, i);
}

/*
 * Alert i of publisher p, sent at t (ns, monotonic, carried in the summary
 * for the latency meter), padded so that its serialized form is exactly
 * ALERT_BYTES.
 */
void
bench_alert_fill(const struct bench *b, struct alertbuf *ab, int p,
    uint64_t i, int64_t t, size_t pad)
{
	int n;

	cpx__alert__init(&ab->a);
	bench_alert_id(b, p, i, ab->id, sizeof(ab->id));
	snprintf(ab->origin, sizeof(ab->origin), "%s", bench_pubs[p][1]);
	n = snprintf(ab->summary, sizeof(ab->summary), "t=%019" PRId64 " ", t);
	memset(ab->summary + n, 'x', pad - (size_t)n);
	ab->summary[pad] = '\0';
	ab->a.id = ab->id;
	ab->a.origin = ab->origin;
	ab->a.issued_at = alert_now_ms();
	ab->a.category = (Cpx__Category)bench_alert_cat(i);
	ab->a.severity = (Cpx__Severity)bench_alert_sev(i);
	ab->a.handling = CPX__HANDLING__HANDLING_NETWORK;
	ab->a.summary = ab->summary;
}

/* Publishers hold back while a subscriber is more than LAG behind. */
int
bench_backlog_ok(struct bench *b)
{
	int s;

	for (s = 0; s < b->nsub; s++)
		if (atomic_load(&b->expected[s]) -
		    atomic_load(&b->received[s]) > LAG)
			return 0;
	return 1;
}

void
bench_expect(struct bench *b, int p, uint64_t i)
{
	int s;

	for (s = 0; s < b->nsub; s++)
		if (sub_matches(&bench_subs[s], bench_pubs[p][1],
		    bench_alert_cat(i), bench_alert_sev(i)))
			atomic_fetch_add(&b->expected[s], 1);
}

/* A delivery reached subscriber s; summary carries the send time. */
void
bench_delivered(struct bench *b, int s, const Cpx__Alert *a)
{
	int64_t t = bench_now_ns(), sent;

	if (a == NULL || strncmp(a->id, b->tag, strlen(b->tag)) != 0) {
		atomic_fetch_add(&b->bad[s], 1);
		return;
	}
	atomic_fetch_add(&b->received[s], 1);
	atomic_store(&b->last_rx, t);
	if (b->dlat[s] != NULL && b->ndlat[s] < b->latcap &&
	    a->summary != NULL && strncmp(a->summary, "t=", 2) == 0) {
		sent = strtoll(a->summary + 2, NULL, 10);
		b->dlat[s][b->ndlat[s]++] = t - sent;
	}
}

void
bench_acked(struct bench *b, struct worker *w, uint64_t key)
{
	int64_t t = bench_now_ns();
	size_t n;

	atomic_fetch_add(&b->acked, 1);
	atomic_store(&b->last_ack, t);
	if (b->alat != NULL && w->ring != NULL &&
	    (n = atomic_fetch_add(&b->nalat, 1)) < b->latcap)
		b->alat[n] = t - w->ring[key % RING];
}



/*
 * MQTT has no regions and no filters but topic levels: an alert is
 * published on alerts/<CC>/<category>/<severity>, and a cpx filter becomes
 * the topic filters for the same (country, category, severity) set, the
 * region expanded to its members. The sets are disjoint, so no message is
 * delivered twice to one subscriber.
 */
int
bench_topics(const struct subspec *s, char topics[][TOPICLEN], int max)
{
	const char *cc[8], *cat[8], *sev[5];
	int ncc = 0, ncat = 0, nsev = 0, i, j, k, n = 0;
	size_t r;

	if (s->origins[0] != NULL)
		for (i = 0; i < 4 && s->origins[i] != NULL; i++)
			cc[ncc++] = s->origins[i];
	else if (s->region != NULL) {
		for (r = 0; r < sizeof(regions) / sizeof(regions[0]); r++)
			if (strcmp(regions[r][0], s->region) == 0)
				for (i = 1; i < 7 && regions[r][i]; i++)
					cc[ncc++] = regions[r][i];
	} else
		cc[ncc++] = "+";
	if (s->cats[0] != 0)
		for (i = 0; i < 4 && s->cats[i] != 0; i++)
			cat[ncat++] = alert_category_name(s->cats[i]);
	else
		cat[ncat++] = "+";
	if (s->min_sev != 0)
		for (i = s->min_sev; i <= 4; i++)
			sev[nsev++] = alert_severity_name(i);
	else
		sev[nsev++] = "+";
	for (i = 0; i < ncc; i++)
		for (j = 0; j < ncat; j++)
			for (k = 0; k < nsev && n < max; k++) {
				if (cat[j][0] == '+' && sev[k][0] == '+')
					snprintf(topics[n++], TOPICLEN,
					    "alerts/%s/#", cc[i]);
				else
					snprintf(topics[n++], TOPICLEN,
					    "alerts/%s/%s/%s", cc[i], cat[j],
					    sev[k]);
			}
	return n;
}


int
bench_sign(struct bench *b, struct worker *w, struct sign_key *sk,
    uint64_t i, int64_t t, uint8_t **bufp, size_t *lenp, char *topic,
    size_t topiclen)
{
	Cpx__SignedAlert sa = CPX__SIGNED_ALERT__INIT;
	struct alertbuf ab;
	uint8_t abytes[ALERT_BYTES], *buf = NULL;
	size_t len;
	int rc = -1;

	*bufp = NULL;
	*lenp = 0;
	bench_alert_fill(b, &ab, w->idx, i, t, b->pad);
	cpx__alert__pack(&ab.a, abytes);
	if (sign_key_alert(sk, abytes, ALERT_BYTES, &sa) == -1)
		return -1;
	len = cpx__signed_alert__get_packed_size(&sa);
	if ((buf = malloc(len)) == NULL)
		goto done;
	cpx__signed_alert__pack(&sa, buf);
	snprintf(topic, topiclen, "alerts/%s/%s/%s", bench_pubs[w->idx][1],
	    alert_category_name(bench_alert_cat(i)),
	    alert_severity_name(bench_alert_sev(i)));
	*bufp = buf;
	*lenp = len;
	buf = NULL;
	rc = 0;
done:
	free(buf);
	sign_signed_alert_clear(&sa);
	return rc;
}

void
bench_verify(struct worker *w, const void *data, size_t len)
{
	Cpx__SignedAlert *sa;
	Cpx__Alert *a = NULL;
	struct identity signer;
	char why[256];
	int reason;

	sa = cpx__signed_alert__unpack(NULL, len, data);
	if (sa == NULL || sign_verify_alert(w->trust, sa, &a, &signer,
	    &reason, why, sizeof(why)) == -1 ||
	    sign_verify_alert_origin(a, &signer, &reason, why,
	    sizeof(why)) == -1) {
		atomic_fetch_add(&w->b->bad[w->idx], 1);
		goto done;
	}
	bench_delivered(w->b, w->idx, a);
done:
	if (a != NULL)
		cpx__alert__free_unpacked(a, NULL);
	if (sa != NULL)
		cpx__signed_alert__free_unpacked(sa, NULL);
}
