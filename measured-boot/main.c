/* SPDX-License-Identifier: Apache-2.0 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cloister/json-result.h"
#include "cloister/log.h"
#include "cloister/verbs.h"
#include "cloister/version.h"
#include "measure.h"

OutputFormat arg_output = OUTPUT_TEXT;

static const Verb verbs[] = {
        { "eventlog", 1, VERB_ANY, verb_eventlog,
          "replay | show: TCG boot event logs (PCR values, readable events)" },
        { "authenticode", 1, VERB_ANY, verb_authenticode,
          "PE/COFF Authenticode digest of an EFI binary" },
        { "uki", 1, VERB_ANY, verb_uki,
          "predict the PCRs of a firmware boot of a unified kernel image" },
        { "image", 1, VERB_ANY, verb_image,
          "predict the PCRs of the UKI on a disk image's EFI system partition, and the TDX "
          "RTMRs of a TD booting it" },
        { "snp-launch", 1, VERB_ANY, verb_snp_launch,
          "the SEV-SNP launch measurement of a guest, computed from its firmware" },
        { "snp-host-data", 1, 1, verb_snp_host_data,
          "the SEV-SNP HOST_DATA of the nodes joining a cluster (hostDataFromClusterId)" },
        { "sign", 1, VERB_ANY, verb_sign, "sign a measurements file (ECDSA P-256)" },
        { "verify", 1, VERB_ANY, verb_verify, "verify a measurements file's signature" },
        {},
};

static void help(void)
{
        printf("Usage: cloister-measure [OPTIONS] COMMAND ...\n"
               "\n"
               "Compute and check boot measurements offline.\n"
               "\n"
               "Commands:\n");
        verbs_print_help(verbs, NULL);
        printf("\n"
               "  eventlog replay LOG [--bank sha1|sha256|sha384] [-o text|json]\n"
               "  eventlog show LOG [--bank ...] [-o text|json]\n"
               "  authenticode FILE [--hash sha256|sha384] [--check-signature]\n"
               "  uki FILE.efi [-o text|json] [--name NAME] [--measurements-version N]\n"
               "      [--image-version VERSION] [--image-kind cloud|test]\n"
               "      [--created YYYY-MM-DDTHH:MM:SSZ]\n"
               "  image DISK.raw [-o text|json] (the options of uki)\n"
               "  snp-launch --firmware F --vcpus N [--vcpu-type T] [--vmm qemu|ec2|gce]\n"
               "      [--guest-features HEX] [--kernel K --initrd I --append S]\n"
               "      [--firmware-digest HEX] [-o text|json] [--add-to MEASUREMENTS.json]\n"
               "  snp-host-data CLUSTER_ID\n"
               "  sign --key KEY.pem FILE [--output SIG]\n"
               "  verify --pubkey PUB.pem FILE SIG [-o text|json]\n"
               "\n"
               "-o json prints one result document (docs/json.md; uki and image: a\n"
               "measurements file), and on a failure an error document.\n"
               "\n"
               "Options:\n"
               "  -h --help      Show this help\n"
               "     --version   Show the version\n"
               "  -v --verbose   Debug logging\n"
               "\n"
               "Exit status: 0 success, 1 failure (one error line says why), 2 usage error\n"
               "(an unknown command or option, a missing argument, a malformed value).\n");
}

int main(int argc, char *argv[])
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "verbose", no_argument, NULL, 'v' },
                {},
        };
        char command[80];
        int c, r;

        log_parse_environment();
        while ((c = getopt_long(argc, argv, "+hv", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("cloister-measure %s\n", CLOISTER_VERSION);
                        return 0;
                case 'v':
                        log_set_max_level(LOG_DEBUG);
                        break;
                default:
                        return exit_status_from_errno(-EUSAGE);
                }
        }
        if (optind >= argc) {
                log_error("cloister-measure: missing command. See 'cloister-measure --help'.");
                return exit_status_from_errno(-EUSAGE);
        }
        /* The command as typed, before the verb's getopt permutes its arguments. */
        if (strcmp(argv[optind], "eventlog") == 0 && optind + 1 < argc &&
            argv[optind + 1][0] != '-')
                (void) snprintf(command, sizeof(command), "cloister-measure eventlog %.24s",
                                argv[optind + 1]);
        else
                (void) snprintf(command, sizeof(command), "cloister-measure %.40s", argv[optind]);
        /* A verb's -o json wherever it stands (sign's -o names a file): an error in an option
         * before it still gives an error document. */
        if (strcmp(argv[optind], "sign") != 0)
                for (int i = optind + 1; i < argc && strcmp(argv[i], "--") != 0; i++)
                        if (((strcmp(argv[i], "-o") == 0 || strcmp(argv[i], "--output") == 0) &&
                             i + 1 < argc && strcmp(argv[i + 1], "json") == 0) ||
                            strcmp(argv[i], "-ojson") == 0 || strcmp(argv[i], "--output=json") == 0)
                                arg_output = OUTPUT_JSON;
        /* Verbs without a result document refuse -o json in words, not as an unknown option. */
        if (arg_output == OUTPUT_JSON && (strcmp(argv[optind], "authenticode") == 0 ||
                                          strcmp(argv[optind], "snp-host-data") == 0))
                r = log_error_errno(-EUSAGE,
                                    "%s prints no JSON result: drop -o json (these print one, "
                                    "docs/json.md: eventlog replay, eventlog show, snp-launch, "
                                    "verify; uki and image print a measurements file).",
                                    command);
        else
                r = verbs_dispatch("cloister-measure", argc - optind, argv + optind, verbs, NULL);
        if (r < 0 && arg_output == OUTPUT_JSON)
                (void) result_print_error(command, r);
        return exit_status_from_errno(r);
}
