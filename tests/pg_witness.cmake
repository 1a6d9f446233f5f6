# Witnesses against two brokers on one PostgreSQL log (docs/witness.md,
# docs/postgresql.md): leaves over several answers, each many pages of
# the store read without blocking the broker's loop; a witness moving
# from A to B sees a consistent log; cosignatures served to others. A
# real PostgreSQL 15 server started by the test (tests/util/pgserver.c).
cpx_add_test(NAME test_pg_witness
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pg_witness.c
	LIBS cpx cpxbroker
	TIMEOUT 120)
add_dependencies(test_pg_witness cpx-broker cpx-audit)
