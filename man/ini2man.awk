# ini2man.awk: the body of a section 5 man page from a commented example
# INI file (broker/broker.example.ini, broker/policy.example.ini), so the
# page says what the example says and cannot drift from it.
#
#   awk -v mode=keys|example -f ini2man.awk FILE.ini
#
# The comment block before the first [section] becomes DESCRIPTION, as
# written. mode=keys: each "; --- title ---" line a subsection, each key
# (or commented-out ";key = value") an item whose text is the comment
# above it. mode=example: the rest of the file, verbatim, as EXAMPLE.

function esc(s) {
	gsub(/\\/, "\\e", s)
	if (s ~ /^[.']/)
		s = "\\&" s
	return s
}
function uncomment(s) {
	sub(/^[;#] ?/, "", s)
	return s
}
function flush(	i) {
	if (nkeys > 0) {
		for (i = 0; i < nkeys; i++) {
			print (i == 0 ? ".TP" : ".TQ")
			print keys[i]
		}
		for (i = 0; i < npara; i++)
			print esc(para[i])
	} else if (npara > 0) {
		print ".PP"
		for (i = 0; i < npara; i++)
			print esc(para[i])
	}
	nkeys = 0
	npara = 0
}
function key(k, v, commented) {
	keys[nkeys++] = "\\fB" esc(k) "\\fR = " esc(v) \
	    (commented ? " (commented out: an example, not the default)" : "")
}
BEGIN {
	inhead = 1
	print ".SH DESCRIPTION"
	print ".nf"
}
inhead && /^\[/ {
	inhead = 0
	print ".fi"
	if (mode == "example") {
		print ".SH EXAMPLE"
		print ".nf"
	}
}
inhead {
	if ($0 ~ /^[;#]/)
		print esc(uncomment($0))
	else if ($0 ~ /^[ \t]*$/)
		print ""
	next
}
mode == "example" {
	print esc($0)
	next
}
/^[;#] *---.*---/ {
	flush()
	t = uncomment($0)
	gsub(/-+/, " ", t)
	gsub(/^ +| +$/, "", t)
	print ".SS \"" t "\""
	next
}
/^[;#][a-z_]+ = / {
	s = uncomment($0)
	i = index(s, " = ")
	key(substr(s, 1, i - 1), substr(s, i + 3), 1)
	next
}
/^[;#]/ {
	if (nkeys > 0)
		flush()
	para[npara++] = uncomment($0)
	next
}
/^\[/ {
	flush()
	print ".SS \"" esc($0) "\""
	next
}
/^[a-z_]+ *= */ {
	i = index($0, "=")
	k = substr($0, 1, i - 1)
	v = substr($0, i + 1)
	gsub(/ +$/, "", k)
	gsub(/^ +/, "", v)
	key(k, v, 0)
	next
}
/^[ \t]*$/ {
	flush()
	next
}
END {
	flush()
	if (inhead || mode == "example")
		print ".fi"
}
