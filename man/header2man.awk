# header2man.awk: the API section of libcpx(3), from include/cpx.h itself
# (every declaration with the comment that documents it, as written), so
# the page cannot drift from the header. Prints roff for an .nf block.
function esc(s) {
	gsub(/\\/, "\\e", s)
	if (s ~ /^[.']/)
		s = "\\&" s
	return s
}
function expand(s,	out, i, c) {
	out = ""
	for (i = 1; i <= length(s); i++) {
		c = substr(s, i, 1)
		if (c == "\t") {
			do
				out = out " "
			while (length(out) % 8)
		} else
			out = out c
	}
	return out
}
/^#define CPX_CHECK/ { on = 1; next }
on && /^#ifdef __cplusplus/ { on = 0 }
on {
	s = $0
	gsub(/CPX_API /, "", s)
	gsub(/ CPX_CHECK/, "", s)
	print esc(expand(s))
}
