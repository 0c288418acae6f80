/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "attest-internal.h"
#include "cloister/attest.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/snp-measurements.h"

static const char *const ak_trust_names[_AK_TRUST_MAX] = {
        [AK_TRUST_PINNED] = "pinned",
        [AK_TRUST_EK_CERT] = "ek-cert",
        [AK_TRUST_INSECURE_ANY] = "insecure-any",
};

static const char *const event_log_names[_EVENT_LOG_MODE_MAX] = {
        [EVENT_LOG_IF_PRESENT] = "if-present",
        [EVENT_LOG_REQUIRED] = "required",
        [EVENT_LOG_IGNORE] = "ignore",
};

static const char *const check_status_names[_CHECK_STATUS_MAX] = {
        [CHECK_PASS] = "pass",       [CHECK_FAIL] = "fail",       [CHECK_WARN] = "warn",
        [CHECK_SKIPPED] = "skipped", [CHECK_PENDING] = "pending",
};

const char *ak_trust_to_string(AkTrust t)
{
        return t >= 0 && t < _AK_TRUST_MAX ? ak_trust_names[t] : NULL;
}

const char *event_log_mode_to_string(EventLogMode m)
{
        return m >= 0 && m < _EVENT_LOG_MODE_MAX ? event_log_names[m] : NULL;
}

const char *check_status_to_string(CheckStatus s)
{
        return s < _CHECK_STATUS_MAX ? check_status_names[s] : NULL;
}

static int lookup(const char *const *names, int n, const char *s)
{
        for (int i = 0; i < n; i++)
                if (strcmp(names[i], s) == 0)
                        return i;
        return -EINVAL;
}

AttestPolicy *attest_policy_free(AttestPolicy *p)
{
        if (!p)
                return NULL;
        for (size_t i = 0; i < p->n_ak_pinned; i++)
                blob_clear(&p->ak_pinned[i]);
        p->n_ak_pinned = 0;
        blob_clear(&p->ek_ca_roots);
        blob_clear(&p->snp_trusted_arks);
        free(p);
        return NULL;
}

/* {"PCR": {"expected": HEX, "warnOnly": BOOL}, ...} into pcrs. */
static int parse_pcr_map(const JsonCtx *ctx, const json_t *o,
                         PcrExpectation pcrs[static EVIDENCE_PCR_COUNT])
{
        static const char *const keys[] = { "expected", "warnOnly", NULL };
        const char *k;
        json_t *v;
        int r;

        r = json_expect_object(ctx, o);
        if (r < 0)
                return r;
        json_object_foreach ((json_t *) o, k, v) {
                int idx = evidence_pcr_index_from_key(k);
                bool warn = false;
                char buf[64];

                if (idx < 0)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.%s: not a PCR index 0..23", ctx->source, ctx->path,
                                         k);
                JsonCtx c = json_ctx_child(ctx, k, buf, sizeof(buf));
                r = json_check_keys(&c, v, keys);
                if (r < 0)
                        return r;
                /* null: a placeholder `cloister config generate` writes for a value it cannot
                 * know yet. Refused, with the way to fill it. */
                if (json_is_null(json_object_get(v, "expected")))
                        return diag_fail(ctx->diag, -ENODATA, "policy-incomplete", idx,
                                         "%s: %s.expected is not set yet: fill it from "
                                         "'cloister-measure image IMAGE -o json' (cloister config "
                                         "generate --measurements)",
                                         c.source, c.path);
                r = json_get_hex_exact(&c, v, "expected", true, pcrs[idx].expected,
                                       EVIDENCE_PCR_SIZE);
                if (r < 0)
                        return r;
                r = json_get_bool(&c, v, "warnOnly", false, &warn);
                if (r < 0 && r != -ENOENT)
                        return r;
                pcrs[idx].present = true;
                pcrs[idx].warn_only = warn;
        }
        return 0;
}

static int parse_measurements(const JsonCtx *ctx, const json_t *o, AttestPolicy *p)
{
        return parse_pcr_map(ctx, o, p->pcrs);
}

static bool set_name_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > ATTEST_SET_NAME_MAX)
                return false;
        for (size_t i = 0; i < n; i++)
                if (!strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-+",
                            s[i]))
                        return false;
        return true;
}

/* "measurementSets": [{"name": IMAGE-VERSION, "measurements": {...}}, ...], 1..8 sets with
 * distinct names; a node must match one of them in full (and .measurements). A PCR in both
 * .measurements and a set would be checked twice with two answers: refused. */
static int parse_measurement_sets(const JsonCtx *ctx, const json_t *j, AttestPolicy *p)
{
        static const char *const keys[] = { "name", "measurements", NULL };
        const json_t *list = json_object_get(j, "measurementSets"), *item;
        size_t i;
        int r;

        if (!list)
                return 0;
        if (!json_is_array(list) || json_array_size(list) == 0 ||
            json_array_size(list) > ATTEST_MEASUREMENT_SETS_MAX)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: .measurementSets: a list of 1..%u sets {\"name\", "
                                 "\"measurements\"}",
                                 ctx->source, ATTEST_MEASUREMENT_SETS_MAX);
        json_array_foreach ((json_t *) list, i, item) {
                MeasurementSet *set = &p->sets[i];
                char path[64], buf[96];
                JsonCtx c = *ctx;
                const char *name;
                json_t *ms;

                (void) snprintf(path, sizeof(path), ".measurementSets[%zu]", i);
                c.path = path;
                r = json_check_keys(&c, item, keys);
                if (r < 0)
                        return r;
                r = json_get_string(&c, item, "name", true, &name);
                if (r < 0)
                        return r;
                if (!set_name_valid(name))
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.name: 1..%u characters of A-Z a-z 0-9 . _ - + "
                                         "(the image version)",
                                         ctx->source, path, ATTEST_SET_NAME_MAX);
                for (size_t k = 0; k < i; k++)
                        if (strcmp(p->sets[k].name, name) == 0)
                                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                                 "%s: %s.name: '%s' names two sets", ctx->source,
                                                 path, name);
                (void) snprintf(set->name, sizeof(set->name), "%s", name);
                r = json_get_object(&c, item, "measurements", true, &ms);
                if (r < 0)
                        return r;
                JsonCtx cm = json_ctx_child(&c, "measurements", buf, sizeof(buf));
                r = parse_pcr_map(&cm, ms, set->pcrs);
                if (r < 0)
                        return r;
                for (unsigned k = 0; k < EVIDENCE_PCR_COUNT; k++)
                        if (set->pcrs[k].present && p->pcrs[k].present)
                                return diag_fail(ctx->diag, -EBADMSG, "json-schema", (int) k,
                                                 "%s: %s.measurements: PCR %u is in .measurements "
                                                 "too; a PCR is either common to every node or "
                                                 "part of the sets",
                                                 ctx->source, path, k);
                p->n_sets++;
        }
        return 0;
}

/* "akPublic": one base64 SubjectPublicKeyInfo, or a list of them (1..ATTEST_AK_PINS_MAX). */
static int parse_ak_pins(const JsonCtx *ctx, const json_t *o, AttestPolicy *p)
{
        json_t *list = json_object_get(o, "akPublic"), *item;
        JsonCtx sub = *ctx;
        char path[128];
        uint8_t *spki;
        size_t n, i;
        int r;

        if (!json_is_array(list)) {
                r = json_get_base64(ctx, o, "akPublic", true, 4096, &spki, &n);
                if (r < 0)
                        return r;
                p->ak_pinned[0] = (Blob){ .data = spki, .size = n };
                p->n_ak_pinned = 1;
                return 0;
        }
        if (json_array_size(list) == 0 || json_array_size(list) > ATTEST_AK_PINS_MAX)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.akPublic: a list of 1..%u keys", ctx->source, ctx->path,
                                 ATTEST_AK_PINS_MAX);
        json_array_foreach (list, i, item) {
                _cleanup_(json_decrefp) json_t *wrap = json_pack("{s:O}", "akPublic", item);
                if (!wrap)
                        return -ENOMEM;
                (void) snprintf(path, sizeof(path), "%s.akPublic[%zu]", ctx->path, i);
                sub.path = path;
                r = json_get_base64(&sub, wrap, "akPublic", true, 4096, &spki, &n);
                if (r < 0)
                        return r;
                p->ak_pinned[p->n_ak_pinned++] = (Blob){ .data = spki, .size = n };
        }
        return 0;
}

static int parse_ak_trust(const JsonCtx *ctx, const json_t *o, AttestPolicy *p)
{
        static const char *const keys[] = { "mode", "akPublic", "caRoots", NULL };
        const char *mode, *roots;
        int r;

        r = json_check_keys(ctx, o, keys);
        if (r < 0)
                return r;
        r = json_get_string(ctx, o, "mode", true, &mode);
        if (r < 0)
                return r;
        p->ak_trust = lookup(ak_trust_names, _AK_TRUST_MAX, mode);
        if (p->ak_trust < 0)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.mode: '%s' is not one of pinned, ek-cert, insecure-any",
                                 ctx->source, ctx->path, mode);

        switch (p->ak_trust) {
        case AK_TRUST_PINNED:
                if (json_is_null(json_object_get(o, "akPublic")))
                        return diag_fail(ctx->diag, -ENODATA, "policy-incomplete", -1,
                                         "%s: %s.akPublic is not set yet: pin the attestation key "
                                         "of a node you control from its evidence ('cloister "
                                         "attestation issue', then cloister config generate qemu "
                                         "--evidence; trust on first use, local clusters only)",
                                         ctx->source, ctx->path);
                r = parse_ak_pins(ctx, o, p);
                if (r < 0)
                        return r;
                if (json_object_get(o, "caRoots"))
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.caRoots: only for mode ek-cert", ctx->source,
                                         ctx->path);
                break;
        case AK_TRUST_EK_CERT:
                r = json_get_string(ctx, o, "caRoots", true, &roots);
                if (r < 0)
                        return r;
                r = blob_set(&p->ek_ca_roots, roots, strlen(roots));
                if (r < 0)
                        return r;
                if (json_object_get(o, "akPublic"))
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.akPublic: only for mode pinned", ctx->source,
                                         ctx->path);
                break;
        default:
                if (json_object_size(o) != 1)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s: mode insecure-any takes no other keys",
                                         ctx->source, ctx->path);
                break;
        }
        return 0;
}

static int get_hex_list(const JsonCtx *ctx, const json_t *o, const char *key, uint8_t (*out)[48],
                        size_t max, size_t *n)
{
        json_t *a, *v;
        size_t i;
        int r = json_get_array(ctx, o, key, false, &a);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (json_array_size(a) > max)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.%s: more than %zu entries", ctx->source, ctx->path, key,
                                 max);
        json_array_foreach (a, i, v) {
                if (!json_is_string(v) || hex_decode_exact(json_string_value(v), out[i], 48) < 0)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.%s[%zu]: expected 96 hex digits", ctx->source,
                                         ctx->path, key, i);
        }
        *n = json_array_size(a);
        return 0;
}

/* A TCB minimum object ({"bootloader", "tee", "snp", "microcode", "fmc"}, each 0..255) at key;
 * absent: *present untouched. */
static int get_tcb(const JsonCtx *ctx, const json_t *o, const char *key, SnpTcb *ret, bool *present)
{
        static const char *const keys[] = { "bootloader", "tee", "snp", "microcode", "fmc", NULL };
        uint8_t *const tcb[] = { &ret->bootloader, &ret->tee, &ret->snp, &ret->microcode,
                                 &ret->fmc };
        json_t *t;
        int64_t v;
        char buf[64];
        int r = json_get_object(ctx, o, key, false, &t);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        JsonCtx c = json_ctx_child(ctx, key, buf, sizeof(buf));
        r = json_check_keys(&c, t, keys);
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(tcb); i++) {
                r = json_get_int(&c, t, keys[i], false, 0, 255, &v);
                if (r >= 0)
                        *tcb[i] = (uint8_t) v;
                else if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0)
                *present = true;
        return r;
}

/* "chipIds": CHIP_IDs (128 hex digits each) of the hosts allowed. */
static int get_chip_ids(const JsonCtx *ctx, const json_t *o, SnpPolicy *p)
{
        json_t *a, *v;
        size_t i;
        int r = json_get_array(ctx, o, "chipIds", false, &a);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        if (json_array_size(a) == 0 || json_array_size(a) > SNP_POLICY_CHIP_IDS_MAX)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s.chipIds: 1..%u CHIP_IDs (leave it out to allow any host)",
                                 ctx->source, ctx->path, SNP_POLICY_CHIP_IDS_MAX);
        json_array_foreach (a, i, v)
                if (!json_is_string(v) ||
                    hex_decode_exact(json_string_value(v), p->chip_ids[i], 64) < 0)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: %s.chipIds[%zu]: expected 128 hex digits",
                                         ctx->source, ctx->path, i);
        p->n_chip_ids = json_array_size(a);
        return 0;
}

/* A null list, or a null in it: placeholders for launch measurements not known yet. */
static bool snp_measurements_unset(const json_t *o)
{
        json_t *a = json_object_get(o, "measurements"), *v;
        size_t i;

        if (json_is_null(a) || json_is_null(json_object_get(o, "launchMeasurements")))
                return true;
        json_array_foreach (a, i, v)
                if (json_is_null(v))
                        return true;
        return false;
}

static int parse_snp(const JsonCtx *ctx, const json_t *o, AttestPolicy *p)
{
        static const char *const keys[] = {
                "trustedArks",
                "allowDebug",
                "allowMigrationAgent",
                "allowSmt",
                "vmpl",
                "minTcb",
                "minGuestSvn",
                "measurements",
                "hostData",
                "idKeyDigests",
                "launchMeasurements",
                "minLaunchTcb",
                "minCommittedTcb",
                "chipIds",
                "hostDataFromClusterId",
                NULL,
        };
        static const char *const tcb_keys[] = {
                "bootloader", "tee", "snp", "microcode", "fmc", NULL
        };
        uint8_t *const tcb[] = { &p->snp.min_tcb.bootloader, &p->snp.min_tcb.tee,
                                 &p->snp.min_tcb.snp, &p->snp.min_tcb.microcode,
                                 &p->snp.min_tcb.fmc };
        const char *arks;
        json_t *t;
        int64_t v;
        char buf[64];
        int r;

        snp_policy_defaults(&p->snp);
        r = json_check_keys(ctx, o, keys);
        if (r < 0)
                return r;
        r = json_get_string(ctx, o, "trustedArks", false, &arks);
        if (r >= 0)
                r = blob_set(&p->snp_trusted_arks, arks, strlen(arks));
        if (r < 0 && r != -ENOENT)
                return r;
        if ((r = json_get_bool(ctx, o, "allowDebug", false, &p->snp.allow_debug)) < 0 &&
            r != -ENOENT)
                return r;
        if ((r = json_get_bool(ctx, o, "allowMigrationAgent", false,
                               &p->snp.allow_migration_agent)) < 0 &&
            r != -ENOENT)
                return r;
        if ((r = json_get_bool(ctx, o, "allowSmt", false, &p->snp.allow_smt)) < 0 && r != -ENOENT)
                return r;
        if ((r = json_get_int(ctx, o, "vmpl", false, -1, 3, &v)) >= 0)
                p->snp.vmpl = (int) v;
        else if (r != -ENOENT)
                return r;
        if ((r = json_get_int(ctx, o, "minGuestSvn", false, 0, UINT32_MAX, &v)) >= 0)
                p->snp.min_guest_svn = (uint32_t) v;
        else if (r != -ENOENT)
                return r;
        r = json_get_object(ctx, o, "minTcb", false, &t);
        if (r >= 0) {
                JsonCtx c = json_ctx_child(ctx, "minTcb", buf, sizeof(buf));
                r = json_check_keys(&c, t, tcb_keys);
                for (size_t i = 0; r >= 0 && i < ELEMENTSOF(tcb); i++) {
                        r = json_get_int(&c, t, tcb_keys[i], false, 0, 255, &v);
                        if (r >= 0)
                                *tcb[i] = (uint8_t) v;
                        else if (r == -ENOENT)
                                r = 0;
                }
                if (r < 0)
                        return r;
        } else if (r != -ENOENT)
                return r;
        if (snp_measurements_unset(o))
                return diag_fail(ctx->diag, -ENODATA, "policy-incomplete", -1,
                                 "%s: %s.measurements is not set yet: compute the launch "
                                 "measurements ('cloister-measure snp-launch --firmware F --vcpus "
                                 "N --add-to m.json', then 'cloister config generate PROVIDER "
                                 "--tee snp --measurements m.json') or add the one of a node "
                                 "booted from this image, as 'cloister attestation verify-report' "
                                 "prints it",
                                 ctx->source, ctx->path);
        r = get_hex_list(ctx, o, "measurements", p->snp.measurements, SNP_POLICY_MEASUREMENTS_MAX,
                         &p->snp.n_measurements);
        if (r >= 0)
                r = get_hex_list(ctx, o, "idKeyDigests", p->snp.id_key_digests,
                                 SNP_POLICY_MEASUREMENTS_MAX, &p->snp.n_id_key_digests);
        if (r < 0)
                return r;
        r = json_get_hex_exact(ctx, o, "hostData", false, p->snp.host_data, 32);
        if (r >= 0)
                p->snp.check_host_data = true;
        else if (r != -ENOENT)
                return r;
        r = snp_launch_entries_parse(ctx, o, "launchMeasurements", p->snp.launch,
                                     SNP_POLICY_LAUNCH_MAX, &p->snp.n_launch);
        if (r >= 0)
                r = get_tcb(ctx, o, "minLaunchTcb", &p->snp.min_launch_tcb,
                            &p->snp.check_launch_tcb);
        if (r >= 0)
                r = get_tcb(ctx, o, "minCommittedTcb", &p->snp.min_committed_tcb,
                            &p->snp.check_committed_tcb);
        if (r >= 0)
                r = get_chip_ids(ctx, o, &p->snp);
        if (r >= 0) {
                r = json_get_bool(ctx, o, "hostDataFromClusterId", false,
                                  &p->snp.host_data_from_cluster);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0 && p->snp.host_data_from_cluster && p->snp.check_host_data)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: %s: hostData and hostDataFromClusterId exclude each other",
                                 ctx->source, ctx->path);
        return r;
}

/* Refuse by default: a policy that enforces nothing about what the node runs admits anything
 * with a trusted key. Checked once every section is parsed; an empty measurements object (a
 * policy of key trust only, whose PCRs the user fills in, as a joining node does from its own)
 * passes the parse, not attest_policy_check_enforcing(). */
static int check_pins(const AttestPolicy *p, const char *source, bool allow_keys_only, Diag *d)
{
        const SnpTcb *t = &p->snp.min_tcb;
        unsigned members = attest_variant_info(p->variant)->members;
        bool snp = members & ATTEST_MEMBER_SNP;
        size_t present = 0, enforced = 0;

        if (snp && p->snp.n_measurements == 0 && p->snp.n_launch == 0 &&
            (t->bootloader | t->tee | t->snp | t->microcode | t->fmc) == 0)
                return diag_fail(d, -EPERM, "policy-permissive", -1,
                                 "%s: .snp pins neither a launch measurement (.snp.measurements, "
                                 ".snp.launchMeasurements) "
                                 "nor a minimum TCB (.snp.minTcb): it would accept any firmware "
                                 "and kernel on an unpatched CPU; set at least one",
                                 source);
        /* SNP alone (no vTPM), the report is all there is. A minimum TCB says the firmware is
         * patched, not what it launched: without a launch measurement or the signer of one,
         * any SEV-SNP VM running any image passes. HOST_DATA is whatever the host launching the
         * VM chose: it pins no image either. */
        if (snp && !(members & ATTEST_MEMBER_TPM) && p->snp.n_measurements == 0 &&
            p->snp.n_launch == 0 && p->snp.n_id_key_digests == 0)
                return diag_fail(d, -EPERM, "policy-permissive", -1,
                                 "%s: .snp pins no image: it has neither a launch measurement "
                                 "(.snp.measurements, .snp.launchMeasurements) nor the signer "
                                 "of one (.snp.idKeyDigests), so it would admit any SEV-SNP VM "
                                 "running any image (.snp.minTcb and .snp.hostData do not pin "
                                 "one); add the image's launch measurement ('cloister-measure "
                                 "snp-launch --firmware F --vcpus N --add-to m.json', or as "
                                 "'cloister attestation verify-report' prints it for a node "
                                 "booted from the image; docs/snp.md)",
                                 source);
        /* PCRs only where a vTPM quotes them (tdx: pins checked by parse_tdx). */
        if (!(members & ATTEST_MEMBER_TPM))
                return 0;
        for (size_t i = 0; i < EVIDENCE_PCR_COUNT; i++)
                if (p->pcrs[i].present) {
                        present++;
                        enforced += !p->pcrs[i].warn_only;
                }
        /* Every set is an image the policy admits: each must enforce something of its own, or
         * (with nothing common enforced) it would admit any image. */
        for (size_t k = 0; k < p->n_sets; k++) {
                size_t set_enforced = 0;
                for (size_t i = 0; i < EVIDENCE_PCR_COUNT; i++)
                        set_enforced += p->sets[k].pcrs[i].present && !p->sets[k].pcrs[i].warn_only;
                if (set_enforced == 0 && enforced == 0)
                        return diag_fail(d, -EPERM, "policy-permissive", -1,
                                         "%s: .measurementSets: set '%s' enforces no PCR: the "
                                         "policy would accept any image; enforce at least the "
                                         "image PCRs (4, 9, 11)",
                                         source, p->sets[k].name);
                present += set_enforced;
                enforced += set_enforced;
        }
        if (enforced == 0 && !(present == 0 && allow_keys_only))
                return diag_fail(d, -EPERM, "policy-permissive", -1,
                                 "%s: .measurements %s: the policy would accept any image; "
                                 "enforce at least the image PCRs (4, 9, 11) by removing "
                                 "warnOnly",
                                 source, present ? "are all warnOnly" : "is empty");
        /* SNP behind a vTPM (azure-sev-snp): the vTPM's PCRs are worth what the paravisor that
         * names its key is worth. Any SNP guest at VMPL0 can put the hash of runtime data naming
         * a key of its own in REPORT_DATA and sign any quote with it; only the paravisor's
         * measurement or its signer (Microsoft's ID key) says the runtime data is the HCL's. */
        if (snp && p->snp.n_id_key_digests == 0 && p->snp.n_measurements == 0 &&
            p->snp.n_launch == 0)
                return diag_fail(d, -EPERM, "policy-permissive", -1,
                                 "%s: .snp pins neither the paravisor's launch measurement "
                                 "(.snp.measurements) nor its signer (.snp.idKeyDigests): any "
                                 "SEV-SNP guest could name a key of its own as the vTPM's and "
                                 "quote any PCRs with it; pin Azure's ID key digest (docs/snp.md, "
                                 "\"azure-sev-snp\")",
                                 source);
        return 0;
}

/* tdx: lib/tdx's policy object; it must pin MRTD (the TD's firmware, measured by the TDX module),
 * as an SNP policy must pin a launch measurement or a TCB. RTMRs alone pin nothing: the TD's own
 * software extends them, and any firmware can extend the public digests of a genuine log. */
static int parse_tdx(const JsonCtx *ctx, const json_t *o, AttestPolicy *p)
{
        int r = tdx_policy_from_json(ctx, o, &p->tdx);

        if (r < 0)
                return r;
        if (p->tdx.mr_td.n == 0)
                return diag_fail(ctx->diag, -EPERM, "policy-permissive", -1,
                                 "%s: .tdx does not pin mrTd: any firmware could reach the RTMRs "
                                 "(the TD extends them itself), so it would accept any software "
                                 "in an authentic TD; pin mrTd (RTMRs in addition)",
                                 ctx->source);
        return 0;
}

/* Reads the member key of the root object with fn. */
static int parse_member(const JsonCtx *root, const json_t *j, const char *key,
                        int (*fn)(const JsonCtx *, const json_t *, AttestPolicy *), AttestPolicy *p)
{
        char buf[64];
        json_t *sub;
        int r;

        r = json_get_object(root, j, key, true, &sub);
        if (r < 0)
                return r;
        JsonCtx c = json_ctx_child(root, key, buf, sizeof(buf));
        return fn(&c, sub, p);
}

int attest_policy_parse(const void *data, size_t size, const char *source, AttestPolicy **ret,
                        Diag *d)
{
        /* reattestation: the join service's section (docs/reattestation.md), read there. */
        static const char *const keys[] = { "version", "variant",       "measurements",
                                            "akTrust", "eventLog",      "snp",
                                            "tdx",     "reattestation", "measurementSets",
                                            NULL };
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        JsonCtx ctx = { .source = source, .path = "", .diag = d };
        const AttestVariantInfo *info;
        const char *variant;
        int64_t version;
        int r;

        if (size > ATTEST_POLICY_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "file-size", -1, "%s: larger than %u bytes", source,
                                 ATTEST_POLICY_SIZE_MAX);
        r = json_parse_buffer(data, size, source, &j, d);
        if (r < 0)
                return r;
        r = json_check_keys(&ctx, j, keys);
        if (r < 0)
                return r;
        r = json_get_int(&ctx, j, "version", true, ATTEST_POLICY_VERSION, ATTEST_POLICY_VERSION,
                         &version);
        if (r < 0)
                return r;

        p = calloc(1, sizeof(*p));
        if (!p)
                return -ENOMEM;

        r = json_get_string(&ctx, j, "variant", true, &variant);
        if (r < 0)
                return r;
        p->variant = attest_variant_from_string(variant);
        if (p->variant < 0)
                return diag_fail(d, -EBADMSG, "json-schema", -1, "%s: .variant: unknown '%s'",
                                 source, variant);
        info = attest_variant_info(p->variant);
        if (!(info->members & ATTEST_MEMBER_TDX) && json_object_get(j, "tdx"))
                return diag_fail(d, -EBADMSG, "json-schema", -1,
                                 "%s: .tdx: a %s policy has no tdx member", source, variant);
        /* Sets of PCRs; a launch measurement or MRTD has its own list (snp.measurements). */
        if (!(info->members & ATTEST_MEMBER_TPM) && json_object_get(j, "measurementSets"))
                return diag_fail(d, -EBADMSG, "json-schema", -1,
                                 "%s: .measurementSets: a %s policy has no PCRs; list launch "
                                 "measurements instead (docs/upgrade.md)",
                                 source, variant);
        r = info->parse_policy(&ctx, j, info, p);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(p);
        return 0;
}

/* The policies of the variants (their table: lib/attest/variants.c). ctx is the document's root,
 * whose diag and source are the caller's. */

/* sev-snp, sim-snp: the snp member; a simulator is trusted only through the ARK it names. */
int attest_policy_parse_snp(const JsonCtx *ctx, const json_t *j, const AttestVariantInfo *info,
                            AttestPolicy *p)
{
        int r = parse_member(ctx, j, "snp", parse_snp, p);

        if (r < 0)
                return r;
        if (info->simulated && !p->snp_trusted_arks.data)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: .snp.trustedArks: a %s policy must name the simulator's ARK "
                                 "explicitly",
                                 ctx->source, info->name);
        return check_pins(p, ctx->source, true, ctx->diag);
}

/* tdx, sim-tdx: the tdx member; tdx trusts Intel's root alone, a simulator only the root it
 * names. */
int attest_policy_parse_tdx(const JsonCtx *ctx, const json_t *j, const AttestVariantInfo *info,
                            AttestPolicy *p)
{
        int r = parse_member(ctx, j, "tdx", parse_tdx, p);

        if (r < 0)
                return r;
        if (!info->simulated && p->tdx.trusted_root_pem[0])
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: .tdx.trustedRoot: only a simulator's policy (sim-tdx, "
                                 "sim-azure-tdx) names a root; %s trusts Intel's SGX Root CA "
                                 "alone",
                                 ctx->source, info->name);
        if (info->simulated && !p->tdx.trusted_root_pem[0])
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: .tdx.trustedRoot: a %s policy must name the simulator's root "
                                 "explicitly",
                                 ctx->source, info->name);
        return 0;
}

/* azure-sev-snp: SNP checks for the HCL's report, PCR measurements for the vTPM quote; the AK is
 * vouched for by the SNP report, so no akTrust. */
int attest_policy_parse_azure_sev_snp(const JsonCtx *ctx, const json_t *j,
                                      const AttestVariantInfo *info, AttestPolicy *p)
{
        int r = parse_member(ctx, j, "snp", parse_snp, p);

        if (r >= 0)
                r = parse_member(ctx, j, "measurements", parse_measurements, p);
        if (r >= 0)
                r = parse_measurement_sets(ctx, j, p);
        if (r < 0)
                return r;
        p->event_log = EVENT_LOG_IGNORE;
        return check_pins(p, ctx->source, true, ctx->diag);
}

/* azure-tdx, sim-azure-tdx: the TDX checks for the paravisor's TD quote (mrTd pinned: any TD can
 * put any runtime data in its REPORTDATA, so only the paravisor's MRTD makes the AK it names
 * trustworthy), PCR measurements for the vTPM quote; no akTrust (the quote vouches for the AK).
 * The paravisor's TD may leave SEPT_VE_DISABLE clear: that exception is this variant's default,
 * said in the file as "azureParavisor" (false requires the bit, as on DCesv6 machines). */
int attest_policy_parse_azure_tdx(const JsonCtx *ctx, const json_t *j,
                                  const AttestVariantInfo *info, AttestPolicy *p)
{
        static const char *const none[] = { "akTrust", "eventLog", "snp" };
        int r;

        /* Refused, not ignored: a reader would take them for checks that run. */
        for (size_t i = 0; i < ELEMENTSOF(none); i++)
                if (json_object_get(j, none[i]))
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: .%s: a %s policy has none (the TD quote vouches for "
                                         "the AK; its checks are .tdx and .measurements)",
                                         ctx->source, none[i], info->name);
        r = attest_policy_parse_tdx(ctx, j, info, p);
        if (r >= 0)
                r = parse_member(ctx, j, "measurements", parse_measurements, p);
        if (r >= 0)
                r = parse_measurement_sets(ctx, j, p);
        if (r < 0)
                return r;
        if (!json_object_get(json_object_get(j, "tdx"), "azureParavisor"))
                p->tdx.azure_paravisor = true;
        p->event_log = EVENT_LOG_IGNORE;
        return check_pins(p, ctx->source, true, ctx->diag);
}

/* qemu-vtpm: PCR measurements, how the attestation key is trusted, the event log mode. */
int attest_policy_parse_vtpm(const JsonCtx *ctx, const json_t *j, const AttestVariantInfo *info,
                             AttestPolicy *p)
{
        const char *evlog;
        int r;

        r = parse_member(ctx, j, "measurements", parse_measurements, p);
        if (r >= 0)
                r = parse_measurement_sets(ctx, j, p);
        if (r < 0)
                return r;
        /* Refuse by default: a policy must say how the attestation key is trusted. */
        r = parse_member(ctx, j, "akTrust", parse_ak_trust, p);
        if (r < 0)
                return r;

        p->event_log = EVENT_LOG_IF_PRESENT;
        r = json_get_string(ctx, j, "eventLog", false, &evlog);
        if (r >= 0) {
                p->event_log = lookup(event_log_names, _EVENT_LOG_MODE_MAX, evlog);
                if (p->event_log < 0)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: .eventLog: '%s' is not one of required, "
                                         "if-present, ignore",
                                         ctx->source, evlog);
        } else if (r != -ENOENT)
                return r;
        return check_pins(p, ctx->source, true, ctx->diag);
}

int attest_policy_check_enforcing(const AttestPolicy *p, const char *source, Diag *d)
{
        return check_pins(p, source, false, d);
}

int attest_policy_check_cluster(const AttestPolicy *p, const char *source, Diag *d)
{
        static const unsigned image_pcrs[] = { 4, 9, 11 };
        int r = check_pins(p, source, false, d);

        if (r < 0)
                return r;
        if (!(attest_variant_info(p->variant)->members & ATTEST_MEMBER_TPM))
                return 0;
        for (size_t i = 0; i < ELEMENTSOF(image_pcrs); i++) {
                const PcrExpectation *e = &p->pcrs[image_pcrs[i]];
                if (e->present && !e->warn_only)
                        continue;
                /* Not common: then every set must enforce it. */
                if (p->n_sets == 0)
                        return diag_fail(d, -EPERM, "policy", (int) image_pcrs[i],
                                         "%s: PCR %u (the image) is not enforced; a join service "
                                         "refuses to run with such a policy",
                                         source, image_pcrs[i]);
                for (size_t k = 0; k < p->n_sets; k++) {
                        e = &p->sets[k].pcrs[image_pcrs[i]];
                        if (!e->present || e->warn_only)
                                return diag_fail(d, -EPERM, "policy", (int) image_pcrs[i],
                                                 "%s: PCR %u (the image) is not enforced by "
                                                 "measurement set '%s'; a join service refuses to "
                                                 "run with such a policy",
                                                 source, image_pcrs[i], p->sets[k].name);
                }
        }
        return 0;
}

void attest_policy_bind_cluster(AttestPolicy *p, const uint8_t cluster_id[static 32])
{
        /* snp is the SEV-SNP part of every variant that has one (sev-snp, azure-sev-snp,
         * sim-snp); without hostDataFromClusterId this changes nothing. */
        snp_policy_bind_cluster(&p->snp, cluster_id);
}

int attest_policy_load(const char *path, AttestPolicy **ret, Diag *d)
{
        _cleanup_(freep) uint8_t *buf = NULL;
        size_t size;
        int r;

        r = read_full_file(path, ATTEST_POLICY_SIZE_MAX, &buf, &size);
        if (r == -EMSGSIZE)
                return diag_fail(d, r, "file-size", -1, "%s: larger than %u bytes", path,
                                 ATTEST_POLICY_SIZE_MAX);
        if (r < 0)
                return diag_fail(d, r, "file-read", -1, "%s: cannot read: %s", path, strerror(-r));
        return attest_policy_parse(buf, size, path, ret, d);
}
