/*
 * package_hello.c: a host program of libcpx as an outside user writes it,
 * built by tests/test_install.sh against the *installed* library with
 * `pkg-config --cflags --libs cpx` and nothing else (no header or
 * library of the source tree is reachable). It connects as a node,
 * subscribes to its own country's alerts, publishes one alert as JSON,
 * and waits for it to come back verified; the library's log lines must
 * reach its callback, not stderr. Prints the delivery's JSON line on
 * stdout. Exit 0 on success, 1 with a message on stderr otherwise.
 *
 *	package_hello ENDPOINT PKI-DIR NODE
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cpx.h>

struct hello {
	uint64_t	 subscribed;	/* request id, 0 once in force */
	int		 delivered;
	int		 failed;
	int		 log_lines;
	char		 id[80];
};

static void
on_log(int prio, const char *line, void *arg)
{
	struct hello *h = arg;

	if (prio < 3 || prio > 7 || line == NULL)
		h->failed = 1;
	h->log_lines++;
}

static void
on_event(const struct cpx_event *ev, void *arg)
{
	struct hello *h = arg;
	char *line;

	switch (cpx_event_kind(ev)) {
	case CPX_EV_SUBSCRIBED:
		if (cpx_event_request_id(ev) == h->subscribed)
			h->subscribed = 0;
		break;
	case CPX_EV_DELIVERY:
		if (!cpx_event_verified(ev)) {
			fprintf(stderr, "package_hello: delivery not verified: "
			    "%s\n", cpx_event_verify_error(ev));
			h->failed = 1;
			break;
		}
		if ((line = cpx_event_json(ev)) == NULL) {
			fprintf(stderr, "package_hello: no JSON\n");
			h->failed = 1;
			break;
		}
		if (strstr(line, h->id) != NULL) {
			printf("%s\n", line);
			h->delivered = 1;
		}
		cpx_free(line);
		break;
	case CPX_EV_ERROR:
		fprintf(stderr, "package_hello: refused (%s): %s\n",
		    cpx_reason_name(cpx_event_reason(ev)), cpx_event_text(ev));
		h->failed = 1;
		break;
	default:
		break;
	}
}

int
main(int argc, char **argv)
{
	struct cpx_client_config cfg;
	struct cpx_session_info si;
	struct cpx_result res;
	struct cpx_client *c = NULL;
	struct hello h;
	char ca[512], crl[512], cert[512], key[512], err[512], json[512];
	const char *origins[1];
	struct cpx_filter f;
	int i, rc = 1;

	if (argc != 4) {
		fprintf(stderr, "usage: package_hello ENDPOINT PKI NODE\n");
		return 1;
	}
	memset(&h, 0, sizeof(h));
	cpx_set_log_callback(on_log, &h);
	if (cpx_set_log_level("debug") == -1 ||
	    cpx_set_log_level("loud") != -1) {
		fprintf(stderr, "package_hello: cpx_set_log_level\n");
		goto done;
	}
	if (strcmp(cpx_version(), CPX_VERSION) != 0) {
		fprintf(stderr, "package_hello: library %s, header %s\n",
		    cpx_version(), CPX_VERSION);
		goto done;
	}
	snprintf(ca, sizeof(ca), "%s/ca.pem", argv[2]);
	snprintf(crl, sizeof(crl), "%s/crl.pem", argv[2]);
	snprintf(cert, sizeof(cert), "%s/nodes/%s.pem", argv[2], argv[3]);
	snprintf(key, sizeof(key), "%s/nodes/%s.key", argv[2], argv[3]);
	memset(&cfg, 0, sizeof(cfg));
	cfg.endpoint = argv[1];
	cfg.ca = ca;
	cfg.crl = crl;
	cfg.cert = cert;
	cfg.key = key;
	if ((c = cpx_client_new(&cfg, err, sizeof(err))) == NULL ||
	    cpx_client_connect(c, 10000, err, sizeof(err)) == -1) {
		fprintf(stderr, "package_hello: %s\n", err);
		goto done;
	}
	if (cpx_client_session(c, &si) == -1 ||
	    strcmp(si.broker_version, CPX_VERSION) != 0 ||
	    strcmp(si.country, cpx_client_country(c)) != 0 ||
	    strcmp(si.node, cpx_client_node(c)) != 0 || !si.may_publish) {
		fprintf(stderr, "package_hello: unexpected Welcome\n");
		goto done;
	}
	printf("welcome: %s/%s from broker %s (cpx %s)\n", si.country, si.node,
	    si.broker_name, si.broker_version);

	/* A bad filter is refused here, by name, before the wire. */
	memset(&f, 0, sizeof(f));
	f.min_severity = "urgent";
	if (cpx_subscribe_to(c, &f, 1, 0, 0, &h.subscribed, err,
	    sizeof(err)) != -1 || strstr(err, "min_severity") == NULL) {
		fprintf(stderr, "package_hello: bad filter taken (%s)\n", err);
		goto done;
	}
	origins[0] = cpx_client_country(c);
	f.origins = origins;
	f.norigins = 1;
	f.min_severity = "low";
	cpx_client_on_event(c, on_event, &h);
	if (cpx_subscribe_to(c, &f, 1, 0, 0, &h.subscribed, err,
	    sizeof(err)) == -1) {
		fprintf(stderr, "package_hello: subscribe: %s\n", err);
		goto done;
	}
	for (i = 0; i < 100 && h.subscribed != 0 && !h.failed; i++)
		if (cpx_client_run(c, 100) == -1)
			break;
	if (h.subscribed != 0) {
		fprintf(stderr, "package_hello: not subscribed: %s\n",
		    cpx_client_error(c));
		goto done;
	}

	/* An invalid alert names what is wrong. */
	if (cpx_publish_json(c, "{\"summary\": 1}", 14, 1000, &res) != -1 ||
	    strstr(res.text, "summary") == NULL) {
		fprintf(stderr, "package_hello: bad alert taken (%s)\n",
		    res.text);
		goto done;
	}
	snprintf(h.id, sizeof(h.id), "hello-%ld", (long)getpid());
	snprintf(json, sizeof(json), "{\"id\": \"%s\", \"category\": "
	    "\"vehicle\", \"severity\": \"high\", \"handling\": \"network\", "
	    "\"summary\": \"libcpx from an installed tree\"}", h.id);
	if (cpx_publish_json(c, json, strlen(json), 10000, &res) == -1) {
		fprintf(stderr, "package_hello: publish refused (%s): %s\n",
		    cpx_reason_name(res.reason), res.text);
		goto done;
	}
	for (i = 0; i < 100 && !h.delivered && !h.failed; i++)
		if (cpx_client_run(c, 100) == -1)
			break;
	if (!h.delivered || h.failed) {
		fprintf(stderr, "package_hello: own alert not delivered\n");
		goto done;
	}
	if (h.log_lines == 0) {
		fprintf(stderr, "package_hello: no line reached the log "
		    "callback\n");
		goto done;
	}
	printf("log lines through the callback: %d\n", h.log_lines);
	rc = 0;
done:
	cpx_client_free(&c);
	cpx_client_free(&c);
	return rc;
}
