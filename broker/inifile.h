/*
 * inifile.h: reading the broker's INI files (broker.ini, policy.ini).
 *
 * libinih (Debian r55) has no line numbers in its handler, truncates
 * section names to 50 bytes and splits lines over 200 bytes into two:
 * inifile_parse feeds it through a reader that counts lines, keeps each
 * section header whole and refuses over-long lines, NUL bytes and
 * sections without keys. What the keys mean is the caller's business
 * (config.c, policy_load.c).
 *
 * Named inifile, not ini: libinih already owns the header <ini.h> and the
 * symbol ini_parse.
 */
#ifndef CPX_INIFILE_H
#define CPX_INIFILE_H

#include <stddef.h>

/* Largest configuration or policy file read, bytes. */
#define INIFILE_MAX_FILE	(1024u * 1024u)

/* One key = value as the caller's handler sees it. */
struct inifile_key {
	const char	*file;		/* name for messages */
	const char	*section;	/* text between [ and ], whole */
	const char	*key;
	const char	*value;		/* trimmed; "" if empty */
	unsigned int	 line;		/* line of the key */
	unsigned int	 section_line;	/* line of the section header */
	unsigned int	 section_seq;	/* 1, 2, ... per header; 0 = none */
};

/*
 * Parse buf[0..len) (need not be NUL-terminated) as INI and call fn for
 * each key = value, in order. fn returns 0, or -1 with err[] set (it
 * should name k->file, k->line and the key). Returns 0, or -1 with err[]
 * naming the file and line at fault.
 */
int	inifile_parse(const char *name, const char *buf, size_t len,
	    int (*fn)(void *arg, const struct inifile_key *k, char *err,
	    size_t errlen), void *arg, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

/*
 * Read a whole regular file of at most maxlen bytes. *buf is owned by the
 * caller (free) and NUL-terminated; *len excludes the NUL. Returns 0, or
 * -1 with *buf NULL, *len 0 and err[] naming the file.
 */
int	inifile_read(const char *path, size_t maxlen, char **buf,
	    size_t *len, char *err, size_t errlen)
	    __attribute__((warn_unused_result));

#endif
