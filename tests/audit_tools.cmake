# cpx-audit's tools without a database (test_audit_tools.c): verify of a
# log several brokers signed (--multi-broker, per-broker counts, pins),
# the store walk --dsn uses against the directory walk, the new commands'
# usage errors, and a DSN's password never printed. With a database:
# tests/pg_tools.cmake.
cpx_add_test(NAME test_audit_tools
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_audit_tools.c
		${CMAKE_CURRENT_SOURCE_DIR}/audit_tools_util.c
	LIBS cpxbroker TIMEOUT 120)
target_include_directories(test_audit_tools PRIVATE
	${CMAKE_CURRENT_SOURCE_DIR})
add_dependencies(test_audit_tools cpx-audit)
