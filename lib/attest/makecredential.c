/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/core_names.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <string.h>

#include "cloister/attest.h"
#include "cloister/crypto.h"
#include "cloister/tpm-quote.h"

/* KDFa (TPM 2.0 Part 1, 11.4.10.2): SP 800-108 counter mode with HMAC-SHA-256:
 * HMAC(key, [i]32 || label || 0x00 || contextU || contextV || [bits]32). */
static int kdfa_sha256(const uint8_t *key, size_t key_size, const char *label, const uint8_t *u,
                       size_t us, uint32_t bits, uint8_t *out)
{
        size_t need = bits / 8, done = 0;
        static const uint8_t zero = 0;

        for (uint32_t i = 1; done < need; i++) {
                uint8_t ctr[4] = { (uint8_t) (i >> 24), (uint8_t) (i >> 16), (uint8_t) (i >> 8),
                                   (uint8_t) i };
                uint8_t len[4] = { (uint8_t) (bits >> 24), (uint8_t) (bits >> 16),
                                   (uint8_t) (bits >> 8), (uint8_t) bits };
                uint8_t block[32];
                EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
                EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
                OSSL_PARAM params[] = {
                        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256",
                                                         0),
                        OSSL_PARAM_construct_end(),
                };
                size_t outl = 0;
                int ok;

                ok = m && EVP_MAC_init(m, key, key_size, params) == 1 &&
                     EVP_MAC_update(m, ctr, 4) == 1 &&
                     EVP_MAC_update(m, (const uint8_t *) label, strlen(label)) == 1 &&
                     EVP_MAC_update(m, &zero, 1) == 1 &&
                     (us == 0 || EVP_MAC_update(m, u, us) == 1) && EVP_MAC_update(m, len, 4) == 1 &&
                     EVP_MAC_final(m, block, &outl, sizeof(block)) == 1 && outl == 32;
                EVP_MAC_CTX_free(m);
                EVP_MAC_free(mac);
                if (!ok)
                        return crypto_log_errors(-EIO, "KDFa");
                memcpy(out + done, block, MIN(need - done, sizeof(block)));
                done += MIN(need - done, sizeof(block));
                explicit_wipe(block, sizeof(block));
        }
        return 0;
}

static int hmac_sha256(const uint8_t *key, size_t ks, const IoVec *parts, size_t n,
                       uint8_t out[static 32])
{
        EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
        EVP_MAC_CTX *m = mac ? EVP_MAC_CTX_new(mac) : NULL;
        OSSL_PARAM params[] = {
                OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, (char *) "SHA256", 0),
                OSSL_PARAM_construct_end(),
        };
        size_t outl = 0;
        int ok = m && EVP_MAC_init(m, key, ks, params) == 1;

        for (size_t i = 0; ok && i < n; i++)
                ok = EVP_MAC_update(m, parts[i].data, parts[i].size) == 1;
        ok = ok && EVP_MAC_final(m, out, &outl, 32) == 1 && outl == 32;
        EVP_MAC_CTX_free(m);
        EVP_MAC_free(mac);
        return ok ? 0 : crypto_log_errors(-EIO, "HMAC");
}

CredentialChallenge *credential_challenge_free(CredentialChallenge *c)
{
        if (!c)
                return NULL;
        blob_clear(&c->id_object);
        blob_clear(&c->encrypted_secret);
        explicit_wipe(c->credential, sizeof(c->credential));
        free(c);
        return NULL;
}

int attest_credential_challenge_new(const Evidence *e, CredentialChallenge **ret, Diag *d)
{
        _cleanup_(credential_challenge_freep) CredentialChallenge *c = NULL;
        _cleanup_(EVP_PKEY_CTX_freep) EVP_PKEY_CTX *pctx = NULL;
        _cleanup_(wipe_32) uint8_t seed[32];
        uint8_t sym_key[16], hmac_key[32], plain[2 + ATTEST_CREDENTIAL_SIZE],
                enc[2 + ATTEST_CREDENTIAL_SIZE], integrity[32], rsa_out[512];
        TpmPublic ek = {}, ak = {};
        size_t rsa_len = sizeof(rsa_out);
        int outl = 0, k;
        EVP_CIPHER_CTX *cctx = NULL;

        if (!e->has_tpm || !e->tpm.ek_public.data)
                return diag_fail(d, -EINVAL, "ak-activation", -1, "the evidence carries no EK");
        k = tpm_public_parse(e->tpm.ek_public.data, e->tpm.ek_public.size, &ek, d);
        if (k < 0)
                return k;
        k = tpm_public_parse(e->tpm.ak_public.data, e->tpm.ak_public.size, &ak, d);
        if (k < 0)
                goto finish;
        /* The TCG default RSA EK: SHA-256 names, AES-128-CFB inner wrapping (EK profile L-1). */
        if (ek.type != TPM_ALG_RSA || ek.name_alg != TPM_ALG_SHA256 ||
            ek.symmetric != TPM_ALG_AES || ek.sym_bits != 128 || ek.sym_mode != TPM_ALG_CFB ||
            ak.name_alg != TPM_ALG_SHA256) {
                k = diag_fail(d, -EOPNOTSUPP, "ak-activation", -1,
                              "only the TCG default RSA-2048 EK with SHA-256 names is supported");
                goto finish;
        }
        c = calloc(1, sizeof(*c));
        if (!c) {
                k = -ENOMEM;
                goto finish;
        }
        if (RAND_priv_bytes(seed, sizeof(seed)) != 1 ||
            RAND_priv_bytes(c->credential, sizeof(c->credential)) != 1) {
                k = -EIO;
                goto finish;
        }

        /* Seed to the EK: RSA-OAEP with the EK's name hash and label "IDENTITY\0" (Part 1,
         * B.10.3). */
        pctx = EVP_PKEY_CTX_new_from_pkey(NULL, ek.key, NULL);
        if (!pctx || EVP_PKEY_encrypt_init(pctx) != 1 ||
            EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_OAEP_PADDING) != 1 ||
            EVP_PKEY_CTX_set_rsa_oaep_md(pctx, EVP_sha256()) != 1 ||
            EVP_PKEY_CTX_set_rsa_mgf1_md(pctx, EVP_sha256()) != 1) {
                k = crypto_log_errors(-EIO, "OAEP");
                goto finish;
        }
        {
                unsigned char *label = OPENSSL_memdup("IDENTITY", 9);
                if (!label || EVP_PKEY_CTX_set0_rsa_oaep_label(pctx, label, 9) != 1) {
                        OPENSSL_free(label);
                        k = crypto_log_errors(-EIO, "OAEP label");
                        goto finish;
                }
        }
        if (EVP_PKEY_encrypt(pctx, rsa_out, &rsa_len, seed, sizeof(seed)) != 1) {
                k = crypto_log_errors(-EIO, "OAEP encrypt");
                goto finish;
        }

        /* Part 1, 24.4: symKey = KDFa(nameAlg, seed, "STORAGE", name, NULL, 128);
         * encIdentity = AES-128-CFB(symKey, IV 0, TPM2B_DIGEST(credential));
         * HMACkey = KDFa(nameAlg, seed, "INTEGRITY", NULL, NULL, 256);
         * outerHMAC = HMAC(HMACkey, encIdentity || name). */
        k = kdfa_sha256(seed, sizeof(seed), "STORAGE", ak.name, ak.name_size, 128, sym_key);
        if (k >= 0)
                k = kdfa_sha256(seed, sizeof(seed), "INTEGRITY", NULL, 0, 256, hmac_key);
        if (k < 0)
                goto finish;
        plain[0] = 0;
        plain[1] = ATTEST_CREDENTIAL_SIZE;
        memcpy(plain + 2, c->credential, ATTEST_CREDENTIAL_SIZE);
        {
                static const uint8_t iv[16] = {};
                int fl = 0;
                cctx = EVP_CIPHER_CTX_new();
                if (!cctx || EVP_EncryptInit_ex(cctx, EVP_aes_128_cfb(), NULL, sym_key, iv) != 1 ||
                    EVP_EncryptUpdate(cctx, enc, &outl, plain, sizeof(plain)) != 1 ||
                    EVP_EncryptFinal_ex(cctx, enc + outl, &fl) != 1 ||
                    (size_t) outl + (size_t) fl != sizeof(plain)) {
                        k = crypto_log_errors(-EIO, "AES-CFB");
                        goto finish;
                }
        }
        {
                const IoVec parts[] = { { enc, sizeof(enc) }, { ak.name, ak.name_size } };
                k = hmac_sha256(hmac_key, sizeof(hmac_key), parts, 2, integrity);
                if (k < 0)
                        goto finish;
        }

        /* TPM2B_ID_OBJECT = size || TPM2B_DIGEST(integrityHMAC) || encIdentity */
        {
                size_t body = 2 + 32 + sizeof(enc);
                uint8_t blob[2 + 2 + 32 + sizeof(enc)];
                blob[0] = (uint8_t) (body >> 8), blob[1] = (uint8_t) body;
                blob[2] = 0, blob[3] = 32;
                memcpy(blob + 4, integrity, 32);
                memcpy(blob + 36, enc, sizeof(enc));
                k = blob_set(&c->id_object, blob, sizeof(blob));
        }
        if (k >= 0) {
                uint8_t secret[2 + sizeof(rsa_out)];
                secret[0] = (uint8_t) (rsa_len >> 8), secret[1] = (uint8_t) rsa_len;
                memcpy(secret + 2, rsa_out, rsa_len);
                k = blob_set(&c->encrypted_secret, secret, 2 + rsa_len);
        }
        if (k >= 0)
                *ret = TAKE_PTR(c);
finish:
        EVP_CIPHER_CTX_free(cctx);
        explicit_wipe(sym_key, sizeof(sym_key));
        explicit_wipe(hmac_key, sizeof(hmac_key));
        explicit_wipe(plain, sizeof(plain));
        tpm_public_done(&ek);
        tpm_public_done(&ak);
        return k < 0 ? k : 0;
}

int attest_credential_check(const CredentialChallenge *c, const uint8_t *response, size_t size,
                            Diag *d)
{
        if (size != ATTEST_CREDENTIAL_SIZE ||
            !memeq_consttime(c->credential, response, ATTEST_CREDENTIAL_SIZE))
                return diag_fail(d, -EKEYREJECTED, "ak-activation", -1,
                                 "credential activation failed: the AK is not in the TPM of the "
                                 "certified EK");
        return 0;
}
