/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Quotes inside a TD, through configfs-tsm (Linux 6.7+, Documentation/ABI/testing/configfs-tsm):
 * a report directory we create, whose provider must be "tdx_guest", an inblob (REPORTDATA) we
 * write and an outblob (the quote, made by the host's quote generation service) we read. The
 * older /dev/tdx_guest device gives only a TDREPORT (TDX_CMD_GET_REPORT0), which is not a quote:
 * it is detected to say so, not used. Not testable here (no TDX); tests cover the refusal
 * outside a TD.
 */
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/fileio.h"
#include "tdx-internal.h"

static int write_all(const char *path, const void *data, size_t size)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        n = write(fd, data, size);
        (void) close(fd);
        return n == (ssize_t) size ? 0 : -EIO;
}

int tdx_guest_get_quote(const uint8_t report_data[static 64], uint8_t **ret, size_t *ret_size,
                        Diag *d)
{
        _cleanup_(freep) uint8_t *provider = NULL, *quote = NULL;
        char dir[128], path[192];
        size_t pn = 0, n = 0;
        struct stat st;
        TdxQuote q;
        int r;

        if (stat(TDX_GUEST_CONFIGFS_TSM, &st) < 0) {
                if (stat(TDX_GUEST_DEVICE, &st) == 0)
                        return diag_fail(d, -EOPNOTSUPP, "tdx-guest", -1,
                                         "%s exists but %s does not: quotes need configfs-tsm "
                                         "(Linux 6.7 or later)",
                                         TDX_GUEST_DEVICE, TDX_GUEST_CONFIGFS_TSM);
                return diag_fail(d, -ENODEV, "tdx-guest", -1,
                                 "this machine is not a TDX guest (neither %s nor %s)",
                                 TDX_GUEST_CONFIGFS_TSM, TDX_GUEST_DEVICE);
        }
        (void) snprintf(dir, sizeof(dir), "%s/cloister-tdx-%d", TDX_GUEST_CONFIGFS_TSM,
                        (int) getpid());
        if (mkdir(dir, 0700) < 0)
                return diag_fail(d, negative_errno(), "tdx-guest", -1, "cannot create %s: %m", dir);
        (void) snprintf(path, sizeof(path), "%s/provider", dir);
        r = read_full_file(path, 64, &provider, &pn);
        if (r >= 0 && (pn < 9 || memcmp(provider, "tdx_guest", 9) != 0))
                r = diag_fail(d, -ENODEV, "tdx-guest", -1,
                              "configfs-tsm's provider is not tdx_guest: this is not a TD");
        else if (r < 0)
                r = diag_fail(d, r, "tdx-guest", -1, "cannot read %s", path);
        if (r >= 0) {
                (void) snprintf(path, sizeof(path), "%s/inblob", dir);
                r = write_all(path, report_data, 64);
                if (r < 0)
                        (void) diag_fail(d, r, "tdx-guest", -1, "cannot write %s", path);
        }
        if (r >= 0) {
                (void) snprintf(path, sizeof(path), "%s/outblob", dir);
                r = read_full_file(path, TDX_QUOTE_SIZE_MAX, &quote, &n);
                if (r < 0)
                        (void) diag_fail(d, r, "tdx-guest", -1,
                                         "no quote from %s (is the host's quote generation "
                                         "service running?)",
                                         path);
        }
        (void) rmdir(dir);
        if (r < 0)
                return r;
        /* What the kernel returned must be a quote of this REPORTDATA. */
        if (tdx_quote_parse(quote, n, &q, d) < 0 || memcmp(q.report_data, report_data, 64) != 0)
                return diag_fail(d, -EPROTO, "tdx-guest", -1,
                                 "configfs-tsm returned something that is not a TDX quote of "
                                 "the requested REPORTDATA");
        *ret = TAKE_PTR(quote);
        *ret_size = n;
        return 0;
}
