/*
 * testhttp.h: the broker's HTTP endpoint (metrics_listen) as a test sees
 * it: GET with curl, a sample of /metrics by name, the port a broker
 * started with metrics_listen = 127.0.0.1:0 says it took.
 */
#ifndef CPX_TESTHTTP_H
#define CPX_TESTHTTP_H

#include "testbroker.h"

#define TESTHTTP_BODY_MAX	(256 * 1024)

/*
 * curl http://127.0.0.1:port<path>: the status code (0 if curl failed)
 * and the body in body[TESTHTTP_BODY_MAX]. args: more curl options, or "".
 */
int	testhttp_get(int port, const char *path, const char *args,
	    char *body);
/* The value of the sample named exactly `name` (labels included), or -1. */
double	testhttp_metric(const char *body, const char *name);
/* The port tb's log says its metrics endpoint listens on (asserts > 0). */
int	testhttp_metrics_port(struct testbroker *tb);

#endif
