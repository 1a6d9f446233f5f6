# The PostgreSQL store and several brokers on one database (docs/
# postgresql.md), against real PostgreSQL 15 servers the tests start
# themselves through scripts/pg-cluster.sh (tests/util/pgserver.c): a
# primary, and for the failover test a synchronous streaming standby.
cpx_add_test(NAME test_pg_store
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pg_store.c
	LIBS cpxbroker
	TIMEOUT 120)
cpx_add_test(NAME test_pg_network
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pg_network.c
	LIBS cpx
	TIMEOUT 240)
add_dependencies(test_pg_network cpx-broker cpx-audit)
if(TARGET cpx-cli)
	add_dependencies(test_pg_network cpx-cli)
endif()
