/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Time stamps in the one form Cloister writes into signed documents: RFC 3339 (section 5.6)
 * restricted to UTC whole seconds, "YYYY-MM-DDTHH:MM:SSZ" (no offset other than Z, no
 * fractional seconds, no lowercase t or z), years 1970..9999.
 */

#include <stddef.h>
#include <time.h>

/* "YYYY-MM-DDTHH:MM:SSZ" and its NUL. */
#define TIMESTAMP_UTC_SIZE 21
/* 9999-12-31T23:59:59Z: the last second the form can write. */
#define TIMESTAMP_UTC_MAX ((time_t) 253402300799LL)

/* Exactly the form above, of a date and time that exist (no February 30, no second 60).
 * -EBADMSG otherwise; *ret is written only on success. */
int timestamp_parse_utc(const char *s, time_t *ret);
/* t (0..TIMESTAMP_UTC_MAX) in the form above; -ERANGE outside that range. */
int timestamp_format_utc(time_t t, char buf[static TIMESTAMP_UTC_SIZE]);
/* A SOURCE_DATE_EPOCH value (reproducible-builds.org): decimal seconds since 1970, digits only,
 * at most TIMESTAMP_UTC_MAX. -EBADMSG otherwise. */
int timestamp_parse_epoch(const char *s, time_t *ret);
