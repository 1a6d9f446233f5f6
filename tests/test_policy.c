/*
 * test_policy.c: tests of broker/policy.c: loading the example policy and
 * every kind of bad policy (each with its own error naming file, line and
 * key), the policy cut short at every length and over size, the rights
 * lookup order (node > country > defaults) and country pinning, and the
 * decisions: publish checks, subscribe checks, the routing-entitlement
 * matrix of handling code x recipients x receiving country, and filters.
 */
#include <sys/stat.h>

#include <fcntl.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "inifile.h"
#include "policy.h"
#include "testutil.h"

#define ERRLEN	512

/* --- helpers ------------------------------------------------------- */

static struct policy *
load_ok(const char *text)
{
	struct policy *p;
	char err[ERRLEN];

	p = policy_load_string("mem.ini", text, strlen(text), err,
	    sizeof(err));
	if (p == NULL)
		fail_msg("policy refused: %s", err);
	return p;
}

static void
expect_error(const char *text, size_t len, const char *want)
{
	struct policy *p;
	char err[ERRLEN];

	err[0] = '\0';
	p = policy_load_string("mem.ini", text, len, err, sizeof(err));
	if (p != NULL) {
		policy_free(&p);
		fail_msg("policy accepted, expected error \"%s\":\n%s", want,
		    text);
	}
	if (strstr(err, want) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, want);
	assert_non_null(strstr(err, "mem.ini:"));
}

static struct identity
peer(const char *country, const char *node)
{
	struct identity id;

	memset(&id, 0, sizeof(id));
	snprintf(id.country, sizeof(id.country), "%s", country);
	snprintf(id.node, sizeof(id.node), "%s", node);
	return id;
}

static void
alert_set(Cpx__Alert *a, const char *origin, int handling, char **rcpt,
    size_t n)
{
	cpx__alert__init(a);
	a->id = (char *)"a-1";
	a->origin = (char *)origin;
	a->category = CPX__CATEGORY__CATEGORY_ROUTE;
	a->severity = CPX__SEVERITY__SEVERITY_HIGH;
	a->handling = (Cpx__Handling)handling;
	a->recipients = rcpt;
	a->n_recipients = n;
}

static const char dev_policy[] =
    "[region western-balkans]\n"
    "members = AL BA ME MK RS XK\n"
    "[region eu-neighbours]\n"
    "members = AT HR HU IT SI\n"
    "[defaults]\n"
    "rights = publish subscribe\n"
    "[country FR]\n"
    "rights = publish\n"
    "[node si-audit]\n"
    "country = SI\n"
    "rights = subscribe audit\n"
    "[node mute]\n"
    "rights =\n";

/* --- loading ------------------------------------------------------- */

static void
t_example(void **state)
{
	struct policy *p;
	struct policy_rights r;
	struct identity id;
	char err[ERRLEN], path[1024];

	(void)state;
	snprintf(path, sizeof(path), "%s/broker/policy.example.ini",
	    CPX_SOURCE_DIR);
	p = policy_load(path, err, sizeof(err));
	if (p == NULL)
		fail_msg("%s", err);
	assert_true(policy_region_exists(p, "western-balkans"));
	assert_true(policy_region_exists(p, "eu-neighbours"));
	assert_true(policy_region_exists(p, "all"));
	assert_false(policy_region_exists(p, "balkans"));
	assert_true(policy_region_has(p, "western-balkans", "XK"));
	assert_true(policy_region_has(p, "western-balkans", "RS"));
	assert_false(policy_region_has(p, "western-balkans", "SI"));
	assert_true(policy_region_has(p, "eu-neighbours", "SI"));
	assert_false(policy_region_has(p, "eu-neighbours", "DE"));
	assert_true(policy_region_has(p, "all", "DE"));
	assert_false(policy_region_has(p, "all", "ZZ"));
	assert_false(policy_region_has(p, "all", "de"));

	id = peer("AT", "at-ncp");
	policy_rights(p, &id, &r);
	assert_true(r.publish && r.subscribe && !r.audit);
	id = peer("SI", "si-ncp");
	policy_rights(p, &id, &r);
	assert_true(r.publish && r.subscribe && r.audit);
	id = peer("HR", "si-ncp");
	policy_rights(p, &id, &r);
	assert_true(!r.publish && !r.subscribe && !r.audit);
	policy_free(&p);
	assert_null(p);
	policy_free(&p);
	policy_free(NULL);
}

struct bad {
	const char	*text;
	const char	*want;
};

static const struct bad bad_policies[] = {
	{ "[region all]\nmembers = AT\n",
	    ":1: [region all]: region all is built in" },
	{ "[region Balkans]\nmembers = AT\n",
	    ":1: [region Balkans]: region name must be" },
	{ "[region a_b]\nmembers = AT\n", ":1: [region a_b]: region name" },
	{ "[region abcdefghijabcdefghijabcdefghijabc]\nmembers = AT\n",
	    ":1: [region abcdefghijabcdefghijabcdefghijabc]: region name" },
	{ "[region ]\nmembers = AT\n", ":1: [region ]: region name" },
	{ "[region r]\nmembers = AT ZZ\n",
	    ":2: members: \"ZZ\" is not a country code" },
	{ "[region r]\nmembers = AL,BA\n",
	    ":2: members: \"AL,BA\" is not a country code" },
	{ "[region r]\nmembers = at\n",
	    ":2: members: \"at\" is not a country code" },
	{ "[region r]\nmembers = AT SI AT\n", ":2: members: AT listed twice" },
	{ "[region r]\nmembers =\n", ":2: members: region has no members" },
	{ "[region r]\nmembers = AT\n\n[region r]\nmembers = SI\n",
	    ":4: [region r]: duplicate section (first at line 1)" },
	{ "[region r]\nmembers = AT\nmembers = SI\n",
	    ":3: members: duplicate key" },
	{ "[region r]\nrights = publish\n",
	    ":2: rights: unknown key in [region r]" },
	{ "[defaults]\nright = publish\n",
	    ":2: right: unknown key in [defaults]" },
	{ "[defaults]\nmembers = AT\n",
	    ":2: members: unknown key in [defaults]" },
	{ "[country AT]\ncountry = AT\nrights = publish\n",
	    ":2: country: unknown key in [country AT]" },
	{ "[defaults]\nrights = publish delete\n",
	    ":2: rights: unknown right \"delete\"" },
	{ "[defaults]\nrights = Publish\n",
	    ":2: rights: unknown right \"Publish\"" },
	{ "[defaults]\nrights = publish,subscribe\n",
	    ":2: rights: unknown right \"publish,subscribe\"" },
	{ "[defaults]\nrights = audit audit\n",
	    ":2: rights: audit listed twice" },
	{ "[defaults]\nrights = publish relay relay\n",
	    ":2: rights: relay listed twice" },
	{ "[node si-gw]\nrights = subscribe relay\n",
	    ":2: rights: relay needs publish" },
	{ "[defaults]\nrights = publish\nrights = audit\n",
	    ":3: rights: duplicate key" },
	{ "[defaults]\nrights = publish\n[defaults]\nrights = audit\n",
	    ":3: [defaults]: duplicate section" },
	{ "[group x]\nrights = publish\n", ":1: [group x]: unknown section" },
	{ "[Defaults]\nrights = publish\n", ":1: [Defaults]: unknown section" },
	{ "rights = publish\n", ":1: rights: key outside any [section]" },
	{ "[defaults]\n[node a]\nrights = audit\n",
	    ":1: [defaults]: section has no keys" },
	{ "[defaults]\nrights = publish\n[node a]\n; nothing\n",
	    ":3: [node a]: section has no keys" },
	{ "[node a]\ncountry = SI\n", ":1: [node a]: missing key rights" },
	{ "[node a]\ncountry = SI\n[defaults]\nrights = publish\n",
	    ":1: [node a]: missing key rights" },
	{ "[node a]\ncountry = ZZ\nrights = publish\n",
	    ":2: country: \"ZZ\" is not a country code" },
	{ "[node a]\ncountry = si\nrights = publish\n",
	    ":2: country: \"si\" is not a country code" },
	{ "[node a]\ncountry = SI\ncountry = HR\nrights = publish\n",
	    ":3: country: duplicate key" },
	{ "[country ZZ]\nrights = publish\n",
	    ":1: [country ZZ]: \"ZZ\" is not a country code" },
	{ "[country at]\nrights = publish\n", ":1: [country at]: \"at\" is" },
	{ "[country AT]\nrights = publish\n[country AT]\nrights = audit\n",
	    ":3: [country AT]: duplicate section" },
	{ "[node a]\nrights = publish\n[node b]\nrights = publish\n"
	    "[node a]\nrights = audit\n",
	    ":5: [node a]: duplicate section (first at line 1)" },
	{ "[node a]\nrights = publish\n[node a]\ncountry = SI\n"
	    "rights = audit\n",
	    ":3: [node a]: duplicate section (first at line 1)" },
	{ "[node  a]\nrights = publish\n", ":1: [node  a]: node name must" },
	{ "[node a ]\nrights = publish\n", ":1: [node a ]: node name must" },
	{ "[node ]\nrights = publish\n", ":1: [node ]: node name must" },
	{ "[node "
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
	    "abcde]\nrights = publish\n", ":1: [node abcdefghij" },
	{ "[node a\x01]\nrights = publish\n", ":1: node name has a non-print" },
	{ "[defaults\nrights = publish\n", ":1: syntax error" },
	{ "[defaults]\nrights publish\n", ":2: syntax error" },
	{ "[defaults]\n= publish\n", ":2: missing key name" },
	{ "[defaults]\nrights = publish\n  subscribe\n",
	    ":3: rights: indented line would continue the previous key" },
	{ "[defaults]\nrights = publish\n\n  [node a]\nrights = audit\n",
	    ":4: rights: indented line would continue" },
	{ "[defaults]\nrights = publish\n[x"
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
	    "abcdefghij]\nrights = audit\n",
	    ":3: section name longer than 128 bytes" },
};

static void
t_bad(void **state)
{
	char dir[256], path[512], err[ERRLEN];
	struct policy *p;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad_policies) / sizeof(bad_policies[0]); i++)
		expect_error(bad_policies[i].text,
		    strlen(bad_policies[i].text), bad_policies[i].want);

	/* From a real file, the message names the path. */
	assert_int_equal(testutil_mkdtemp(dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/policy.ini", dir);
	for (i = 0; i < sizeof(bad_policies) / sizeof(bad_policies[0]); i++) {
		assert_int_equal(testutil_write_file(path, bad_policies[i].text,
		    strlen(bad_policies[i].text)), 0);
		p = policy_load(path, err, sizeof(err));
		assert_null(p);
		assert_non_null(strstr(err, path));
		assert_non_null(strstr(err, bad_policies[i].want + 1));
	}
	/* Missing file and a directory. */
	snprintf(path, sizeof(path), "%s/missing.ini", dir);
	assert_null(policy_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "missing.ini: No such file"));
	assert_null(policy_load(dir, err, sizeof(err)));
	assert_non_null(strstr(err, "not a regular file"));
	assert_int_equal(testutil_rmrf(dir), 0);
}

static void
t_bytes(void **state)
{
	char line[300];
	static const char nul[] = "[defaults]\nrights = pub\0lish\n";
	static const char crlf[] = "[defaults]\r\nrights = audit\r\n";
	struct policy *p;
	struct policy_rights r;
	struct identity id;
	size_t n;

	(void)state;
	/* A NUL would hide the rest of the line from inih. */
	expect_error(nul, sizeof(nul) - 1, ":2: NUL byte in line");

	/* inih would split a long line in two: refuse it instead. */
	n = (size_t)snprintf(line, sizeof(line), "[defaults]\nrights = %*s"
	    "\n", 190, "publish");
	expect_error(line, n, ":2: line longer than 197 bytes");
	/* 197 bytes of text, with or without \r, is the longest taken. */
	n = (size_t)snprintf(line, sizeof(line), "[defaults]\nrights = %*s"
	    "\r\n", 188, "publish");
	p = load_ok(line);
	policy_free(&p);
	n = (size_t)snprintf(line, sizeof(line), "[defaults]\nrights = %*s",
	    188, "publish");
	p = load_ok(line);
	policy_free(&p);
	(void)n;

	p = load_ok(crlf);
	id = peer("AT", "x");
	policy_rights(p, &id, &r);
	assert_true(r.audit && !r.publish);
	policy_free(&p);

	/* A UTF-8 BOM is allowed before the first header. */
	p = load_ok("\xef\xbb\xbf[defaults]\nrights = publish\n");
	policy_rights(p, &id, &r);
	assert_true(r.publish);
	policy_free(&p);

	/* Comments, blank lines and an empty policy. */
	p = load_ok("; c\n# c\n\n[defaults] ; d\nrights = audit ; e\n");
	policy_rights(p, &id, &r);
	assert_true(r.audit && !r.publish);
	policy_free(&p);
	p = load_ok("");
	policy_rights(p, &id, &r);
	assert_true(!r.audit && !r.publish && !r.subscribe);
	assert_true(policy_region_exists(p, "all"));
	assert_false(policy_region_exists(p, "western-balkans"));
	policy_free(&p);
}

static void
t_cut_short(void **state)
{
	struct policy *p;
	char err[ERRLEN];
	size_t n, ok = 0;

	(void)state;
	/* Every prefix either loads or is refused with a message. */
	for (n = 0; n <= sizeof(dev_policy) - 1; n++) {
		err[0] = '\0';
		p = policy_load_string("cut.ini", dev_policy, n, err,
		    sizeof(err));
		if (p != NULL) {
			ok++;
			policy_free(&p);
		} else
			assert_non_null(strstr(err, "cut.ini:"));
	}
	assert_true(ok > 0);
	/* Cut inside "members = AL BA": "B" is not a country code. */
	n = (size_t)(strstr(dev_policy, " BA ") - dev_policy) + 2;
	expect_error(dev_policy, n, ":2: members: \"B\" is not a country");
	/* Cut right after "[node mute]": a section with no keys. */
	n = (size_t)(strstr(dev_policy, "rights =\n") - dev_policy);
	expect_error(dev_policy, n, ":12: [node mute]: section has no keys");
}

static void
t_over_size(void **state)
{
	char dir[256], path[512], err[ERRLEN];
	int fd;

	(void)state;
	assert_int_equal(testutil_mkdtemp(dir, sizeof(dir)), 0);
	snprintf(path, sizeof(path), "%s/big.ini", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, INIFILE_MAX_FILE + 1), 0);
	assert_int_equal(close(fd), 0);
	assert_null(policy_load(path, err, sizeof(err)));
	assert_non_null(strstr(err, "larger than 1048576 bytes"));
	assert_int_equal(testutil_rmrf(dir), 0);
}

static void
t_bounds(void **state)
{
	struct policy *p;
	struct policy_rights r;
	struct identity id;
	char *buf, err[ERRLEN];
	size_t i, len, cap = 512 * 1024;
	int n;

	(void)state;
	buf = malloc(cap);
	assert_non_null(buf);

	/* POLICY_MAX_REGIONS regions load; one more is refused. */
	for (len = 0, i = 0; i <= POLICY_MAX_REGIONS; i++) {
		n = snprintf(buf + len, cap - len, "[region r%zu]\nmembers = "
		    "AT\n", i);
		assert_true(n > 0 && (size_t)n < cap - len);
		if (i == POLICY_MAX_REGIONS) {
			p = policy_load_string("m", buf, len, err,
			    sizeof(err));
			if (p == NULL)
				fail_msg("%s", err);
			assert_true(policy_region_has(p, "r0", "AT"));
			assert_true(policy_region_has(p, "r255", "AT"));
			assert_false(policy_region_has(p, "r255", "SI"));
			policy_free(&p);
		}
		len += (size_t)n;
	}
	expect_error(buf, len, ":513: [region r256]: more than 256 regions");

	/* POLICY_MAX_NODES nodes load; one more is refused. */
	for (len = 0, i = 0; i <= POLICY_MAX_NODES; i++) {
		n = snprintf(buf + len, cap - len, "[node n%zu]\nrights = "
		    "%s\n", i, i % 2 ? "audit" : "publish");
		assert_true(n > 0 && (size_t)n < cap - len);
		if (i == POLICY_MAX_NODES) {
			p = policy_load_string("m", buf, len, err,
			    sizeof(err));
			if (p == NULL)
				fail_msg("%s", err);
			id = peer("AT", "n4095");
			policy_rights(p, &id, &r);
			assert_true(r.audit && !r.publish);
			id = peer("AT", "n0");
			policy_rights(p, &id, &r);
			assert_true(!r.audit && r.publish);
			id = peer("AT", "n4096");
			policy_rights(p, &id, &r);
			assert_true(!r.audit && !r.publish);
			policy_free(&p);
		}
		len += (size_t)n;
	}
	expect_error(buf, len, ":8193: [node n4096]: more than 4096 nodes");

	/* A whole 676-letter square of members, all valid ones. */
	free(buf);
}

/*
 * inih truncates section names at 50 bytes; a 64-byte CN must still be
 * read whole, and its 49-byte prefix must not get its rights.
 */
static void
t_long_cn(void **state)
{
	static const char cn[] =
	    "abcdefghijabcdefghijabcdefghijabcdefghijabcdefghijabcdefghij"
	    "wxyz";
	char text[256];
	struct policy *p;
	struct policy_rights r;
	struct identity id;

	(void)state;
	assert_int_equal(strlen(cn), CPX_MAX_NODE_NAME);
	snprintf(text, sizeof(text), "[node %s]\nrights = audit\n", cn);
	p = load_ok(text);
	id = peer("AT", cn);
	policy_rights(p, &id, &r);
	assert_true(r.audit);
	snprintf(id.node, sizeof(id.node), "%.49s", cn);
	policy_rights(p, &id, &r);
	assert_false(r.audit);
	snprintf(id.node, sizeof(id.node), "%.44s", cn);
	policy_rights(p, &id, &r);
	assert_false(r.audit);
	policy_free(&p);
}

/* --- rights -------------------------------------------------------- */

static void
t_rights_precedence(void **state)
{
	static const char text[] =
	    "[defaults]\nrights = subscribe\n"
	    "[country AT]\nrights = publish\n"
	    "[node at-special]\nrights = audit subscribe\n"
	    "[node si-pinned]\ncountry = SI\nrights = publish subscribe\n"
	    "[node deny-me]\nrights =\n"
	    "[node Case]\nrights = publish\n";
	struct policy *p;
	struct policy_rights r;
	struct identity id;

	(void)state;
	p = load_ok(text);
	id = peer("HR", "hr-ncp");		/* defaults */
	policy_rights(p, &id, &r);
	assert_true(!r.publish && r.subscribe && !r.audit);
	id = peer("AT", "at-ncp");		/* country over defaults */
	policy_rights(p, &id, &r);
	assert_true(r.publish && !r.subscribe && !r.audit);
	id = peer("AT", "at-special");		/* node over country */
	policy_rights(p, &id, &r);
	assert_true(!r.publish && r.subscribe && r.audit);
	id = peer("HR", "at-special");		/* node, not pinned */
	policy_rights(p, &id, &r);
	assert_true(!r.publish && r.subscribe && r.audit);
	id = peer("SI", "si-pinned");
	policy_rights(p, &id, &r);
	assert_true(r.publish && r.subscribe && !r.audit);
	id = peer("HR", "si-pinned");		/* pin: nothing, not defaults */
	policy_rights(p, &id, &r);
	assert_true(!r.publish && !r.subscribe && !r.audit);
	id = peer("AT", "si-pinned");		/* not even AT's country */
	policy_rights(p, &id, &r);
	assert_true(!r.publish && !r.subscribe && !r.audit);
	id = peer("AT", "deny-me");		/* empty rights deny */
	policy_rights(p, &id, &r);
	assert_true(!r.publish && !r.subscribe && !r.audit);
	id = peer("HR", "case");		/* CNs are case-sensitive */
	policy_rights(p, &id, &r);
	assert_true(!r.publish && r.subscribe);
	id = peer("HR", "Case");
	policy_rights(p, &id, &r);
	assert_true(r.publish && !r.subscribe);
	/* A bad country in an identity never indexes out of the table. */
	id = peer("zz", "x");
	policy_rights(p, &id, &r);
	assert_true(!r.publish && !r.subscribe && !r.audit);
	policy_rights(p, NULL, &r);
	assert_true(!r.publish && !r.subscribe && !r.audit);
	policy_free(&p);

	/* Without [defaults] an unnamed node has nothing. */
	p = load_ok("[country AT]\nrights = publish subscribe audit\n");
	id = peer("HR", "hr-ncp");
	policy_rights(p, &id, &r);
	assert_true(!r.publish && !r.subscribe && !r.audit);
	id = peer("AT", "at-ncp");
	policy_rights(p, &id, &r);
	assert_true(r.publish && r.subscribe && r.audit);
	policy_free(&p);
}

/* --- publish ------------------------------------------------------- */

struct pub_case {
	const char	*node;
	const char	*country;
	int		 handling;
	const char	*rcpt[3];
	int		 reason;	/* 0 = accepted */
	const char	*why;		/* substring of why[] */
};

#define NET	CPX__HANDLING__HANDLING_NETWORK
#define RES	CPX__HANDLING__HANDLING_RESTRICTED
#define NAM	CPX__HANDLING__HANDLING_NAMED_ONLY

static const struct pub_case pub_cases[] = {
	{ "at-ncp", "AT", NET, { NULL }, 0, "" },
	{ "at-ncp", "AT", NET, { "RS", "western-balkans", "all" }, 0, "" },
	{ "at-ncp", "AT", RES, { "eu-neighbours" }, 0, "" },
	{ "at-ncp", "AT", RES, { "all" }, 0, "" },
	{ "at-ncp", "AT", NAM, { "RS", "SI" }, 0, "" },
	{ "fr-ncp", "FR", NET, { NULL }, 0, "" },
	{ "si-audit", "SI", NET, { NULL },
	    CPX__REASON__REASON_NOT_AUTHORIZED, "no publish right" },
	{ "si-audit", "HR", NET, { NULL },
	    CPX__REASON__REASON_NOT_AUTHORIZED, "no publish right" },
	{ "mute", "AT", NET, { NULL },
	    CPX__REASON__REASON_NOT_AUTHORIZED, "mute" },
	{ "at-ncp", "AT", RES, { NULL },
	    CPX__REASON__REASON_HANDLING_RECIPIENTS, "restricted" },
	{ "at-ncp", "AT", NAM, { NULL },
	    CPX__REASON__REASON_HANDLING_RECIPIENTS, "named-only" },
	{ "at-ncp", "AT", NET, { "RS", "balkans" },
	    CPX__REASON__REASON_UNKNOWN_RECIPIENT, "\"balkans\"" },
	{ "at-ncp", "AT", RES, { "ZZ" },
	    CPX__REASON__REASON_UNKNOWN_RECIPIENT, "\"ZZ\"" },
	{ "at-ncp", "AT", NAM, { "rs" },
	    CPX__REASON__REASON_UNKNOWN_RECIPIENT, "\"rs\"" },
	{ "at-ncp", "AT", NET, { "" },
	    CPX__REASON__REASON_UNKNOWN_RECIPIENT, "\"\"" },
	{ "at-ncp", "AT", NAM, { "RS", "western-balkans" },
	    CPX__REASON__REASON_HANDLING_RECIPIENTS, "western-balkans" },
	{ "at-ncp", "AT", NAM, { "all" },
	    CPX__REASON__REASON_HANDLING_RECIPIENTS, "all" },
	{ "at-ncp", "AT", CPX__HANDLING__HANDLING_UNSPECIFIED, { NULL },
	    CPX__REASON__REASON_INVALID_ALERT, "handling" },
	{ "at-ncp", "AT", 9, { "AT" },
	    CPX__REASON__REASON_INVALID_ALERT, "handling" },
};

static void
t_check_publish(void **state)
{
	const struct pub_case *c;
	struct policy *p;
	struct identity id;
	Cpx__Alert a;
	char *rcpt[CPX_MAX_RECIPIENTS + 1], why[256];
	size_t i, n;
	int reason, rc;

	(void)state;
	p = load_ok(dev_policy);
	for (i = 0; i < sizeof(pub_cases) / sizeof(pub_cases[0]); i++) {
		c = &pub_cases[i];
		for (n = 0; n < 3 && c->rcpt[n] != NULL; n++)
			rcpt[n] = (char *)c->rcpt[n];
		alert_set(&a, c->country, c->handling, rcpt, n);
		id = peer(c->country, c->node);
		reason = -1;
		strcpy(why, "junk");
		rc = policy_check_publish(p, &id, &a, &reason, why,
		    sizeof(why));
		if (c->reason == 0) {
			if (rc != 0)
				fail_msg("case %zu refused: %s", i, why);
			assert_int_equal(reason, CPX__REASON__REASON_NONE);
			assert_string_equal(why, "");
			continue;
		}
		assert_int_equal(rc, -1);
		if (reason != c->reason)
			fail_msg("case %zu: reason %d, want %d (%s)", i, reason,
			    c->reason, why);
		if (strstr(why, c->why) == NULL)
			fail_msg("case %zu: \"%s\" lacks \"%s\"", i, why,
			    c->why);
	}
	/* Over the recipient limit (alert_validate's job, checked again). */
	for (n = 0; n <= CPX_MAX_RECIPIENTS; n++)
		rcpt[n] = (char *)"AT";
	alert_set(&a, "AT", NET, rcpt, CPX_MAX_RECIPIENTS);
	id = peer("AT", "at-ncp");
	assert_int_equal(policy_check_publish(p, &id, &a, &reason, why,
	    sizeof(why)), 0);
	alert_set(&a, "AT", NET, rcpt, CPX_MAX_RECIPIENTS + 1);
	assert_int_equal(policy_check_publish(p, &id, &a, &reason, why,
	    sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_INVALID_ALERT);
	/* A recipient with control bytes is not echoed raw. */
	rcpt[0] = (char *)"a\nb";
	alert_set(&a, "AT", NET, rcpt, 1);
	assert_int_equal(policy_check_publish(p, &id, &a, &reason, why,
	    sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_UNKNOWN_RECIPIENT);
	assert_null(strchr(why, '\n'));
	policy_free(&p);
}

/* --- routing entitlement ------------------------------------------- */

/*
 * Receivers: RS (in western-balkans), AT (in eu-neighbours), DE (in no
 * region), FR (publish only: never receives), and si-audit from HR
 * (pinned to SI: never receives).
 */
static const char *const rx_country[] = { "RS", "AT", "DE", "FR", "HR" };
static const char *const rx_node[] =
    { "rs-ncp", "at-ncp", "de-ncp", "fr-ncp", "si-audit" };

struct route_case {
	int		 handling;
	const char	*rcpt[3];
	const char	*want;		/* one digit per receiver */
};

static const struct route_case route_cases[] = {
	/* empty */
	{ NET, { NULL }, "11100" },
	{ RES, { NULL }, "00000" },
	{ NAM, { NULL }, "00000" },
	/* one country */
	{ NET, { "RS" }, "10000" },
	{ RES, { "RS" }, "10000" },
	{ NAM, { "RS" }, "10000" },
	{ NET, { "FR" }, "00000" },
	/* a region */
	{ NET, { "western-balkans" }, "10000" },
	{ RES, { "western-balkans" }, "10000" },
	{ NAM, { "western-balkans" }, "00000" },
	{ RES, { "eu-neighbours" }, "01000" },
	{ RES, { "all" }, "11100" },
	{ NET, { "all" }, "11100" },
	{ NAM, { "all" }, "00000" },
	/* mixed */
	{ NET, { "AT", "western-balkans" }, "11000" },
	{ RES, { "AT", "western-balkans" }, "11000" },
	{ NAM, { "AT", "western-balkans" }, "01000" },
	{ RES, { "DE", "eu-neighbours" }, "01100" },
	{ NAM, { "DE", "eu-neighbours", "RS" }, "10100" },
	/* unknown region or junk reaches nobody */
	{ RES, { "balkans", "de" }, "00000" },
	/* unknown handling fails closed */
	{ CPX__HANDLING__HANDLING_UNSPECIFIED, { NULL }, "00000" },
	{ 7, { "RS", "AT", "DE" }, "00000" },
};

static void
t_may_receive(void **state)
{
	const struct route_case *c;
	struct policy *p;
	struct identity id;
	Cpx__Alert a;
	char *rcpt[3];
	size_t i, j, n;
	int got;

	(void)state;
	p = load_ok(dev_policy);
	for (i = 0; i < sizeof(route_cases) / sizeof(route_cases[0]); i++) {
		c = &route_cases[i];
		for (n = 0; n < 3 && c->rcpt[n] != NULL; n++)
			rcpt[n] = (char *)c->rcpt[n];
		alert_set(&a, "SI", c->handling, rcpt, n);
		for (j = 0; j < 5; j++) {
			id = peer(rx_country[j], rx_node[j]);
			got = policy_may_receive(p, &id, &a);
			if (got != c->want[j] - '0')
				fail_msg("case %zu (%s): %s got %d", i,
				    c->want, rx_country[j], got);
		}
	}
	/* The pinned node from its own country does receive. */
	rcpt[0] = (char *)"SI";
	alert_set(&a, "AT", RES, rcpt, 1);
	id = peer("SI", "si-audit");
	assert_int_equal(policy_may_receive(p, &id, &a), 1);
	/* The denied node never does. */
	id = peer("SI", "mute");
	assert_int_equal(policy_may_receive(p, &id, &a), 0);
	id = peer("zz", "x");
	assert_int_equal(policy_may_receive(p, &id, &a), 0);
	assert_int_equal(policy_may_receive(p, NULL, &a), 0);
	assert_int_equal(policy_may_receive(p, &id, NULL), 0);
	policy_free(&p);
}

/* --- subscribe ----------------------------------------------------- */

static void
t_check_subscribe(void **state)
{
	struct policy *p;
	struct identity id;
	Cpx__Filter f[CPX_MAX_FILTERS + 1], *fp[CPX_MAX_FILTERS + 1];
	char *origins[CPX_MAX_FILTER_ORIGINS + 1];
	char *regions[CPX_MAX_FILTER_REGIONS + 1];
	Cpx__Category cats[CPX_MAX_FILTER_CATS + 1];
	char why[256];
	size_t i;
	int reason;

	(void)state;
	p = load_ok(dev_policy);
	for (i = 0; i <= CPX_MAX_FILTERS; i++) {
		cpx__filter__init(&f[i]);
		fp[i] = &f[i];
	}
	for (i = 0; i <= CPX_MAX_FILTER_ORIGINS; i++)
		origins[i] = (char *)"RS";
	for (i = 0; i <= CPX_MAX_FILTER_REGIONS; i++)
		regions[i] = (char *)"western-balkans";
	for (i = 0; i <= CPX_MAX_FILTER_CATS; i++)
		cats[i] = CPX__CATEGORY__CATEGORY_VEHICLE;

	id = peer("AT", "at-ncp");
	assert_int_equal(policy_check_subscribe(p, &id, NULL, 0, 0, &reason,
	    why, sizeof(why)), 0);
	assert_int_equal(reason, CPX__REASON__REASON_NONE);
	assert_int_equal(policy_check_subscribe(p, &id, fp, CPX_MAX_FILTERS,
	    0, &reason, why, sizeof(why)), 0);
	/* all_kinds needs audit. */
	assert_int_equal(policy_check_subscribe(p, &id, fp, 1, 1, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_NOT_AUTHORIZED);
	assert_non_null(strstr(why, "audit"));
	id = peer("SI", "si-audit");
	assert_int_equal(policy_check_subscribe(p, &id, fp, 1, 1, &reason,
	    why, sizeof(why)), 0);
	id = peer("HR", "si-audit");
	assert_int_equal(policy_check_subscribe(p, &id, fp, 1, 1, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_NOT_AUTHORIZED);
	/* No subscribe right. */
	id = peer("FR", "fr-ncp");
	assert_int_equal(policy_check_subscribe(p, &id, fp, 1, 0, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_NOT_AUTHORIZED);
	assert_non_null(strstr(why, "subscribe"));

	id = peer("AT", "at-ncp");
	/* Too many filters. */
	assert_int_equal(policy_check_subscribe(p, &id, fp,
	    CPX_MAX_FILTERS + 1, 0, &reason, why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_REQUEST);

	/* Limits of each part: at the limit fine, one over refused. */
	f[1].origins = origins;
	f[1].n_origins = CPX_MAX_FILTER_ORIGINS;
	f[1].regions = regions;
	f[1].n_regions = CPX_MAX_FILTER_REGIONS;
	f[1].categories = cats;
	f[1].n_categories = CPX_MAX_FILTER_CATS;
	f[1].min_severity = CPX__SEVERITY__SEVERITY_CRITICAL;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), 0);
	f[1].n_origins++;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_REQUEST);
	assert_non_null(strstr(why, "filter 1"));
	f[1].n_origins--;
	f[1].n_regions++;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_REQUEST);
	f[1].n_regions--;
	f[1].n_categories++;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_REQUEST);
	f[1].n_categories--;

	/* Bad values. */
	origins[3] = (char *)"ZZ";
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_REQUEST);
	assert_non_null(strstr(why, "\"ZZ\""));
	origins[3] = (char *)"RS";
	regions[2] = (char *)"balkans";
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_REQUEST);
	assert_non_null(strstr(why, "\"balkans\""));
	regions[2] = (char *)"all";
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), 0);
	cats[0] = CPX__CATEGORY__CATEGORY_UNSPECIFIED;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_REQUEST);
	cats[0] = (Cpx__Category)8;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	cats[0] = CPX__CATEGORY__CATEGORY_OTHER;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), 0);
	f[1].min_severity = (Cpx__Severity)5;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_REQUEST);
	f[1].min_severity = (Cpx__Severity)-1;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	f[1].min_severity = CPX__SEVERITY__SEVERITY_UNSPECIFIED;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), 0);
	fp[1] = NULL;
	assert_int_equal(policy_check_subscribe(p, &id, fp, 2, 0, &reason,
	    why, sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_BAD_REQUEST);
	policy_free(&p);
}

/* --- filters ------------------------------------------------------- */

static void
t_filters_match(void **state)
{
	struct policy *p;
	Cpx__Filter f[2], *fp[2] = { &f[0], &f[1] };
	Cpx__Alert a;
	char *o_at[] = { (char *)"SI", (char *)"AT" };
	char *r_wb[] = { (char *)"eu-neighbours", (char *)"western-balkans" };
	char *r_all[] = { (char *)"all" };
	char *r_unknown[] = { (char *)"balkans" };
	Cpx__Category cats[] = { CPX__CATEGORY__CATEGORY_ROUTE,
	    CPX__CATEGORY__CATEGORY_VEHICLE };

	(void)state;
	p = load_ok(dev_policy);
	cpx__filter__init(&f[0]);
	cpx__filter__init(&f[1]);
	alert_set(&a, "AT", NET, NULL, 0);

	/* No filter matches nothing; an empty filter matches all. */
	assert_int_equal(policy_filters_match(p, fp, 0, &a), 0);
	assert_int_equal(policy_filters_match(p, NULL, 0, &a), 0);
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 1);

	/* Origins. */
	f[0].origins = o_at;
	f[0].n_origins = 2;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 1);
	a.origin = (char *)"HR";
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 0);
	f[0].n_origins = 0;

	/* Regions: origin must be a member of one. */
	f[0].regions = r_wb;
	f[0].n_regions = 1;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 1);
	a.origin = (char *)"RS";
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 0);
	f[0].n_regions = 2;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 1);
	a.origin = (char *)"DE";
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 0);
	f[0].regions = r_all;
	f[0].n_regions = 1;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 1);
	f[0].regions = r_unknown;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 0);
	f[0].n_regions = 0;

	/* Categories. */
	f[0].categories = cats;
	f[0].n_categories = 2;
	a.category = CPX__CATEGORY__CATEGORY_VEHICLE;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 1);
	a.category = CPX__CATEGORY__CATEGORY_CROSSING;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 0);
	f[0].n_categories = 0;

	/* Severity is a minimum. */
	f[0].min_severity = CPX__SEVERITY__SEVERITY_HIGH;
	a.severity = CPX__SEVERITY__SEVERITY_MEDIUM;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 0);
	a.severity = CPX__SEVERITY__SEVERITY_HIGH;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 1);
	a.severity = CPX__SEVERITY__SEVERITY_CRITICAL;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 1);

	/* Every non-empty part must match... */
	f[0].origins = o_at;
	f[0].n_origins = 2;
	f[0].categories = cats;
	f[0].n_categories = 2;
	a.origin = (char *)"AT";
	a.category = CPX__CATEGORY__CATEGORY_ROUTE;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 1);
	a.severity = CPX__SEVERITY__SEVERITY_LOW;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 0);
	a.severity = CPX__SEVERITY__SEVERITY_HIGH;
	a.category = CPX__CATEGORY__CATEGORY_MARITIME;
	assert_int_equal(policy_filters_match(p, fp, 1, &a), 0);

	/* ...and any one filter is enough. */
	f[1].regions = r_wb;
	f[1].n_regions = 1;
	assert_int_equal(policy_filters_match(p, fp, 2, &a), 1);
	a.origin = (char *)"RS";
	assert_int_equal(policy_filters_match(p, fp, 2, &a), 0);
	policy_free(&p);
}

/*
 * Relaying: only with the relay right, only within the country, and only
 * what a node that may publish signed.
 */
static void
t_check_relay(void **state)
{
	static const char text[] =
	    "[defaults]\n"
	    "rights = publish subscribe\n"
	    "[node si-gw]\n"
	    "country = SI\n"
	    "rights = publish relay\n"
	    "[node si-audit]\n"
	    "country = SI\n"
	    "rights = subscribe audit\n";
	struct identity gw = peer("SI", "si-gw"), ncp = peer("SI", "si-ncp");
	struct identity hr = peer("HR", "hr-ncp");
	struct identity aud = peer("SI", "si-audit");
	struct policy_rights r;
	struct policy *p;
	char why[256];
	int reason;

	(void)state;
	p = load_ok(text);
	policy_rights(p, &gw, &r);
	assert_true(r.publish && r.relay);
	policy_rights(p, &ncp, &r);
	assert_true(r.publish && !r.relay);	/* off unless granted */
	assert_int_equal(policy_check_relay(p, &gw, &ncp, &reason, why,
	    sizeof(why)), 0);
	/* No right: signer-mismatch, naming both. */
	assert_int_equal(policy_check_relay(p, &ncp, &gw, &reason, why,
	    sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_SIGNER_MISMATCH);
	assert_non_null(strstr(why, "SI/si-gw"));
	assert_non_null(strstr(why, "SI/si-ncp"));
	/* Never across a border. */
	assert_int_equal(policy_check_relay(p, &gw, &hr, &reason, why,
	    sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_ORIGIN_MISMATCH);
	/* Never for a signer that could not publish itself. */
	assert_int_equal(policy_check_relay(p, &gw, &aud, &reason, why,
	    sizeof(why)), -1);
	assert_int_equal(reason, CPX__REASON__REASON_NOT_AUTHORIZED);
	assert_non_null(strstr(why, "SI/si-audit"));
	policy_free(&p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(t_example),
		cmocka_unit_test(t_bad),
		cmocka_unit_test(t_bytes),
		cmocka_unit_test(t_cut_short),
		cmocka_unit_test(t_over_size),
		cmocka_unit_test(t_bounds),
		cmocka_unit_test(t_long_cn),
		cmocka_unit_test(t_rights_precedence),
		cmocka_unit_test(t_check_publish),
		cmocka_unit_test(t_check_relay),
		cmocka_unit_test(t_may_receive),
		cmocka_unit_test(t_check_subscribe),
		cmocka_unit_test(t_filters_match),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
