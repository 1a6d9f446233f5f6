# Tests of the shared library code (lib/): identity, wire codec, alert
# validation, signing. Each builds its certificates in memory or in its own
# mkdtemp directory, so they run in parallel and need no shared PKI.
cpx_add_test(NAME test_identity
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_identity.c
	LIBS cpxcore TIMEOUT 30)
cpx_add_test(NAME test_wire
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_wire.c
	LIBS cpxcore TIMEOUT 120)
cpx_add_test(NAME test_alert
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_alert.c
	LIBS cpxcore TIMEOUT 30)
cpx_add_test(NAME test_sign
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_sign.c
	LIBS cpxcore TIMEOUT 120)
cpx_add_test(NAME test_workpool
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_workpool.c
	LIBS cpxcore TIMEOUT 60)
