/*
 * harden_util.c: see harden_util.h. Each struct rawtls owns its socket,
 * SSL objects and read buffer until rawtls_close().
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/err.h>

#include "alert.h"
#include "audit.h"
#include "cpx_limits.h"
#include "harden_util.h"
#include "testpki.h"
#include "testsink.h"
#include "wire.h"

#define RAW_BUF	(CPX_MAX_FRAME + 4 + 16384)

int
rawtls_open(struct rawtls *r, int port, const char *node, int rcvbuf,
    int welcome)
{
	struct sockaddr_in sin;
	Cpx__Envelope *env;
	char ca[512], cert[512], key[512], rel[256];

	memset(r, 0, sizeof(*r));
	r->fd = -1;
	if ((r->buf = malloc(RAW_BUF)) == NULL)
		return -1;
	snprintf(rel, sizeof(rel), "nodes/%s.pem", node);
	if (testpki_path(cert, sizeof(cert), rel) == -1)
		return -1;
	snprintf(rel, sizeof(rel), "nodes/%s.key", node);
	if (testpki_path(key, sizeof(key), rel) == -1 ||
	    testpki_path(ca, sizeof(ca), "ca.pem") == -1)
		return -1;
	if ((r->ctx = SSL_CTX_new(TLS_client_method())) == NULL)
		return -1;
	SSL_CTX_set_min_proto_version(r->ctx, TLS1_3_VERSION);
	if (SSL_CTX_load_verify_file(r->ctx, ca) != 1 ||
	    SSL_CTX_use_certificate_file(r->ctx, cert, SSL_FILETYPE_PEM) != 1 ||
	    SSL_CTX_use_PrivateKey_file(r->ctx, key, SSL_FILETYPE_PEM) != 1) {
		fprintf(stderr, "rawtls: cannot load %s\n", node);
		return -1;
	}
	SSL_CTX_set_verify(r->ctx, SSL_VERIFY_PEER, NULL);
	if ((r->fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	if (rcvbuf > 0)
		(void)setsockopt(r->fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf,
		    sizeof(rcvbuf));
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(r->fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		perror("rawtls: connect");
		return -1;
	}
	if ((r->ssl = SSL_new(r->ctx)) == NULL ||
	    SSL_set_fd(r->ssl, r->fd) != 1 || SSL_connect(r->ssl) != 1) {
		fprintf(stderr, "rawtls: handshake as %s failed\n", node);
		ERR_print_errors_fp(stderr);
		return -1;
	}
	/* Non-blocking from here: reads are bounded by poll timeouts. */
	if (fcntl(r->fd, F_SETFL, fcntl(r->fd, F_GETFL) | O_NONBLOCK) == -1)
		return -1;
	if (!welcome)
		return 0;
	if ((env = rawtls_read(r, 5000)) == NULL ||
	    env->body_case != CPX__ENVELOPE__BODY_WELCOME) {
		fprintf(stderr, "rawtls: %s got no Welcome\n", node);
		if (env != NULL)
			cpx__envelope__free_unpacked(env, NULL);
		return -1;
	}
	cpx__envelope__free_unpacked(env, NULL);
	return 0;
}

void
rawtls_close(struct rawtls *r)
{
	if (r->ssl != NULL)
		SSL_free(r->ssl);
	if (r->ctx != NULL)
		SSL_CTX_free(r->ctx);
	if (r->fd != -1)
		close(r->fd);
	free(r->buf);
	memset(r, 0, sizeof(*r));
	r->fd = -1;
}

int
rawtls_send(struct rawtls *r, const Cpx__Envelope *env)
{
	struct pollfd pfd;
	uint8_t *buf = NULL;
	size_t len = 0, off = 0, n;
	int e, rc = -1;

	if (wire_encode(env, &buf, &len) == -1)
		return -1;
	while (off < len) {
		if (SSL_write_ex(r->ssl, buf + off, len - off, &n) == 1) {
			off += n;
			continue;
		}
		e = SSL_get_error(r->ssl, 0);
		if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ)
			goto done;
		pfd.fd = r->fd;
		pfd.events = e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
		if (poll(&pfd, 1, 5000) <= 0)
			goto done;
	}
	rc = 0;
done:
	free(buf);
	return rc;
}

/* Take one complete frame from r->buf, if there is one. */
static Cpx__Envelope *
take_frame(struct rawtls *r)
{
	const uint8_t *body;
	size_t blen, used;
	Cpx__Envelope *env;
	char why[256];
	int reason;

	if (wire_frame_next(r->buf, r->len, CPX_MAX_FRAME, &body, &blen,
	    &used) != WIRE_FRAME)
		return NULL;
	env = wire_decode(body, blen, &reason, why, sizeof(why));
	memmove(r->buf, r->buf + used, r->len - used);
	r->len -= used;
	if (env == NULL) {
		fprintf(stderr, "rawtls: bad frame from broker: %s\n", why);
		r->eof = 1;
		return NULL;
	}
	if (env->body_case == CPX__ENVELOPE__BODY_ERROR) {
		r->last_error = env->error->reason;
		r->last_fatal = env->error->fatal;
	} else if (env->body_case == CPX__ENVELOPE__BODY_DELIVERY) {
		r->deliveries++;
		r->last_seq = env->delivery->seq;
	}
	return env;
}

Cpx__Envelope *
rawtls_read(struct rawtls *r, int timeout_ms)
{
	int64_t until = testutil_now_ms() + timeout_ms, left;
	struct pollfd pfd;
	Cpx__Envelope *env;
	size_t n;
	int e;

	for (;;) {
		if ((env = take_frame(r)) != NULL)
			return env;
		if (r->eof)
			return NULL;
		if (SSL_read_ex(r->ssl, r->buf + r->len, RAW_BUF - r->len,
		    &n) == 1) {
			r->len += n;
			continue;
		}
		e = SSL_get_error(r->ssl, 0);
		if (e != SSL_ERROR_WANT_READ && e != SSL_ERROR_WANT_WRITE) {
			ERR_clear_error();
			r->eof = 1;
			return NULL;
		}
		if ((left = until - testutil_now_ms()) <= 0)
			return NULL;
		pfd.fd = r->fd;
		pfd.events = POLLIN;
		(void)poll(&pfd, 1, (int)left);
	}
}

int
rawtls_wait_close(struct rawtls *r, int timeout_ms)
{
	int64_t until = testutil_now_ms() + timeout_ms;
	Cpx__Envelope *env;

	while (!r->eof && testutil_now_ms() < until) {
		env = rawtls_read(r, (int)(until - testutil_now_ms()));
		if (env != NULL)
			cpx__envelope__free_unpacked(env, NULL);
	}
	return r->eof;
}

long
harden_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	if ((f = fopen(path, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL)
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

int
harden_set_conf(struct testbroker *tb, const char *key, const char *value)
{
	char *out = NULL, line[1024];
	size_t klen = strlen(key), olen = 0, cap = 0, need;
	FILE *f;
	int found = 0;

	if ((f = fopen(tb->conf, "r")) == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (strncmp(line, key, klen) == 0 && (line[klen] == ' ' ||
		    line[klen] == '=')) {
			snprintf(line, sizeof(line), "%s = %s\n", key, value);
			found = 1;
		}
		need = olen + strlen(line) + 1;
		if (need > cap) {
			cap = need * 2;
			if ((out = realloc(out, cap)) == NULL) {
				fclose(f);
				return -1;
			}
		}
		memcpy(out + olen, line, strlen(line) + 1);
		olen += strlen(line);
	}
	fclose(f);
	if (!found) {
		free(out);
		return -1;
	}
	if ((f = fopen(tb->conf, "w")) == NULL) {
		free(out);
		return -1;
	}
	fputs(out, f);
	free(out);
	return fclose(f) == 0 ? 0 : -1;
}

int
harden_run_broker(struct testbroker *tb, const char *flag)
{
	const char *bin = getenv("CPX_BINARY_DIR");
	char exe[512];
	pid_t pid;
	int fd, status;

	snprintf(exe, sizeof(exe), "%s/broker/cpx-broker",
	    bin ? bin : CPX_BINARY_DIR);
	if ((pid = fork()) == -1)
		return -1;
	if (pid == 0) {
		fd = open(tb->log, O_WRONLY | O_CREAT | O_APPEND, 0600);
		if (fd != -1) {
			dup2(fd, 2);
			dup2(fd, 1);
		}
		if (flag != NULL)
			execl(exe, "cpx-broker", flag, "-c", tb->conf,
			    (char *)NULL);
		else
			execl(exe, "cpx-broker", "-c", tb->conf, (char *)NULL);
		_exit(127);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return status;
}

long
harden_audit_count(const char *dir, int kind, int reason, int *last_kind)
{
	struct audit_cursor *c;
	Cpx__AuditRecord *rec;
	char err[256];
	long n = 0;
	int rc;

	*last_kind = 0;
	if ((c = audit_cursor_open_dir(dir, 1, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "audit %s: %s\n", dir, err);
		return -1;
	}
	while ((rc = audit_cursor_next(c, &rec, err, sizeof(err))) == 1) {
		if ((int)rec->kind == kind && (reason < 0 ||
		    (int)rec->reason == reason))
			n++;
		*last_kind = rec->kind;
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	audit_cursor_free(&c);
	if (rc == -1) {
		fprintf(stderr, "audit %s: %s\n", dir, err);
		return -1;
	}
	return n;
}

int
harden_audit_refusals(const char *dir, int kind, int reason, long *records,
    long *refusals)
{
	struct audit_cursor *c;
	Cpx__AuditRecord *rec;
	char err[256];
	int rc;

	*records = *refusals = 0;
	if ((c = audit_cursor_open_dir(dir, 1, 0, err, sizeof(err))) == NULL) {
		fprintf(stderr, "audit %s: %s\n", dir, err);
		return -1;
	}
	while ((rc = audit_cursor_next(c, &rec, err, sizeof(err))) == 1) {
		if ((int)rec->kind == kind && (reason < 0 ||
		    (int)rec->reason == reason)) {
			(*records)++;
			*refusals += rec->count > 1 ? (long)rec->count : 1;
		}
		cpx__audit_record__free_unpacked(rec, NULL);
	}
	audit_cursor_free(&c);
	if (rc == -1) {
		fprintf(stderr, "audit %s: %s\n", dir, err);
		return -1;
	}
	return 0;
}

int
harden_raise_nofile(long n)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1)
		return -1;
	if ((long)rl.rlim_cur >= n)
		return 0;
	if (rl.rlim_max != RLIM_INFINITY && (long)rl.rlim_max < n)
		rl.rlim_max = (rlim_t)n;	/* root may raise it */
	rl.rlim_cur = (rlim_t)n;
	return setrlimit(RLIMIT_NOFILE, &rl);
}

struct cpx_client *
harden_connect(struct testbroker *tb, const char *node, int reconnect,
    struct testsink *sink)
{
	struct cpx_client *c = testsink_connect(tb, node, reconnect, sink);

	assert_non_null(c);
	return c;
}

void
harden_assert_served(struct cpx_client *c, struct testsink *s)
{
	assert_true(testsink_served(s, c));
}

int
harden_publish(struct cpx_client *c, const char *id, uint64_t *seq)
{
	struct testalert ta;
	struct cpx_result res;

	testalert_init(&ta, id, CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__SEVERITY__SEVERITY_LOW, CPX__HANDLING__HANDLING_NETWORK, "",
	    "hardening test");
	if (cpx_publish(c, &ta.alert, 10000, &res) == -1)
		return res.reason ? res.reason : -1;
	if (seq != NULL)
		*seq = res.seq;
	return 0;
}

void
harden_publish_ok(struct cpx_client *c, const char *id)
{
	int r;

	if ((r = harden_publish(c, id, NULL)) != 0)
		fail_msg("publish %s refused: %s", id, alert_reason_name(r));
}

void
harden_small_quarantine(void)
{
	const char *old = getenv("ASAN_OPTIONS");
	char buf[1024];

	if (old != NULL && strstr(old, "quarantine_size_mb") != NULL)
		return;
	snprintf(buf, sizeof(buf), "%s%squarantine_size_mb=1:"
	    "thread_local_quarantine_size_kb=64", old ? old : "",
	    old && old[0] ? ":" : "");
	setenv("ASAN_OPTIONS", buf, 1);
}

int
harden_tcp_connect(int port)
{
	struct sockaddr_in sin;
	int fd;

	if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
		return -1;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)port);
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) == -1) {
		close(fd);
		return -1;
	}
	return fd;
}
