# Tests of the client library (client/cpx_client.c): against a real
# broker, and against a fake broker that lies (util/fakebroker.c).
cpx_add_test(NAME test_client
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_client.c
	LIBS cpx Threads::Threads TIMEOUT 120)
if(TARGET cpx-broker)
	add_dependencies(test_client cpx-broker)
endif()
