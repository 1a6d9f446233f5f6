/*
 * test_audit_tools.c: cpx-audit's tools where no database is needed
 * (those with one: test_pg_tools.c), on real files, the real test PKI
 * and the built cpx-audit:
 * - a log several brokers signed checkpoints into: refused as a single
 *   broker's log (a change of signer), accepted with --multi-broker with
 *   the checkpoints counted per broker, held to pins by certificate and
 *   by name, and a node's checkpoint still refused;
 * - the walk over a store (audit_verify_store, what --dsn uses) judges a
 *   log exactly as the walk over its directory;
 * - the new commands' usage errors, init-db --print, and a DSN with a
 *   password that never shows in a message.
 */
#include <sys/stat.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "audit.h"
#include "audit_tools_util.h"
#include "sign.h"
#include "testutil.h"
#include "tlsctx.h"

static char	scratch[512];
static char	out[64 * 1024];

static int
setup(void **state)
{
	(void)state;
	return testutil_mkdtemp(scratch, sizeof(scratch));
}

static int
teardown(void **state)
{
	(void)state;
	return testutil_rmrf(scratch);
}

static int	nchanges;

static void
on_change(void *arg, uint64_t seq, const char *from, const char *to,
    const char *desc)
{
	(void)arg;
	(void)seq;
	(void)from;
	(void)to;
	(void)desc;
	nchanges++;
}

static int
verify(const char *dir, struct trust *t, int multi, X509 **pins,
    size_t npins, const char *const *names, size_t nnames,
    struct audit_verify_stats *st, char *err, size_t errlen)
{
	struct audit_verify_opts	o;

	memset(&o, 0, sizeof(o));
	o.multi_broker = multi;
	o.broker_certs = pins;
	o.nbroker_certs = npins;
	o.broker_names = names;
	o.nbroker_names = nnames;
	o.on_signer_change = on_change;
	nchanges = 0;
	return audit_verify_dir_opts(dir, t, &o, st, err, errlen);
}

/* Brokers A, B, A take turns: three checkpoints, two signers. */
static void
shared_log(char *dir, size_t len)
{
	snprintf(dir, len, "%s/shared", scratch);
	tools_log_signed_by(dir, NULL, "broker", 4, "a");
	tools_log_signed_by(dir, NULL, "brokers/evil-broker", 4, "b");
	tools_log_signed_by(dir, NULL, "broker", 4, "c");
}

static void
test_multi_broker_dir(void **state)
{
	static const char *const both[] = { "localhost", "evil.example" };
	struct audit_verify_stats	 st;
	struct trust			*t;
	X509				*pins[2];
	char				 dir[600], nodelog[600], err[768];

	(void)state;
	t = trust_new(tools_pki(0, "ca.pem"), tools_pki(1, "crl.pem"), err,
	    sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	pins[0] = tlsctx_load_cert(tools_pki(0, "broker.pem"), err,
	    sizeof(err));
	pins[1] = tlsctx_load_cert(tools_pki(0, "brokers/evil-broker.pem"),
	    err, sizeof(err));
	assert_non_null(pins[0]);
	assert_non_null(pins[1]);
	shared_log(dir, sizeof(dir));

	/* A single broker's log: the second signer is a change, refused. */
	assert_int_equal(verify(dir, t, 0, NULL, 0, NULL, 0, &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "signer changed and no pin"));
	assert_non_null(strstr(err, "--multi-broker"));
	assert_int_equal(nchanges, 1);

	/* Shared: every CA broker may sign; counted per broker. */
	if (verify(dir, t, 1, NULL, 0, NULL, 0, &st, err, sizeof(err)) != 0)
		fail_msg("multi-broker: %s", err);
	assert_int_equal(st.records, 15);
	assert_int_equal(st.alerts, 3);
	assert_int_equal(st.checkpoints, 3);
	assert_int_equal(st.nsigners, 2);
	assert_string_equal(st.signers[0].name, "cpx-broker");
	assert_int_equal(st.signers[0].checkpoints, 2);
	assert_int_equal(st.signers[0].first_seq, 5);
	assert_string_equal(st.signers[1].name, "not-the-broker");
	assert_int_equal(st.signers[1].checkpoints, 1);
	assert_int_equal(st.signers[1].first_seq, 10);
	/* Told once per new signer, not at every turn. */
	assert_int_equal(nchanges, 1);

	/* Pins hold every signer. */
	assert_int_equal(verify(dir, t, 1, pins, 1, NULL, 0, &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "record 10"));
	assert_non_null(strstr(err, "not the pinned broker"));
	if (verify(dir, t, 1, pins, 2, NULL, 0, &st, err, sizeof(err)) != 0)
		fail_msg("both pinned: %s", err);
	assert_int_equal(verify(dir, t, 1, NULL, 0, both, 1, &st, err,
	    sizeof(err)), -1);
	if (verify(dir, t, 1, NULL, 0, both, 2, &st, err, sizeof(err)) != 0)
		fail_msg("both names: %s", err);
	/* Without the CA a name vouches for nothing. */
	assert_int_equal(verify(dir, NULL, 1, NULL, 0, both, 2, &st, err,
	    sizeof(err)), -1);

	/* Shared or not, a node's key is no broker's. */
	snprintf(nodelog, sizeof(nodelog), "%s/nodelog", scratch);
	tools_log_signed_by(nodelog, NULL, "broker", 2, "d");
	tools_log_signed_by(nodelog, NULL, "nodes/si-ncp", 2, "e");
	assert_int_equal(verify(nodelog, t, 1, NULL, 0, NULL, 0, &st, err,
	    sizeof(err)), -1);
	assert_non_null(strstr(err, "not a broker certificate"));

	X509_free(pins[0]);
	X509_free(pins[1]);
	trust_free(&t);
}

/* The store walk (--dsn's) and the directory walk agree on one log. */
static void
test_store_walk_same(void **state)
{
	struct audit_verify_opts	 o;
	struct audit_verify_stats	 sd, ss;
	struct audit			*a;
	struct trust			*t;
	char				 dir[600], err[768];
	size_t				 i;

	(void)state;
	t = trust_new(tools_pki(0, "ca.pem"), tools_pki(1, "crl.pem"), err,
	    sizeof(err));
	if (t == NULL)
		fail_msg("%s", err);
	snprintf(dir, sizeof(dir), "%s/walk", scratch);
	tools_log_signed_by(dir, NULL, "broker", 7, "w");
	tools_log_signed_by(dir, NULL, "brokers/evil-broker", 5, "x");
	memset(&o, 0, sizeof(o));
	o.multi_broker = 1;
	if (audit_verify_dir_opts(dir, t, &o, &sd, err, sizeof(err)) != 0)
		fail_msg("dir: %s", err);
	a = audit_open(dir, NULL, NULL, err, sizeof(err));
	if (a == NULL)
		fail_msg("open: %s", err);
	if (audit_verify_store(a, t, &o, &ss, err, sizeof(err)) != 0)
		fail_msg("store: %s", err);
	assert_int_equal(ss.records, sd.records);
	assert_int_equal(ss.last_seq, sd.last_seq);
	assert_memory_equal(ss.last_hash, sd.last_hash, AUDIT_HASH_LEN);
	assert_int_equal(ss.mark_seq, sd.mark_seq);
	assert_memory_equal(ss.mark_hash, sd.mark_hash, AUDIT_HASH_LEN);
	assert_int_equal(ss.alerts, sd.alerts);
	assert_int_equal(ss.checkpoints, sd.checkpoints);
	assert_int_equal(ss.nsigners, sd.nsigners);
	for (i = 0; i < ss.nsigners; i++) {
		assert_string_equal(ss.signers[i].name, sd.signers[i].name);
		assert_int_equal(ss.signers[i].checkpoints,
		    sd.signers[i].checkpoints);
	}
	assert_string_equal(ss.checkpoint_cert, sd.checkpoint_cert);
	/* The same per-record rule: a single broker's log fails alike. */
	o.multi_broker = 0;
	assert_int_equal(audit_verify_store(a, t, &o, &ss, err, sizeof(err)),
	    -1);
	assert_non_null(strstr(err, "record 14: checkpoint signer changed"));
	audit_close(&a);
	trust_free(&t);
}

static void
test_cli_multi_broker(void **state)
{
	char		 dir[600];
	const char	*ca;

	(void)state;
	snprintf(dir, sizeof(dir), "%s/shared", scratch);
	if (access(dir, F_OK) != 0)
		shared_log(dir, sizeof(dir));
	ca = tools_pki(0, "ca.pem");
	{
		const char *argv[] = { "verify", "--ca", ca, dir, NULL };

		assert_int_equal(tools_run(out, sizeof(out), argv), 1);
		assert_non_null(strstr(out, "--multi-broker"));
	}
	{
		const char *argv[] = { "verify", "--ca", ca, "--multi-broker",
		    dir, NULL };

		if (tools_run(out, sizeof(out), argv) != 0)
			fail_msg("%s", out);
		assert_non_null(strstr(out, "checkpoints: 3 (2 by cpx-broker, "
		    "1 by not-the-broker)\n"));
		assert_non_null(strstr(out, "checkpoint signer first seen at "
		    "record 10"));
		assert_non_null(strstr(out, "checkpoint signers: 2 broker(s) "
		    "(any broker certificate of the CA"));
		assert_non_null(strstr(out, "\nOK\n"));
	}
	{
		const char *argv[] = { "verify", "--ca", ca, "--multi-broker",
		    "--broker-cert", tools_pki(1, "broker.pem"), dir, NULL };

		assert_int_equal(tools_run(out, sizeof(out), argv), 1);
		assert_non_null(strstr(out, "not the pinned broker"));
	}
	{
		const char *argv[] = { "verify", "--ca", ca, "--multi-broker",
		    "--broker-name", "localhost", "--broker-name",
		    "evil.example", dir, NULL };

		if (tools_run(out, sizeof(out), argv) != 0)
			fail_msg("%s", out);
		assert_non_null(strstr(out, "(pinned)"));
	}
}

static void
test_cli_usage(void **state)
{
	/* Each: an argument vector and the exit status it must give. */
	static const struct {
		const char	*argv[8];
		int		 rc;
		const char	*says;
	} cases[] = {
		{ { "dump", "--dsn", "dbname=x", "/tmp", NULL }, 2,
		    "not both" },
		{ { "verify", "--chain-only", "--dsn", "dbname=x", "/tmp",
		    NULL }, 2, "not both" },
		{ { "export", "/tmp/x", NULL }, 2, "needs --dsn" },
		{ { "export", "--dsn", "dbname=x", NULL }, 2, "needs --dsn" },
		{ { "import", "--dsn", "dbname=x", "/tmp/x", NULL }, 2,
		    "--ca" },
		{ { "import", "--ca", "ca.pem", "/tmp/x", NULL }, 2,
		    "needs --dsn" },
		{ { "init-db", NULL }, 2, "--print" },
		{ { "init-db", "--print", "--grant", "x\"; DROP TABLE", NULL },
		    2, "not a plain role name" },
		{ { "verify", "--chain-only", "--broker-name", "b", "/tmp",
		    NULL }, 2, "--broker-name needs --ca" },
	};
	size_t	i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		if (tools_run(out, sizeof(out), cases[i].argv) !=
		    cases[i].rc || strstr(out, cases[i].says) == NULL)
			fail_msg("case %zu (%s %s): wanted %d and \"%s\":\n%s",
			    i, cases[i].argv[0], cases[i].argv[1],
			    cases[i].rc, cases[i].says, out);
	}
	{
		const char *argv[] = { "init-db", "--print", "--grant",
		    "cpx_broker", NULL };

		assert_int_equal(tools_run(out, sizeof(out), argv), 0);
		assert_non_null(strstr(out, "CREATE TABLE cpx_records"));
		assert_non_null(strstr(out, "GRANT SELECT, INSERT ON "
		    "cpx_records TO \"cpx_broker\";"));
		assert_non_null(strstr(out, "GRANT SELECT, UPDATE ON cpx_head "
		    "TO \"cpx_broker\";"));
		assert_null(strstr(out, "DELETE"));
	}
}

/*
 * A database that is not there: exit 1, a message naming host, port,
 * database and user, and never the password of the DSN.
 */
static void
test_dsn_password_hidden(void **state)
{
	static const char dsn[] = "host=127.0.0.1 port=1 dbname=cpx "
	    "user=cpx_audit password=Secret-Pw-4711 connect_timeout=5";
	static const char *const cmds[][8] = {
		{ "verify", "--chain-only", "--dsn", dsn, NULL },
		{ "dump", "--dsn", dsn, NULL },
		{ "export", "--dsn", dsn, "--out", "@EXP", NULL },
		{ "init-db", "--dsn", dsn, NULL },
		{ "import", "--chain-only", "--dsn", dsn, "@DIR", NULL },
	};
	const char	*argv[8];
	char		 dir[600], exp[600];
	size_t		 i, k;

	(void)state;
	snprintf(exp, sizeof(exp), "%s/never", scratch);
	snprintf(dir, sizeof(dir), "%s/small", scratch);
	tools_log_signed_by(dir, NULL, "broker", 2, "p");
	for (i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		for (k = 0; k < 7 && cmds[i][k] != NULL; k++)
			argv[k] = strcmp(cmds[i][k], "@EXP") == 0 ? exp :
			    strcmp(cmds[i][k], "@DIR") == 0 ? dir : cmds[i][k];
		argv[k] = NULL;
		if (tools_run(out, sizeof(out), argv) != 1)
			fail_msg("%s: wanted exit 1:\n%s", argv[0], out);
		if (strstr(out, "Secret-Pw") != NULL)
			fail_msg("%s printed the password:\n%s", argv[0], out);
		if (strstr(out, "host=127.0.0.1 port=1 dbname=cpx "
		    "user=cpx_audit") == NULL)
			fail_msg("%s: no description of the DSN:\n%s",
			    argv[0], out);
	}
	/* Export made nothing where it could not read. */
	assert_int_not_equal(access(exp, F_OK), 0);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_multi_broker_dir),
		cmocka_unit_test(test_store_walk_same),
		cmocka_unit_test(test_cli_multi_broker),
		cmocka_unit_test(test_cli_usage),
		cmocka_unit_test(test_dsn_password_hidden),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
