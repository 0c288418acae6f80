/* SPDX-License-Identifier: Apache-2.0 */
#include <inttypes.h>
#include <openssl/core_names.h>
#include <openssl/pem.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/measurements.h"
#include "cloister/snp-measurements.h"
#include "cloister/timestamp.h"
#include "cloister/version.h"

MeasurementsFile *measurements_file_free(MeasurementsFile *m)
{
        if (!m)
                return NULL;
        free(m->image);
        free(m->image_version);
        free(m->kubernetes_version);
        free(m);
        return NULL;
}

const char *measurements_image_kind_to_string(MeasurementsImageKind k)
{
        switch (k) {
        case MEASUREMENTS_IMAGE_KIND_CLOUD:
                return "cloud";
        case MEASUREMENTS_IMAGE_KIND_TEST:
                return "test";
        default:
                return NULL;
        }
}

MeasurementsImageKind measurements_image_kind_from_string(const char *s)
{
        if (s && strcmp(s, "cloud") == 0)
                return MEASUREMENTS_IMAGE_KIND_CLOUD;
        if (s && strcmp(s, "test") == 0)
                return MEASUREMENTS_IMAGE_KIND_TEST;
        return _MEASUREMENTS_IMAGE_KIND_INVALID;
}

const char *measurements_image_kind_note(MeasurementsImageKind k)
{
        switch (k) {
        case MEASUREMENTS_IMAGE_KIND_CLOUD:
                return " (cloud image)";
        case MEASUREMENTS_IMAGE_KIND_TEST:
                return " (TEST image: kubeadm double, not for production)";
        default:
                return "";
        }
}

bool measurements_text_valid(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > MEASUREMENTS_TEXT_MAX)
                return false;
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return false;
        return true;
}

/* A required "image" or "imageVersion" string into *ret (a copy). */
static int get_text(const JsonCtx *ctx, const json_t *j, const char *key, char **ret)
{
        const char *s;
        int r;

        r = json_get_string(ctx, j, key, true, &s);
        if (r < 0)
                return r;
        if (!measurements_text_valid(s))
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: .%s: must be 1 to %u bytes without control characters",
                                 ctx->source, key, MEASUREMENTS_TEXT_MAX);
        *ret = strdup(s);
        return *ret ? 0 : -ENOMEM;
}

/* Format 2's fields: the publisher's counter, the image version, the creation time, the image's
 * kind (optional). */
static int parse_format2(const JsonCtx *ctx, const json_t *j, MeasurementsFile *m)
{
        const char *created, *kind, *kversion;
        int r;

        r = json_get_int(ctx, j, "measurementsVersion", true, 1, MEASUREMENTS_VERSION_MAX,
                         &m->measurements_version);
        if (r >= 0)
                r = get_text(ctx, j, "imageVersion", &m->image_version);
        if (r >= 0)
                r = json_get_string(ctx, j, "created", true, &created);
        if (r < 0)
                return r;
        if (timestamp_parse_utc(created, &m->created_time) < 0)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: .created: '%.40s' is not an RFC 3339 UTC time "
                                 "YYYY-MM-DDTHH:MM:SSZ",
                                 ctx->source, created);
        memcpy(m->created, created, TIMESTAMP_UTC_SIZE);
        r = json_get_string(ctx, j, "kubernetesVersion", false, &kversion);
        if (r >= 0) {
                KubernetesVersion kv;
                if (kubernetes_version_parse(kversion, &kv) < 0)
                        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                         "%s: .kubernetesVersion: '%.40s' is not a Kubernetes "
                                         "release v1.MINOR.PATCH",
                                         ctx->source, kversion);
                m->kubernetes_version = strdup(kversion);
                if (!m->kubernetes_version)
                        return -ENOMEM;
        } else if (r != -ENOENT)
                return r;
        r = json_get_string(ctx, j, "imageKind", false, &kind);
        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        m->image_kind = measurements_image_kind_from_string(kind);
        if (m->image_kind < 0)
                return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                                 "%s: .imageKind: '%.20s' is neither cloud nor test", ctx->source,
                                 kind);
        return 0;
}

/* Format 2's optional "snp": {"launchMeasurements": [...]}. */
static int parse_snp(const JsonCtx *ctx, const json_t *j, MeasurementsFile *m)
{
        static const char *const keys[] = { "launchMeasurements", NULL };
        json_t *snp;
        char buf[64];
        int r;

        r = json_get_object(ctx, j, "snp", false, &snp);
        if (r == -ENOENT)
                return 0;
        JsonCtx c = json_ctx_child(ctx, "snp", buf, sizeof(buf));
        if (r >= 0)
                r = json_check_keys(&c, snp, keys);
        if (r >= 0)
                r = snp_launch_entries_parse(&c, snp, "launchMeasurements", m->snp_launch,
                                             SNP_POLICY_LAUNCH_MAX, &m->n_snp_launch);
        return r;
}

/* Format 2's optional "tdx": {"rtmr0".."rtmr3": <96 hex>}, at least one. */
static int parse_tdx(const JsonCtx *ctx, const json_t *j, MeasurementsFile *m)
{
        static const char *const keys[] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3", NULL };
        json_t *tdx;
        char buf[64];
        size_t n = 0;
        int r;

        r = json_get_object(ctx, j, "tdx", false, &tdx);
        if (r == -ENOENT)
                return 0;
        JsonCtx c = json_ctx_child(ctx, "tdx", buf, sizeof(buf));
        if (r >= 0)
                r = json_check_keys(&c, tdx, keys);
        for (int i = 0; r >= 0 && i < 4; i++) {
                r = json_get_hex_exact(&c, tdx, keys[i], false, m->tdx_rtmr[i], 48);
                if (r == -ENOENT) {
                        r = 0;
                        continue;
                }
                if (r >= 0) {
                        m->tdx_rtmr_present[i] = true;
                        n++;
                }
        }
        if (r >= 0 && n == 0)
                r = diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                              "%s: .tdx: names no RTMR (rtmr0..rtmr3)", ctx->source);
        return r;
}

size_t measurements_file_tdx_rtmrs(const MeasurementsFile *m, TdxPolicy *p)
{
        size_t n = 0;

        for (int i = 0; i < 4; i++) {
                if (!m->tdx_rtmr_present[i])
                        continue;
                memcpy(p->rtmr[i].v[0], m->tdx_rtmr[i], 48);
                p->rtmr[i].n = 1;
                n++;
        }
        return n;
}

int measurements_file_tdx_policy_json(const MeasurementsFile *m, json_t *tdx)
{
        static const char *const keys[] = { "rtmr0", "rtmr1", "rtmr2", "rtmr3" };
        char hex[2 * 48 + 1];
        int n = 0;

        for (int i = 0; i < 4; i++) {
                if (!m->tdx_rtmr_present[i])
                        continue;
                hex_encode_buf(m->tdx_rtmr[i], 48, hex, sizeof(hex));
                if (json_object_set_new(tdx, keys[i], json_pack("[s]", hex)) < 0)
                        return -ENOMEM;
                n++;
        }
        return n;
}

int measurements_file_parse(const void *data, size_t size, const char *source,
                            MeasurementsFile **ret, Diag *d)
{
        static const char *const keys_v1[] = { "version", "image", "measurements", NULL };
        static const char *const keys_v2[] = {
                "version",   "measurementsVersion", "image", "imageVersion",
                "created",   "measurements",        "snp",   "tdx",
                "imageKind", "kubernetesVersion",   NULL
        };
        static const char *const entry_keys[] = { "expected", "warnOnly", NULL };
        _cleanup_(measurements_file_freep) MeasurementsFile *m = NULL;
        _cleanup_(json_decrefp) json_t *j = NULL;
        JsonCtx ctx = { .source = source, .path = "", .diag = d };
        const char *k;
        json_t *ms, *v;
        int64_t version = 0;
        char buf[64];
        int r;

        if (size > MEASUREMENTS_FILE_SIZE_MAX)
                return diag_fail(d, -EMSGSIZE, "file-size", -1, "%s: larger than %u bytes", source,
                                 MEASUREMENTS_FILE_SIZE_MAX);
        r = json_parse_buffer(data, size, source, &j, d);
        if (r >= 0)
                r = json_expect_object(&ctx, j);
        if (r >= 0)
                r = json_get_int(&ctx, j, "version", true, 1, INT64_MAX, &version);
        if (r < 0)
                return r;
        if (version > MEASUREMENTS_FORMAT_VERSION)
                return diag_fail(d, -EPROTONOSUPPORT, "format-version", -1,
                                 "%s: .version: format %" PRId64
                                 " is newer than this program reads (1 and %d): update Cloister",
                                 source, version, MEASUREMENTS_FORMAT_VERSION);
        r = json_check_keys(&ctx, j, version == 1 ? keys_v1 : keys_v2);
        if (r < 0)
                return r;
        m = calloc(1, sizeof(*m));
        if (!m)
                return -ENOMEM;
        m->format_version = (unsigned) version;
        r = get_text(&ctx, j, "image", &m->image);
        if (r >= 0 && version >= 2)
                r = parse_format2(&ctx, j, m);
        if (r >= 0)
                r = json_get_object(&ctx, j, "measurements", true, &ms);
        if (r < 0)
                return r;
        JsonCtx cm = json_ctx_child(&ctx, "measurements", buf, sizeof(buf));
        json_object_foreach (ms, k, v) {
                int idx = evidence_pcr_index_from_key(k);
                char buf2[96];
                bool warn = false;

                if (idx < 0)
                        return diag_fail(d, -EBADMSG, "json-schema", -1,
                                         "%s: .measurements.%s: not a PCR index 0..23", source, k);
                JsonCtx ce = json_ctx_child(&cm, k, buf2, sizeof(buf2));
                r = json_check_keys(&ce, v, entry_keys);
                if (r >= 0)
                        r = json_get_hex_exact(&ce, v, "expected", true, m->pcrs[idx].expected,
                                               EVIDENCE_PCR_SIZE);
                if (r >= 0) {
                        r = json_get_bool(&ce, v, "warnOnly", false, &warn);
                        if (r == -ENOENT)
                                r = 0;
                }
                if (r < 0)
                        return r;
                m->pcrs[idx].present = true;
                m->pcrs[idx].warn_only = warn;
        }
        r = parse_snp(&ctx, j, m);
        if (r >= 0)
                r = parse_tdx(&ctx, j, m);
        if (r < 0)
                return r;
        crypto_sha256(data, size, m->sha256);
        *ret = TAKE_PTR(m);
        return 0;
}

static EVP_PKEY *load_p256(const void *pem, size_t size, bool private)
{
        BIO *b = BIO_new_mem_buf(pem, (int) size);
        EVP_PKEY *k = NULL;
        char group[32] = "";

        if (b)
                k = private ? PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)
                            : PEM_read_bio_PUBKEY(b, NULL, NULL, NULL);
        BIO_free(b);
        if (k && (!EVP_PKEY_is_a(k, "EC") ||
                  EVP_PKEY_get_utf8_string_param(k, OSSL_PKEY_PARAM_GROUP_NAME, group,
                                                 sizeof(group), NULL) != 1 ||
                  strcmp(group, "prime256v1") != 0)) {
                EVP_PKEY_free(k);
                k = NULL;
        }
        return k;
}

int measurements_sign(const void *data, size_t size, const void *key_pem, size_t key_size,
                      uint8_t **ret, size_t *ret_size, Diag *d)
{
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = load_p256(key_pem, key_size, true);
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t sig[MEASUREMENTS_SIGNATURE_MAX];
        size_t n = sizeof(sig);

        if (!key)
                return diag_fail(d, crypto_log_errors(-EINVAL, "key"), "signing-key", -1,
                                 "the signing key is not an ECDSA P-256 private key in PEM");
        if (!md || EVP_DigestSignInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestSign(md, sig, &n, data, size) != 1)
                return diag_fail(d, crypto_log_errors(-EIO, "sign"), "signing", -1,
                                 "signing failed");
        *ret = malloc(n);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, sig, n);
        *ret_size = n;
        return 0;
}

int measurements_verify(const void *data, size_t size, const void *sig, size_t sig_size,
                        const void *pub_pem, size_t pub_size, Diag *d)
{
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *key = load_p256(pub_pem, pub_size, false);
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();

        if (!key)
                return diag_fail(d, crypto_log_errors(-EINVAL, "pubkey"), "public-key", -1,
                                 "the public key is not an ECDSA P-256 public key in PEM");
        if (sig_size > MEASUREMENTS_SIGNATURE_MAX || !md ||
            EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, key) != 1 ||
            EVP_DigestVerify(md, sig, sig_size, data, size) != 1)
                return diag_fail(d, crypto_log_errors(-EKEYREJECTED, "verify"), "signature", -1,
                                 "the signature does not verify with this key: the file or the "
                                 "signature was changed, or another key signed it");
        return 0;
}
