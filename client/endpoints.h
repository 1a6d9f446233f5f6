/*
 * endpoints.h: a client's list of broker endpoints ("tcp://a:7443,
 * tcp://b:7443", several brokers of one network) and the lists that go
 * with it, one item per endpoint or one for all (broker names, pins).
 * Parsing only: cpx_client_failover.c decides when to move to the next
 * endpoint (docs/failover.md).
 */
#ifndef CPX_ENDPOINTS_H
#define CPX_ENDPOINTS_H

#include <stddef.h>

#define ENDPOINTS_MAX	16	/* brokers in one endpoint list */

struct endpoints {
	char	*buf;			/* owned; eps point into it */
	char	*eps[ENDPOINTS_MAX];
	size_t	 n;
};

/*
 * Split list at commas into ep (zeroed first), each item trimmed of
 * blanks. Returns 0 with at least one endpoint, or -1 with err[] naming
 * the item at fault (empty, or one too many); ep is then cleared.
 */
int	endpoints_parse(struct endpoints *ep, const char *list, char *err,
	    size_t errlen) __attribute__((warn_unused_result));
/* Free what ep owns; ep is empty afterwards. */
void	endpoints_clear(struct endpoints *ep);

/*
 * Item i of list (a comma list of broker names or pins, what says which
 * in messages) for n endpoints into out[len], trimmed: a list of one
 * item applies to every endpoint, else it needs exactly n items, in the
 * endpoints' order. Returns 0, or -1 with err[] and out[] empty.
 */
int	endpoints_item(const char *list, size_t i, size_t n, const char *what,
	    char *out, size_t len, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

#endif
