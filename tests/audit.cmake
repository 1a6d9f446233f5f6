# Tests of the audit log (broker/audit.c): durability, recovery, cursors,
# checkpoints and the offline verifier, on real files with real fsync.
cpx_add_test(NAME test_audit
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_audit.c
	LIBS cpxbroker
	TIMEOUT 120)
# test_cli runs the built cpx-audit.
if(TARGET cpx-audit)
	add_dependencies(test_audit cpx-audit)
endif()
