# install_pc.cmake: run by `cmake --install` (install(CODE) in
# client/CMakeLists.txt sets CPX_PC_IN, CPX_PC_DEST and the variables
# cpx.pc.in names). The prefix is the one of this install, so that
# `cmake --install --prefix /tmp/x` gives a cpx.pc that points into
# /tmp/x, not at the prefix the build was configured with.
set(CPX_PC_PREFIX "${CMAKE_INSTALL_PREFIX}")
get_filename_component(_dir "${CPX_PC_IN}" DIRECTORY)
set(_out "${CMAKE_CURRENT_BINARY_DIR}/cpx.pc")
configure_file("${CPX_PC_IN}" "${_out}" @ONLY)
file(INSTALL DESTINATION "${CMAKE_INSTALL_PREFIX}/${CPX_PC_DEST}"
	TYPE FILE FILES "${_out}")
