/* SPDX-License-Identifier: Apache-2.0 */
/* Node states in words (cli-node-state.h). */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli-node-state.h"
#include "cloister/attest.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/kdf.h"
#include "cloister/log.h"
#include "cloister/version.h"

int cli_node_state_from_report(const char *verb, const char *endpoint, const AttestReport *rep,
                               const uint8_t *cid)
{
        const CheckResult *pcr15 = NULL;
        char ours[2 * 32 + 1] = "", cid_hex[2 * CLUSTER_ID_SIZE + 1] = "";
        uint8_t expected[32];

        if (!rep)
                return 0;
        for (size_t i = 0; i < rep->n_checks; i++) {
                const CheckResult *c = &rep->checks[i];
                if (c->status != CHECK_FAIL || !c->enforced)
                        continue;
                if (strcmp(c->name, "pcr") != 0 || c->index != 15)
                        return 0; /* something else failed too: not (only) a state */
                pcr15 = c;
        }
        if (!pcr15)
                return 0;
        log_debug("%s: PCR 15 is %s, expected %s (a node in no cluster)", endpoint, pcr15->actual,
                  pcr15->expected);
        if (cid) {
                kdf_pcr15_expected(cid, expected);
                hex_encode_buf(expected, sizeof(expected), ours, sizeof(ours));
                hex_encode_buf(cid, CLUSTER_ID_SIZE, cid_hex, sizeof(cid_hex));
        }
        if (strcmp(verb, "recover") == 0) {
                if (ours[0] && strcasecmp(pcr15->actual, ours) == 0)
                        return log_error_errno(-EALREADY,
                                               "%s is a member of cluster %.16s... again (it "
                                               "recovered already, or was never down): nothing "
                                               "to recover, nothing was sent. Run 'cloister "
                                               "verify --cluster' to see the whole cluster.",
                                               endpoint, cid_hex);
                return log_error_errno(-EALREADY,
                                       "%s is a member of another cluster (not the one in this "
                                       "workspace's state file): nothing to recover, nothing "
                                       "was sent. Check --node, or run recover in that "
                                       "cluster's workspace ('cloister -C DIR recover').",
                                       endpoint);
        }
        if (ours[0] && strcasecmp(pcr15->actual, ours) == 0)
                return log_error_errno(-EALREADY,
                                       "%s is already a member of cluster %.16s... (this "
                                       "workspace's): nothing to initialise, nothing was sent. "
                                       "Run 'cloister verify --node %s' to attest it.",
                                       endpoint, cid_hex, endpoint);
        return log_error_errno(-EALREADY,
                               "%s is already a member of a cluster (it holds that cluster's ID): "
                               "nothing to initialise, nothing was sent. Run 'cloister verify "
                               "--node %s --cluster-id ID' in that cluster's workspace, or give "
                               "'cloister %s' a node that is in no cluster.",
                               endpoint, endpoint, verb);
}

int cli_node_state_expect(const char *verb, const char *endpoint, const json_t *node,
                          const char *want)
{
        const char *state = json_string_value(json_object_get(node, "state"));

        /* A bootstrapper that does not say (an older one) is judged by its PCRs alone. */
        if (!state || strcmp(state, want) == 0)
                return 0;
        if (strcmp(state, "awaiting-recovery") == 0)
                return log_error_errno(-EALREADY,
                                       "%s was a control plane of a cluster whose whole control "
                                       "plane was down, and waits for 'cloister recover': "
                                       "nothing to %s, nothing was sent. Run 'cloister recover "
                                       "--node %s' in that cluster's workspace.",
                                       endpoint, strcmp(verb, "apply") == 0 ? "initialise" : verb,
                                       endpoint);
        if (strcmp(state, "joining") == 0)
                return log_error_errno(-EALREADY,
                                       "%s is joining a cluster through the join services in its "
                                       "metadata: nothing to %s, nothing was sent. Run "
                                       "'cloister status' in that cluster's workspace to see "
                                       "whether it was admitted.",
                                       endpoint, strcmp(verb, "apply") == 0 ? "initialise" : verb);
        if (strcmp(state, "uninitialized") == 0)
                return log_error_errno(-EALREADY,
                                       "%s is in no cluster yet: nothing to %s, nothing was sent. "
                                       "Run 'cloister apply --endpoint %s' to make it a "
                                       "cluster's first node.",
                                       endpoint, verb, endpoint);
        return log_error_errno(-EALREADY,
                               "%s is already a member of a cluster (state '%s'): nothing to %s, "
                               "nothing was sent. Run 'cloister verify --node %s'.",
                               endpoint, state, strcmp(verb, "apply") == 0 ? "initialise" : verb,
                               endpoint);
}

int cli_node_state_from_refusal(const char *verb, const char *endpoint, const json_t *resp)
{
        const char *code = json_string_value(json_object_get(resp, "code"));
        const char *detail = json_string_value(json_object_get(resp, "detail"));

        if (!code || !detail)
                return 0;
        if (strcmp(code, "already-member") != 0 && strcmp(code, "already-recovered") != 0 &&
            strcmp(code, "awaiting-recovery") != 0 && strcmp(code, "not-initialized") != 0)
                return 0;
        /* The node's own words name its state and the next step. */
        log_debug("%s: %s refused (%s)", endpoint, verb, code);
        return log_error_errno(-EALREADY, "%s: %s (nothing was changed).", endpoint, detail);
}

/* A version value as a node may report it: a short printable string, or null. */
static bool version_value_ok(const json_t *v)
{
        const char *s = json_string_value(v);

        if (json_is_null(v))
                return true;
        if (!s || strlen(s) == 0 || strlen(s) >= VERSION_STRING_MAX)
                return false;
        for (const char *p = s; *p; p++)
                if ((unsigned char) *p < ' ' || *p == 0x7f)
                        return false;
        return true;
}

json_t *cli_node_versions(const char *endpoint, const json_t *node)
{
        static const char *const keys[] = { "cloister", "image", "kubernetes", "imageKind" };
        const json_t *v = json_object_get(node, "versions");
        _cleanup_(json_decrefp) json_t *out = NULL;
        const char *ours = CLOISTER_VERSION, *theirs;
        char why[256];

        if (!json_is_object(v))
                return NULL;
        out = json_object();
        for (size_t i = 0; out && i < ELEMENTSOF(keys); i++) {
                const json_t *x = json_object_get(v, keys[i]);
                if (!x || !version_value_ok(x) ||
                    (i == 3 && !json_is_null(x) &&
                     measurements_image_kind_from_string(json_string_value(x)) < 0)) {
                        log_debug("%s: versions.%s is missing or malformed: not shown", endpoint,
                                  keys[i]);
                        x = json_null();
                }
                if (json_object_set(out, keys[i], (json_t *) x) < 0)
                        return NULL;
        }
        if (!out)
                return NULL;
        theirs = json_string_value(json_object_get(out, "cloister"));
        if (theirs && cloister_version_skew(ours, theirs, why, sizeof(why)) < 0)
                log_warning("%s runs Cloister %s, %s (docs/versions.md).", endpoint, theirs, why);
        return TAKE_PTR(out);
}

MeasurementsImageKind cli_node_image_kind(const json_t *versions)
{
        MeasurementsImageKind k = measurements_image_kind_from_string(
                json_string_value(json_object_get(versions, "imageKind")));

        return k < 0 ? MEASUREMENTS_IMAGE_KIND_UNKNOWN : k;
}

void cli_node_versions_text(const json_t *versions, char *buf, size_t size)
{
        const char *c = json_string_value(json_object_get(versions, "cloister"));
        const char *i = json_string_value(json_object_get(versions, "image"));
        const char *k = json_string_value(json_object_get(versions, "kubernetes"));

        (void) snprintf(buf, size, "Cloister %s, image %s%s, Kubernetes %s", c ?: "-", i ?: "-",
                        measurements_image_kind_note(cli_node_image_kind(versions)), k ?: "-");
}

/* What a node may send as its log: its ring holds 64 KiB; anything much larger is not one. */
#define NODE_LOG_MAX (256U * 1024U)

void cli_node_log_default_path(const char *endpoint, char ret[static CLI_NODE_LOG_PATH_MAX])
{
        const char *host = strstr(endpoint, "://");

        host = host ? host + 3 : endpoint;
        (void) snprintf(ret, CLI_NODE_LOG_PATH_MAX, "cloister-node-%s.log", host);
        for (char *p = ret + strlen("cloister-node-"); *p && strcmp(p, ".log") != 0; p++)
                if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
                      (*p >= '0' && *p <= '9') || *p == '.'))
                        *p = '-';
}

int cli_node_log_save(const char *endpoint, const json_t *resp, const char *path, bool quiet)
{
        const json_t *j = json_object_get(resp, "nodeLog");
        const char *text = json_string_value(j);
        size_t size = json_string_length(j);
        _cleanup_(freep) char *copy = NULL;
        char name[CLI_NODE_LOG_PATH_MAX];
        int r;

        if (!text || size == 0)
                return 0;
        if (size > NODE_LOG_MAX) {
                log_warning("%s sent a log of %zu bytes: more than a node keeps; not saved.",
                            endpoint, size);
                return -EMSGSIZE;
        }
        copy = malloc(size);
        if (!copy)
                return log_oom();
        for (size_t i = 0; i < size; i++)
                copy[i] = (text[i] < ' ' && text[i] != '\n') || text[i] == 0x7f ? '?' : text[i];
        if (!path) {
                cli_node_log_default_path(endpoint, name);
                path = name;
        }
        r = write_file_atomic(path, copy, size, 0600, 0);
        if (r < 0) {
                log_warning("Cannot save the node's log as %s: %s", path, strerror(-r));
                return r;
        }
        if (quiet)
                ;
        else if (json_is_true(json_object_get(resp, "nodeLogDropped")))
                log_notice("The node's log of this boot (%zu bytes, its oldest records dropped) "
                           "is saved in %s.",
                           size, path);
        else
                log_notice("The node's log of this boot (%zu bytes) is saved in %s.", size, path);
        return (int) MIN(size, (size_t) INT_MAX);
}

const char *cli_node_state_name(const json_t *node)
{
        static const char *const states[] = { "uninitialized", "joining", "join-failed",
                                              "awaiting-recovery", "member" };
        const char *s = json_string_value(json_object_get(node, "state"));

        for (size_t i = 0; s && i < ELEMENTSOF(states); i++)
                if (strcmp(s, states[i]) == 0)
                        return states[i];
        return NULL;
}
