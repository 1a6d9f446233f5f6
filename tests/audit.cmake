# Tests of the audit log (broker/audit.c): durability, recovery, cursors,
# checkpoints and the offline verifier, on real files with real fsync.
cpx_add_test(NAME test_audit
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_audit.c
		${CMAKE_CURRENT_SOURCE_DIR}/audit_tools_util.c
	LIBS cpxbroker
	TIMEOUT 120)
target_include_directories(test_audit PRIVATE ${CMAKE_CURRENT_SOURCE_DIR})
# test_cli runs the built cpx-audit.
if(TARGET cpx-audit)
	add_dependencies(test_audit cpx-audit)
endif()

# Not a test: what a commit costs on the disk the log is on (run by hand,
# see its opening comment and BENCHMARKS.md).
add_executable(audit_append_bench
	${CMAKE_CURRENT_SOURCE_DIR}/audit_append_bench.c)
target_link_libraries(audit_append_bench PRIVATE cpxbroker cpx_warnings)
