# Tests of the broker's policy and configuration (broker/policy.c,
# broker/config.c).
cpx_add_test(NAME test_policy
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_policy.c
	LIBS cpxbroker TIMEOUT 60)
cpx_add_test(NAME test_config
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_config.c
	LIBS cpxbroker TIMEOUT 60)
