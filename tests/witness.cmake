# Witnesses (docs/witness.md): three countries cosign a real broker's
# checkpoints; a cut tail with the high-water mark hidden, a rewritten and
# re-signed log, a fork shown to two witnesses, and the checkpoint they
# accepted replaced by another over the same seq are each detected (and
# proven offline by `cpx witness compare`); a node without the right and
# malformed witness messages are refused.
cpx_add_test(NAME test_witness
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_witness.c
	LIBS cpx cpxbroker TIMEOUT 120)
add_dependencies(test_witness cpx-broker cpx-cli cpx-audit)
