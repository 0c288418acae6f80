/* SPDX-License-Identifier: Apache-2.0 */
/* Evidence bundles (docs/bundle.md): what `verify --cluster/--node --bundle OUT` records, and
 * `verify --bundle IN` and `policy test` verifying it again, offline. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-bundle.h"
#include "cli-json.h"
#include "cli-report-bundle.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/rpc.h"
#include "cloister/sandbox.h"
#include "cloister/timestamp.h"

/* --- recording ------------------------------------------------------------------------------ */

void cli_record_done(CliRecord *r)
{
        if (!r)
                return;
        free(r->evidence);
        free(r->spki);
        *r = (CliRecord){};
}

int cli_record_evidence(void *userdata, const uint8_t *evidence, size_t size,
                        const uint8_t nonce[static ATLS_NONCE_SIZE], const uint8_t *spki,
                        size_t spki_size, const uint8_t binding[static ATLS_BINDING_SIZE])
{
        CliRecord *r = userdata;
        uint8_t *e = malloc(size ?: 1), *k = malloc(spki_size ?: 1);

        if (!e || !k) {
                free(e);
                free(k);
                return -ENOMEM;
        }
        /* A call that retried handshakes keeps the last: the one its verdict is about. */
        cli_record_done(r);
        memcpy(e, evidence, size);
        memcpy(k, spki, spki_size);
        r->evidence = e;
        r->evidence_size = size;
        r->spki = k;
        r->spki_size = spki_size;
        memcpy(r->nonce, nonce, ATLS_NONCE_SIZE);
        memcpy(r->binding, binding, ATLS_BINDING_SIZE);
        r->present = true;
        return 0;
}

int cli_policy_bytes(const char *policy_path, const CliConfig *config, char **ret, size_t *ret_size)
{
        _cleanup_(freep) uint8_t *buf = NULL;
        size_t size;
        int r;

        if (!policy_path) {
                char *s = strdup(config->policy);
                if (!s)
                        return log_oom();
                *ret = s;
                *ret_size = strlen(s);
                return 0;
        }
        r = read_full_file(policy_path, ATTEST_POLICY_SIZE_MAX, &buf, &size);
        if (r < 0)
                return log_error_errno(r, "%s: cannot read: %m", policy_path);
        *ret = (char *) TAKE_PTR(buf);
        *ret_size = size;
        return 0;
}

/* --- writing -------------------------------------------------------------------------------- */

void cli_bundle_writer_done(CliBundleWriter *w)
{
        bundle_free(w->bundle);
        json_decref(w->meta);
        *w = (CliBundleWriter){};
}

int cli_bundle_writer_init(CliBundleWriter *w, const char *kind, time_t at, const char *policy,
                           size_t policy_size, const uint8_t *cid)
{
        char when[TIMESTAMP_UTC_SIZE], cid_hex[65];

        *w = (CliBundleWriter){};
        if (timestamp_format_utc(at, when) < 0)
                return -EINVAL;
        if (cid)
                hex_encode_buf(cid, 32, cid_hex, sizeof(cid_hex));
        w->bundle = bundle_new();
        w->nodes = json_array();
        w->logs = json_array();
        w->meta = json_pack("{s:s,s:s,s:I,s:o,s:o,s:o}", "kind", kind, "time", when, "timeEpoch",
                            (json_int_t) at, "clusterId", cid ? json_string(cid_hex) : json_null(),
                            "nodes", w->nodes, "auditLogs", w->logs);
        if (!w->bundle || !w->meta || bundle_add(w->bundle, "policy.json", policy, policy_size) < 0)
                return -ENOMEM;
        return 0;
}

static int add_named(Bundle *b, const char *prefix, size_t i, const char *what, const void *data,
                     size_t size)
{
        char name[BUNDLE_NAME_MAX + 1];

        (void) snprintf(name, sizeof(name), "%s/%zu/%s", prefix, i, what);
        return bundle_add(b, name, data, size);
}

int cli_bundle_writer_node(CliBundleWriter *w, const char *name, const char *role,
                           const char *endpoint, const CliRecord *rec, bool ok,
                           const char *const *reasons, size_t n_reasons, const json_t *checks,
                           const json_t *versions, const char *state)
{
        size_t i = json_array_size(w->nodes);
        json_t *rs = json_array(), *n;

        for (size_t k = 0; rs && k < n_reasons; k++)
                (void) json_array_append_new(rs, json_string(reasons[k]));
        n = json_pack("{s:s,s:s,s:s,s:b,s:s,s:o,s:O,s:O,s:o}", "name", name, "role", role ?: "",
                      "endpoint", endpoint, "evidence", rec && rec->present, "verdict",
                      ok ? "pass" : "fail", "reasons", rs ?: json_array(), "checks",
                      checks ?: json_null(), "versions", versions ?: json_null(), "state",
                      state ? json_string(state) : json_null());
        if (!n || json_array_append_new(w->nodes, n) < 0)
                return -ENOMEM;
        if (!rec || !rec->present)
                return 0;
        if (add_named(w->bundle, "nodes", i, "evidence", rec->evidence, rec->evidence_size) < 0 ||
            add_named(w->bundle, "nodes", i, "nonce", rec->nonce, sizeof(rec->nonce)) < 0 ||
            add_named(w->bundle, "nodes", i, "spki", rec->spki, rec->spki_size) < 0 ||
            add_named(w->bundle, "nodes", i, "binding", rec->binding, sizeof(rec->binding)) < 0)
                return -ENOMEM;
        return 0;
}

int cli_bundle_writer_audit(CliBundleWriter *w, const char *url, const char *log, size_t size,
                            bool complete, const char *head, const char *policy_digest,
                            const char *self, const char *const *listed, size_t n_listed)
{
        size_t i = json_array_size(w->logs);
        json_t *ls = json_array(), *e;

        for (size_t k = 0; ls && k < n_listed; k++)
                (void) json_array_append_new(ls, json_string(listed[k]));
        e = json_pack("{s:s,s:b,s:o,s:s,s:s,s:o}", "joinService", url, "complete", complete, "head",
                      head ? json_string(head) : json_null(), "policyDigest", policy_digest ?: "",
                      "self", self ?: "", "listed", ls ?: json_array());
        if (!e || json_array_append_new(w->logs, e) < 0)
                return -ENOMEM;
        if (complete && add_named(w->bundle, "audit", i, "log", log ?: "", log ? size : 0) < 0)
                return -ENOMEM;
        return 0;
}

int cli_bundle_writer_checkpoint(CliBundleWriter *w, const char *checkpoint,
                                 const CliRecord *channel)
{
        size_t i = json_array_size(w->logs);
        json_t *e = i > 0 ? json_array_get(w->logs, i - 1) : NULL;

        if (!e || !checkpoint || !channel || !channel->present)
                return 0;
        i--;
        if (add_named(w->bundle, "audit", i, "checkpoint", checkpoint, strlen(checkpoint)) < 0 ||
            add_named(w->bundle, "audit", i, "evidence", channel->evidence,
                      channel->evidence_size) < 0 ||
            add_named(w->bundle, "audit", i, "nonce", channel->nonce, sizeof(channel->nonce)) < 0 ||
            add_named(w->bundle, "audit", i, "spki", channel->spki, channel->spki_size) < 0 ||
            json_object_set_new(e, "checkpoint", json_true()) < 0)
                return -ENOMEM;
        return 0;
}

static int writer_finish(CliBundleWriter *w)
{
        _cleanup_(freep) char *text = NULL;

        if (json_dump_compact(w->meta, &text) < 0)
                return -ENOMEM;
        return bundle_add(w->bundle, "bundle.json", text, strlen(text));
}

int cli_bundle_writer_write(CliBundleWriter *w, const char *path)
{
        _cleanup_(freep) char *text = NULL;
        size_t size;
        int r;

        r = writer_finish(w);
        if (r >= 0)
                r = bundle_serialize(w->bundle, &text, &size);
        if (r < 0)
                return log_error_errno(r, "Cannot build the bundle: %m");
        /* A kept bundle is evidence: never replaced. */
        r = write_file_atomic(path, text, size, 0644, WRITE_FILE_EXCLUSIVE);
        if (r == -EEXIST)
                return log_error_errno(r,
                                       "%s already exists: a bundle is never overwritten; give "
                                       "--bundle another file name.",
                                       path);
        if (r < 0)
                return log_error_errno(r, "%s: cannot write the bundle: %m", path);
        log_info("Bundle written to %s (%zu entries, %zu bytes): 'cloister verify --bundle %s' "
                 "verifies it again, offline.",
                 path, bundle_count(w->bundle), size, path);
        return 0;
}

int cli_bundle_writer_take(CliBundleWriter *w, Bundle **ret)
{
        int r = writer_finish(w);

        if (r < 0)
                return log_error_errno(r, "Cannot build the bundle: %m");
        *ret = TAKE_PTR(w->bundle);
        return 0;
}

/* --- reading -------------------------------------------------------------------------------- */

void cli_bundle_done(CliBundle *b)
{
        bundle_free(b->bundle);
        json_decref(b->meta);
        *b = (CliBundle){};
}

static const char *const meta_keys[] = { "kind",  "time",      "timeEpoch", "clusterId",
                                         "nodes", "auditLogs", NULL };
static const char *const node_keys[] = { "name",    "role",   "endpoint", "evidence", "verdict",
                                         "reasons", "checks", "versions", "state",    NULL };
/* A signed checkpoint and what names its signer: the join service's aTLS evidence, the nonce
 * this side sent and its certificate key. */
static const char *const checkpoint_parts[] = { "checkpoint", "evidence", "nonce", "spki" };
static const char *const log_keys[] = { "joinService", "complete", "head",       "policyDigest",
                                        "self",        "listed",   "checkpoint", NULL };

/* bundle.json against the schema this file writes; every node's and log's entries present. */
static int meta_check(CliBundle *b, Diag *d)
{
        JsonCtx ctx = { .source = "bundle.json", .path = "", .diag = d };
        const uint8_t *data;
        const char *cid = NULL, *when = NULL;
        int64_t epoch = 0;
        json_t *x;
        size_t i, size;
        int r;

        r = bundle_get(b->bundle, "bundle.json", &data, &size);
        if (r < 0)
                return diag_fail(d, -EBADMSG, "bundle-record", -1,
                                 "the bundle holds no record (bundle.json)");
        r = json_parse_buffer(data, size, "bundle.json", &b->meta, d);
        if (r >= 0 && bundle_report_is(b->meta)) /* verify-report's: cli-report-bundle.h */
                return cli_report_meta_check(b, d);
        if (r >= 0)
                r = json_check_keys(&ctx, b->meta, meta_keys);
        if (r >= 0)
                r = json_get_string(&ctx, b->meta, "kind", true, &b->kind);
        if (r >= 0)
                r = json_get_string(&ctx, b->meta, "time", true, &when);
        if (r >= 0)
                r = json_get_int(&ctx, b->meta, "timeEpoch", true, 0, INT32_MAX * 4LL, &epoch);
        if (r >= 0)
                r = json_get_array(&ctx, b->meta, "nodes", true, &b->nodes);
        if (r >= 0)
                r = json_get_array(&ctx, b->meta, "auditLogs", true, &b->logs);
        if (r < 0)
                return r;
        if (strcmp(b->kind, "cluster") != 0 && strcmp(b->kind, "node") != 0)
                return diag_fail(d, -EBADMSG, "bundle-record", -1,
                                 "bundle.json: kind \"%.32s\" is neither cluster nor node",
                                 b->kind);
        if (timestamp_parse_utc(when, &b->at) < 0 || b->at != (time_t) epoch)
                return diag_fail(d, -EBADMSG, "bundle-record", -1,
                                 "bundle.json: the verification time is malformed");
        (void) snprintf(b->at_text, sizeof(b->at_text), "%s", when);
        x = json_object_get(b->meta, "clusterId");
        if (!json_is_null(x)) {
                cid = json_string_value(x);
                if (!cid || strlen(cid) != 64 || hex_decode_exact(cid, b->cid, 32) < 0)
                        return diag_fail(d, -EBADMSG, "bundle-record", -1,
                                         "bundle.json: clusterId is not 64 hex digits");
                b->has_cid = true;
        }
        if (json_array_size(b->nodes) == 0 ||
            (strcmp(b->kind, "node") == 0 && json_array_size(b->nodes) != 1))
                return diag_fail(d, -EBADMSG, "bundle-record", -1,
                                 "bundle.json: a %s bundle with %zu node(s)", b->kind,
                                 json_array_size(b->nodes));
        json_array_foreach (b->nodes, i, x) {
                static const char *const parts[] = { "evidence", "nonce", "spki", "binding" };
                JsonCtx c = { .source = "bundle.json", .path = ".nodes[]", .diag = d };
                const char *s;
                json_t *a;

                r = json_check_keys(&c, x, node_keys);
                for (size_t k = 0; r >= 0 && k < 4; k++)
                        r = json_get_string(
                                &c, x, (const char *[]){ "name", "role", "endpoint", "verdict" }[k],
                                true, &s);
                if (r >= 0)
                        r = json_get_array(&c, x, "reasons", true, &a);
                if (r >= 0 && !json_is_boolean(json_object_get(x, "evidence")))
                        r = diag_fail(d, -EBADMSG, "bundle-record", -1,
                                      "bundle.json: a node's \"evidence\" is not true or false");
                if (r < 0)
                        return r;
                for (size_t k = 0; json_is_true(json_object_get(x, "evidence")) && k < 4; k++) {
                        char name[BUNDLE_NAME_MAX + 1];
                        const uint8_t *p;
                        size_t n;
                        (void) snprintf(name, sizeof(name), "nodes/%zu/%s", i, parts[k]);
                        if (bundle_get(b->bundle, name, &p, &n) < 0)
                                return diag_fail(d, -EBADMSG, "bundle-record", -1,
                                                 "bundle.json: node %zu's %s is not in the "
                                                 "bundle",
                                                 i, parts[k]);
                }
        }
        json_array_foreach (b->logs, i, x) {
                JsonCtx c = { .source = "bundle.json", .path = ".auditLogs[]", .diag = d };
                const char *s;
                json_t *a;

                r = json_check_keys(&c, x, log_keys);
                if (r >= 0)
                        r = json_get_string(&c, x, "joinService", true, &s);
                if (r >= 0)
                        r = json_get_array(&c, x, "listed", true, &a);
                if (r >= 0 && !json_is_boolean(json_object_get(x, "complete")))
                        r = diag_fail(d, -EBADMSG, "bundle-record", -1,
                                      "bundle.json: an audit log's \"complete\" is not true or "
                                      "false");
                /* Absent in a bundle of a log served without a signed checkpoint. */
                if (r >= 0 && json_object_get(x, "checkpoint") &&
                    !json_is_boolean(json_object_get(x, "checkpoint")))
                        r = diag_fail(d, -EBADMSG, "bundle-record", -1,
                                      "bundle.json: an audit log's \"checkpoint\" is not true or "
                                      "false");
                if (r < 0)
                        return r;
                for (size_t k = 0; json_is_true(json_object_get(x, "checkpoint")) && k < 4; k++) {
                        char name[BUNDLE_NAME_MAX + 1];
                        const uint8_t *p;
                        size_t n;
                        (void) snprintf(name, sizeof(name), "audit/%zu/%s", i, checkpoint_parts[k]);
                        if (bundle_get(b->bundle, name, &p, &n) < 0)
                                return diag_fail(d, -EBADMSG, "bundle-record", -1,
                                                 "bundle.json: audit log %zu's %s is not in the "
                                                 "bundle",
                                                 i, checkpoint_parts[k]);
                }
        }
        return 0;
}

int cli_bundle_load(const char *path, Bundle *in_memory, CliBundle *ret)
{
        _cleanup_(cli_bundle_done) CliBundle b = {};
        _cleanup_(freep) uint8_t *data = NULL;
        const char *src = path ?: "the bundle";
        size_t size;
        Diag d;
        int r;

        diag_clear(&d);
        if (path) {
                r = read_full_file(path, BUNDLE_SIZE_MAX, &data, &size);
                if (r == -EMSGSIZE)
                        return log_error_errno(r, "%s: larger than a bundle may be (%u bytes).",
                                               path, BUNDLE_SIZE_MAX);
                if (r < 0)
                        return log_error_errno(r, "%s: cannot read: %m", path);
                r = bundle_parse(data, size, &b.bundle, &d);
                if (r < 0)
                        return log_error_errno(r,
                                               "%s: refused: %s. Use an unaltered copy of the "
                                               "bundle, or record a new one with 'cloister verify "
                                               "--cluster --bundle FILE'.",
                                               path, d.message);
        } else
                b.bundle = in_memory;
        r = meta_check(&b, &d);
        if (r < 0)
                return log_error_errno(r, "%s: refused: %s.", src, d.message);
        *ret = b;
        b = (CliBundle){};
        return 0;
}

int cli_bundle_policy(const CliBundle *b, const char *policy_path, AttestPolicy **ret)
{
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        const uint8_t *data;
        size_t size;
        Diag d;
        int r;

        diag_clear(&d);
        if (policy_path)
                r = attest_policy_load(policy_path, &p, &d);
        else if (bundle_get(b->bundle, "policy.json", &data, &size) < 0)
                return log_error_errno(-EBADMSG,
                                       "The bundle holds no policy: give one with --policy FILE.");
        else
                r = attest_policy_parse(data, size, "the bundle's policy.json", &p, &d);
        if (r >= 0)
                r = attest_policy_check_enforcing(p, policy_path ?: "the bundle's policy.json", &d);
        if (r < 0)
                return log_error_errno(r, "%s", d.message);
        if (b->has_cid) {
                /* As a live verify: a member has extended exactly this cluster's ID into PCR 15. */
                cli_policy_bind_cluster(p, b->cid);
        }
        *ret = TAKE_PTR(p);
        return 0;
}

static int node_part(const CliBundle *b, size_t i, const char *what, const uint8_t **ret,
                     size_t *ret_size)
{
        char name[BUNDLE_NAME_MAX + 1];

        (void) snprintf(name, sizeof(name), "nodes/%zu/%s", i, what);
        return bundle_get(b->bundle, name, ret, ret_size);
}

int cli_bundle_verify_node(const CliBundle *b, size_t i, const AttestPolicy *p, time_t at,
                           AttestReport *rep, Diag *d)
{
        _cleanup_(evidence_freep) Evidence *e = NULL;
        const uint8_t *ev, *nonce, *spki, *recorded;
        size_t ev_size, nonce_size, spki_size, recorded_size;
        uint8_t binding[ATLS_BINDING_SIZE];
        int r;

        diag_clear(d);
        if (node_part(b, i, "evidence", &ev, &ev_size) < 0 ||
            node_part(b, i, "nonce", &nonce, &nonce_size) < 0 ||
            node_part(b, i, "spki", &spki, &spki_size) < 0 ||
            node_part(b, i, "binding", &recorded, &recorded_size) < 0)
                return diag_fail(d, -EPERM, "bundle-evidence", -1,
                                 "no evidence was recorded for this node (it did not attest "
                                 "when the bundle was made)");
        if (nonce_size != ATLS_NONCE_SIZE)
                return diag_fail(d, -EBADMSG, "bundle-nonce", -1,
                                 "the recorded nonce is %zu bytes, not %u", nonce_size,
                                 ATLS_NONCE_SIZE);
        r = evidence_parse(ev, ev_size, &e, d);
        if (r < 0)
                return r;
        /* The binding is computed here from the nonce the CLI chose and the key the evidence
         * arrived with; the recorded one is only compared, never used. */
        r = atls_binding(e->variant, ATLS_ROLE_SERVER, nonce, spki, spki_size, binding);
        if (r < 0)
                return diag_fail(d, r, "atls-binding", -1, "cannot compute the binding");
        if (recorded_size != sizeof(binding) || memcmp(recorded, binding, sizeof(binding)) != 0) {
                r = diag_fail(d, -ESTALE, "bundle-binding", -1,
                              "the recorded binding is not the one the recorded nonce and key "
                              "give");
                diag_set_values_hex(d, binding, sizeof(binding), recorded, recorded_size);
                return r;
        }
        r = attest_verify(e, p, binding, at, rep, d);
        if (r > 0)
                /* As over aTLS: ek-cert trust needs the live TPM. */
                r = diag_fail(d, -EPERM, "ak-activation", -1,
                              "akTrust ek-cert needs credential activation, which a bundle "
                              "cannot carry: use pinned AK trust");
        return r;
}

/* --- verify --bundle ------------------------------------------------------------------------ */

/* Offline for real: from here on this process cannot open a socket, so nothing a verification
 * might try to fetch leaves the machine (docs/bundle.md). */
static int go_offline(void)
{
        int r;

        r = sandbox_no_network();
        if (r < 0)
                return log_error_errno(r, "Cannot shut this process off the network: %m");
        return 0;
}

static void print_bundle_line(const CliBundle *b, time_t at, const char *policy_path)
{
        char when[TIMESTAMP_UTC_SIZE] = "";

        (void) timestamp_format_utc(at, when);
        printf("bundle recorded %s, verified offline at %s against %s\n"
               "freshness: each evidence is bound to the nonce the recording CLI chose; the "
               "bundle cannot prove that nonce was fresh then\n\n",
               b->at_text, when, policy_path ?: "the bundle's policy");
}

int cli_verify_bundle(const char *path, const char *policy_path, time_t at, OutputFormat output)
{
        _cleanup_(cli_bundle_done) CliBundle b = {};
        _cleanup_(json_decrefp) json_t *extra = NULL;
        char when[TIMESTAMP_UTC_SIZE] = "";
        _cleanup_(attest_policy_freep) AttestPolicy *p = NULL;
        json_t *node;
        AttestReport rep = {};
        Diag d;
        int r, verdict;

        r = go_offline();
        if (r < 0)
                return r;
        r = cli_bundle_load(path, NULL, &b);
        if (r < 0)
                return r;
        if (strcmp(b.kind, BUNDLE_REPORT_KIND) == 0)
                return cli_verify_report_bundle(&b, path, policy_path, at, output);
        r = cli_bundle_policy(&b, policy_path, &p);
        if (r < 0)
                return r;
        if (at == 0)
                at = b.at;
        if (output != OUTPUT_JSON)
                print_bundle_line(&b, at, policy_path);
        /* -o json says it too: a replay is not a live verify. */
        (void) timestamp_format_utc(at, when);
        extra = json_pack("{s:{s:s,s:s,s:s,s:s,s:s}}", "bundle", "file", path, "recorded",
                          b.at_text, "verifiedAt", when, "policy", policy_path ?: "the bundle's",
                          "nonce", "chosen by the recording CLI; not provably fresh");
        if (!extra)
                return log_oom();
        if (strcmp(b.kind, "cluster") == 0)
                return cli_verify_cluster_bundle(&b, p, at, output, extra);

        node = json_array_get(b.nodes, 0);
        verdict = cli_bundle_verify_node(&b, 0, p, at, &rep, &d);
        r = cli_print_node_verdict(json_string_value(json_object_get(node, "endpoint")) ?: "?",
                                   json_string_value(json_object_get(node, "state")),
                                   json_object_get(node, "versions"), &rep, verdict, &d, output,
                                   extra);
        attest_report_done(&rep);
        return r < 0 ? r : verdict < 0 ? verdict : 0;
}

/* --- policy test ---------------------------------------------------------------------------- */

static const CheckResult *check_find(const AttestReport *rep, const CheckResult *c)
{
        for (size_t i = 0; i < rep->n_checks; i++)
                if (strcmp(rep->checks[i].name, c->name) == 0 && rep->checks[i].index == c->index)
                        return &rep->checks[i];
        return NULL;
}

static int policy_test_bundle(const CliBundle *b, const char *current_path, const char *new_path,
                              OutputFormat output)
{
        _cleanup_(attest_policy_freep) AttestPolicy *cur = NULL, *new = NULL;
        _cleanup_(json_decrefp) json_t *doc = result_new("cloister policy test");
        json_t *nodes = json_array(), *node;
        size_t i, refused = 0, changed = 0;
        char reason[128];
        int r;

        if (!doc || json_object_set_new(doc, "nodes", nodes) < 0)
                return log_oom();
        if (strcmp(b->kind, BUNDLE_REPORT_KIND) == 0)
                return log_error_errno(-EINVAL,
                                       "policy test: this bundle keeps one report that "
                                       "'attestation verify-report' verified, not nodes: verify "
                                       "it under another policy with 'cloister verify --bundle "
                                       "FILE --policy NEW'.");
        r = cli_bundle_policy(b, current_path, &cur);
        if (r < 0)
                return r;
        r = cli_bundle_policy(b, new_path, &new);
        if (r < 0)
                return r;
        if (output != OUTPUT_JSON)
                printf("evidence recorded %s; current policy: %s; new policy: %s\n\n%-24s %-8s "
                       "%-8s %s\n",
                       b->at_text, current_path ?: "the bundle's", new_path, "NODE", "CURRENT",
                       "NEW", "CHECKS THAT CHANGE");
        json_array_foreach (b->nodes, i, node) {
                AttestReport old_rep = {}, new_rep = {};
                Diag old_d, new_d;
                const char *name = json_string_value(json_object_get(node, "name"));
                int old_v = cli_bundle_verify_node(b, i, cur, b->at, &old_rep, &old_d);
                int new_v = cli_bundle_verify_node(b, i, new, b->at, &new_rep, &new_d);
                json_t *changes = json_array();
                size_t shown = 0;

                if (output != OUTPUT_JSON)
                        printf("%-24s %-8s %-8s", name, old_v < 0 ? "REFUSED" : "OK",
                               new_v < 0 ? "REFUSED" : "OK");
                /* Every check whose result differs under the new policy (or that only it
                 * reaches). A check the new policy no longer reaches after an earlier
                 * failure is not a change of its own. */
                for (size_t k = 0; k < new_rep.n_checks; k++) {
                        const CheckResult *c = &new_rep.checks[k], *o = check_find(&old_rep, c);
                        char label[DIAG_CHECK_MAX + 16];

                        if (o && o->status == c->status)
                                continue;
                        if (c->index >= 0)
                                (void) snprintf(label, sizeof(label), "%s[%d]", c->name, c->index);
                        else
                                (void) snprintf(label, sizeof(label), "%s", c->name);
                        (void) json_array_append_new(
                                changes,
                                json_pack("{s:s,s:o,s:s,s:s,s:s,s:s,s:s}", "name", c->name, "index",
                                          c->index >= 0 ? json_integer(c->index) : json_null(),
                                          "current",
                                          o ? cli_check_result(o->status) : "not-reached", "new",
                                          cli_check_result(c->status), "expected", c->expected,
                                          "actual", c->actual, "detail", c->detail));
                        if (output == OUTPUT_JSON)
                                continue;
                        printf("%s%s %s -> %s",
                               shown++ ? "\n                                    "
                                         "               "
                                       : " ",
                               label, o ? cli_check_result(o->status) : "not-reached",
                               cli_check_result(c->status));
                        if (c->expected[0] || c->actual[0])
                                printf(" (expected %s, actual %s)",
                                       c->expected[0] ? c->expected : "-",
                                       c->actual[0] ? c->actual : "-");
                }
                if (output != OUTPUT_JSON)
                        printf("%s\n", shown ? "" : " -");
                refused += new_v < 0;
                changed += json_array_size(changes) > 0;
                if (json_array_append_new(
                            nodes, json_pack("{s:s,s:s,s:s,s:o,s:o*}", "name", name, "current",
                                             old_v < 0 ? "fail" : "pass", "new",
                                             new_v < 0 ? "fail" : "pass", "changes",
                                             changes ?: json_array(), "newReason",
                                             new_v < 0 ? json_string(new_d.message) : NULL)) < 0)
                        r = -ENOMEM;
                attest_report_done(&old_rep);
                attest_report_done(&new_rep);
        }
        if (r < 0)
                return log_oom();
        (void) snprintf(reason, sizeof(reason), "%zu of %zu node(s) would be refused", refused,
                        json_array_size(b->nodes));
        if (output == OUTPUT_JSON) {
                if (result_set_verdict(doc, refused ? "fail" : "pass", refused ? reason : NULL,
                                       NULL, "checked") < 0 ||
                    result_print(doc) < 0)
                        return log_oom();
        } else if (refused)
                printf("\n%s under %s (%zu with changed checks)\n", reason, new_path, changed);
        else
                printf("\nNo node would be refused under %s (%zu with changed checks)\n", new_path,
                       changed);
        return refused ? -EPERM : 0;
}

static int policy_test_verb(int argc, char *argv[], void *userdata)
{
        enum { ARG_POLICY = 0x100, ARG_BUNDLE, ARG_CLUSTER, ARG_CURRENT, ARG_CONFIG, ARG_STATE };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "bundle", required_argument, NULL, ARG_BUNDLE },
                { "cluster", no_argument, NULL, ARG_CLUSTER },
                { "current", required_argument, NULL, ARG_CURRENT },
                { "config", required_argument, NULL, ARG_CONFIG },
                { "state-file", required_argument, NULL, ARG_STATE },
                { "output", required_argument, NULL, 'o' },
                {},
        };
        CliOptions *o = userdata;
        const char *new_path = NULL, *bundle_path = NULL, *current = NULL, *config_path = NULL,
                   *state_path = CLI_STATE_FILE_DEFAULT;
        bool cluster = false;
        _cleanup_(cli_bundle_done) CliBundle b = {};
        int c, r;

        optind = 0;
        while ((c = getopt_long(argc, argv, "ho:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        printf("Usage: cloister policy test --policy NEW --bundle FILE [--current "
                               "FILE] [-o text|json]\n"
                               "       cloister policy test --policy NEW --cluster [--config FILE "
                               "| --current FILE]\n"
                               "                            [--state-file FILE] [-o text|json]\n\n"
                               "A dry run of a policy change: every node's recorded evidence is\n"
                               "verified under the current policy and under NEW, and the table\n"
                               "shows per node both verdicts and the checks whose result changes\n"
                               "(e.g. 'pcr[4] pass -> fail'). Nothing is sent to any node.\n\n"
                               "  --bundle FILE  evidence recorded by 'cloister verify --cluster\n"
                               "                 --bundle FILE' (offline; the current policy is\n"
                               "                 the bundle's unless --current FILE)\n"
                               "  --cluster      collect fresh evidence first, as 'cloister "
                               "verify\n"
                               "                 --cluster' does (the current policy is the\n"
                               "                 workspace's " CLI_CONFIG_FILE_DEFAULT
                               ", --config or --current)\n\n"
                               "Both are judged at the time the evidence was collected. Exit\n"
                               "status: 0 if no node would be refused under NEW, 1 if any would\n"
                               "be (or on an error), 2 on a usage error.\n");
                        return 0;
                case ARG_POLICY:
                        new_path = optarg;
                        break;
                case ARG_BUNDLE:
                        bundle_path = optarg;
                        break;
                case ARG_CLUSTER:
                        cluster = true;
                        break;
                case ARG_CURRENT:
                        current = optarg;
                        break;
                case ARG_CONFIG:
                        config_path = optarg;
                        break;
                case ARG_STATE:
                        state_path = optarg;
                        break;
                case 'o':
                        if (cli_parse_output_option(optarg, &o->output) < 0)
                                return -EUSAGE;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE,
                                       "policy test: unexpected argument '%s'. See --help.",
                                       argv[optind]);
        if (!new_path || (!bundle_path == !cluster))
                return log_error_errno(-EUSAGE,
                                       "policy test: give --policy NEW and one of --bundle FILE or "
                                       "--cluster. See --help.");
        if (bundle_path) {
                if (config_path)
                        return log_error_errno(-EUSAGE,
                                               "policy test: --config goes with --cluster; with "
                                               "--bundle give --current FILE.");
                r = go_offline();
                if (r < 0)
                        return r;
                r = cli_bundle_load(bundle_path, NULL, &b);
        } else {
                _cleanup_(cli_config_done) CliConfig config = {};
                char endpoint[CLI_URL_MAX];
                uint8_t cid[32];
                RpcClientConfig rc;
                CliBundleWriter w = {};
                Bundle *mem = NULL;

                (void) cli_workspace_config_default(current, &config_path);
                r = cli_policy_or_config("policy test", current, config_path, &config);
                if (r < 0)
                        return r;
                if (!current && !config_path)
                        return log_error_errno(
                                -EUSAGE,
                                "policy test --cluster: no current policy: give "
                                "--current FILE or --config FILE, or run it in the "
                                "cluster's workspace (holding " CLI_CONFIG_FILE_DEFAULT ").");
                r = cli_state_load(state_path, cid, endpoint, sizeof(endpoint));
                if (r < 0)
                        return r;
                rpc_client_config_defaults(&rc);
                r = cli_verify_cluster_record(endpoint, current, &config, cid, &rc, &w);
                if (r >= 0)
                        r = cli_bundle_writer_take(&w, &mem);
                cli_bundle_writer_done(&w);
                if (r < 0)
                        return r;
                r = cli_bundle_load(NULL, mem, &b);
                if (r < 0)
                        return r;
                current = NULL; /* the recorded policy is the current one */
        }
        if (r < 0)
                return r;
        return policy_test_bundle(&b, current, new_path, o->output);
}

int verb_policy(int argc, char *argv[], void *userdata)
{
        static const Verb verbs[] = {
                { "test", 0, VERB_ANY, policy_test_verb,
                  "dry run: which nodes a new policy would refuse, and why" },
                { "push", 0, VERB_ANY, policy_push_verb,
                  "change what the running cluster admits (owner-authenticated, versioned)" },
                {},
        };

        return verbs_dispatch("cloister policy", argc - 1, argv + 1, verbs, userdata);
}
