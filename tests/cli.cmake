# Tests of the command-line client cpx (client/cpx_main.c, client/cli_*.c):
# the real binary against a real broker, plus the CLI's shared helpers
# (library cpxcli).
cpx_add_test(NAME test_cli
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_cli.c
	LIBS cpxcli cpx TIMEOUT 120)
if(TARGET cpx-cli)
	add_dependencies(test_cli cpx-cli)
endif()
if(TARGET cpx-broker)
	add_dependencies(test_cli cpx-broker)
endif()
