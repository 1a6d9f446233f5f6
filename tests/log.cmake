# lib/log.c and lib/logrl.c: every destination of a line (text, JSON,
# "<N>" prefixes, a host's sink) with its fields, and the rate limiter
# that keeps a sustained failure from flooding the log.
cpx_add_test(NAME test_log
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_log.c
	LIBS cpxcore PkgConfig::JANSSON TIMEOUT 30)
