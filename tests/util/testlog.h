/*
 * testlog.h: fill an audit log directly, as a third writer holding the
 * test PKI's broker key, for tests that need a log longer than a test
 * could publish in its time (witness pages, a shared log's bulk).
 */
#ifndef CPX_TESTLOG_H
#define CPX_TESTLOG_H

/*
 * Append n session-closed records to the log in directory dir, or to the
 * PostgreSQL log at dsn when dsn is not NULL, with the shared test PKI's
 * broker key and certificate, commit and close (a file log's close signs
 * a checkpoint over them). Fails the test on any error.
 */
void	testlog_fill(const char *dir, const char *dsn, unsigned int n);

#endif
