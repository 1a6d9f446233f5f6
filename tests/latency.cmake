# The publish path's shortcut for a lone publish (verified on the network
# thread when the verifiers are idle) never reorders a node's publishes
# and refuses as the verifier threads do, against a real cpx-broker.
cpx_add_test(NAME test_latency
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_latency.c
	LIBS cpx cpxbroker TIMEOUT 120)
add_dependencies(test_latency cpx-broker)
