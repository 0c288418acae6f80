/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/log.h"
#include "cloister/pe.h"
#include "measure.h"

int verb_authenticode(int argc, char *argv[], void *userdata)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "hash", required_argument, NULL, 'H' },
                {},
        };
        _cleanup_(freep) uint8_t *data = NULL;
        uint8_t digest[PE_DIGEST_MAX];
        char hex[2 * PE_DIGEST_MAX + 1];
        const char *md = "SHA256";
        size_t size, n;
        Diag d;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hH:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister-measure authenticode FILE [--hash "
                               "sha256|sha384]\n\n"
                               "Prints the PE/COFF Authenticode digest of an EFI binary: what\n"
                               "firmware measures into PCR 4 when it starts it.\n");
                        return 0;
                case 'H':
                        if (strcmp(optarg, "sha256") == 0)
                                md = "SHA256";
                        else if (strcmp(optarg, "sha384") == 0)
                                md = "SHA384";
                        else
                                return log_error_errno(
                                        -EINVAL, "--hash '%s': use sha256 or sha384.", optarg);
                        break;
                default:
                        return -EINVAL;
                }
        }
        if (argc - optind != 1)
                return log_error_errno(-EINVAL,
                                       "authenticode: expected exactly one FILE. See --help.");
        r = read_full_file(argv[optind], PE_SIZE_MAX, &data, &size);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", argv[optind]);
        diag_clear(&d);
        r = pe_authenticode(data, size, md, digest, &n, &d);
        if (r < 0)
                return log_error_errno(r, "%s: %s", argv[optind], d.message);
        hex_encode_buf(digest, n, hex, sizeof(hex));
        printf("%s\n", hex);
        return 0;
}
