# docs/protocol.md against the code. test_protocol: the document's test
# vectors decode, verify and re-encode byte for byte, a flipped byte is
# refused, and its canonical-form rules, limits and reasons tables match
# lib/ and the schema ("test_protocol --generate" prints fresh vector
# blocks). test_protocol_broker: a node speaking raw TLS as the document
# says, against a real cpx-broker.
cpx_add_test(NAME test_protocol
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_protocol.c
	LIBS cpxcore TIMEOUT 60)
cpx_add_test(NAME test_protocol_broker
	SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/test_protocol_broker.c
	LIBS cpx cpxcore TIMEOUT 120)
add_dependencies(test_protocol_broker cpx-broker)
