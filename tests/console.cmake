# Tests of the node console cpx-console (console/): the accounts file,
# password hashing, sessions and lock-out in C; then the whole console in
# a real browser (headless Chromium from Debian driven by puppeteer-core
# from console/web/node_modules) against a real broker: sign-in, live
# feed, map, compose, history, status, sign-out, and what must be
# refused. The browser test exits 77 (skipped) when Chromium or the npm
# packages are missing: scripts/install-deps.sh installs both.
cpx_add_test(NAME test_console_auth
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_console_auth.c
	LIBS cpxconsole TIMEOUT 60)

# Alert.author (proto field 15): bounds in lib/alert.c, JSON in lib/json_out.c.
cpx_add_test(NAME test_console_author
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_console_author.c
	LIBS cpxcore TIMEOUT 30)

find_program(CPX_NODE node)
if(CPX_NODE AND TARGET cpx-console)
	add_test(NAME test_console_browser
		COMMAND ${CPX_NODE} ${CMAKE_CURRENT_SOURCE_DIR}/console/console.test.mjs)
	set_tests_properties(test_console_browser PROPERTIES TIMEOUT 120
		SKIP_RETURN_CODE 77
		ENVIRONMENT "CPX_SOURCE_DIR=${CMAKE_SOURCE_DIR};CPX_BINARY_DIR=${CMAKE_BINARY_DIR}")
endif()
