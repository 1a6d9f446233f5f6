# Hardening: protective limits, live revocation and reload, faults, key
# modes and privilege drop, each against a real cpx-broker process.
cpx_add_test(NAME test_limits
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_limits.c
	LIBS cpx cpxbroker TIMEOUT 120)
add_dependencies(test_limits cpx-broker)
cpx_add_test(NAME test_faults
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_faults.c
	LIBS cpx cpxbroker TIMEOUT 180)
add_dependencies(test_faults cpx-broker cpx-audit)
