# cpx-audit on a PostgreSQL store (test_pg_tools.c): init-db, verify and
# dump --dsn of a log two brokers wrote, export to segment files that
# verify offline with the same head, import into an empty database and
# export again byte for byte, a tampered row named. Starts its own
# PostgreSQL 15 server (tests/util/pgserver.c); skips without one.
cpx_add_test(NAME test_pg_tools
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pg_tools.c
		${CMAKE_CURRENT_SOURCE_DIR}/audit_tools_util.c
	LIBS cpxbroker TIMEOUT 180)
target_include_directories(test_pg_tools PRIVATE
	${CMAKE_CURRENT_SOURCE_DIR})
add_dependencies(test_pg_tools cpx-audit)
