/* SPDX-License-Identifier: Apache-2.0 */
/* The cluster configuration file (docs/config.md): `cloister config generate` writes it,
 * `cloister apply --config` and `cloister verify --config` read it. */
#include <assert.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "cloister/attest.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/measurements.h"
#include "cloister/policy-update.h"
#include "cloister/snp-measurements.h"
#include "cloister/timestamp.h"
#include "cloister/version.h"

#define CONFIG_VERSION 1
/* measurementsSource.source: a URL (config fetch-measurements) or a file name (generate). */
#define CONFIG_SOURCE_MAX 4096U

/* Minimum SEV-SNP TCB (SPL per component) of AMD Milan firmware, as in docs/snp.md's example. */
#define SNP_MIN_TCB_BOOTLOADER 3
#define SNP_MIN_TCB_TEE        0
#define SNP_MIN_TCB_SNP        8
#define SNP_MIN_TCB_MICROCODE  115

typedef enum Provider {
        PROVIDER_QEMU,
        PROVIDER_GCP,
        PROVIDER_AZURE,
        PROVIDER_AWS,
        _PROVIDER_MAX,
        _PROVIDER_INVALID = -EINVAL,
} Provider;

static const char *const provider_names[_PROVIDER_MAX] = {
        [PROVIDER_QEMU] = "qemu",
        [PROVIDER_GCP] = "gcp",
        [PROVIDER_AZURE] = "azure",
        [PROVIDER_AWS] = "aws",
};

/* The attestation variant each provider's nodes present. */
static const AttestVariant provider_variants[_PROVIDER_MAX] = {
        [PROVIDER_QEMU] = ATTEST_VARIANT_QEMU_VTPM,
        [PROVIDER_GCP] = ATTEST_VARIANT_SEV_SNP,
        [PROVIDER_AZURE] = ATTEST_VARIANT_AZURE_SEV_SNP,
        [PROVIDER_AWS] = ATTEST_VARIANT_SEV_SNP,
};

/* Who launches an SEV-SNP node of each provider: the launch measurements that hold for it
 * (snp.launchMeasurements' "vmm"; NULL: none can be computed). */
static const char *const provider_snp_vmm[_PROVIDER_MAX] = {
        [PROVIDER_GCP] = "gce",
        [PROVIDER_AWS] = "ec2",
};

/* The PCRs a boot of the image sets to values of its own (docs/measured-boot.md). */
static const unsigned image_pcrs[] = { 4, 9, 11 };

static Provider provider_from_string(const char *s)
{
        for (int i = 0; i < _PROVIDER_MAX; i++)
                if (strcmp(provider_names[i], s) == 0)
                        return (Provider) i;
        return _PROVIDER_INVALID;
}

static bool provider_has_pcrs(Provider p)
{
        return provider_variants[p] != ATTEST_VARIANT_SEV_SNP;
}

static bool is_image_pcr(unsigned i)
{
        for (size_t k = 0; k < ELEMENTSOF(image_pcrs); k++)
                if (image_pcrs[k] == i)
                        return true;
        return false;
}

static bool is_zero(const uint8_t *p, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (p[i])
                        return false;
        return true;
}

int cli_measurements_parse(const void *data, size_t size, const char *source,
                           MeasurementsFile **ret)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        Diag d;
        int r;

        diag_clear(&d);
        r = measurements_file_parse(data, size, source, &m, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        for (size_t k = 0; k < ELEMENTSOF(image_pcrs); k++)
                if (!m->pcrs[image_pcrs[k]].present)
                        return log_error_errno(-EBADMSG,
                                               "%s: PCR %u is missing: expected what "
                                               "'cloister-measure image IMAGE -o json' prints.",
                                               source, image_pcrs[k]);
        for (unsigned i = 0; i < EVIDENCE_PCR_COUNT; i++)
                if (m->pcrs[i].present && !is_image_pcr(i) &&
                    !is_zero(m->pcrs[i].expected, EVIDENCE_PCR_SIZE))
                        return log_error_errno(-EBADMSG,
                                               "%s: PCR %u is neither 4, 9, 11 nor predicted "
                                               "zero: not a 'cloister-measure' prediction.",
                                               source, i);
        *ret = TAKE_PTR(m);
        return 0;
}

static int load_measurements(const char *path, MeasurementsFile **ret)
{
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, MEASUREMENTS_FILE_SIZE_MAX, &data, &size);
        if (r == -EMSGSIZE)
                return log_error_errno(r, "%s: larger than %u bytes: not a measurements file.",
                                       path, MEASUREMENTS_FILE_SIZE_MAX);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", path);
        return cli_measurements_parse(data, size, path, ret);
}

/* A measurements file for SEV-SNP nodes: its snp.launchMeasurements for the provider's VMM. */
static int load_snp_measurements(const char *path, Provider provider, MeasurementsFile **ret)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size, n = 0;
        Diag d;
        int r;

        r = read_full_file(path, MEASUREMENTS_FILE_SIZE_MAX, &data, &size);
        if (r == -EMSGSIZE)
                return log_error_errno(r, "%s: larger than %u bytes: not a measurements file.",
                                       path, MEASUREMENTS_FILE_SIZE_MAX);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", path);
        diag_clear(&d);
        r = measurements_file_parse(data, size, path, &m, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        for (size_t i = 0; i < m->n_snp_launch; i++)
                n += provider_snp_vmm[provider] &&
                     strcmp(m->snp_launch[i].vmm, provider_snp_vmm[provider]) == 0;
        if (n == 0)
                return log_error_errno(-ENODATA,
                                       "%s: no snp.launchMeasurements for vmm %s (%zu for other "
                                       "VMMs): add them with 'cloister-measure snp-launch "
                                       "--firmware F --vcpus N --vmm %s --add-to %s'.",
                                       path, provider_snp_vmm[provider], m->n_snp_launch,
                                       provider_snp_vmm[provider], path);
        *ret = TAKE_PTR(m);
        return 0;
}

int cli_measurements_set_pcr(json_t *ms, unsigned i, const uint8_t *expected, bool warn_only)
{
        char key[4], hex[2 * EVIDENCE_PCR_SIZE + 1];
        json_t *e;

        (void) snprintf(key, sizeof(key), "%u", i);
        if (expected)
                hex_encode_buf(expected, EVIDENCE_PCR_SIZE, hex, sizeof(hex));
        e = json_pack("{s:o,s:b}", "expected", expected ? json_string(hex) : json_null(),
                      "warnOnly", warn_only);
        if (!e || json_object_set_new(ms, key, e) < 0)
                return -ENOMEM;
        return 0;
}

json_t *cli_measurements_source_json(const MeasurementsFile *m, const char *source,
                                     bool signature_checked)
{
        char hex[2 * sizeof(m->sha256) + 1];

        assert(m->format_version >= 2);
        hex_encode_buf(m->sha256, sizeof(m->sha256), hex, sizeof(hex));
        json_t *j = json_pack("{s:I,s:s,s:s,s:s,s:s,s:s,s:b}", "measurementsVersion",
                              (json_int_t) m->measurements_version, "image", m->image,
                              "imageVersion", m->image_version, "created", m->created, "sha256",
                              hex, "source", source, "signatureChecked", signature_checked);
        if (j && m->image_kind &&
            json_object_set_new(j, "imageKind",
                                json_string(measurements_image_kind_to_string(m->image_kind))) <
                    0) {
                json_decref(j);
                return NULL;
        }
        /* The Kubernetes release the image carries: what 'upgrade apply' checks a version change
         * against (docs/upgrade.md, "Kubernetes versions"). */
        if (j && m->kubernetes_version &&
            json_object_set_new(j, "kubernetesVersion", json_string(m->kubernetes_version)) < 0) {
                json_decref(j);
                return NULL;
        }
        return j;
}

/* The PCR expectations: the measurements file's (PCR 4, 9, 11 null without one), and PCR 15
 * zero: a node that has not joined a cluster yet. */
static json_t *measurements_json(const MeasurementsFile *m)
{
        static const uint8_t zero[EVIDENCE_PCR_SIZE] = {};
        _cleanup_(json_decrefp) json_t *ms = json_object();
        int r = ms ? 0 : -ENOMEM;

        for (unsigned i = 0; r >= 0 && i < EVIDENCE_PCR_COUNT; i++) {
                if (i == 15)
                        r = cli_measurements_set_pcr(ms, i, zero, false);
                else if (m && m->pcrs[i].present)
                        r = cli_measurements_set_pcr(ms, i, m->pcrs[i].expected,
                                                     m->pcrs[i].warn_only);
                else if (!m && is_image_pcr(i))
                        r = cli_measurements_set_pcr(ms, i, NULL, false);
        }
        return r < 0 ? NULL : TAKE_PTR(ms);
}

/* SEV-SNP guest policy: refuse by default (no debug, no migration agent, VMPL 0); the launch
 * measurement is null until the owner fills it, or the measurements file's launch measurements
 * for the provider's VMM (launch, n). */
static json_t *snp_json(const SnpLaunchEntry *launch, size_t n)
{
        _cleanup_(json_decrefp) json_t *snp =
                json_pack("{s:b,s:b,s:b,s:i,s:{s:i,s:i,s:i,s:i},s:i}", "allowDebug", false,
                          "allowMigrationAgent", false, "allowSmt", true, "vmpl", 0, "minTcb",
                          "bootloader", SNP_MIN_TCB_BOOTLOADER, "tee", SNP_MIN_TCB_TEE, "snp",
                          SNP_MIN_TCB_SNP, "microcode", SNP_MIN_TCB_MICROCODE, "minGuestSvn", 0);

        if (!snp ||
            json_object_set_new(snp, n ? "launchMeasurements" : "measurements",
                                n ? snp_launch_entries_to_json(launch, n) : json_null()) < 0)
                return NULL;
        return TAKE_PTR(snp);
}

const char *cli_provider_snp_vmm(const char *provider)
{
        Provider p = provider ? provider_from_string(provider) : _PROVIDER_INVALID;
        return p >= 0 ? provider_snp_vmm[p] : NULL;
}

/* The launch measurements of m that hold for the provider's nodes (its VMM). */
static size_t snp_entries_for(Provider provider, const MeasurementsFile *m, SnpLaunchEntry *out)
{
        size_t n = 0;

        for (size_t i = 0; m && provider_snp_vmm[provider] && i < m->n_snp_launch; i++)
                if (strcmp(m->snp_launch[i].vmm, provider_snp_vmm[provider]) == 0)
                        out[n++] = m->snp_launch[i];
        return n;
}

static json_t *attestation_json(Provider provider, const MeasurementsFile *m, const char *ak_public)
{
        _cleanup_(json_decrefp) json_t *ms = NULL, *snp = NULL;
        const char *variant = attest_variant_to_string(provider_variants[provider]);
        _cleanup_(freep) SnpLaunchEntry *launch = calloc(SNP_POLICY_LAUNCH_MAX, sizeof(*launch));
        size_t n_launch = launch ? snp_entries_for(provider, m, launch) : 0;

        if (!launch)
                return NULL;

        switch (provider) {
        case PROVIDER_QEMU:
                ms = measurements_json(m);
                return ms ? json_pack("{s:i,s:s,s:O,s:{s:s,s:o},s:s}", "version",
                                      ATTEST_POLICY_VERSION, "variant", variant, "measurements", ms,
                                      "akTrust", "mode", "pinned", "akPublic",
                                      ak_public ? json_string(ak_public) : json_null(), "eventLog",
                                      "if-present")
                          : NULL;
        case PROVIDER_AZURE:
                /* The SNP report vouches for the vTPM's key: no akTrust (docs/snp.md). */
                ms = measurements_json(m);
                snp = snp_json(NULL, 0);
                return ms && snp ? json_pack("{s:i,s:s,s:O,s:O}", "version", ATTEST_POLICY_VERSION,
                                             "variant", variant, "measurements", ms, "snp", snp)
                                 : NULL;
        default:
                snp = snp_json(launch, n_launch);
                return snp ? json_pack("{s:i,s:s,s:O}", "version", ATTEST_POLICY_VERSION, "variant",
                                       variant, "snp", snp)
                           : NULL;
        }
}

/* --tee tdx. gcp (bare TDX guests, variant tdx): MRTD and the RTMRs the image's boot sets are
 * placeholders (null) that every command refuses until the owner fills them (docs/tdx.md), the
 * RTMRs the measurements file predicts (m's "tdx" section) filled from it. azure (azure-tdx): the
 * paravisor's MRTD is the placeholder, its SEPT_VE_DISABLE exception written out, and the image
 * is pinned by the vTPM's PCRs as for azure-sev-snp. The rest is the TDX policy's
 * refuse-by-default defaults. */
static const char *const tdx_unset[] = { "mrTd", "rtmr0", "rtmr1", "rtmr2" };

static json_t *tdx_attestation_json(Provider provider, const MeasurementsFile *m)
{
        _cleanup_(json_decrefp) json_t *tdx = json_object(), *ms = NULL;

        if (!tdx)
                return NULL;
        if (provider == PROVIDER_AZURE) {
                ms = measurements_json(m);
                if (!ms || json_object_set_new(tdx, "mrTd", json_null()) < 0 ||
                    json_object_set_new(tdx, "azureParavisor", json_true()) < 0)
                        return NULL;
                return json_pack("{s:i,s:s,s:O,s:O}", "version", ATTEST_POLICY_VERSION, "variant",
                                 attest_variant_to_string(ATTEST_VARIANT_AZURE_TDX), "tdx", tdx,
                                 "measurements", ms);
        }
        for (size_t i = 0; i < ELEMENTSOF(tdx_unset); i++)
                if (json_object_set_new(tdx, tdx_unset[i], json_null()) < 0)
                        return NULL;
        if (m && measurements_file_tdx_policy_json(m, tdx) < 0)
                return NULL;
        return json_pack("{s:i,s:s,s:O}", "version", ATTEST_POLICY_VERSION, "variant",
                         attest_variant_to_string(ATTEST_VARIANT_TDX), "tdx", tdx);
}

static void print_unset_tdx(const char *file, Provider provider, const json_t *att)
{
        const json_t *tdx = json_object_get(att, "tdx");

        if (provider == PROVIDER_AZURE) {
                printf("Not set yet; 'cloister apply' and 'cloister verify' refuse %s until each "
                       "is filled:\n",
                       file);
                printf("  attestation.tdx.mrTd: the MRTD (96 hex digits) of Azure's paravisor "
                       "on your machine type, as 'cloister attestation verify-report --type tdx "
                       "--quote Q' prints it for a node's TD quote; Microsoft does not publish it "
                       "as a measurable image, so pin what you observed (docs/tdx.md, \"The "
                       "azure-tdx variant\")\n");
                if (json_is_null(json_object_get(
                            json_object_get(json_object_get(att, "measurements"), "4"),
                            "expected")))
                        for (size_t k = 0; k < ELEMENTSOF(image_pcrs); k++)
                                printf("  attestation.measurements.%u.expected: run "
                                       "'cloister-measure image IMAGE -o json > m.json', then "
                                       "'cloister config generate azure --tee tdx --measurements "
                                       "m.json --force'\n",
                                       image_pcrs[k]);
                return;
        }

        printf("Not set yet; 'cloister apply' and 'cloister verify' refuse %s until each is "
               "filled:\n",
               file);
        printf("  attestation.tdx.mrTd: the MRTD (96 hex digits, the TD's firmware as the TDX "
               "module measured it) of a node booted from your image on this cloud, as 'cloister "
               "attestation verify-report --type tdx --quote Q' prints it; a list may hold a "
               "few\n");
        for (size_t i = 1; i < ELEMENTSOF(tdx_unset); i++)
                if (json_is_null(json_object_get(tdx, tdx_unset[i])))
                        printf("  attestation.tdx.%s: that node's RTMR%s as verify-report prints "
                               "it (what "
                               "the firmware and the UKI extend), or remove the key to leave it "
                               "unpinned "
                               "(MRTD still pins the firmware)\n",
                               tdx_unset[i], tdx_unset[i] + 4);
}

/* One line per value the file leaves null, saying how to fill it. */
static void print_unset(const char *file, Provider provider, bool have_measurements,
                        bool have_evidence)
{
        const char *name = provider_names[provider];

        printf("Not set yet; 'cloister apply' and 'cloister verify' refuse %s until each is "
               "filled:\n",
               file);
        if (provider_has_pcrs(provider) && !have_measurements)
                for (size_t k = 0; k < ELEMENTSOF(image_pcrs); k++)
                        printf("  attestation.measurements.%u.expected: run 'cloister-measure "
                               "image IMAGE -o json > m.json', then 'cloister config generate %s "
                               "--measurements m.json --force'\n",
                               image_pcrs[k], name);
        if (provider == PROVIDER_QEMU && !have_evidence)
                printf("  attestation.akTrust.akPublic: on the node, 'cloister attestation issue "
                       "--binding HEX --output-file ev.json', then 'cloister config generate qemu "
                       "--evidence ev.json --force' (local clusters only)\n");
        if (provider != PROVIDER_QEMU && !(have_measurements && !provider_has_pcrs(provider)))
                printf("  attestation.snp.measurements: the launch measurement (96 hex digits) "
                       "of a node booted from your image, as 'cloister attestation verify-report' "
                       "prints it%s\n",
                       provider_snp_vmm[provider]
                               ? "; or computed: 'cloister-measure snp-launch --firmware F "
                                 "--vcpus N --vmm VMM --add-to m.json', then --tee snp "
                                 "--measurements m.json"
                               : "");
}

/* The cloud part 'cloister create' reads (docs/cloud.md): a confidential default where there is
 * one, null where only the owner knows (create refuses null, naming the field). TEE snp. */
static json_t *infrastructure_json(Provider p, bool tdx)
{
        static const char *const types[_PROVIDER_MAX] = {
                [PROVIDER_GCP] = "n2d-standard-4",
                [PROVIDER_AZURE] = "Standard_DC4as_v5",
                [PROVIDER_AWS] = "m6a.xlarge",
        };
        /* cloister create's machine types for TDX (cli/cloister-create.c). */
        const char *type = !tdx                ? types[p]
                           : p == PROVIDER_GCP ? "c3-standard-4"
                                               : "Standard_DC4es_v5";
        json_t *o = json_pack("{s:s,s:s,s:s,s:i,s:i,s:i,s:n,s:n}", "tee", tdx ? "tdx" : "snp",
                              "controlPlaneInstanceType", type, "workerInstanceType", type,
                              "controlPlaneCount", 1, "workerCount", 1, "stateDiskSizeGb", 30,
                              "imageId", "imageFile");
        int r = 0;

        if (!o)
                return NULL;
        if (p == PROVIDER_GCP)
                r = json_object_set_new(o, "project", json_null()) < 0 ||
                    json_object_set_new(o, "region", json_null()) < 0 ||
                    json_object_set_new(o, "zone", json_null()) < 0;
        else if (p == PROVIDER_AZURE)
                r = json_object_set_new(o, "subscriptionId", json_null()) < 0 ||
                    json_object_set_new(o, "location", json_null()) < 0;
        else if (p == PROVIDER_AWS)
                r = json_object_set_new(o, "region", json_null()) < 0 ||
                    json_object_set_new(o, "zone", json_null()) < 0;
        if (r) {
                json_decref(o);
                return NULL;
        }
        return o;
}

static int config_generate_verb(int argc, char *argv[], void *userdata)
{
        enum { ARG_MEASUREMENTS = 0x100, ARG_EVIDENCE, ARG_NAME, ARG_FORCE, ARG_TEE };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "file", required_argument, NULL, 'f' },
                { "measurements", required_argument, NULL, ARG_MEASUREMENTS },
                { "evidence", required_argument, NULL, ARG_EVIDENCE },
                { "name", required_argument, NULL, ARG_NAME },
                { "force", no_argument, NULL, ARG_FORCE },
                { "tee", required_argument, NULL, ARG_TEE },
                {},
        };
        const char *file = CLI_CONFIG_FILE_DEFAULT, *measurements = NULL, *evidence = NULL,
                   *tee = NULL, *name = CLI_CLUSTER_NAME_DEFAULT;
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) char *ak_public = NULL, *text = NULL, *doc = NULL;
        _cleanup_(json_decrefp) json_t *att = NULL, *root = NULL, *name_json = NULL;
        bool force = false, tdx;
        Provider provider;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hf:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister config generate PROVIDER [--file FILE] [--force]\n"
                               "         [--measurements FILE] [--evidence FILE (qemu)] "
                               "[--name NAME] [--tee snp|tdx]\n\n"
                               "Writes a cluster configuration for PROVIDER (qemu, gcp, azure or\n"
                               "aws) to FILE (default " CLI_CONFIG_FILE_DEFAULT
                               "), mode 0600, never\n"
                               "overwriting it without --force. Its \"attestation\" object is the\n"
                               "policy 'cloister apply --config' and 'cloister verify --config'\n"
                               "use. Values that cannot be known yet are written as null and\n"
                               "listed with how to fill them: a config holding one is refused.\n\n"
                               "  --measurements FILE  what 'cloister-measure uki|image IMAGE -o\n"
                               "                       json' prints: PCR 4, 9, 11 and the PCRs\n"
                               "                       it predicts zero (qemu, azure); its\n"
                               "                       measurementsVersion is recorded for\n"
                               "                       'config fetch-measurements'\n"
                               "  --tee snp            gcp, aws: --measurements fills\n"
                               "                       attestation.snp.launchMeasurements\n"
                               "                       with the file's SEV-SNP launch\n"
                               "                       measurements for the provider's VMM\n"
                               "                       (gce, ec2), 'cloister-measure\n"
                               "                       snp-launch --add-to' computed them\n"
                               "  --tee tdx            gcp: Intel TDX nodes (variant tdx):\n"
                               "                       attestation.tdx.mrTd and rtmr0-2 are\n"
                               "                       written null, to be filled from a node\n"
                               "                       booted from your image (verify-report\n"
                               "                       --type tdx); --measurements fills the\n"
                               "                       RTMRs the image predicts. azure:\n"
                               "                       variant azure-tdx, the paravisor's\n"
                               "                       mrTd null, the image pinned by the\n"
                               "                       vTPM's PCRs (--measurements)\n"
                               "  --evidence FILE      qemu only: pins the attestation key of\n"
                               "                       this evidence ('cloister attestation\n"
                               "                       issue'): trust on first use, for local\n"
                               "                       clusters on machines you control only\n"
                               "  --name NAME          cluster name "
                               "(default " CLI_CLUSTER_NAME_DEFAULT ")\n"
                               "\nSee docs/config.md for every field.\n");
                        return 0;
                case 'f':
                        file = optarg;
                        break;
                case ARG_MEASUREMENTS:
                        measurements = optarg;
                        break;
                case ARG_EVIDENCE:
                        evidence = optarg;
                        break;
                case ARG_NAME:
                        name = optarg;
                        break;
                case ARG_FORCE:
                        force = true;
                        break;
                case ARG_TEE:
                        if (strcmp(optarg, "snp") != 0 && strcmp(optarg, "tdx") != 0)
                                return log_error_errno(-EUSAGE, "--tee '%s': use snp or tdx.",
                                                       optarg);
                        tee = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind >= argc)
                return log_error_errno(-EUSAGE, "config generate: which provider? qemu, gcp, "
                                                "azure or aws. See --help.");
        if (optind + 1 < argc)
                return log_error_errno(-EUSAGE, "Unexpected argument '%s'. See --help.",
                                       argv[optind + 1]);
        provider = provider_from_string(argv[optind]);
        if (provider < 0)
                return log_error_errno(-EUSAGE,
                                       "Unknown provider '%s': use qemu, gcp, azure or aws.",
                                       argv[optind]);
        tdx = tee && strcmp(tee, "tdx") == 0;
        if (evidence && provider != PROVIDER_QEMU)
                return log_error_errno(-EUSAGE,
                                       "--evidence is for qemu only: it pins a key on trust on "
                                       "first use; %s nodes prove theirs with SEV-SNP.",
                                       provider_names[provider]);
        if (tee && provider == PROVIDER_QEMU)
                return log_error_errno(
                        -EUSAGE,
                        "--tee %s: qemu clusters attest with a vTPM (qemu-vtpm); "
                        "SEV-SNP nodes are gcp, aws or azure, TDX nodes gcp or azure "
                        "('cloister mini --tee sim-tdx' simulates TDX locally).",
                        tee);
        if (tdx && provider == PROVIDER_AWS)
                return log_error_errno(-EUSAGE, "--tee tdx: AWS sells SEV-SNP only.");
        if (measurements && !provider_has_pcrs(provider) && !tee)
                return log_error_errno(-EUSAGE,
                                       "--measurements: %s nodes are checked by their SEV-SNP "
                                       "launch measurement, not by PCRs: with --tee snp the "
                                       "file's snp.launchMeasurements fill it.",
                                       provider_names[provider]);
        name_json = json_string(name); /* NULL unless valid UTF-8 */
        if (!name_json || !name || !*name)
                return log_error_errno(-EUSAGE, "--name: a non-empty UTF-8 name is required.");

        if (measurements && tdx) {
                /* gcp: the file's predicted RTMRs; azure (azure-tdx): its PCRs. */
                r = load_measurements(measurements, &m);
                if (r < 0)
                        return r;
                if (provider == PROVIDER_GCP && !m->tdx_rtmr_present[1])
                        return log_error_errno(-ENODATA,
                                               "%s: no \"tdx\" section: a TDX node's RTMRs come "
                                               "from 'cloister-measure image IMAGE -o json' of "
                                               "this release (docs/tdx.md, \"RTMR prediction\").",
                                               measurements);
        } else if (measurements && !provider_has_pcrs(provider)) {
                r = load_snp_measurements(measurements, provider, &m);
                if (r < 0)
                        return r;
        } else if (measurements) {
                r = load_measurements(measurements, &m);
                if (r < 0)
                        return r;
        }
        if (evidence) {
                r = cli_evidence_load_ak(evidence, &e, &ak_public);
                if (r < 0)
                        return r;
        }
        att = tdx ? tdx_attestation_json(provider, m) : attestation_json(provider, m, ak_public);
        root = att ? json_pack("{s:i,s:s,s:O,s:s,s:s,s:O}", "version", CONFIG_VERSION, "provider",
                               provider_names[provider], "clusterName", name_json,
                               "kubernetesVersion", CLI_KUBERNETES_VERSION, "serviceCidr",
                               CLI_SERVICE_CIDR_DEFAULT, "attestation", att)
                   : NULL;
        if (root && provider != PROVIDER_QEMU &&
            json_object_set_new(root, "infrastructure", infrastructure_json(provider, tdx)) < 0)
                return log_oom();
        /* What a later fetch-measurements compares its file with (no record for format 1). */
        if (root && m && m->format_version >= 2 &&
            json_object_set_new(root, "measurementsSource",
                                cli_measurements_source_json(m, measurements, false)) < 0)
                return log_oom();
        if (!root || json_dump_pretty(root, &text) < 0 || asprintf(&doc, "%s\n", text) < 0)
                return log_oom();
        r = write_file_atomic(file, doc, strlen(doc), 0600, force ? 0 : WRITE_FILE_EXCLUSIVE);
        if (r == -EEXIST)
                return log_error_errno(r,
                                       "%s already exists: refusing to overwrite it (--force "
                                       "replaces it).",
                                       file);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", file);
        if (evidence)
                log_warning("TRUST ON FIRST USE: %s pins the attestation key in %s as it is now; "
                            "nothing proves it lives in a genuine TPM. For a local cluster on a "
                            "machine you control only, never for a cloud.",
                            file, evidence);
        printf("Wrote %s (provider %s, attestation variant %s).\n", file, provider_names[provider],
               attest_variant_to_string(!tdx                         ? provider_variants[provider]
                                        : provider == PROVIDER_AZURE ? ATTEST_VARIANT_AZURE_TDX
                                                                     : ATTEST_VARIANT_TDX));
        if (provider != PROVIDER_QEMU)
                printf("Before 'cloister create': fill %s's \"infrastructure\" (%s, and imageId "
                       "or imageFile; docs/cloud.md).\n",
                       file,
                       provider == PROVIDER_GCP     ? "project, region, zone"
                       : provider == PROVIDER_AZURE ? "subscriptionId, location"
                                                    : "region, zone");
        if (tdx)
                print_unset_tdx(file, provider, att);
        else if ((provider != PROVIDER_QEMU && !(m && !provider_has_pcrs(provider))) || !m ||
                 (provider == PROVIDER_QEMU && !ak_public))
                print_unset(file, provider, m != NULL, ak_public != NULL);
        return 0;
}

void cli_config_done(CliConfig *c)
{
        json_decref(c->json);
        free(c->policy);
        free(c->policy_source);
        *c = (CliConfig){};
}

static int get_optional_string(const JsonCtx *ctx, const json_t *o, const char *key,
                               const char **ret)
{
        int r = json_get_string(ctx, o, key, false, ret);

        if (r == -ENOENT)
                return 0;
        if (r >= 0 && !**ret)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: .%s: must not be empty", ctx->source, key);
        return r;
}

/* "measurementsSource" (docs/config.md): typed and bounded like the measurements file it
 * records, unknown keys refused. */
static int measurements_source_parse(const JsonCtx *ctx, const json_t *o,
                                     CliMeasurementsSource *ret)
{
        static const char *const keys[] = {
                "measurementsVersion",
                "image",
                "imageVersion",
                "created",
                "sha256",
                "source",
                "signatureChecked",
                "imageKind",
                "kubernetesVersion",
                NULL,
        };
        CliMeasurementsSource s = { .present = true };
        const char *kind = NULL;
        char buf[64];
        time_t t;
        int r;

        JsonCtx c = json_ctx_child(ctx, "measurementsSource", buf, sizeof(buf));
        r = json_check_keys(&c, o, keys);
        if (r >= 0)
                r = json_get_int(&c, o, "measurementsVersion", true, 1, MEASUREMENTS_VERSION_MAX,
                                 &s.version);
        if (r >= 0)
                r = json_get_string(&c, o, "image", true, &s.image);
        if (r >= 0)
                r = json_get_string(&c, o, "imageVersion", true, &s.image_version);
        if (r >= 0)
                r = json_get_string(&c, o, "created", true, &s.created);
        if (r >= 0)
                r = json_get_hex_exact(&c, o, "sha256", true, s.sha256, sizeof(s.sha256));
        if (r >= 0)
                r = json_get_string(&c, o, "source", true, &s.source);
        if (r >= 0)
                r = json_get_bool(&c, o, "signatureChecked", true, &s.signature_checked);
        if (r >= 0) {
                r = json_get_string(&c, o, "imageKind", false, &kind);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0) {
                KubernetesVersion kv;
                r = json_get_string(&c, o, "kubernetesVersion", false, &s.kubernetes_version);
                if (r == -ENOENT)
                        r = 0;
                else if (r >= 0 && kubernetes_version_parse(s.kubernetes_version, &kv) < 0)
                        return diag_fail(c.diag, -EBADMSG, "json-schema", -1,
                                         "%s: .measurementsSource.kubernetesVersion: not "
                                         "v1.MINOR.PATCH",
                                         c.source);
        }
        if (r < 0)
                return r;
        if (kind) {
                s.image_kind = measurements_image_kind_from_string(kind);
                if (s.image_kind < 0)
                        return diag_fail(c.diag, -EBADMSG, "json-schema", -1,
                                         "%s: .measurementsSource.imageKind: neither cloud nor "
                                         "test",
                                         c.source);
        }
        if (!measurements_text_valid(s.image) || !measurements_text_valid(s.image_version))
                return diag_fail(c.diag, -EBADMSG, "json-schema", -1,
                                 "%s: .measurementsSource: image and imageVersion must be 1 to "
                                 "%u bytes without control characters",
                                 c.source, MEASUREMENTS_TEXT_MAX);
        if (timestamp_parse_utc(s.created, &t) < 0)
                return diag_fail(c.diag, -EBADMSG, "json-schema", -1,
                                 "%s: .measurementsSource.created: not an RFC 3339 UTC time "
                                 "YYYY-MM-DDTHH:MM:SSZ",
                                 c.source);
        if (!*s.source || strlen(s.source) > CONFIG_SOURCE_MAX)
                return diag_fail(c.diag, -EBADMSG, "json-schema", -1,
                                 "%s: .measurementsSource.source: must be 1 to %u bytes", c.source,
                                 CONFIG_SOURCE_MAX);
        *ret = s;
        return 0;
}

/* allow_unset: a policy whose only fault is a value not set yet (null) is accepted. */
static int config_load(const char *path, bool allow_unset, CliConfig *ret)
{
        static const char *const keys[] = { "version",
                                            "provider",
                                            "clusterName",
                                            "kubernetesVersion",
                                            "serviceCidr",
                                            "attestation",
                                            "measurementsSource",
                                            "infrastructure",
                                            "policyVersion",
                                            "tdxPcsUrl",
                                            NULL };
        _cleanup_(cli_config_done) CliConfig c = {};
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        JsonCtx ctx = { .source = path, .path = "" };
        json_t *att = NULL, *ms_source = NULL;
        char *source = NULL;
        int64_t version;
        Diag d;
        int r;

        diag_clear(&d);
        ctx.diag = &d;
        r = json_parse_file(path, JSON_FILE_SIZE_MAX, &c.json, &d);
        if (r >= 0)
                r = json_check_keys(&ctx, c.json, keys);
        if (r >= 0)
                r = json_get_int(&ctx, c.json, "version", true, CONFIG_VERSION, CONFIG_VERSION,
                                 &version);
        if (r >= 0)
                r = json_get_string(&ctx, c.json, "provider", true, &c.provider);
        if (r >= 0 && provider_from_string(c.provider) < 0)
                r = diag_fail(&d, -EBADMSG, "json-schema", -1,
                              "%s: .provider: '%s' is not one of qemu, gcp, azure, aws", path,
                              c.provider);
        if (r >= 0)
                r = get_optional_string(&ctx, c.json, "clusterName", &c.cluster_name);
        if (r >= 0)
                r = get_optional_string(&ctx, c.json, "kubernetesVersion", &c.kubernetes_version);
        if (r >= 0)
                r = get_optional_string(&ctx, c.json, "serviceCidr", &c.service_cidr);
        if (r >= 0)
                r = get_optional_string(&ctx, c.json, "tdxPcsUrl", &c.tdx_pcs_url);
        if (r >= 0 && c.tdx_pcs_url && !tdx_pcs_url_ok(c.tdx_pcs_url))
                r = diag_fail(&d, -EBADMSG, "json-schema", -1,
                              "%s: .tdxPcsUrl: '%s' is not the TDX base URL of Intel PCS or a "
                              "PCCS (it ends in /tdx/certification/v4)",
                              path, c.tdx_pcs_url);
        if (r >= 0) {
                r = json_get_int(&ctx, c.json, "policyVersion", false, 1, POLICY_UPDATE_VERSION_MAX,
                                 &c.policy_version);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0)
                r = json_get_object(&ctx, c.json, "attestation", true, &att);
        if (r >= 0) {
                r = json_get_object(&ctx, c.json, "measurementsSource", false, &ms_source);
                if (r >= 0)
                        r = measurements_source_parse(&ctx, ms_source, &c.measurements_source);
                else if (r == -ENOENT)
                        r = 0;
        }
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        if (json_dump_compact(att, &c.policy) < 0 || asprintf(&source, "%s: attestation", path) < 0)
                return log_oom();
        c.policy_source = source;
        /* Checked now, before anything else happens: a value not set yet is refused here
         * (unless allow_unset). */
        r = attest_policy_parse(c.policy, strlen(c.policy), c.policy_source, &pol, &d);
        if (r < 0 && !(allow_unset && r == -ENODATA))
                return log_error_errno(r, "%s", d.message);
        *ret = c;
        memset(&c, 0, sizeof(c)); /* handed over: nothing for the cleanup to free */
        return 0;
}

int cli_config_load(const char *path, CliConfig *ret)
{
        return config_load(path, false, ret);
}

int cli_config_load_unset(const char *path, CliConfig *ret)
{
        return config_load(path, true, ret);
}

int cli_policy_or_config(const char *verb, const char *policy_path, const char *config_path,
                         CliConfig *config)
{
        if (policy_path && config_path)
                return log_error_errno(
                        -EUSAGE, "%s: --policy and --config are alternatives: give one.", verb);
        return config_path ? cli_config_load(config_path, config) : 0;
}

int cli_policy_load(const char *policy_path, const CliConfig *config, AttestPolicy **ret, Diag *d)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        const char *source = policy_path ?: config->policy_source;
        int r;

        r = policy_path ? attest_policy_load(policy_path, &p, d)
                        : attest_policy_parse(config->policy, strlen(config->policy),
                                              config->policy_source, &p, d);
        if (r < 0)
                return r;
        /* What the CLI verifies with must pin the image itself. */
        r = attest_policy_check_enforcing(p, source, d);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

void cli_policy_bind_cluster(AttestPolicy *p, const uint8_t cid[static 32])
{
        p->pcrs[15] = (PcrExpectation){ .present = true };
        kdf_pcr15_expected(cid, p->pcrs[15].expected);
        attest_policy_bind_cluster(p, cid);
}

int verb_config(int argc, char *argv[], void *userdata)
{
        static const Verb verbs[] = {
                { "generate", 0, VERB_ANY, config_generate_verb,
                  "write a cluster configuration for qemu, gcp, azure or aws" },
                { "fetch-measurements", 0, VERB_ANY, verb_config_fetch_measurements,
                  "download a signed measurements file into the configuration's PCRs" },
                {},
        };

        return verbs_dispatch("cloister config", argc - 1, argv + 1, verbs, userdata);
}
