# systemd: the unit file passes systemd-analyze verify and stays under an
# exposure level of 2.0 in systemd-analyze security (offline, no systemd
# as PID 1 needed; skipped only without systemd-analyze), and a real
# broker speaks sd_notify (READY, RELOADING, STOPPING, STATUS) to a
# socket the test owns.
add_test(NAME test_systemd_unit
	COMMAND sh ${CMAKE_CURRENT_SOURCE_DIR}/test_systemd.sh
	${CMAKE_SOURCE_DIR} $<TARGET_FILE:cpx-broker>)
set_tests_properties(test_systemd_unit PROPERTIES TIMEOUT 60
	SKIP_RETURN_CODE 77)
cpx_add_test(NAME test_systemd
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_systemd.c
	LIBS cpx PkgConfig::JANSSON TIMEOUT 90)
add_dependencies(test_systemd cpx-broker)
