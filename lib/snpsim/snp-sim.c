/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "cloister/crypto.h"
#include "cloister/snp-sim.h"

/* Field offsets of the attestation report (AMD SEV-SNP Firmware ABI, "ATTESTATION_REPORT
 * Structure"). Reserved fields stay zero. */
enum {
        OFF_VERSION = 0x00,
        OFF_GUEST_SVN = 0x04,
        OFF_POLICY = 0x08,
        OFF_FAMILY_ID = 0x10,
        OFF_IMAGE_ID = 0x20,
        OFF_VMPL = 0x30,
        OFF_SIGNATURE_ALGO = 0x34,
        OFF_CURRENT_TCB = 0x38,
        OFF_PLATFORM_INFO = 0x40,
        OFF_SIGNER_INFO = 0x48,
        OFF_REPORT_DATA = 0x50,
        OFF_MEASUREMENT = 0x90,
        OFF_HOST_DATA = 0xC0,
        OFF_REPORT_ID = 0x140,
        OFF_REPORTED_TCB = 0x180,
        OFF_CHIP_ID = 0x1A0,
        OFF_COMMITTED_TCB = 0x1E0,
        OFF_CURRENT_VERSION = 0x1E8,
        OFF_COMMITTED_VERSION = 0x1EC,
        OFF_LAUNCH_TCB = 0x1F0,
        OFF_SIGNATURE_R = 0x2A0,
        OFF_SIGNATURE_S = 0x2E8,
        SIGNED_SIZE = 0x2A0,
        SIGNATURE_COMPONENT_SIZE = 72,
};

struct SnpSimulator {
        SnpSimConfig config;
        EVP_PKEY *ark_key, *ask_key, *vcek_key;
        X509 *ark, *ask, *vcek;
};

void snp_sim_config_defaults(SnpSimConfig *c)
{
        *c = (SnpSimConfig){
                .policy = 0x30000,
                .tcb = { .bootloader = 3, .tee = 0, .snp = 8, .microcode = 115 },
                .platform_info = 0x1,
        };
        /* A recognisable, obviously fake chip ID. */
        memset(c->chip_id, 0x5a, sizeof(c->chip_id));
}

static void put_u32(uint8_t *p, uint32_t v)
{
        for (int i = 0; i < 4; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
        for (int i = 0; i < 8; i++)
                p[i] = (uint8_t) (v >> (8 * i));
}

/* Milan/Genoa TCB_VERSION: byte 0 bootloader, 1 TEE, 2..5 reserved, 6 SNP, 7 microcode. */
static uint64_t tcb_encode(const SnpSimTcb *t)
{
        return (uint64_t) t->bootloader | (uint64_t) t->tee << 8 | (uint64_t) t->snp << 48 |
               (uint64_t) t->microcode << 56;
}

static int add_ext_der(X509 *x, const char *oid, const uint8_t *der, size_t n)
{
        ASN1_OBJECT *obj = OBJ_txt2obj(oid, 1);
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        X509_EXTENSION *ext = NULL;
        int r = -EIO;

        if (obj && os && ASN1_OCTET_STRING_set(os, der, (int) n) == 1) {
                ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
                if (ext && X509_add_ext(x, ext, -1) == 1)
                        r = 0;
        }
        X509_EXTENSION_free(ext);
        ASN1_OCTET_STRING_free(os);
        ASN1_OBJECT_free(obj);
        return r;
}

/* AMD's VCEK extensions hold DER INTEGERs (SPLs), an IA5String (product) and the raw 64-byte
 * hwID (AMD "Versioned Chip Endorsement Key" specification). */
static int add_ext_int(X509 *x, const char *oid, uint8_t v)
{
        uint8_t der[4] = { 0x02, 0x01, v };
        size_t n = 3;

        if (v & 0x80) { /* keep the INTEGER positive */
                der[1] = 0x02, der[2] = 0x00, der[3] = v;
                n = 4;
        }
        return add_ext_der(x, oid, der, n);
}

static int sign_pss(X509 *x, EVP_PKEY *key)
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        EVP_PKEY_CTX *pctx = NULL;

        if (!md || EVP_DigestSignInit(md, &pctx, EVP_sha384(), NULL, key) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, 48) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha384()) != 1 || X509_sign_ctx(x, md) <= 0)
                return crypto_log_errors(-EIO, "sim-snp: RSA-PSS sign");
        return 0;
}

static int make_cert(const char *cn, EVP_PKEY *key, X509 *issuer, EVP_PKEY *issuer_key, long serial,
                     X509 **ret)
{
        _cleanup_(X509_freep) X509 *x = X509_new();
        X509_NAME *name = X509_NAME_new();
        int r = -EIO;

        if (!x || !name)
                goto finish;
        if (X509_set_version(x, X509_VERSION_3) != 1 ||
            ASN1_INTEGER_set(X509_get_serialNumber(x), serial) != 1 ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -24L * 3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), 25L * 365 * 24 * 3600) ||
            X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                                       (const unsigned char *) "Cloister SNP simulator (NOT AMD)",
                                       -1, -1, 0) != 1 ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC, (const unsigned char *) cn, -1, -1,
                                       0) != 1 ||
            X509_set_subject_name(x, name) != 1 ||
            X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) : name) != 1 ||
            X509_set_pubkey(x, key) != 1)
                goto finish;
        *ret = TAKE_PTR(x);
        r = 0;
finish:
        X509_NAME_free(name);
        return r < 0 ? crypto_log_errors(r, "sim-snp: certificate") : 0;
}

static int add_ca_extensions(X509 *x, X509 *issuer)
{
        X509V3_CTX ctx;
        static const char *const exts[][2] = {
                { "basicConstraints", "critical,CA:TRUE" },
                { "keyUsage", "critical,keyCertSign,cRLSign" },
        };

        X509V3_set_ctx(&ctx, issuer ?: x, x, NULL, NULL, 0);
        for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
                X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
                if (!e || X509_add_ext(x, e, -1) != 1) {
                        X509_EXTENSION_free(e);
                        return crypto_log_errors(-EIO, "sim-snp: CA extensions");
                }
                X509_EXTENSION_free(e);
        }
        return 0;
}

static int make_vcek_extensions(X509 *x, const SnpSimConfig *c)
{
        static const uint8_t product[] = { 0x16, 0x08, 'M', 'i', 'l', 'a', 'n', '-', 'B', '0' };
        static const char arc[] = "1.3.6.1.4.1.3704.1";
        char oid[64];
        int r;

        (void) snprintf(oid, sizeof(oid), "%s.1", arc);
        r = add_ext_int(x, oid, 0); /* structVersion */
        if (r >= 0) {
                (void) snprintf(oid, sizeof(oid), "%s.2", arc);
                r = add_ext_der(x, oid, product, sizeof(product));
        }
        const struct {
                int sub;
                uint8_t v;
        } spls[] = {
                { 1, c->tcb.bootloader },
                { 2, c->tcb.tee },
                { 4, 0 },
                { 5, 0 },
                { 6, 0 },
                { 7, 0 },
                { 3, c->tcb.snp },
                { 8, c->tcb.microcode },
        };
        for (size_t i = 0; r >= 0 && i < ELEMENTSOF(spls); i++) {
                (void) snprintf(oid, sizeof(oid), "%s.3.%d", arc, spls[i].sub);
                r = add_ext_int(x, oid, spls[i].v);
        }
        if (r >= 0) {
                (void) snprintf(oid, sizeof(oid), "%s.4", arc);
                r = add_ext_der(x, oid, c->chip_id, sizeof(c->chip_id));
        }
        return r < 0 ? crypto_log_errors(r, "sim-snp: VCEK extensions") : 0;
}

int snp_sim_new(const SnpSimConfig *config, SnpSimulator **ret)
{
        _cleanup_(snp_sim_freep) SnpSimulator *s = NULL;
        SnpSimConfig defaults;
        int r;

        if (!config) {
                snp_sim_config_defaults(&defaults);
                config = &defaults;
        }
        s = calloc(1, sizeof(*s));
        if (!s)
                return -ENOMEM;
        s->config = *config;

        s->ark_key = EVP_RSA_gen(4096);
        s->ask_key = EVP_RSA_gen(4096);
        s->vcek_key = EVP_EC_gen("P-384");
        if (!s->ark_key || !s->ask_key || !s->vcek_key)
                return crypto_log_errors(-EIO, "sim-snp: key generation");

        r = make_cert("ARK-Milan (simulated)", s->ark_key, NULL, NULL, 1, &s->ark);
        if (r >= 0)
                r = add_ca_extensions(s->ark, NULL);
        if (r >= 0)
                r = sign_pss(s->ark, s->ark_key);
        if (r >= 0)
                r = make_cert("SEV-Milan (simulated)", s->ask_key, s->ark, s->ark_key, 2, &s->ask);
        if (r >= 0)
                r = add_ca_extensions(s->ask, s->ark);
        if (r >= 0)
                r = sign_pss(s->ask, s->ark_key);
        if (r >= 0)
                r = make_cert("SEV-VCEK (simulated)", s->vcek_key, s->ask, s->ask_key, 0, &s->vcek);
        if (r >= 0)
                r = make_vcek_extensions(s->vcek, config);
        if (r >= 0)
                r = sign_pss(s->vcek, s->ask_key);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(s);
        return 0;
}

SnpSimulator *snp_sim_free(SnpSimulator *s)
{
        if (!s)
                return NULL;
        X509_free(s->ark);
        X509_free(s->ask);
        X509_free(s->vcek);
        EVP_PKEY_free(s->ark_key);
        EVP_PKEY_free(s->ask_key);
        EVP_PKEY_free(s->vcek_key);
        free(s);
        return NULL;
}

/* BIGNUM to the report's 72-byte little-endian field. */
static int put_le72(const BIGNUM *bn, uint8_t out[static SIGNATURE_COMPONENT_SIZE])
{
        uint8_t be[SIGNATURE_COMPONENT_SIZE];

        if (BN_bn2binpad(bn, be, sizeof(be)) != (int) sizeof(be))
                return -EIO;
        for (size_t i = 0; i < sizeof(be); i++)
                out[i] = be[sizeof(be) - 1 - i];
        return 0;
}

int snp_sim_report(SnpSimulator *s, const uint8_t report_data[static 64],
                   uint8_t ret[static SNP_SIM_REPORT_SIZE])
{
        _cleanup_(EVP_MD_CTX_freep) EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint8_t r_[SNP_SIM_REPORT_SIZE] = {}, *p = r_, sig[256];
        const SnpSimConfig *c = &s->config;
        const unsigned char *q = sig;
        const BIGNUM *br, *bs;
        ECDSA_SIG *es = NULL;
        size_t siglen = sizeof(sig);
        uint64_t tcb = tcb_encode(&c->tcb);
        int r = -EIO;

        put_u32(p + OFF_VERSION, 3);
        put_u32(p + OFF_GUEST_SVN, c->guest_svn);
        put_u64(p + OFF_POLICY, c->policy);
        memcpy(p + OFF_FAMILY_ID, c->family_id, 16);
        memcpy(p + OFF_IMAGE_ID, c->image_id, 16);
        put_u32(p + OFF_VMPL, c->vmpl);
        put_u32(p + OFF_SIGNATURE_ALGO, 1); /* ECDSA P-384 with SHA-384 */
        put_u64(p + OFF_CURRENT_TCB, tcb);
        put_u64(p + OFF_PLATFORM_INFO, c->platform_info);
        put_u32(p + OFF_SIGNER_INFO, 0); /* signing key 0: VCEK */
        memcpy(p + OFF_REPORT_DATA, report_data, 64);
        memcpy(p + OFF_MEASUREMENT, c->measurement, 48);
        memcpy(p + OFF_HOST_DATA, c->host_data, 32);
        if (RAND_bytes(p + OFF_REPORT_ID, 32) != 1)
                return -EIO;
        put_u64(p + OFF_REPORTED_TCB, tcb);
        memcpy(p + OFF_CHIP_ID, c->chip_id, 64);
        put_u64(p + OFF_COMMITTED_TCB, tcb);
        p[OFF_CURRENT_VERSION] = 3, p[OFF_CURRENT_VERSION + 1] = 55, p[OFF_CURRENT_VERSION + 2] = 1;
        p[OFF_COMMITTED_VERSION] = 3, p[OFF_COMMITTED_VERSION + 1] = 55,
        p[OFF_COMMITTED_VERSION + 2] = 1;
        put_u64(p + OFF_LAUNCH_TCB, tcb);

        if (!md || EVP_DigestSignInit(md, NULL, EVP_sha384(), NULL, s->vcek_key) != 1 ||
            EVP_DigestSign(md, sig, &siglen, p, SIGNED_SIZE) != 1)
                return crypto_log_errors(-EIO, "sim-snp: report signature");
        es = d2i_ECDSA_SIG(NULL, &q, (long) siglen);
        if (!es)
                return crypto_log_errors(-EIO, "sim-snp: signature decode");
        ECDSA_SIG_get0(es, &br, &bs);
        if (put_le72(br, p + OFF_SIGNATURE_R) >= 0 && put_le72(bs, p + OFF_SIGNATURE_S) >= 0)
                r = 0;
        ECDSA_SIG_free(es);
        if (r < 0)
                return r;
        memcpy(ret, r_, SNP_SIM_REPORT_SIZE);
        return 0;
}

int snp_sim_vcek_der(SnpSimulator *s, uint8_t **ret, size_t *ret_size)
{
        unsigned char *der = NULL;
        int n = i2d_X509(s->vcek, &der);
        uint8_t *copy;

        if (n <= 0)
                return crypto_log_errors(-EIO, "sim-snp: VCEK DER");
        copy = malloc((size_t) n);
        if (copy)
                memcpy(copy, der, (size_t) n);
        OPENSSL_free(der);
        if (!copy)
                return -ENOMEM;
        *ret = copy;
        *ret_size = (size_t) n;
        return 0;
}

static int certs_pem(X509 *const *certs, size_t n, char **ret)
{
        _cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());
        char *data, *s;
        long len;

        if (!b)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                if (PEM_write_bio_X509(b, certs[i]) != 1)
                        return crypto_log_errors(-EIO, "sim-snp: PEM");
        len = BIO_get_mem_data(b, &data);
        if (len <= 0)
                return -EIO;
        s = strndup(data, (size_t) len);
        if (!s)
                return -ENOMEM;
        *ret = s;
        return 0;
}

int snp_sim_chain_pem(SnpSimulator *s, char **ret)
{
        X509 *const certs[] = { s->ask, s->ark };
        return certs_pem(certs, ELEMENTSOF(certs), ret);
}

int snp_sim_ark_pem(SnpSimulator *s, char **ret)
{
        X509 *const certs[] = { s->ark };
        return certs_pem(certs, ELEMENTSOF(certs), ret);
}
