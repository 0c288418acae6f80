/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cloister/timestamp.h"

/* n decimal digits at s, already checked to be digits. */
static int digits(const char *s, size_t n)
{
        int v = 0;

        for (size_t i = 0; i < n; i++)
                v = v * 10 + (s[i] - '0');
        return v;
}

int timestamp_parse_utc(const char *s, time_t *ret)
{
        static const char pattern[] = "dddd-dd-ddTdd:dd:ddZ";
        struct tm tm = {}, back;
        time_t t;

        if (strlen(s) != sizeof(pattern) - 1)
                return -EBADMSG;
        for (size_t i = 0; pattern[i]; i++)
                if (pattern[i] == 'd' ? (s[i] < '0' || s[i] > '9') : s[i] != pattern[i])
                        return -EBADMSG;
        tm.tm_year = digits(s, 4) - 1900;
        tm.tm_mon = digits(s + 5, 2) - 1;
        tm.tm_mday = digits(s + 8, 2);
        tm.tm_hour = digits(s + 11, 2);
        tm.tm_min = digits(s + 14, 2);
        tm.tm_sec = digits(s + 17, 2);
        if (tm.tm_year < 70)
                return -EBADMSG;
        /* timegm() normalises out-of-range fields: a date that survives the round trip exists
         * (RFC 3339's leap second 60 does not survive it, and is refused). */
        back = tm;
        t = timegm(&back);
        if (t == (time_t) -1 || !gmtime_r(&t, &back))
                return -EBADMSG;
        if (back.tm_year != tm.tm_year || back.tm_mon != tm.tm_mon || back.tm_mday != tm.tm_mday ||
            back.tm_hour != tm.tm_hour || back.tm_min != tm.tm_min || back.tm_sec != tm.tm_sec)
                return -EBADMSG;
        *ret = t;
        return 0;
}

int timestamp_format_utc(time_t t, char buf[static TIMESTAMP_UTC_SIZE])
{
        struct tm tm;

        if (t < 0 || t > TIMESTAMP_UTC_MAX || !gmtime_r(&t, &tm))
                return -ERANGE;
        if (strftime(buf, TIMESTAMP_UTC_SIZE, "%Y-%m-%dT%H:%M:%SZ", &tm) != TIMESTAMP_UTC_SIZE - 1)
                return -ERANGE;
        return 0;
}

int timestamp_parse_epoch(const char *s, time_t *ret)
{
        uint64_t v = 0;

        if (!*s)
                return -EBADMSG;
        for (const char *p = s; *p; p++) {
                if (*p < '0' || *p > '9')
                        return -EBADMSG;
                v = v * 10 + (uint64_t) (*p - '0');
                if (v > (uint64_t) TIMESTAMP_UTC_MAX)
                        return -EBADMSG;
        }
        *ret = (time_t) v;
        return 0;
}
