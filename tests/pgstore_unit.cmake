# Details of the PostgreSQL store (broker/audit_pg*.c): stored bytes as
# protobuf-c packs them, a caller's time, checkpoints built at commit,
# cursors by time, the DSN's password never described, a server
# restarted while idle; on a PostgreSQL 15 server the test starts
# (tests/util/pgserver.c), skipped without one.
cpx_add_test(NAME test_pgstore_unit
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pgstore_unit.c
	LIBS cpxbroker
	TIMEOUT 120)
