/*
 * testsink.h: records what a client library session receives (events by
 * kind, delivered alert ids and sequences, verification results) so tests
 * can assert exactly who received what.
 */
#ifndef CPX_TESTSINK_H
#define CPX_TESTSINK_H

#include <stddef.h>
#include <stdint.h>

#include "cpx_client.h"

#define TESTSINK_MAX	4096

struct testsink_item {
	uint64_t	seq;
	char		id[65];
	int		verified;
	int		replayed;
	char		verify_error[160];
};

struct testsink {
	struct testsink_item	items[TESTSINK_MAX];
	size_t			n;		/* deliveries */
	int			connected;
	int			disconnected;
	int			subscribed;
	int			acks;
	int			errors;
	int			replay_ends;
	uint64_t		replay_count;
	int			last_reason;
	int			last_fatal;
	uint64_t		last_request;
	char			last_text[256];
	size_t			records;	/* audit records */
	uint64_t		last_ack_seq;
	int			last_ack_dup;
};

/* Attach a zeroed sink to c. */
void	testsink_attach(struct testsink *s, struct cpx_client *c);
/* Run c until (*counter >= target) or timeout; 1 if reached. */
int	testsink_run_until(struct cpx_client *c, const int *counter, int target,
	    int timeout_ms);
/* Run c until s->n >= target deliveries or timeout; 1 if reached. */
int	testsink_wait_deliveries(struct testsink *s, struct cpx_client *c,
	    size_t target, int timeout_ms);
/* 1 if an alert with id was delivered (and how many times in *count). */
int	testsink_has(const struct testsink *s, const char *id, int *count);
/*
 * Round trip: resubscribe with the same filters and wait for SUBSCRIBED,
 * so every delivery queued before it has arrived. 1 if it did.
 */
int	testsink_sync(struct testsink *s, struct cpx_client *c,
	    Cpx__Filter *const *filters, size_t nfilters);

struct testbroker;

/*
 * testbroker_client for node, attach s, connect (10 s). NULL (the reason
 * printed on stderr) if it fails.
 */
struct cpx_client *testsink_connect(struct testbroker *tb, const char *node,
	    int reconnect, struct testsink *s);
/* A subscribe round trip with a match-all filter: 1 if c is still served. */
int	testsink_served(struct testsink *s, struct cpx_client *c);

#endif
