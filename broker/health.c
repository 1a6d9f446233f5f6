/*
 * health.c: the broker's health (health.h): how long the CRL and the
 * broker's certificate stay valid, the warnings ahead of their expiry,
 * and the verdict /healthz returns. Reads the broker context; owns only
 * the struct health the caller hands in.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include <openssl/asn1.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include "broker.h"
#include "errfmt.h"
#include "health.h"
#include "log.h"
#include "metrics.h"

#define CHECK_MS	60000
#define DAY		86400

/* t - now in seconds; -1 if t cannot be read. */
static int
seconds_until(const ASN1_TIME *t, int64_t *secs)
{
	int days, s;

	*secs = 0;
	if (t == NULL || ASN1_TIME_diff(&days, &s, NULL, t) != 1)
		return -1;
	*secs = (int64_t)days * DAY + s;
	return 0;
}

int
health_crl_seconds(struct broker *b, int64_t *secs)
{
	STACK_OF(X509_OBJECT) *objs;
	X509_OBJECT *o;
	X509_CRL *crl;
	int i;

	*secs = 0;
	/* The CRL in force is the one in the store connections use. */
	objs = X509_STORE_get0_objects(trust_store(b->trust));
	for (i = 0; i < sk_X509_OBJECT_num(objs); i++) {
		o = sk_X509_OBJECT_value(objs, i);
		if ((crl = X509_OBJECT_get0_X509_CRL(o)) != NULL)
			return seconds_until(X509_CRL_get0_nextUpdate(crl),
			    secs);
	}
	return -1;
}

int
health_cert_seconds(const struct broker *b, int64_t *secs)
{
	*secs = 0;
	if (b->cert == NULL)
		return -1;
	return seconds_until(X509_get0_notAfter(b->cert), secs);
}

static int
level_of(int64_t secs)
{
	if (secs <= 0)
		return 3;
	if (secs <= DAY)
		return 2;
	if (secs <= 7 * DAY)
		return 1;
	return 0;
}

/* "3 day(s) 4 hour(s)", "5 hour(s) 2 minute(s)", "40 second(s)". */
static void
span(int64_t secs, char *buf, size_t len)
{
	if (secs < 0)
		secs = -secs;
	if (secs >= DAY)
		snprintf(buf, len, "%lld day(s) %lld hour(s)",
		    (long long)(secs / DAY), (long long)(secs % DAY / 3600));
	else if (secs >= 3600)
		snprintf(buf, len, "%lld hour(s) %lld minute(s)",
		    (long long)(secs / 3600), (long long)(secs % 3600 / 60));
	else if (secs >= 60)
		snprintf(buf, len, "%lld minute(s)", (long long)(secs / 60));
	else
		snprintf(buf, len, "%lld second(s)", (long long)secs);
}

static void
warn_crl(struct broker *b, int64_t secs, int level)
{
	char d[64];

	span(secs, d, sizeof(d));
	if (level == 3)
		log_warnx("CRL %s expired %s ago (its nextUpdate): every "
		    "connection is refused with crl-stale until the CA "
		    "publishes a new CRL there and the broker gets SIGHUP "
		    "(systemctl reload cpx-broker)", b->cfg->crl, d);
	else
		log_warnx("CRL %s expires in %s (its nextUpdate): the CA must "
		    "publish a new one there and the broker get SIGHUP "
		    "(systemctl reload cpx-broker), or every connection will "
		    "be refused with crl-stale", b->cfg->crl, d);
}

static void
warn_cert(struct broker *b, int64_t secs, int level)
{
	char d[64];

	span(secs, d, sizeof(d));
	if (level == 3)
		log_warnx("broker certificate %s expired %s ago (notAfter): "
		    "nodes refuse the broker; issue a new one for %s "
		    "(certs/cpx-pki) and restart the broker", b->cfg->cert, d,
		    b->name);
	else
		log_warnx("broker certificate %s expires in %s (notAfter): "
		    "issue a new one for %s (certs/cpx-pki) and restart the "
		    "broker before then, or nodes will refuse it",
		    b->cfg->cert, d, b->name);
}

void
health_check_expiry(struct broker *b, struct health *h, int64_t now_ms,
    int force)
{
	int64_t secs;
	int level;

	if (!force && h->last_check_ms != 0 &&
	    now_ms - h->last_check_ms < CHECK_MS)
		return;
	h->last_check_ms = now_ms;
	if (health_crl_seconds(b, &secs) == 0) {
		level = level_of(secs);
		if (level > h->crl_level)
			warn_crl(b, secs, level);
		else if (level < h->crl_level)
			log_info("CRL %s renewed: valid for %lld more day(s)",
			    b->cfg->crl, (long long)(secs / DAY));
		h->crl_level = level;
	}
	if (health_cert_seconds(b, &secs) == 0) {
		level = level_of(secs);
		if (level > h->cert_level)
			warn_cert(b, secs, level);
		h->cert_level = level;
	}
}

int
health_status(struct broker *b, char *why, size_t len)
{
	const char *err;
	int64_t secs;
	char d[64];

	if (why != NULL && len > 0)
		why[0] = '\0';
	if ((err = metrics_commit_error(b->metrics)) != NULL)
		return errf(why, len, "audit log cannot be written: %s; "
		    "publishes are refused with storage until it can", err);
	if (b->cfg->audit_dir != NULL &&
	    access(b->cfg->audit_dir, W_OK) == -1)
		return errf(why, len, "audit directory %s is not writable "
		    "(config key audit_dir)", b->cfg->audit_dir);
	if (health_crl_seconds(b, &secs) == -1)
		return errf(why, len, "no CRL in force (config key crl: %s)",
		    b->cfg->crl);
	if (secs <= 0) {
		span(secs, d, sizeof(d));
		return errf(why, len, "CRL %s expired %s ago: connections are "
		    "refused with crl-stale; publish a new CRL and reload",
		    b->cfg->crl, d);
	}
	if (health_cert_seconds(b, &secs) == 0 && secs <= 0)
		return errf(why, len, "broker certificate %s has expired",
		    b->cfg->cert);
	return 0;
}
