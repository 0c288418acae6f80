/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cloister/cp-authorization.h"
#include "cloister/hex.h"

bool cp_authorization_name_ok(const char *name)
{
        size_t n = name ? strlen(name) : 0;

        if (n == 0 || n > CP_AUTHORIZATION_NAME_MAX || name[0] == '-' || name[n - 1] == '-')
                return false;
        return strspn(name, "abcdefghijklmnopqrstuvwxyz0123456789-") == n;
}

/* The PRF output for (name, not_after), as 64 hex digits. */
static int tag_hex(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                   const char *name, int64_t not_after, char ret[static 65])
{
        char info[sizeof(KDF_INFO_CP_AUTHORIZATION_PREFIX) + CP_AUTHORIZATION_NAME_MAX + 24];
        _cleanup_(secret_freep) Secret *tag = NULL;
        int r;

        (void) snprintf(info, sizeof(info), "%s%s/%" PRId64, KDF_INFO_CP_AUTHORIZATION_PREFIX, name,
                        not_after);
        r = kdf_hkdf_sha256(master, salt, MASTER_SALT_SIZE, info, 32, &tag);
        if (r < 0)
                return r;
        hex_encode_buf(secret_data(tag), 32, ret, 65);
        return 0;
}

int cp_authorization_make(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                          const char *name, time_t not_after, char ret[static CP_AUTHORIZATION_MAX])
{
        char tag[65];
        int r;

        if (!cp_authorization_name_ok(name) || not_after <= 0)
                return -EINVAL;
        r = tag_hex(master, salt, name, (int64_t) not_after, tag);
        if (r < 0)
                return r;
        (void) snprintf(ret, CP_AUTHORIZATION_MAX, "%s%s.%" PRId64 ".%s", CP_AUTHORIZATION_PREFIX,
                        name, (int64_t) not_after, tag);
        explicit_wipe(tag, sizeof(tag));
        return 0;
}

int cp_authorization_check(const Secret *master, const uint8_t salt[static MASTER_SALT_SIZE],
                           const char *token, const char *name, time_t now, Diag *d)
{
        char tname[CP_AUTHORIZATION_NAME_MAX + 1], expected[65];
        const char *p, *dot1, *dot2;
        int64_t not_after = 0;
        size_t n;
        int r;

        /* Shape first: "cpa1." NAME "." DIGITS "." 64 lowercase hex, nothing else. */
        if (!token || strlen(token) >= CP_AUTHORIZATION_MAX ||
            strncmp(token, CP_AUTHORIZATION_PREFIX, strlen(CP_AUTHORIZATION_PREFIX)) != 0)
                return diag_fail(d, -EBADMSG, "control-plane-authorization", -1,
                                 "the control-plane authorization is malformed (it must start "
                                 "with '%s')",
                                 CP_AUTHORIZATION_PREFIX);
        p = token + strlen(CP_AUTHORIZATION_PREFIX);
        dot1 = strchr(p, '.');
        dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        if (!dot1 || !dot2 || (size_t) (dot1 - p) > CP_AUTHORIZATION_NAME_MAX || dot2 == dot1 + 1 ||
            (size_t) (dot2 - dot1 - 1) > 18 || dot1[1] == '0' ||
            strspn(dot1 + 1, "0123456789") != (size_t) (dot2 - dot1 - 1) ||
            strlen(dot2 + 1) != 64 || strspn(dot2 + 1, "0123456789abcdef") != 64)
                return diag_fail(d, -EBADMSG, "control-plane-authorization", -1,
                                 "the control-plane authorization is malformed (cpa1.NAME."
                                 "NOT_AFTER.TAG)");
        n = (size_t) (dot1 - p);
        memcpy(tname, p, n);
        tname[n] = '\0';
        for (const char *c = dot1 + 1; c < dot2; c++)
                not_after = not_after * 10 + (*c - '0'); /* at most 18 digits: no overflow */
        if (!cp_authorization_name_ok(tname))
                return diag_fail(d, -EBADMSG, "control-plane-authorization", -1,
                                 "the control-plane authorization names no valid node");
        if (strcmp(tname, name) != 0)
                return diag_fail(d, -EPERM, "control-plane-authorization", -1,
                                 "the control-plane authorization is for '%s', not '%s'", tname,
                                 name);
        r = tag_hex(master, salt, tname, not_after, expected);
        if (r < 0)
                return diag_fail(d, r, "control-plane-authorization", -1, "key derivation failed");
        if (!memeq_consttime(expected, dot2 + 1, 64)) {
                explicit_wipe(expected, sizeof(expected));
                return diag_fail(d, -EPERM, "control-plane-authorization", -1,
                                 "the control-plane authorization for '%s' was not made with this "
                                 "cluster's master secret",
                                 name);
        }
        explicit_wipe(expected, sizeof(expected));
        if ((int64_t) now > not_after)
                return diag_fail(d, -ETIME, "control-plane-authorization", -1,
                                 "the control-plane authorization for '%s' expired %" PRId64
                                 " s ago; create a new one",
                                 name, (int64_t) now - not_after);
        return 0;
}
