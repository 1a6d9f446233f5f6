# framed.cmake: cmake -P script that puts the output of an awk script
# (AWK, SCRIPT over INPUT, with -v mode=MODE) into a page frame (FRAME,
# where @BODY@ or @API@ stands for it and @CPX_VERSION@ for the
# version), written to OUT.
execute_process(COMMAND ${AWK} -v mode=${MODE} -f ${SCRIPT} ${INPUT}
	OUTPUT_VARIABLE _body RESULT_VARIABLE _rc)
if(NOT _rc EQUAL 0)
	message(FATAL_ERROR "${SCRIPT} ${INPUT}: awk failed (${_rc})")
endif()
file(READ ${FRAME} _frame)
string(REPLACE "@BODY@\n" "${_body}" _frame "${_frame}")
string(REPLACE "@API@\n" "${_body}" _frame "${_frame}")
string(REPLACE "@CPX_VERSION@" "${CPX_VERSION}" _frame "${_frame}")
file(WRITE ${OUT}.tmp "${_frame}")
file(RENAME ${OUT}.tmp ${OUT})
