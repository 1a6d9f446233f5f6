# Integration tests against a real cpx-broker process (see util/testbroker.c).
cpx_add_test(NAME test_session
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_session.c
	LIBS cpx TIMEOUT 180)
add_dependencies(test_session cpx-broker)
cpx_add_test(NAME test_route
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_route.c
	LIBS cpx Threads::Threads TIMEOUT 180)
add_dependencies(test_route cpx-broker)
# The same routing tests with signatures verified on the network thread.
add_test(NAME test_route_inline COMMAND test_route)
set_tests_properties(test_route_inline PROPERTIES TIMEOUT 180
	ENVIRONMENT "CPX_SOURCE_DIR=${CMAKE_SOURCE_DIR};CPX_BINARY_DIR=${CMAKE_BINARY_DIR};CPX_TEST_BROKER_CONFIG=verify_threads = 0")
# Signer against session and alert ids per origin, on a verifier thread
# and inline.
cpx_add_test(NAME test_relay
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_relay.c
	LIBS cpx TIMEOUT 120)
add_dependencies(test_relay cpx-broker)
add_test(NAME test_relay_inline COMMAND test_relay)
set_tests_properties(test_relay_inline PROPERTIES TIMEOUT 120
	ENVIRONMENT "CPX_SOURCE_DIR=${CMAKE_SOURCE_DIR};CPX_BINARY_DIR=${CMAKE_BINARY_DIR};CPX_TEST_BROKER_CONFIG=verify_threads = 0")
cpx_add_test(NAME test_forged
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_forged.c
	LIBS cpx Threads::Threads TIMEOUT 60)
cpx_add_test(NAME test_durability
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_durability.c
	LIBS cpx TIMEOUT 240)
add_dependencies(test_durability cpx-broker)

# Durability, routing and forgery again with deliveries verified on two
# client threads: same results, same order.
foreach(_t test_durability test_route test_forged)
	add_test(NAME ${_t}_pool COMMAND ${_t})
	set_tests_properties(${_t}_pool PROPERTIES TIMEOUT 240
		ENVIRONMENT "CPX_SOURCE_DIR=${CMAKE_SOURCE_DIR};CPX_BINARY_DIR=${CMAKE_BINARY_DIR};CPX_TEST_CLIENT_VERIFY_THREADS=2")
endforeach()

# Units of the broker with no network.
foreach(_t test_dedup test_ratelimit)
	cpx_add_test(NAME ${_t} SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/${_t}.c
		LIBS cpxbroker TIMEOUT 60)
endforeach()
