/*
 * harden_util.h: helpers for the hardening tests (test_limits.c,
 * test_faults.c): a raw TLS 1.3 node client over a plain TCP socket with
 * OpenSSL, so a test can misbehave in ways the client library never does
 * (oversized frames, silence after the handshake, half records, never
 * reading), plus broker-process probes (RSS, config rewrite, audit scan)
 * and the few cmocka-asserting steps those tests share (connect a node,
 * check it is still served, publish). Also used by test_admission.c and
 * test_trust.c.
 */
#ifndef CPX_HARDEN_UTIL_H
#define CPX_HARDEN_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openssl/ssl.h>

#include "cpx_client.h"
#include "proto/cpx.pb-c.h"
#include "testbroker.h"
#include "testsink.h"

struct rawtls {
	int		 fd;
	SSL_CTX		*ctx;
	SSL		*ssl;
	uint8_t		*buf;		/* plaintext not yet framed */
	size_t		 len;
	int		 eof;		/* peer closed or TLS failed */
	int		 last_error;	/* reason of the last Error seen */
	int		 last_fatal;
	uint64_t	 last_seq;	/* last Delivery seq seen */
	size_t		 deliveries;
};

/*
 * Connect to 127.0.0.1:port as PKI node `node` ("si-ncp"), complete the
 * TLS handshake and wait for the Welcome (5 s). rcvbuf > 0 sets SO_RCVBUF
 * before connecting (a small window makes a stalled reader stall fast).
 * welcome 0: return right after the handshake. Returns 0 or -1 (printed).
 */
int	rawtls_open(struct rawtls *r, int port, const char *node, int rcvbuf,
	    int welcome) __attribute__((warn_unused_result));
void	rawtls_close(struct rawtls *r);
/* Encode env as a frame and write it. 0 or -1. */
int	rawtls_send(struct rawtls *r, const Cpx__Envelope *env)
	    __attribute__((warn_unused_result));
/*
 * Next envelope within timeout_ms (owned by the caller:
 * cpx__envelope__free_unpacked), or NULL on timeout or end (r->eof).
 * Errors and deliveries are also noted in r.
 */
Cpx__Envelope *rawtls_read(struct rawtls *r, int timeout_ms);
/* Read until the peer closes; 1 if it did within timeout_ms. */
int	rawtls_wait_close(struct rawtls *r, int timeout_ms);

/* Resident set of a process in KiB (VmRSS), or -1. */
long	harden_rss_kb(pid_t pid);
/* Replace the line "key = ..." of tb's config file. 0 or -1. */
int	harden_set_conf(struct testbroker *tb, const char *key,
	    const char *value) __attribute__((warn_unused_result));
/* Run the broker on tb's config in the foreground (flag: one extra
 * option such as "-n", or NULL); its wait status. */
int	harden_run_broker(struct testbroker *tb, const char *flag);
/*
 * Count audit records of kind (and reason, if >= 0) in dir. Sets *last_kind
 * to the kind of the last record. -1 if the log cannot be read.
 */
long	harden_audit_count(const char *dir, int kind, int reason,
	    int *last_kind);
/*
 * Refusal records of kind (and reason, if >= 0) in dir: *records how many
 * records, *refusals how many refusals they stand for (a summary record
 * stands for its count). 0, or -1 if the log cannot be read.
 */
int	harden_audit_refusals(const char *dir, int kind, int reason,
	    long *records, long *refusals) __attribute__((warn_unused_result));
/* Raise RLIMIT_NOFILE to at least n (hard limit permitting). 0 or -1. */
int	harden_raise_nofile(long n) __attribute__((warn_unused_result));

/*
 * Connect node to tb with sink's callbacks (testsink_connect); fails the
 * cmocka test if it cannot. The caller owns the client (cpx_client_free).
 */
struct cpx_client *harden_connect(struct testbroker *tb, const char *node,
	    int reconnect, struct testsink *sink);
/* Fail the test unless a subscribe round trip shows c is still served. */
void	harden_assert_served(struct cpx_client *c, struct testsink *s);
/*
 * Publish a low-severity ROUTE alert id to the whole network (10 s
 * timeout). Returns 0 with *seq (if seq is not NULL) set, or the refusal
 * reason (CPX__REASON__*), or -1 if no reason was given.
 */
int	harden_publish(struct cpx_client *c, const char *id, uint64_t *seq)
	    __attribute__((warn_unused_result));
/* harden_publish, failing the test with the reason if it is refused. */
void	harden_publish_ok(struct cpx_client *c, const char *id);
/*
 * Shrink AddressSanitizer's quarantine for the broker processes started
 * after this (ASAN_OPTIONS), so their RSS measures live memory rather
 * than freed blocks held back. Once set, later calls change nothing.
 */
void	harden_small_quarantine(void);
/* A plain TCP connection to 127.0.0.1:port: the descriptor, or -1. */
int	harden_tcp_connect(int port);

#endif
