# Tests of the development PKI script (certs/cpx-pki) and of the shared
# test helpers testpki/testutil (tests/util/).
cpx_add_test(NAME test_pki
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_pki.c
	LIBS cpxcore PkgConfig::OPENSSL
	TIMEOUT 120)
