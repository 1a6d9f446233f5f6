# Tests of the client's JSON handling of alerts (client/alert_json.c).
cpx_add_test(NAME test_alert_json
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_alert_json.c
	LIBS cpx TIMEOUT 60)
