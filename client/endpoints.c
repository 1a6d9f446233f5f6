/*
 * endpoints.c: parsing a client's list of broker endpoints and the
 * per-endpoint lists of names and pins (see endpoints.h). Owns the copy
 * of the list the endpoints point into.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "endpoints.h"

/* Trim blanks at both ends of s, in place; returns s. */
static char *
trim(char *s)
{
	size_t n;

	while (*s == ' ' || *s == '\t')
		s++;
	n = strlen(s);
	while (n > 0 && (s[n - 1] == ' ' || s[n - 1] == '\t'))
		s[--n] = '\0';
	return s;
}

int
endpoints_parse(struct endpoints *ep, const char *list, char *err,
    size_t errlen)
{
	char *p, *item;

	memset(ep, 0, sizeof(*ep));
	if ((ep->buf = strdup(list)) == NULL) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	for (p = ep->buf; (item = strsep(&p, ",")) != NULL; ) {
		item = trim(item);
		if (item[0] == '\0') {
			snprintf(err, errlen, "broker endpoint list '%.200s': "
			    "item %zu is empty (two commas, or one at an "
			    "end?)", list, ep->n + 1);
			goto fail;
		}
		if (ep->n == ENDPOINTS_MAX) {
			snprintf(err, errlen, "broker endpoint list '%.200s': "
			    "more than %d endpoints", list, ENDPOINTS_MAX);
			goto fail;
		}
		ep->eps[ep->n++] = item;
	}
	return 0;
fail:
	endpoints_clear(ep);
	return -1;
}

void
endpoints_clear(struct endpoints *ep)
{
	free(ep->buf);
	memset(ep, 0, sizeof(*ep));
}

int
endpoints_item(const char *list, size_t i, size_t n, const char *what,
    char *out, size_t len, char *err, size_t errlen)
{
	const char *p = list, *end;
	size_t items = 1, k, l;

	if (len > 0)
		out[0] = '\0';
	for (end = list; (end = strchr(end, ',')) != NULL; end++)
		items++;
	if (items != 1 && items != n) {
		snprintf(err, errlen, "%s '%.200s' has %zu items for %zu "
		    "broker endpoints: give one for all, or one per endpoint "
		    "in the same order", what, list, items, n);
		return -1;
	}
	/* Item i is after i commas; counted above, so each is there. */
	for (k = items == 1 ? 0 : i; k > 0; k--)
		p = strchr(p, ',') + 1;
	end = strchr(p, ',');
	l = end != NULL ? (size_t)(end - p) : strlen(p);
	if (l >= len) {
		snprintf(err, errlen, "%s '%.200s': item %zu is too long",
		    what, list, (items == 1 ? 0 : i) + 1);
		return -1;
	}
	memcpy(out, p, l);
	out[l] = '\0';
	p = trim(out);
	memmove(out, p, strlen(p) + 1);
	return 0;
}
