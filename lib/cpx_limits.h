/*
 * cpx_limits.h: the hard limits of the protocol, shared by broker and
 * client. Every length read from the wire or disk is checked against one
 * of these before it is trusted; configurable limits may only be lower.
 */
#ifndef CPX_LIMITS_H
#define CPX_LIMITS_H

#define CPX_MAX_FRAME		(256u * 1024u)	/* one Envelope, bytes */
#define CPX_MAX_FRAME_PREAUTH	(16u * 1024u)	/* before the Welcome */
#define CPX_MAX_ALERT		(64u * 1024u)	/* serialized Alert */
#define CPX_MAX_SIGNATURE	128u		/* DER ECDSA P-256 is <= 72 */
#define CPX_MAX_CERT		(8u * 1024u)	/* DER signer certificate */
#define CPX_MAX_ID		64u
#define CPX_MAX_SUMMARY		2048u
#define CPX_MAX_TEXT		128u	/* place, crossing, waypoint, vehicle */
#define CPX_MAX_PLATE		32u
#define CPX_MAX_RECIPIENTS	64u
#define CPX_MAX_ROUTE		32u
#define CPX_MAX_VEHICLES	32u
#define CPX_MAX_FILTERS		16u
#define CPX_MAX_FILTER_ORIGINS	64u
#define CPX_MAX_FILTER_REGIONS	16u
#define CPX_MAX_FILTER_CATS	16u
#define CPX_MAX_REGION_NAME	32u
#define CPX_MAX_NODE_NAME	64u
#define CPX_MAX_AUTHOR		64u	/* Alert.author, an officer's name */
#define CPX_MAX_ERROR_TEXT	256u

#endif
