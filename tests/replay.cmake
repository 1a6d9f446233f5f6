# Replay through a real broker on a long audit log: one node's replay does
# not hold up the others, entitlement is the one fixed at acceptance, and
# a reload that takes a right away stops a running replay. The long log
# is written through the audit API, hence cpxbroker.
cpx_add_test(NAME test_replay
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_replay.c
	LIBS cpx cpxbroker TIMEOUT 240)
add_dependencies(test_replay cpx-broker)
# The entitlement list kept in audit records agrees with the live rule.
cpx_add_test(NAME test_entitled
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_entitled.c
	LIBS cpxbroker TIMEOUT 60)
