# Clients that fail over (docs/failover.md): a list of broker endpoints in
# the library and in cpx publish/subscribe, against real cpx-broker
# processes that take over one audit log in turn (kill -9, then a standby
# on another port), checked afterwards with cpx-audit.
cpx_add_test(NAME test_failover
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_failover.c
	LIBS cpx TIMEOUT 180)
if(TARGET cpx-cli)
	add_dependencies(test_failover cpx-cli)
endif()
add_dependencies(test_failover cpx-broker cpx-audit)
