# Load the broker did not ask for, against a real cpx-broker process:
# pipelined publish storms, fatal errors said before the close,
# unauthenticated noise, per-address and per-node limits.
cpx_add_test(NAME test_admission
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_admission.c
	LIBS cpx cpxbroker TIMEOUT 600)
add_dependencies(test_admission cpx-broker)
