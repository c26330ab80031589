/*
 * realtimed - WebSocket pub/sub daemon fed by Redis.
 * Shared constants; every module has its own header beside this one.
 */
#ifndef RT_REALTIMED_H
#define RT_REALTIMED_H

#define RT_NAME			"realtimed"
#define RT_SERVICE		"realtime"	/* "service" in /health */

#ifndef SYSCONFDIR
#define SYSCONFDIR		"/etc"
#endif
#define RT_CONFIG_FILE		SYSCONFDIR "/realtimed/realtimed.conf"

/* Hard ceilings; the configurable limits live in config.h. */
#define RT_CHANNEL_MAX		200	/* bytes in a channel name */
#define RT_USERID_MAX		128	/* bytes in a userId claim */
#define RT_EMAIL_MAX		256
#define RT_ROLE_MAX		64
#define RT_CLAIMS_MAX		2304	/* namespace claims a connection keeps, packed */
#define RT_TOKEN_MAX		8192	/* bytes in a JWT; longer ones are refused */
#define RT_UUID_LEN		36	/* "xxxxxxxx-xxxx-4xxx-yxxx-xxxxxxxxxxxx" */
#define RT_TIMESTAMP_LEN	24	/* "2025-11-25T12:00:00.000Z" */

#endif
