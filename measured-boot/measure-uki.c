/* SPDX-License-Identifier: Apache-2.0 */
/* cloister-measure uki | image: predict the PCRs of a direct firmware boot of a UKI. */
#include <assert.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/measurements.h"
#include "cloister/pe.h"
#include "cloister/spawn.h"
#include "cloister/tcg-log.h"
#include "cloister/tdx.h"
#include "cloister/timestamp.h"
#include "cloister/uki.h"
#include "cloister/version.h"
#include "measure.h"

#define ESP_TYPE_GUID   "C12A7328-F81F-11D2-BA4B-00A0C93EC93B"
#define UKI_PATH        "::/EFI/BOOT/BOOTX64.EFI"
#define SFDISK_JSON_MAX (1024U * 1024U)

typedef struct Options {
        bool json;
        const char *name;
        const char *input;
        /* -o json only: the measurements file's format-2 fields (docs/measured-boot.md). */
        int64_t measurements_version;     /* 0: the creation time in seconds */
        const char *image_version;        /* NULL: IMAGE_VERSION of the UKI's .osrel */
        MeasurementsImageKind image_kind; /* UNKNOWN: CLOISTER_IMAGE_KIND of the .osrel */
        const char *created;              /* NULL: $SOURCE_DATE_EPOCH, else now */
} Options;

/* The help text's part about the measurements file that -o json prints. */
#define JSON_OPTIONS_HELP                                                                          \
        "\n"                                                                                       \
        "-o json prints a measurements file (format 2, docs/measured-boot.md), ready\n"            \
        "for 'cloister-measure sign'. With it:\n"                                                  \
        "  --name NAME                 the image name (default: the file name)\n"                  \
        "  --measurements-version N    the publisher's counter, 1.." MEASUREMENTS_VERSION_MAX_TEXT \
        ": every\n"                                                                                \
        "                              file you publish needs a larger one ('cloister\n"           \
        "                              config fetch-measurements' refuses an older one);\n"        \
        "                              default: the creation time in seconds since 1970\n"         \
        "  --image-version VERSION     default: IMAGE_VERSION of the UKI's os-release\n"           \
        "                              (.osrel section)\n"                                         \
        "  --image-kind cloud|test     the image's kind (image/README.md): default\n"              \
        "                              CLOISTER_IMAGE_KIND of the .osrel section (test\n"          \
        "                              also for VARIANT_ID=kubeadm-double); left out if\n"         \
        "                              neither says\n"                                             \
        "  --created YYYY-MM-DDTHH:MM:SSZ\n"                                                       \
        "                              the creation time, UTC (default: $SOURCE_DATE_EPOCH\n"      \
        "                              if set, for reproducible builds; else now)\n"
#define MEASUREMENTS_VERSION_MAX_TEXT "9007199254740991"

static int parse_measurements_version(const char *arg, int64_t *ret)
{
        int64_t v = 0;

        for (const char *p = arg; *p; p++) {
                if (*p < '0' || *p > '9' || v > (MEASUREMENTS_VERSION_MAX - (*p - '0')) / 10) {
                        v = 0;
                        break;
                }
                v = v * 10 + (*p - '0');
        }
        if (v < 1)
                return log_error_errno(-EUSAGE,
                                       "--measurements-version '%s': a decimal integer "
                                       "1.." MEASUREMENTS_VERSION_MAX_TEXT " is required.",
                                       arg);
        *ret = v;
        return 0;
}

static int parse_options(int argc, char *argv[], const char *usage, Options *o)
{
        enum { ARG_MEASUREMENTS_VERSION = 0x100, ARG_IMAGE_VERSION, ARG_IMAGE_KIND, ARG_CREATED };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "output", required_argument, NULL, 'o' },
                { "name", required_argument, NULL, 'n' },
                { "measurements-version", required_argument, NULL, ARG_MEASUREMENTS_VERSION },
                { "image-version", required_argument, NULL, ARG_IMAGE_VERSION },
                { "image-kind", required_argument, NULL, ARG_IMAGE_KIND },
                { "created", required_argument, NULL, ARG_CREATED },
                {},
        };
        time_t t;
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:n:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        fputs(usage, stdout);
                        fputs(JSON_OPTIONS_HELP, stdout);
                        return 0;
                case 'o':
                        if (strcmp(optarg, "json") == 0)
                                o->json = true, arg_output = OUTPUT_JSON;
                        else if (strcmp(optarg, "text") != 0)
                                return log_error_errno(-EUSAGE, "-o '%s': use text or json.",
                                                       optarg);
                        break;
                case 'n':
                        o->name = optarg;
                        break;
                case ARG_MEASUREMENTS_VERSION:
                        r = parse_measurements_version(optarg, &o->measurements_version);
                        if (r < 0)
                                return r;
                        break;
                case ARG_IMAGE_VERSION:
                        if (!measurements_text_valid(optarg))
                                return log_error_errno(-EUSAGE,
                                                       "--image-version: 1 to %u bytes without "
                                                       "control characters.",
                                                       MEASUREMENTS_TEXT_MAX);
                        o->image_version = optarg;
                        break;
                case ARG_IMAGE_KIND:
                        o->image_kind = measurements_image_kind_from_string(optarg);
                        if (o->image_kind < 0)
                                return log_error_errno(-EUSAGE, "--image-kind '%s': cloud or test.",
                                                       optarg);
                        break;
                case ARG_CREATED:
                        if (timestamp_parse_utc(optarg, &t) < 0)
                                return log_error_errno(-EUSAGE,
                                                       "--created '%s': an RFC 3339 UTC time "
                                                       "YYYY-MM-DDTHH:MM:SSZ is required.",
                                                       optarg);
                        o->created = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (argc - optind != 1)
                return log_error_errno(-EUSAGE, "%s: expected exactly one FILE. See --help.",
                                       argv[0]);
        if (!o->json &&
            (o->measurements_version || o->image_version || o->image_kind || o->created))
                return log_error_errno(-EUSAGE,
                                       "%s: --measurements-version, --image-version, "
                                       "--image-kind and --created are fields of the "
                                       "measurements file: they go with -o json.",
                                       argv[0]);
        o->input = argv[optind];
        if (!o->name) {
                const char *slash = strrchr(o->input, '/');
                o->name = slash ? slash + 1 : o->input;
        }
        {
                json_t *probe = json_string(o->name); /* NULL unless valid UTF-8 */
                if (!probe || !measurements_text_valid(o->name)) {
                        json_decref(probe);
                        return log_error_errno(-EUSAGE,
                                               "image name '%s' is not 1 to %u bytes of UTF-8 "
                                               "without control characters: give one with "
                                               "--name.",
                                               o->name, MEASUREMENTS_TEXT_MAX);
                }
                json_decref(probe);
        }
        return 1;
}

/* KEY= of the os-release in the UKI's .osrel section (os-release(5)), key given with its '=':
 * the value, its quotes removed. -ENOENT if there is none. The UKI is the publisher's own input,
 * but bounded all the same: the section lies inside the file (pe_parse()), the value is
 * checked. */
static int osrel_value(const uint8_t *data, size_t size, const char *key, char **ret)
{
        size_t key_len = strlen(key);
        _cleanup_(freep) PeImage *pe = calloc(1, sizeof(PeImage));
        _cleanup_(freep) char *value = NULL;
        const PeSection *s;
        const uint8_t *p, *end;

        if (!pe)
                return -ENOMEM;
        if (pe_parse(data, size, pe, NULL) < 0 || !(s = pe_find_section(pe, ".osrel")))
                return -ENOENT;
        p = data + s->raw_offset;
        end = p + MIN(s->virtual_size, s->raw_size);
        while (p < end) {
                const uint8_t *nl = memchr(p, '\n', (size_t) (end - p)), *eol = nl ?: end;
                size_t n = (size_t) (eol - p);

                if (n >= key_len && memcmp(p, key, key_len) == 0) {
                        const uint8_t *v = p + key_len;
                        size_t vn = n - key_len;

                        if (vn > 0 && v[vn - 1] == '\r')
                                vn--;
                        if (vn >= 2 && (v[0] == '"' || v[0] == '\'') && v[vn - 1] == v[0]) {
                                v++;
                                vn -= 2;
                        }
                        free(value); /* the last assignment wins, as in a shell */
                        value = strndup((const char *) v, vn);
                        if (!value)
                                return -ENOMEM;
                        if (strlen(value) != vn || strpbrk(value, "\"'\\$`"))
                                return -EBADMSG; /* a NUL or shell quoting: not read here */
                }
                p = eol + 1;
        }
        if (!value)
                return -ENOENT;
        if (!measurements_text_valid(value))
                return -EBADMSG;
        *ret = TAKE_PTR(value);
        return 0;
}

/* The image's kind: --image-kind, else the .osrel's CLOISTER_IMAGE_KIND (image/build writes
 * it), else test for the kubeadm double's VARIANT_ID (images built before the field), else
 * unknown (the file then says nothing). */
static int image_kind(const uint8_t *uki, size_t size, const Options *o, MeasurementsImageKind *ret)
{
        _cleanup_(freep) char *kind = NULL, *variant = NULL;
        int r;

        if (o->image_kind) {
                *ret = o->image_kind;
                return 0;
        }
        r = osrel_value(uki, size, "CLOISTER_IMAGE_KIND=", &kind);
        if (r == -ENOMEM)
                return log_oom();
        if (r >= 0) {
                *ret = measurements_image_kind_from_string(kind);
                if (*ret < 0)
                        return log_error_errno(-EINVAL,
                                               "%s: the UKI's os-release (.osrel) says "
                                               "CLOISTER_IMAGE_KIND=%s: neither cloud nor test; "
                                               "give --image-kind.",
                                               o->input, kind);
                return 0;
        }
        r = osrel_value(uki, size, "VARIANT_ID=", &variant);
        if (r == -ENOMEM)
                return log_oom();
        *ret = r >= 0 && strcmp(variant, "kubeadm-double") == 0 ? MEASUREMENTS_IMAGE_KIND_TEST
                                                                : MEASUREMENTS_IMAGE_KIND_UNKNOWN;
        return 0;
}

/* The Kubernetes release the image carries: the .osrel's KUBERNETES_VERSION (image/build writes
 * the pinned one), into *ret; NULL if it names none. 'cloister upgrade apply' holds a change of
 * release against it (docs/upgrade.md, "Kubernetes versions"). */
static int kubernetes_version(const uint8_t *uki, size_t size, const Options *o, char **ret)
{
        _cleanup_(freep) char *v = NULL;
        KubernetesVersion kv;
        int r;

        r = osrel_value(uki, size, "KUBERNETES_VERSION=", &v);
        if (r == -ENOENT) {
                *ret = NULL;
                return 0;
        }
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0 || kubernetes_version_parse(v, &kv) < 0)
                return log_error_errno(-EINVAL,
                                       "%s: the UKI's os-release (.osrel) has a KUBERNETES_VERSION "
                                       "that is not a release v1.MINOR.PATCH: fix the image build.",
                                       o->input);
        *ret = TAKE_PTR(v);
        return 0;
}

/* The format-2 fields -o json writes: given, or their defaults (Options, above). */
static int json_fields(const uint8_t *uki, size_t size, const Options *o, int64_t *ret_version,
                       char **ret_image_version, char ret_created[static TIMESTAMP_UTC_SIZE])
{
        const char *sde = getenv("SOURCE_DATE_EPOCH");
        _cleanup_(freep) char *image_version = NULL;
        time_t t;
        int r;

        if (o->created) {
                r = timestamp_parse_utc(o->created, &t);
                assert(r >= 0); /* checked in parse_options() */
        } else if (sde) {
                if (timestamp_parse_epoch(sde, &t) < 0)
                        return log_error_errno(-EINVAL,
                                               "SOURCE_DATE_EPOCH='%s': not seconds since 1970 "
                                               "(0..%lld): fix it, or give --created.",
                                               sde, (long long) TIMESTAMP_UTC_MAX);
        } else
                t = time(NULL);
        if (timestamp_format_utc(t, ret_created) < 0)
                return log_error_errno(-ERANGE,
                                       "the creation time is outside 1970..9999: give --created.");
        if (!o->measurements_version && t < 1)
                return log_error_errno(-EINVAL,
                                       "the creation time is 1970-01-01T00:00:00Z, which gives "
                                       "no measurements version: give --measurements-version.");
        if (o->image_version)
                image_version = strdup(o->image_version);
        else {
                r = osrel_value(uki, size, "IMAGE_VERSION=", &image_version);
                if (r == -ENOMEM)
                        return log_oom();
                if (r < 0)
                        return log_error_errno(-EINVAL,
                                               "%s: the UKI's os-release (.osrel) has %s "
                                               "IMAGE_VERSION: give the measurements file's image "
                                               "version with --image-version.",
                                               o->input, r == -ENOENT ? "no" : "an unusable");
        }
        if (!image_version)
                return log_oom();
        *ret_version = o->measurements_version ?: (int64_t) t;
        *ret_image_version = TAKE_PTR(image_version);
        return 0;
}

/* The "tdx" object of the measurements file: RTMR1..3 (RTMR0 is the platform's). */
static json_t *tdx_json(const TdxRtmrPrediction *t)
{
        static const char *const keys[] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3" };
        _cleanup_(json_decrefp) json_t *o = json_object();
        char hex[97];

        if (!o)
                return NULL;
        for (int i = 1; i < 4; i++) {
                if (!t->predicted[i])
                        continue;
                hex_encode_buf(t->rtmrs.rtmr[i], 48, hex, sizeof(hex));
                if (json_object_set_new(o, keys[i], json_string(hex)) < 0)
                        return NULL;
        }
        return TAKE_PTR(o);
}

static void print_tdx(const TdxRtmrPrediction *t)
{
        char hex[97];

        printf("\nTDX (TDVF firmware, no vTPM), events (SHA-384):\n");
        for (size_t i = 0; i < t->n_events; i++) {
                hex_encode_buf(t->events[i].digest, 48, hex, sizeof(hex));
                printf("  RTMR%u  %s  %s\n", t->events[i].mr_index - 1, hex,
                       t->events[i].description);
        }
        printf("  (the kernel's EFI stub %s EFI_CC_MEASUREMENT_PROTOCOL: RTMR2 %s)\n",
               t->kernel_cc ? "uses" : "does not use",
               t->kernel_cc ? "holds its LoadOptions and initrd" : "stays zero");
        printf("\npredicted RTMRs (SHA-384; RTMR0 is the platform's, not predicted):\n");
        for (int i = 1; i < 4; i++) {
                hex_encode_buf(t->rtmrs.rtmr[i], 48, hex, sizeof(hex));
                printf("  RTMR%d  %s\n", i, hex);
        }
}

static int print_prediction(const UkiPrediction *p, const TdxRtmrPrediction *t, const uint8_t *uki,
                            size_t size, const Options *o)
{
        char hex[65];
        int r;

        if (o->json) {
                _cleanup_(json_decrefp) json_t *root = json_object(), *m = json_object();
                _cleanup_(freep) char *text = NULL, *image_version = NULL, *k8s = NULL;
                char created[TIMESTAMP_UTC_SIZE];
                MeasurementsImageKind kind = MEASUREMENTS_IMAGE_KIND_UNKNOWN;
                int64_t version = 0;

                if (!root || !m)
                        return log_oom();
                r = json_fields(uki, size, o, &version, &image_version, created);
                if (r >= 0)
                        r = image_kind(uki, size, o, &kind);
                if (r >= 0)
                        r = kubernetes_version(uki, size, o, &k8s);
                if (r < 0)
                        return r;
                for (unsigned i = 0; i < UKI_PCR_COUNT; i++) {
                        char key[4];
                        if (!p->predicted[i])
                                continue;
                        hex_encode_buf(p->pcrs[i], 32, hex, sizeof(hex));
                        snprintf(key, sizeof(key), "%u", i);
                        if (json_object_set_new(
                                    m, key,
                                    json_pack("{s:s,s:b}", "expected", hex, "warnOnly", false)) < 0)
                                return log_oom();
                }
                if (json_object_set_new(root, "version",
                                        json_integer(MEASUREMENTS_FORMAT_VERSION)) < 0 ||
                    json_object_set_new(root, "measurementsVersion", json_integer(version)) < 0 ||
                    json_object_set_new(root, "image", json_string(o->name)) < 0 ||
                    json_object_set_new(root, "imageVersion", json_string(image_version)) < 0 ||
                    json_object_set_new(root, "created", json_string(created)) < 0 ||
                    (kind && json_object_set_new(
                                     root, "imageKind",
                                     json_string(measurements_image_kind_to_string(kind))) < 0) ||
                    (k8s && json_object_set_new(root, "kubernetesVersion", json_string(k8s)) < 0) ||
                    json_object_set(root, "measurements", m) < 0 ||
                    (t && json_object_set_new(root, "tdx", tdx_json(t)) < 0) ||
                    json_dump_pretty(root, &text) < 0)
                        return log_oom();
                printf("%s\n", text);
                return 0;
        }
        printf("image:   %s\nstub:    systemd-stub %s\ncmdline: %s\n\nevents (SHA-256):\n", o->name,
               p->stub_version, p->cmdline);
        for (size_t i = 0; i < p->n_events; i++) {
                hex_encode_buf(p->events[i].digest, 32, hex, sizeof(hex));
                printf("  PCR %2u  %s  %s\n", p->events[i].pcr, hex, p->events[i].description);
        }
        printf("\npredicted PCRs (SHA-256):\n");
        for (unsigned i = 0; i < UKI_PCR_COUNT; i++) {
                if (!p->predicted[i])
                        continue;
                hex_encode_buf(p->pcrs[i], 32, hex, sizeof(hex));
                printf("  %2u  %s\n", i, hex);
        }
        if (t)
                print_tdx(t);
        else
                printf("\nTDX RTMRs: not predicted from the UKI alone (RTMR1 holds the disk's "
                       "GPT): use 'cloister-measure image DISK.raw'.\n");
        return 0;
}

/* gpt: the disk's UEFI_GPT_DATA (image), NULL for a UKI alone: then no RTMRs. */
static int predict_file(const char *path, const Options *o, const uint8_t *gpt, size_t gpt_size)
{
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(freep) TdxRtmrPrediction *t = NULL;
        UkiPrediction p;
        size_t size;
        Diag d;
        int r;

        r = read_full_file(path, PE_SIZE_MAX, &data, &size);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", o->input);
        diag_clear(&d);
        r = uki_predict(data, size, &p, &d);
        if (r < 0 && d.message[0])
                return log_error_errno(r, "%s: %s", o->input, d.message);
        if (r < 0)
                return log_error_errno(r, "%s: cannot predict: %m", o->input);
        if (gpt) {
                t = calloc(1, sizeof(*t));
                if (!t) {
                        uki_prediction_done(&p);
                        return log_oom();
                }
                diag_clear(&d);
                r = tdx_predict_uki_rtmrs(data, size, gpt, gpt_size, t, &d);
                if (r < 0) {
                        uki_prediction_done(&p);
                        return log_error_errno(r, "%s: TDX RTMRs: %s", o->input,
                                               d.message[0] ? d.message : strerror(-r));
                }
        }
        r = print_prediction(&p, t, data, size, o);
        uki_prediction_done(&p);
        return r;
}

int verb_uki(int argc, char *argv[], void *userdata)
{
        Options o = {};
        int r = parse_options(
                argc, argv,
                "Usage: cloister-measure uki FILE.efi [-o text|json] [--name NAME]\n"
                "         [--measurements-version N] [--image-version VERSION]\n"
                "         [--image-kind cloud|test] [--created TIME]\n"
                "\n"
                "Predicts the PCRs (SHA-256 bank) that UEFI firmware and systemd-stub\n"
                "produce when the firmware boots this unified kernel image directly:\n"
                "PCR 4, 9 and 11, and PCR 8, 12, 13, 15, which must stay zero.\n",
                &o);
        if (r <= 0)
                return r;
        return predict_file(o.input, &o, NULL, 0);
}

/* The ESP's byte offset in a GPT disk image, as sfdisk (util-linux) reads the partition table. */
/* The first line of a helper tool's error output, for our one-line message. */
static void first_line(const char *path, char *buf, size_t size)
{
        _cleanup_(freep) uint8_t *text = NULL;
        size_t n = 0;

        buf[0] = '\0';
        if (read_full_file(path, 64 * 1024, &text, &n) < 0)
                return;
        for (size_t i = 0; i < n && i + 1 < size && text[i] != '\n'; i++) {
                buf[i] = text[i] >= 0x20 && text[i] < 0x7f ? (char) text[i] : '?';
                buf[i + 1] = '\0';
        }
}

static int find_esp(const char *disk, off_t image_size, const char *dir, uint64_t *ret_offset)
{
        char out[PATH_MAX], err[PATH_MAX];
        char *argv[] = { (char *) "sfdisk", (char *) "--json", (char *) "--", (char *) disk, NULL };
        char why[160];
        _cleanup_(freep) uint8_t *text = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        json_t *table, *parts, *part;
        json_int_t sector_size = 0, found = 0;
        const char *label;
        size_t size, i;
        int r;

        snprintf(out, sizeof(out), "%s/sfdisk.json", dir);
        snprintf(err, sizeof(err), "%s/sfdisk.err", dir);
        r = spawn_wait_output(argv, out, err);
        if (r == -ENOENT)
                return log_error_errno(r, "sfdisk not found: install util-linux's fdisk package.");
        if (r != 0) {
                first_line(err, why, sizeof(why));
                return log_error_errno(r < 0 ? r : -EBADMSG,
                                       "%s: sfdisk cannot read a partition table: %s", disk,
                                       why[0] ? why : "no reason given");
        }
        r = read_full_file(out, SFDISK_JSON_MAX, &text, &size);
        if (r >= 0)
                r = json_parse_buffer(text, size, "sfdisk --json", &j, NULL);
        if (r < 0)
                return log_error_errno(r, "%s: cannot parse sfdisk's output.", disk);
        table = json_object_get(j, "partitiontable");
        label = json_string_value(json_object_get(table, "label"));
        parts = json_object_get(table, "partitions");
        if (!label || strcmp(label, "gpt") != 0 || !json_is_array(parts))
                return log_error_errno(-EBADMSG, "%s: not a GPT disk image.", disk);
        sector_size = json_integer_value(json_object_get(table, "sectorsize"));
        if (sector_size == 0)
                sector_size = 512;
        json_array_foreach (parts, i, part) {
                const char *type = json_string_value(json_object_get(part, "type"));
                if (!type || strcasecmp(type, ESP_TYPE_GUID) != 0)
                        continue;
                json_t *start = json_object_get(part, "start");
                if (found > 0)
                        return log_error_errno(-EBADMSG,
                                               "%s: more than one EFI system partition: which "
                                               "one the firmware boots is not predictable.",
                                               disk);
                if (!json_is_integer(start) || json_integer_value(start) <= 0)
                        return log_error_errno(
                                -EBADMSG, "%s: the EFI system partition has no valid start.", disk);
                found = json_integer_value(start);
        }
        if (found <= 0)
                return log_error_errno(-ENOENT, "%s: no EFI system partition.", disk);
        if (sector_size != 512 && sector_size != 4096)
                return log_error_errno(-EBADMSG, "%s: sector size %lld is not 512 or 4096.", disk,
                                       (long long) sector_size);
        if ((uint64_t) found >= (uint64_t) image_size / (uint64_t) sector_size)
                return log_error_errno(-EBADMSG,
                                       "%s: the EFI system partition starts past the end of "
                                       "the image.",
                                       disk);
        *ret_offset = (uint64_t) found * (uint64_t) sector_size;
        return 0;
}

static void remove_dir(const char *dir)
{
        static const char *const files[] = { "sfdisk.json", "sfdisk.err", "uki.efi", "mcopy.log" };
        char path[PATH_MAX];

        for (size_t i = 0; i < ELEMENTSOF(files); i++) {
                snprintf(path, sizeof(path), "%s/%s", dir, files[i]);
                (void) unlink(path);
        }
        (void) rmdir(dir);
}

/* The UEFI_GPT_DATA firmware measures for this disk (its first megabyte, 512-byte sectors). */
static int read_gpt(const char *disk, uint8_t **ret, size_t *ret_size)
{
        _cleanup_(freep) uint8_t *head = malloc(TCG_GPT_READ_MAX);
        _cleanup_(closep) int fd = -EBADF;
        ssize_t n;
        Diag d;
        int r;

        if (!head)
                return log_oom();
        fd = open(disk, O_RDONLY | O_CLOEXEC);
        if (fd < 0)
                return log_error_errno(-errno, "%s: cannot read: %m", disk);
        n = pread(fd, head, TCG_GPT_READ_MAX, 0);
        if (n < 0)
                return log_error_errno(-errno, "%s: cannot read: %m", disk);
        diag_clear(&d);
        r = tcg_gpt_event_data(head, (size_t) n, ret, ret_size, &d);
        if (r == -ENOMEM)
                return log_oom();
        if (r < 0)
                return log_error_errno(r,
                                       "%s: %s. The TDX RTMR1 prediction measures the primary "
                                       "GPT as firmware does: write the disk's partition table "
                                       "again (sfdisk).",
                                       disk, d.message);
        return 0;
}

int verb_image(int argc, char *argv[], void *userdata)
{
        char dir[] = "/tmp/cloister-measure.XXXXXX", uki[PATH_MAX], log[PATH_MAX], src[PATH_MAX];
        _cleanup_(freep) uint8_t *gpt = NULL;
        size_t gpt_size = 0;
        Options o = {};
        struct stat st;
        uint64_t offset = 0;
        char why[160];
        int r = parse_options(
                argc, argv,
                "Usage: cloister-measure image DISK.raw [-o text|json] [--name NAME]\n"
                "         [--measurements-version N] [--image-version VERSION]\n"
                "         [--image-kind cloud|test] [--created TIME]\n"
                "\n"
                "Reads the GPT of a raw disk image (sfdisk), takes the UKI the\n"
                "firmware boots from its EFI system partition (" UKI_PATH ", with\n"
                "mtools; nothing is mounted) and predicts its PCRs as 'uki' does,\n"
                "and the TDX RTMR1..3 of a TD (TDVF firmware, no vTPM) booting the\n"
                "disk: RTMR1 holds the GPT, which 'uki' alone cannot know.\n",
                &o);
        if (r <= 0 || !o.input)
                return r;
        if (access(o.input, R_OK) < 0 || stat(o.input, &st) < 0)
                return log_error_errno(-errno, "%s: cannot read: %m", o.input);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(-EINVAL, "%s: not a regular file: give a raw disk image.",
                                       o.input);
        if (!mkdtemp(dir))
                return log_error_errno(-errno, "Cannot create a temporary directory: %m");
        r = find_esp(o.input, st.st_size, dir, &offset);
        if (r < 0)
                goto out;
        snprintf(uki, sizeof(uki), "%s/uki.efi", dir);
        snprintf(log, sizeof(log), "%s/mcopy.log", dir);
        snprintf(src, sizeof(src), "%s@@%llu", o.input, (unsigned long long) offset);
        {
                char *mcopy[] = { (char *) "mcopy",  (char *) "-n", (char *) "-i", src,
                                  (char *) UKI_PATH, uki,           NULL };
                /* mtools refuses odd geometry unless told not to check it. */
                setenv("MTOOLS_SKIP_CHECK", "1", 1);
                r = spawn_wait(mcopy, log);
        }
        if (r == -ENOENT) {
                log_error("mcopy not found: install the mtools package.");
                goto out;
        }
        if (r != 0) {
                first_line(log, why, sizeof(why));
                r = log_error_errno(r < 0 ? r : -ENOENT,
                                    "%s: cannot read %s from the EFI system partition at byte "
                                    "%llu: %s",
                                    o.input, UKI_PATH + 2, (unsigned long long) offset,
                                    why[0] ? why : "mcopy failed");
                goto out;
        }
        r = read_gpt(o.input, &gpt, &gpt_size);
        if (r >= 0)
                r = predict_file(uki, &o, gpt, gpt_size);
out:
        remove_dir(dir);
        return r;
}
