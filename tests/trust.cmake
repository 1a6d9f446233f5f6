# Whom nodes and the broker trust (lib/tlsctx.c, lib/sign.c trust store,
# broker CRL reload, cpx-audit checkpoint signers), against a real
# cpx-broker process; see tests/test_trust.c.
cpx_add_test(NAME test_trust
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_trust.c
		${CMAKE_CURRENT_SOURCE_DIR}/audit_tools_util.c
	LIBS cpx cpxbroker TIMEOUT 180)
target_include_directories(test_trust PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
add_dependencies(test_trust cpx-broker cpx-audit)
