# The operators' view of a real broker (curl on /metrics and /healthz):
# counters as alerts flow, the endpoint's bounds, expiry warnings and a
# 503 on a stale CRL, and a quiet log on a full disk (tmpfs; skipped
# without root).
cpx_add_test(NAME test_metrics
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_metrics.c
	LIBS cpx TIMEOUT 120)
add_dependencies(test_metrics cpx-broker)
