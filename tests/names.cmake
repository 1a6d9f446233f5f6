# The one JSON writer (lib/json_out.c) as the tools use it: cpx-audit
# dump, cpx replay --all-kinds --json and cpx subscribe --json print the
# same records and alerts of one real broker's log as the same JSON.
cpx_add_test(NAME test_json_same
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_json_same.c
	LIBS cpx cpxcore TIMEOUT 120)
foreach(_dep cpx-cli cpx-broker cpx-audit)
	if(TARGET ${_dep})
		add_dependencies(test_json_same ${_dep})
	endif()
endforeach()
