/*
 * cpx_client_conn.c: getting a session with a broker. Owns the
 * ZMQ_STREAM socket's set-up and connect, the monitor that watches it
 * while cpx_client_connect waits (so a refused TCP connect is reported at
 * once), the plain TCP probe that says why a connect failed, and
 * cpx_client_connect itself: with one endpoint, and with several
 * (connect_list, trying each in turn; docs/failover.md).
 */
#include <sys/socket.h>

#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "cpx_client.h"
#include "cpx_client_impl.h"
#include "tlsctx.h"

/*
 * While cpx_client_connect waits, a monitor on the socket tells it when a
 * TCP connect has failed: ZeroMQ itself only retries, silently, so a
 * broker that is not running would otherwise cost the whole timeout.
 */
void
client_monitor_stop(struct cpx_client *c)
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

	client_monitor_stop(c);
	snprintf(ep, sizeof(ep), "inproc://cpx-connect-%p-%u", (void *)c,
	    c->mon_n++);
	/* Without a monitor the wait is only slower: not an error. */
	if (zmq_socket_monitor(c->sock, ep, ZMQ_EVENT_CONNECT_RETRIED) == -1)
		return;
	if ((c->mon = zmq_socket(c->zctx, ZMQ_PAIR)) == NULL)
		return;
	if (zmq_setsockopt(c->mon, ZMQ_LINGER, &linger, sizeof(linger)) ||
	    zmq_connect(c->mon, ep) == -1)
		client_monitor_stop(c);
}

/* 1 if the monitor reported a failed TCP connect since last asked. */
int
client_monitor_failed(struct cpx_client *c)
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
int
client_probe_tcp(const char *endpoint, int wait_ms, char *why, size_t whylen,
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

int
client_open_socket(struct cpx_client *c, char *err, size_t errlen)
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
	c->ep_since_ms = client_now_ms();
	if (zmq_connect(c->sock, c->endpoint) == -1) {
		snprintf(err, errlen, "cannot connect to %s: %s", c->endpoint,
		    zmq_strerror(errno));
		return -1;
	}
	return 0;
}

/*
 * cpx_client_connect with several endpoints: each in turn from the
 * current one (client_check_endpoint moves on), until a Welcome or until every
 * endpoint not refused has failed once in this call, which err[] then
 * tells endpoint by endpoint. Returns 0 or -1.
 */
static int
connect_list(struct cpx_client *c, int timeout_ms, char *err, size_t errlen)
{
	int64_t until = client_now_ms() + timeout_ms, left;
	size_t i, used;
	int n;

	c->round_tried = 1;
	c->round_start_ms = client_now_ms();
	c->ep_failed = 0;
	for (i = 0; i < c->ep.n; i++)
		c->ep_why[i][0] = '\0';
	if (c->sock == NULL && client_open_socket(c, err, errlen) == -1)
		return -1;
	c->ep_since_ms = client_now_ms();
	while (c->welcome == NULL) {
		if (c->dead) {
			snprintf(err, errlen, "%s", c->error);
			return -1;
		}
		left = until - client_now_ms();
		if ((c->ep_failed &&
		    c->round_tried >= client_usable_endpoints(c)) ||
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
	int64_t until = client_now_ms() + timeout_ms, left;
	char why[160];
	int rc = -1, refused;

	/* The Welcome wakes cpx_client_run: no poll period is waited out. */
	c->wait_welcome = 1;
	if (c->ep.n > 1) {
		rc = connect_list(c, timeout_ms, err, errlen);
		goto done;
	}
	if (c->sock == NULL && client_open_socket(c, err, errlen) == -1)
		goto done;
	while (c->welcome == NULL) {
		/*
		 * Nothing listening (or no route) is known at once: say so
		 * now rather than after the whole timeout. The probe tells
		 * which error; if it connects, the broker has just come up
		 * and ZeroMQ's next retry will find it.
		 */
		if (c->rid_len == 0 && client_monitor_failed(c) &&
		    client_probe_tcp(c->endpoint, 1000, why, sizeof(why),
		    &refused) == -1) {
			snprintf(err, errlen, "no session with the broker at "
			    "%s: TCP connect failed: %s%s", c->endpoint, why,
			    refused ? " (is cpx-broker running and listening "
			    "on that port?)" : "");
			goto done;
		}
		if ((left = until - client_now_ms()) <= 0) {
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
	client_monitor_stop(c);
	c->wait_welcome = 0;
	return rc;
}
