/* SPDX-License-Identifier: Apache-2.0 */
/* snp.launchMeasurements of measurements files and policies (snp-measurements.h). */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "cloister/hex.h"
#include "cloister/snp-launch.h"
#include "cloister/snp-measurements.h"

static int parse_features(const char *s, uint64_t *ret)
{
        uint64_t v = 0;

        if (strncmp(s, "0x", 2) != 0 || !s[2] || strlen(s) > 18)
                return -EBADMSG;
        for (s += 2; *s; s++) {
                int d = hex_digit_value(*s);
                if (d < 0)
                        return -EBADMSG;
                v = (v << 4) | (uint64_t) d;
        }
        *ret = v;
        return 0;
}

static bool same_parameters(const SnpLaunchEntry *a, const SnpLaunchEntry *b)
{
        return a->vcpus == b->vcpus && strcmp(a->vcpu_type, b->vcpu_type) == 0 &&
               strcmp(a->vmm, b->vmm) == 0 && a->guest_features == b->guest_features;
}

static int parse_entry(const JsonCtx *ctx, const json_t *o, SnpLaunchEntry *e)
{
        static const char *const keys[] = { "measurement", "vcpus",         "vcpuType",
                                            "vmm",         "guestFeatures", NULL };
        const char *type = NULL, *vmm, *features;
        uint32_t sig;
        int64_t vcpus;
        SnpVmm v;
        int r;

        *e = (SnpLaunchEntry){};
        r = json_check_keys(ctx, o, keys);
        if (r >= 0)
                r = json_get_hex_exact(ctx, o, "measurement", true, e->measurement, 48);
        if (r >= 0)
                r = json_get_int(ctx, o, "vcpus", true, 1, SNP_LAUNCH_VCPUS_MAX, &vcpus);
        if (r >= 0)
                r = json_get_string(ctx, o, "vmm", true, &vmm);
        if (r >= 0)
                r = json_get_string(ctx, o, "guestFeatures", true, &features);
        if (r >= 0) {
                r = json_get_string(ctx, o, "vcpuType", false, &type);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r < 0)
                return r;
        e->vcpus = (unsigned) vcpus;
        v = snp_vmm_from_string(vmm);
        if (v < 0)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.vmm: '%.16s' is not one of qemu, ec2, gce", ctx->source,
                                 ctx->path, vmm);
        (void) snprintf(e->vmm, sizeof(e->vmm), "%s", snp_vmm_to_string(v));
        if (v == SNP_VMM_QEMU && !type)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.vcpuType: required for vmm qemu (the vCPU model is "
                                 "part of the measurement)",
                                 ctx->source, ctx->path);
        if (type) {
                if (snp_vcpu_signature_from_name(type, &sig) < 0 ||
                    strlen(type) >= sizeof(e->vcpu_type))
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.vcpuType: '%.24s' is not a known vCPU type",
                                         ctx->source, ctx->path, type);
                memcpy(e->vcpu_type, type, strlen(type) + 1);
        }
        if (parse_features(features, &e->guest_features) < 0)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.guestFeatures: \"0x\" and 1 to 16 hex digits expected",
                                 ctx->source, ctx->path);
        return 0;
}

int snp_launch_entries_parse(const JsonCtx *ctx, const json_t *o, const char *key,
                             SnpLaunchEntry *out, size_t max, size_t *ret_n)
{
        json_t *a, *item;
        char path[160];
        size_t i;
        int r;

        r = json_get_array(ctx, o, key, false, &a);
        if (r == -ENOENT) {
                *ret_n = 0;
                return 0;
        }
        if (r < 0)
                return r;
        if (json_array_size(a) > max)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.%s: more than %zu entries", ctx->source, ctx->path, key,
                                 max);
        json_array_foreach (a, i, item) {
                JsonCtx c = *ctx;

                (void) snprintf(path, sizeof(path), "%s.%s[%zu]", ctx->path, key, i);
                c.path = path;
                r = json_expect_object(&c, item);
                if (r >= 0)
                        r = parse_entry(&c, item, &out[i]);
                if (r < 0)
                        return r;
                for (size_t k = 0; k < i; k++)
                        if (same_parameters(&out[k], &out[i]))
                                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                                 "%s: %s: the same vCPUs, type, VMM and guest "
                                                 "features as entry %zu",
                                                 ctx->source, path, k);
        }
        *ret_n = json_array_size(a);
        return 0;
}

json_t *snp_launch_entry_to_json(const SnpLaunchEntry *e)
{
        char m[2 * 48 + 1], f[24];
        json_t *o;

        hex_encode_buf(e->measurement, 48, m, sizeof(m));
        (void) snprintf(f, sizeof(f), "0x%" PRIx64, e->guest_features);
        o = json_pack("{s:s,s:i,s:s,s:s}", "measurement", m, "vcpus", (int) e->vcpus, "vmm", e->vmm,
                      "guestFeatures", f);
        if (o && e->vcpu_type[0] &&
            json_object_set_new(o, "vcpuType", json_string(e->vcpu_type)) < 0)
                o = (json_decref(o), NULL);
        return o;
}

json_t *snp_launch_entries_to_json(const SnpLaunchEntry *e, size_t n)
{
        _cleanup_(json_decrefp) json_t *a = json_array();

        if (!a)
                return NULL;
        for (size_t i = 0; i < n; i++)
                if (json_array_append_new(a, snp_launch_entry_to_json(&e[i])) < 0)
                        return NULL;
        return TAKE_PTR(a);
}
