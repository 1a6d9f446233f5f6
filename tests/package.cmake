# Tests of the operators' package (issue 12): `cmake --install` of this
# build tree into a temporary prefix, then the installed tools, library,
# pkg-config file and man pages used from there alone
# (tests/test_install.sh, tests/package_hello.c).
find_program(CPX_SH_BASH bash)
find_program(CPX_SH_PKGCONFIG pkg-config)
if(CPX_SH_BASH AND CPX_SH_PKGCONFIG AND TARGET cpx-cli AND TARGET man)
	add_test(NAME test_install
		COMMAND ${CPX_SH_BASH} ${CMAKE_CURRENT_SOURCE_DIR}/test_install.sh)
	# A sanitizer build's libcpx.so needs the host program built alike.
	set(_cc_flags "")
	if(CPX_SANITIZE)
		set(_cc_flags "-fsanitize=address,undefined")
	endif()
	set_tests_properties(test_install PROPERTIES TIMEOUT 120
		ENVIRONMENT "CPX_SOURCE_DIR=${CMAKE_SOURCE_DIR};CPX_BINARY_DIR=${CMAKE_BINARY_DIR};CPX_VERSION=${PROJECT_VERSION};CPX_SOVERSION=${CPX_SOVERSION};CPX_TEST_CC=${CMAKE_C_COMPILER};CPX_TEST_CFLAGS=${_cc_flags};CPX_SYSTEMD_UNITDIR=${CPX_SYSTEMD_UNITDIR}")
endif()
