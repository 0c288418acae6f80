/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdbool.h>
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
                { "check-signature", no_argument, NULL, 'c' },
                {},
        };
        _cleanup_(freep) uint8_t *data = NULL;
        uint8_t digest[PE_DIGEST_MAX];
        char hex[2 * PE_DIGEST_MAX + 1];
        const char *md = "SHA256", *signed_md = NULL;
        uint8_t signed_digest[PE_DIGEST_MAX];
        size_t signed_n;
        bool check_signature = false;
        size_t size, n;
        Diag d;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hH:c", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister-measure authenticode FILE [--hash "
                               "sha256|sha384]\n\n"
                               "Prints the PE/COFF Authenticode digest of an EFI binary: what\n"
                               "firmware measures into PCR 4 when it starts it.\n"
                               "\n"
                               "  --check-signature  also read the digest the file's own\n"
                               "                     Authenticode signature covers and fail\n"
                               "                     unless it equals the computed one (the\n"
                               "                     signature and its chain are not checked)\n");
                        return 0;
                case 'c':
                        check_signature = true;
                        break;
                case 'H':
                        if (strcmp(optarg, "sha256") == 0)
                                md = "SHA256";
                        else if (strcmp(optarg, "sha384") == 0)
                                md = "SHA384";
                        else
                                return log_error_errno(
                                        -EUSAGE, "--hash '%s': use sha256 or sha384.", optarg);
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (argc - optind != 1)
                return log_error_errno(-EUSAGE,
                                       "authenticode: expected exactly one FILE. See --help.");
        r = read_full_file(argv[optind], PE_SIZE_MAX, &data, &size);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", argv[optind]);
        diag_clear(&d);
        r = pe_authenticode(data, size, md, digest, &n, &d);
        if (r < 0)
                return log_error_errno(r, "%s: %s", argv[optind], d.message);
        if (check_signature) {
                diag_clear(&d);
                r = pe_signed_digest(data, size, &signed_md, signed_digest, &signed_n, &d);
                if (r < 0)
                        return log_error_errno(r, "%s: %s", argv[optind], d.message);
                if (strcmp(signed_md, md) != 0)
                        return log_error_errno(-EBADMSG,
                                               "%s: the signature covers a %s digest; rerun with "
                                               "--hash %s.",
                                               argv[optind], signed_md,
                                               strcmp(signed_md, "SHA384") == 0 ? "sha384"
                                                                                : "sha256");
                if (signed_n != n || memcmp(signed_digest, digest, n) != 0) {
                        char want[2 * PE_DIGEST_MAX + 1];
                        hex_encode_buf(signed_digest, signed_n, want, sizeof(want));
                        hex_encode_buf(digest, n, hex, sizeof(hex));
                        return log_error_errno(-EKEYREJECTED,
                                               "%s: the file was modified after signing: its "
                                               "signature covers %s, the file hashes to %s.",
                                               argv[optind], want, hex);
                }
        }
        hex_encode_buf(digest, n, hex, sizeof(hex));
        printf("%s%s\n", hex, check_signature ? "  (equals the signed digest)" : "");
        return 0;
}
