/* SPDX-License-Identifier: Apache-2.0 */
/* cloister-measure snp-launch: the SEV-SNP launch measurement of a guest, from its firmware. */
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json-result.h"
#include "cloister/log.h"
#include "cloister/measurements.h"
#include "cloister/sev-snp.h"
#include "cloister/snp-launch.h"
#include "cloister/snp-measurements.h"
#include "measure.h"

/* Direct-boot inputs are hashed whole; a kernel or an initrd larger than this is refused. */
#define BOOT_FILE_MAX (1024U * 1024U * 1024U)
#define APPEND_MAX    (64U * 1024U)

typedef struct Options {
        const char *firmware, *kernel, *initrd, *append, *vcpu_type, *add_to;
        unsigned vcpus;
        SnpVmm vmm;
        uint64_t guest_features;
        bool has_firmware_digest, json;
        uint8_t firmware_digest[SNP_LD_SIZE];
} Options;

static void help(void)
{
        printf("Usage: cloister-measure snp-launch --firmware F --vcpus N [OPTIONS]\n"
               "\n"
               "Prints the SEV-SNP launch measurement (the attestation report's MEASUREMENT,\n"
               "96 hex digits) of a guest booted from firmware F: its pages, the sections its\n"
               "SEV metadata lists, the kernel-hashes page for a direct boot, one VMSA per vCPU.\n"
               "\n"
               "  --firmware F           the firmware image the VMM maps (QEMU: -bios F)\n"
               "  --vcpus N              vCPUs, 1..%u\n"
               "  --vcpu-type T          QEMU's -cpu model (RDX at reset; default EPYC-v4):\n"
               "                        ",
               SNP_LAUNCH_VCPUS_MAX);
        for (size_t i = 0, col = 24; snp_vcpu_type_name(i); i++) {
                size_t w = strlen(snp_vcpu_type_name(i)) + 1;
                if (col + w > 80) {
                        printf("\n                        ");
                        col = 24;
                }
                printf(" %s", snp_vcpu_type_name(i));
                col += w;
        }
        printf("\n"
               "                         (ignored for ec2 and gce: a fixed RDX; gce with a\n"
               "                         Genoa type is refused, not modelled)\n"
               "  --vmm qemu|ec2|gce     who launches the guest (default qemu: QEMU/KVM with a\n"
               "                         Linux 6.10 or later host)\n"
               "  --guest-features HEX   SEV_FEATURES of the VMSA (default 0x1; Linux hosts\n"
               "                         6.6-6.7 used 0x21)\n"
               "  --kernel K --initrd I --append S\n"
               "                         direct boot (QEMU kernel-hashes=on): their SHA-256 go\n"
               "                         into the firmware's SNP_KERNEL_HASHES page; the\n"
               "                         firmware must have one (an AmdSevX64 build)\n"
               "  --firmware-digest HEX  start from the digest of the firmware's pages given in\n"
               "                         advance (96 hex digits, as providers publish it); the\n"
               "                         SEV metadata is still read from --firmware\n"
               "  -o text|json           json: the measurement and every input that went into\n"
               "                         it, with the firmware's SHA-256\n"
               "  --add-to FILE          add the result to the measurements file FILE\n"
               "                         (snp.launchMeasurements, one entry per vCPU count,\n"
               "                         type, VMM and guest features), to sign afterwards\n"
               "\n"
               "A wrong parameter gives another, equally valid-looking value: the VMM, the\n"
               "vCPU type and the guest features must be those the guest is launched with.\n"
               "See docs/snp.md, \"Launch measurement\".\n");
}

static int parse_u64_hex(const char *s, uint64_t *ret)
{
        char *end = NULL;
        unsigned long long v;

        if (strncasecmp(s, "0x", 2) == 0)
                s += 2;
        if (!*s || strlen(s) > 16 || strspn(s, "0123456789abcdefABCDEF") != strlen(s))
                return -EINVAL;
        errno = 0;
        v = strtoull(s, &end, 16);
        if (errno != 0 || *end)
                return -EINVAL;
        *ret = v;
        return 0;
}

static int parse_options(int argc, char *argv[], Options *o)
{
        enum {
                ARG_FIRMWARE = 0x100,
                ARG_VCPUS,
                ARG_VCPU_TYPE,
                ARG_VMM,
                ARG_FEATURES,
                ARG_KERNEL,
                ARG_INITRD,
                ARG_APPEND,
                ARG_DIGEST,
                ARG_ADD_TO,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "output", required_argument, NULL, 'o' },
                { "firmware", required_argument, NULL, ARG_FIRMWARE },
                { "vcpus", required_argument, NULL, ARG_VCPUS },
                { "vcpu-type", required_argument, NULL, ARG_VCPU_TYPE },
                { "vmm", required_argument, NULL, ARG_VMM },
                { "guest-features", required_argument, NULL, ARG_FEATURES },
                { "kernel", required_argument, NULL, ARG_KERNEL },
                { "initrd", required_argument, NULL, ARG_INITRD },
                { "append", required_argument, NULL, ARG_APPEND },
                { "firmware-digest", required_argument, NULL, ARG_DIGEST },
                { "add-to", required_argument, NULL, ARG_ADD_TO },
                {},
        };
        bool have_vcpus = false;
        uint32_t sig = 0;
        char *end;
        int c;

        *o = (Options){ .vmm = SNP_VMM_QEMU, .guest_features = 0x1 };
        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'o':
                        if (strcmp(optarg, "json") == 0)
                                o->json = true, arg_output = OUTPUT_JSON;
                        else if (strcmp(optarg, "text") != 0)
                                return log_error_errno(-EUSAGE, "-o '%s': use text or json.",
                                                       optarg);
                        break;
                case ARG_FIRMWARE:
                        o->firmware = optarg;
                        break;
                case ARG_VCPUS: {
                        unsigned long v;

                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno != 0 || *end || !*optarg || optarg[0] == '-' || v == 0 ||
                            v > SNP_LAUNCH_VCPUS_MAX)
                                return log_error_errno(-EUSAGE,
                                                       "--vcpus '%s': a vCPU count 1..%u is "
                                                       "required (KVM's limit per VM).",
                                                       optarg, SNP_LAUNCH_VCPUS_MAX);
                        o->vcpus = (unsigned) v;
                        have_vcpus = true;
                        break;
                }
                case ARG_VCPU_TYPE:
                        if (snp_vcpu_signature_from_name(optarg, &sig) < 0)
                                return log_error_errno(-EUSAGE,
                                                       "--vcpu-type '%s': unknown vCPU type; "
                                                       "see 'cloister-measure snp-launch --help' "
                                                       "for the known ones (QEMU -cpu models).",
                                                       optarg);
                        o->vcpu_type = optarg;
                        break;
                case ARG_VMM:
                        o->vmm = snp_vmm_from_string(optarg);
                        if (o->vmm < 0)
                                return log_error_errno(-EUSAGE, "--vmm '%s': use qemu, ec2 or gce.",
                                                       optarg);
                        break;
                case ARG_FEATURES:
                        if (parse_u64_hex(optarg, &o->guest_features) < 0)
                                return log_error_errno(
                                        -EUSAGE,
                                        "--guest-features '%s': a hexadecimal "
                                        "SEV_FEATURES value such as 0x1 is required.",
                                        optarg);
                        break;
                case ARG_KERNEL:
                        o->kernel = optarg;
                        break;
                case ARG_INITRD:
                        o->initrd = optarg;
                        break;
                case ARG_APPEND:
                        if (strlen(optarg) > APPEND_MAX)
                                return log_error_errno(-EUSAGE, "--append: longer than %u bytes.",
                                                       APPEND_MAX);
                        o->append = optarg;
                        break;
                case ARG_DIGEST:
                        if (hex_decode_exact(optarg, o->firmware_digest, SNP_LD_SIZE) < 0)
                                return log_error_errno(-EUSAGE,
                                                       "--firmware-digest: 96 hex digits (the "
                                                       "SHA-384 launch digest of the firmware's "
                                                       "pages) are required.");
                        o->has_firmware_digest = true;
                        break;
                case ARG_ADD_TO:
                        o->add_to = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "snp-launch: unexpected argument '%s'. See --help.",
                                       argv[optind]);
        if (!o->firmware)
                return log_error_errno(-EUSAGE,
                                       "snp-launch: --firmware F is required: the SEV metadata "
                                       "comes from it, even with --firmware-digest. See --help.");
        if (!have_vcpus)
                return log_error_errno(-EUSAGE,
                                       "snp-launch: --vcpus N is required: every vCPU's initial "
                                       "state is measured. See --help.");
        if (!o->kernel && (o->initrd || o->append))
                return log_error_errno(-EUSAGE, "snp-launch: --initrd and --append go with "
                                                "--kernel (a direct boot).");
        if (o->add_to && o->json)
                return log_error_errno(-EUSAGE,
                                       "snp-launch: --add-to writes the measurements file; -o json "
                                       "goes without it.");
        if (o->vcpu_type && o->vmm == SNP_VMM_GCE && sig == 0x00A10F10)
                return log_error_errno(-EOPNOTSUPP,
                                       "snp-launch: GCE on Genoa is not modelled: Google's "
                                       "verifier measures the VMSAs at a 52-bit address there, "
                                       "and no reference value confirms it (docs/snp.md).");
        if (o->vcpu_type && o->vmm != SNP_VMM_QEMU)
                log_notice("snp-launch: --vcpu-type is ignored for --vmm %s: its VMSA holds a "
                           "fixed RDX, not the vCPU model's signature.",
                           snp_vmm_to_string(o->vmm));
        if (!o->vcpu_type)
                o->vcpu_type = "EPYC-v4";
        return 1;
}

/* The firmware, read in one exact-size buffer: it is neither secret nor grown piecemeal (it is
 * read on every measurement and hashed whole, see tests/bench/bench-snp-launch.c). A file that
 * changes size while it is read is refused. */
typedef struct Image {
        uint8_t *data; /* mmap'ed */
        size_t size, mapped;
} Image;

static void image_done(Image *i)
{
        if (i->mapped)
                (void) munmap(i->data, i->mapped);
        *i = (Image){};
}

static Image image_take(Image *i)
{
        Image r = *i;

        *i = (Image){};
        return r;
}

static int read_firmware(const char *path, Image *ret)
{
        void *p;
        _cleanup_(closep) int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
        _cleanup_(image_done) Image img = {};
        struct stat st;
        char extra;

        if (fd < 0 || fstat(fd, &st) < 0)
                return log_error_errno(negative_errno(), "%s: cannot read: %m", path);
        if (!S_ISREG(st.st_mode))
                return log_error_errno(
                        -EINVAL, "%s: not a regular file: the firmware image is needed.", path);
        if ((uint64_t) st.st_size > SNP_FIRMWARE_SIZE_MAX)
                return log_error_errno(-EMSGSIZE, "%s: larger than %u bytes: not a firmware image.",
                                       path, SNP_FIRMWARE_SIZE_MAX);
        /* Pre-faulted in one call: page by page, the faults cost about as much as the hashing. */
        p = mmap(NULL, MAX((size_t) st.st_size, (size_t) 1), PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
        if (p == MAP_FAILED)
                return log_oom();
        img.data = p;
        img.mapped = MAX((size_t) st.st_size, (size_t) 1);
        while (img.size < (size_t) st.st_size) {
                ssize_t n = read(fd, img.data + img.size, (size_t) st.st_size - img.size);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        return log_error_errno(n < 0 ? negative_errno() : -EIO,
                                               "%s: cannot read: %s", path,
                                               n < 0 ? strerror(errno) : "the file shrank");
                img.size += (size_t) n;
        }
        if (read(fd, &extra, 1) != 0)
                return log_error_errno(-EIO, "%s: the file changed while it was read.", path);
        *ret = image_take(&img);
        return 0;
}

static void describe(const Options *o, char *buf, size_t size)
{
        (void) snprintf(buf, size, "%u vCPU%s%s%s, VMM %s, guest features 0x%" PRIx64 "%s",
                        o->vcpus, o->vcpus == 1 ? "" : "s", o->vmm == SNP_VMM_QEMU ? " " : "",
                        o->vmm == SNP_VMM_QEMU ? o->vcpu_type : "", snp_vmm_to_string(o->vmm),
                        o->guest_features, o->kernel ? ", direct boot" : "");
}

static int hash_file(const char *path, uint8_t ret[static 32])
{
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size;
        int r;

        r = read_full_file(path, BOOT_FILE_MAX, &data, &size);
        if (r == -EMSGSIZE)
                return log_error_errno(r, "%s: larger than %u bytes.", path, BOOT_FILE_MAX);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", path);
        crypto_sha256(data, size, ret);
        return 0;
}

static json_t *hex_json(const uint8_t *data, size_t size)
{
        _cleanup_(freep) char *h = NULL;
        return hex_encode(data, size, &h) < 0 ? NULL : json_string(h);
}

static json_t *hex_u64_json(uint64_t v, int width)
{
        char buf[32];
        (void) snprintf(buf, sizeof(buf), "0x%0*" PRIx64, width, v);
        return json_string(buf);
}

static int print_json(const Options *o, const SnpLaunchInput *in, const SnpFirmware *fw,
                      const uint8_t *fw_digest, const uint8_t ld[SNP_LD_SIZE])
{
        _cleanup_(json_decrefp) json_t *root = NULL, *sections = json_array(), *boot = NULL;
        /* Only QEMU puts the vCPU model's signature in the VMSA (ec2 and gce: RDX 0x600). */
        bool qemu = in->vmm == SNP_VMM_QEMU;
        uint8_t fw_sha256[32];

        if (!sections)
                return log_oom();
        for (size_t i = 0; i < fw->n_sections; i++) {
                const SnpFirmwareSection *s = &fw->sections[i];
                if (json_array_append_new(sections,
                                          json_pack("{s:o,s:o,s:s}", "gpa", hex_u64_json(s->gpa, 8),
                                                    "size", hex_u64_json(s->size, 0), "type",
                                                    snp_section_type_to_string(s->type))) < 0)
                        return log_oom();
        }
        crypto_sha256(in->firmware, in->firmware_size, fw_sha256);
        if (o->kernel)
                boot = json_pack("{s:{s:s,s:o},s:{s:o,s:o},s:{s:o,s:o}}", "kernel", "path",
                                 o->kernel, "sha256", hex_json(in->kernel_sha256, 32), "initrd",
                                 "path", o->initrd ? json_string(o->initrd) : json_null(), "sha256",
                                 hex_json(in->initrd_sha256, 32), "cmdline", "append",
                                 o->append ? json_string(o->append) : json_null(), "sha256",
                                 hex_json(in->cmdline_sha256, 32));
        else
                boot = json_null();
        root = json_pack(
                "{s:o,s:{s:s,s:I,s:o,s:o,s:o,s:b,s:o,s:o,s:b},s:i,s:o,s:o,s:s,s:o,s:O}",
                "measurement", hex_json(ld, SNP_LD_SIZE), "firmware", "path", o->firmware, "size",
                (json_int_t) in->firmware_size, "sha256", hex_json(fw_sha256, 32), "gpa",
                hex_u64_json(fw->gpa, 8), "digest", hex_json(fw_digest, SNP_LD_SIZE), "digestGiven",
                o->has_firmware_digest, "apResetAddress",
                fw->has_reset_block ? hex_u64_json(fw->ap_eip, 8) : json_null(), "sections",
                json_incref(sections), "kernelHashesSection", fw->has_hash_table, "vcpus",
                (int) in->vcpus, "vcpuType", qemu ? json_string(o->vcpu_type) : json_null(),
                "vcpuSignature", qemu ? hex_u64_json(in->vcpu_signature, 8) : json_null(), "vmm",
                snp_vmm_to_string(in->vmm), "guestFeatures", hex_u64_json(in->guest_features, 0),
                "directBoot", boot);
        if (!root || json_object_update_new(root, result_new("cloister-measure snp-launch")) < 0 ||
            result_print(root) < 0)
                return log_oom();
        return 0;
}

/* Adds (or replaces: same vCPUs, type, VMM, features) entry in FILE's snp.launchMeasurements.
 * The file must be a valid format-2 measurements file before and after. */
static int add_entry(const char *path, const SnpLaunchEntry *entry)
{
        _cleanup_(measurements_file_freep) MeasurementsFile *before = NULL, *after = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        _cleanup_(freep) char *text = NULL, *doc = NULL;
        json_t *snp, *list, *item;
        size_t size, i;
        Diag d;
        int r;

        r = read_full_file(path, MEASUREMENTS_FILE_SIZE_MAX, &data, &size);
        if (r == -EMSGSIZE)
                return log_error_errno(r, "%s: larger than %u bytes: not a measurements file.",
                                       path, MEASUREMENTS_FILE_SIZE_MAX);
        if (r < 0)
                return log_error_errno(r,
                                       "%s: cannot read: %m (--add-to takes the file "
                                       "'cloister-measure image -o json' wrote)",
                                       path);
        diag_clear(&d);
        r = measurements_file_parse(data, size, path, &before, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        if (before->format_version < 2)
                return log_error_errno(-EPROTONOSUPPORT,
                                       "%s: format 1 has no place for SNP launch measurements: "
                                       "make it again with 'cloister-measure image IMAGE -o json'.",
                                       path);
        r = json_parse_buffer(data, size, path, &j, &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        snp = json_object_get(j, "snp");
        if (!snp && (json_object_set_new(j, "snp", json_object()) < 0 ||
                     !(snp = json_object_get(j, "snp"))))
                return log_oom();
        list = json_object_get(snp, "launchMeasurements");
        if (!list && (json_object_set_new(snp, "launchMeasurements", json_array()) < 0 ||
                      !(list = json_object_get(snp, "launchMeasurements"))))
                return log_oom();
        /* The parse above checked every entry: index i of the file is before->snp_launch[i]. */
        for (i = 0; i < before->n_snp_launch; i++) {
                const SnpLaunchEntry *e = &before->snp_launch[i];
                if (e->vcpus == entry->vcpus && strcmp(e->vcpu_type, entry->vcpu_type) == 0 &&
                    strcmp(e->vmm, entry->vmm) == 0 && e->guest_features == entry->guest_features)
                        break;
        }
        item = snp_launch_entry_to_json(entry);
        if (!item)
                return log_oom();
        if (i < before->n_snp_launch)
                r = json_array_set_new(list, i, item);
        else if (before->n_snp_launch >= SNP_POLICY_LAUNCH_MAX) {
                json_decref(item);
                return log_error_errno(-E2BIG, "%s: already %u SNP launch measurements.", path,
                                       SNP_POLICY_LAUNCH_MAX);
        } else
                r = json_array_append_new(list, item);
        if (r < 0 || json_dump_pretty(j, &text) < 0 || asprintf(&doc, "%s\n", text) < 0)
                return log_oom();
        r = measurements_file_parse(doc, strlen(doc), path, &after, &d);
        if (r < 0)
                return log_error_errno(r, "%s: the result would not be valid: %s", path, d.message);
        r = write_file_atomic(path, doc, strlen(doc), 0644, 0);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", path);
        return 0;
}

int verb_snp_launch(int argc, char *argv[], void *userdata)
{
        _cleanup_(image_done) Image image = {};
        const uint8_t *firmware;
        uint8_t ld[SNP_LD_SIZE], fw_digest[SNP_LD_SIZE];
        SnpLaunchInput in = {};
        SnpFirmware fw = {};
        Options o;
        char what[160];
        size_t size = 0;
        Diag d;
        int r;

        r = parse_options(argc, argv, &o);
        if (r <= 0)
                return r;

        /* Read the inputs. */
        r = read_firmware(o.firmware, &image);
        if (r < 0)
                return r;
        firmware = image.data;
        size = image.size;
        in = (SnpLaunchInput){ .firmware = firmware,
                               .firmware_size = size,
                               .vcpus = o.vcpus,
                               .vmm = o.vmm,
                               .guest_features = o.guest_features };
        (void) snp_vcpu_signature_from_name(o.vcpu_type, &in.vcpu_signature); /* checked */
        if (o.kernel) {
                in.direct_boot = true;
                r = hash_file(o.kernel, in.kernel_sha256);
                if (r >= 0 && o.initrd)
                        r = hash_file(o.initrd, in.initrd_sha256);
                else if (r >= 0)
                        crypto_sha256("", 0, in.initrd_sha256); /* QEMU: no initrd, empty */
                if (r < 0)
                        return r;
                snp_cmdline_sha256(o.append, in.cmdline_sha256);
        }
        if (o.has_firmware_digest)
                in.firmware_digest = o.firmware_digest;

        /* Compute. */
        describe(&o, what, sizeof(what));
        diag_clear(&d);
        r = snp_firmware_parse(firmware, size, &fw, &d);
        if (r >= 0)
                r = snp_launch_digest(&in, ld, &d);
        if (r < 0)
                return log_error_errno(r, "%s: %s (%s)", o.firmware, d.message, what);

        /* Write. */
        if (o.json) {
                if (o.has_firmware_digest)
                        memcpy(fw_digest, o.firmware_digest, SNP_LD_SIZE);
                else if (snp_firmware_digest(firmware, size, fw_digest, NULL) < 0)
                        return -EINVAL;
                return print_json(&o, &in, &fw, fw_digest, ld);
        }
        if (o.add_to) {
                SnpLaunchEntry e = { .vcpus = o.vcpus, .guest_features = o.guest_features };

                memcpy(e.measurement, ld, SNP_LD_SIZE);
                /* Only QEMU puts the vCPU model's signature in the VMSA. */
                if (o.vmm == SNP_VMM_QEMU)
                        (void) snprintf(e.vcpu_type, sizeof(e.vcpu_type), "%s", o.vcpu_type);
                (void) snprintf(e.vmm, sizeof(e.vmm), "%s", snp_vmm_to_string(o.vmm));
                r = add_entry(o.add_to, &e);
                if (r < 0)
                        return r;
                log_info("%s: snp.launchMeasurements has the value for %s.", o.add_to, what);
        }
        hex_encode_buf(ld, SNP_LD_SIZE, what, sizeof(what));
        printf("%s\n", what);
        return 0;
}

int verb_snp_host_data(int argc, char *argv[], void *userdata)
{
        uint8_t cluster_id[32], host_data[32];
        char hex[65];

        if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
                printf("Usage: cloister-measure snp-host-data CLUSTER_ID\n\n"
                       "Prints the SEV-SNP HOST_DATA (64 hex digits) the nodes that join cluster\n"
                       "CLUSTER_ID (64 hex digits, as 'cloister apply' prints it) are launched\n"
                       "with when the policy sets snp.hostDataFromClusterId: SHA-256 of\n"
                       "\"" SNP_HOST_DATA_CONTEXT "\" and the cluster ID. Set it where the\n"
                       "platform lets the owner do so (QEMU: -object sev-snp-guest,host-data=\n"
                       "BASE64). See docs/snp.md.\n");
                return 0;
        }
        if (argc == 2 && argv[1][0] == '-')
                return log_error_errno(-EUSAGE, "snp-host-data: unknown option '%s'. See --help.",
                                       argv[1]);
        if (argc != 2 || hex_decode_exact(argv[1], cluster_id, sizeof(cluster_id)) < 0)
                return log_error_errno(-EUSAGE, "snp-host-data: one CLUSTER_ID of 64 hex digits is "
                                                "required. See --help.");
        snp_host_data_for_cluster(cluster_id, host_data);
        hex_encode_buf(host_data, sizeof(host_data), hex, sizeof(hex));
        printf("%s\n", hex);
        return 0;
}
