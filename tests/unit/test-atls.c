/* SPDX-License-Identifier: Apache-2.0 */
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "helpers/attest-fixture.h"
#include "helpers/unit.h"
#include "helpers/vtpm.h"

#include "cloister/attest-atls.h"
#include "cloister/fileio.h"
#include "cloister/snp-sim.h"
#include "cloister/tpm-device.h"

/* aTLS handshakes in memory (BIO pairs) between real vTPM-backed attesters. */

static Vtpm server_tpm, client_tpm, other_tpm;
static TpmDevice *server_dev, *client_dev, *other_dev;
static VtpmAttester server_att, client_att, other_att;
static AttestPolicy *server_policy, *client_policy;
static PolicyVerifier verify_server, verify_client;

static int group_setup(void **state)
{
        if (vtpm_start(&server_tpm, false) < 0 || vtpm_start(&client_tpm, false) < 0 ||
            vtpm_start(&other_tpm, false) < 0)
                return -1;
        if (tpm_device_open(server_tpm.tcti, &server_dev) < 0 ||
            tpm_device_open(client_tpm.tcti, &client_dev) < 0 ||
            tpm_device_open(other_tpm.tcti, &other_dev) < 0)
                return -1;
        if (fixture_policy_pinned(server_tpm.tcti, &server_policy) < 0 ||
            fixture_policy_pinned(client_tpm.tcti, &client_policy) < 0)
                return -1;
        VtpmIssueConfig cfg;
        vtpm_issue_config_defaults(&cfg);
        cfg.event_log = "";
        vtpm_attester_init(&server_att, server_dev, &cfg);
        vtpm_attester_init(&client_att, client_dev, &cfg);
        vtpm_attester_init(&other_att, other_dev, &cfg);
        verify_server = (PolicyVerifier){ .policy = server_policy };
        verify_client = (PolicyVerifier){ .policy = client_policy };
        return 0;
}

static int group_teardown(void **state)
{
        vtpm_attester_done(&server_att);
        vtpm_attester_done(&client_att);
        vtpm_attester_done(&other_att);
        server_dev = tpm_device_close(server_dev);
        client_dev = tpm_device_close(client_dev);
        other_dev = tpm_device_close(other_dev);
        server_policy = attest_policy_free(server_policy);
        client_policy = attest_policy_free(client_policy);
        vtpm_stop(&server_tpm);
        vtpm_stop(&client_tpm);
        vtpm_stop(&other_tpm);
        return 0;
}

typedef struct Pair {
        SSL *c, *s;
} Pair;

static void pair_new(SSL_CTX *cctx, SSL_CTX *sctx, Pair *p)
{
        BIO *b1, *b2;

        p->c = SSL_new(cctx);
        p->s = SSL_new(sctx);
        assert_non_null(p->c);
        assert_non_null(p->s);
        assert_int_equal(BIO_new_bio_pair(&b1, 0, &b2, 0), 1);
        SSL_set_bio(p->c, b1, b1);
        SSL_set_bio(p->s, b2, b2);
        SSL_set_connect_state(p->c);
        SSL_set_accept_state(p->s);
}

static void pair_free(Pair *p)
{
        SSL_free(p->c);
        SSL_free(p->s);
        ERR_clear_error();
}

/* Drives both ends until done; 0 when both completed, -1 if either failed. Application data is
 * exchanged only on success. */
static int handshake(Pair *p)
{
        bool cd = false, sd = false, cf = false, sf = false;

        for (int i = 0; i < 64 && !(cd && sd) && !cf && !sf; i++) {
                if (!cd) {
                        int r = SSL_do_handshake(p->c);
                        if (r == 1)
                                cd = true;
                        else if (SSL_get_error(p->c, r) != SSL_ERROR_WANT_READ)
                                cf = true;
                }
                if (!sd) {
                        int r = SSL_do_handshake(p->s);
                        if (r == 1)
                                sd = true;
                        else if (SSL_get_error(p->s, r) != SSL_ERROR_WANT_READ)
                                sf = true;
                }
        }
        /* TLS 1.3: the client may finish before the server has checked its certificate; let the
         * server read so its verdict on the client is known. */
        if (cd && sd) {
                char buf[8];
                assert_int_equal(SSL_write(p->c, "ping", 4), 4);
                if (SSL_read(p->s, buf, sizeof(buf)) != 4)
                        return -1;
                return memcmp(buf, "ping", 4) == 0 ? 0 : -1;
        }
        if (cd && !sf) {
                char buf[8];
                (void) SSL_write(p->c, "ping", 4);
                if (SSL_read(p->s, buf, sizeof(buf)) == 4)
                        return 0;
        }
        return -1;
}

static AtlsContext *server_ctx(const AtlsAttester *a, bool mutual)
{
        AtlsContext *c = NULL;
        AtlsVerifier v = policy_verifier(&verify_client);
        assert_int_equal(atls_context_new(ATLS_ROLE_SERVER, a, mutual ? &v : NULL, &c), 0);
        return c;
}

static AtlsContext *client_ctx(const AtlsAttester *a)
{
        AtlsContext *c = NULL;
        AtlsVerifier v = policy_verifier(&verify_server);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, a, &v, &c), 0);
        return c;
}

static void test_atls_server_attestation_succeeds_and_data_flows(void **state)
{
        AtlsAttester sa = vtpm_attester(&server_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, false),
                                                  *c = client_ctx(NULL);
        Pair p;

        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), 0);
        assert_true(atls_peer_verified(p.c));
        assert_int_equal(SSL_version(p.c), TLS1_3_VERSION);
        assert_int_equal(SSL_session_reused(p.c), 0);
        pair_free(&p);
}

static void test_atls_mutual_both_sides_verified(void **state)
{
        AtlsAttester sa = vtpm_attester(&server_att), ca = vtpm_attester(&client_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, true), *c = client_ctx(&ca);
        Pair p;

        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), 0);
        assert_true(atls_peer_verified(p.c));
        assert_true(atls_peer_verified(p.s));
        pair_free(&p);
}

/* --- hostile attesters: wrap the real one and bind to the wrong thing --------------------- */

typedef enum Attack {
        ATTACK_OTHER_KEY,  /* evidence bound to another key (certificate swapped) */
        ATTACK_REPLAY,     /* evidence recorded in an earlier handshake */
        ATTACK_RELAY,      /* genuine evidence of another machine, for this nonce and its key */
        ATTACK_REFLECT,    /* evidence made for the other role */
        ATTACK_OVERSIZE,   /* more evidence than a certificate may carry */
        ATTACK_WG_UNBOUND, /* the certificate carries a WireGuard key the evidence does not bind */
        ATTACK_WG_OTHER,   /* the evidence binds another WireGuard key than the certificate's */
} Attack;

typedef struct Hostile {
        Attack attack;
        VtpmAttester *real;
        uint8_t *recorded;
        size_t recorded_size;
} Hostile;

static int hostile_issue(void *userdata, const uint8_t binding[static ATLS_BINDING_SIZE],
                         const AtlsBindingInput *in, uint8_t **ret, size_t *ret_size, Diag *d)
{
        Hostile *h = userdata;
        AtlsAttester real = vtpm_attester(h->real);
        uint8_t forged[ATLS_BINDING_SIZE];
        unsigned char *spki = NULL;
        EVP_PKEY *other;
        int n, r;

        switch (h->attack) {
        case ATTACK_OTHER_KEY:
        case ATTACK_RELAY:
                /* ATTACK_RELAY: h->real is the genuine other machine's TPM, asked to attest for
                 * the nonce we were given but with its own TLS key. */
                other = EVP_EC_gen("P-256");
                n = i2d_PUBKEY(other, &spki);
                r = atls_binding(in->variant, in->role, in->nonce, spki, (size_t) n, forged);
                OPENSSL_free(spki);
                EVP_PKEY_free(other);
                assert_int_equal(r, 0);
                return real.issue(real.userdata, forged, in, ret, ret_size, d);
        case ATTACK_REFLECT:
                r = atls_binding(in->variant,
                                 in->role == ATLS_ROLE_CLIENT ? ATLS_ROLE_SERVER : ATLS_ROLE_CLIENT,
                                 in->nonce, in->spki, in->spki_size, forged);
                assert_int_equal(r, 0);
                return real.issue(real.userdata, forged, in, ret, ret_size, d);
        case ATTACK_REPLAY:
                if (!h->recorded) {
                        r = real.issue(real.userdata, binding, in, &h->recorded, &h->recorded_size,
                                       d);
                        if (r < 0)
                                return r;
                }
                *ret = malloc(h->recorded_size);
                memcpy(*ret, h->recorded, h->recorded_size);
                *ret_size = h->recorded_size;
                return 0;
        case ATTACK_WG_UNBOUND:
                r = atls_binding(in->variant, in->role, in->nonce, in->spki, in->spki_size, forged);
                assert_int_equal(r, 0);
                return real.issue(real.userdata, forged, in, ret, ret_size, d);
        case ATTACK_WG_OTHER: {
                uint8_t other_key[ATLS_WG_KEY_SIZE];
                assert_non_null(in->wg_key);
                memcpy(other_key, in->wg_key, sizeof(other_key));
                other_key[0] ^= 1;
                r = atls_binding_wg(in->variant, in->role, in->nonce, in->spki, in->spki_size,
                                    other_key, forged);
                assert_int_equal(r, 0);
                return real.issue(real.userdata, forged, in, ret, ret_size, d);
        }
        case ATTACK_OVERSIZE:
                *ret = calloc(1, EVIDENCE_SIZE_MAX + 1);
                *ret_size = EVIDENCE_SIZE_MAX + 1;
                return 0;
        }
        return -EINVAL;
}

static void expect_client_refuses(Hostile *h, const char *check, int rounds)
{
        AtlsAttester ha = { ATTEST_VARIANT_QEMU_VTPM, hostile_issue, h };
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&ha, false),
                                                  *c = client_ctx(NULL);
        Pair p;

        for (int i = 0; i < rounds; i++) {
                pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
                int r = handshake(&p);
                if (i + 1 < rounds) {
                        assert_int_equal(r, 0); /* the recording handshake was genuine */
                        pair_free(&p);
                        continue;
                }
                assert_int_equal(r, -1);
                assert_false(atls_peer_verified(p.c));
                const Diag *d = atls_peer_failure(p.c);
                assert_non_null(d);
                assert_string_equal(d->check, check);
                pair_free(&p);
        }
}

static void test_atls_evidence_bound_to_another_key_is_refused(void **state)
{
        Hostile h = { .attack = ATTACK_OTHER_KEY, .real = &server_att };
        expect_client_refuses(&h, "binding", 1);
}

static void test_atls_replayed_evidence_from_earlier_handshake_is_refused(void **state)
{
        Hostile h = { .attack = ATTACK_REPLAY, .real = &server_att };
        expect_client_refuses(&h, "binding", 2);
        free(h.recorded);
}

static void test_atls_evidence_relayed_from_a_different_server_is_refused(void **state)
{
        /* The attacker forwards the client's nonce to a genuine, trusted server (server_tpm),
         * which attests for its own TLS key; the attacker presents that evidence with its key. */
        Hostile h = { .attack = ATTACK_RELAY, .real = &server_att };
        expect_client_refuses(&h, "binding", 1);
}

static void test_atls_server_evidence_reflected_as_other_role_is_refused(void **state)
{
        Hostile h = { .attack = ATTACK_REFLECT, .real = &server_att };
        expect_client_refuses(&h, "binding", 1);
}

static void test_atls_server_from_unexpected_tpm_is_refused(void **state)
{
        AtlsAttester oa = vtpm_attester(&other_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&oa, false),
                                                  *c = client_ctx(NULL);
        Pair p;

        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        assert_string_equal(atls_peer_failure(p.c)->check, "ak-trust");
        pair_free(&p);
}

static void test_atls_pcr_mismatch_is_refused_with_expected_and_actual(void **state)
{
        AtlsAttester sa = vtpm_attester(&server_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, false), *c = NULL;
        AttestPolicy strict = *server_policy;
        PolicyVerifier v = { .policy = &strict };
        AtlsVerifier av;
        char msg[1024];
        Pair p;

        memset(strict.pcrs[7].expected, 0x77, 32);
        av = policy_verifier(&v);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &av, &c), 0);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        const Diag *d = atls_peer_failure(p.c);
        assert_non_null(d);
        assert_string_equal(d->check, "pcr");
        assert_int_equal(d->index, 7);
        assert_string_equal(d->expected,
                            "7777777777777777777777777777777777777777777777777777777777777777");
        atls_describe_failure(p.c, msg, sizeof(msg));
        assert_non_null(strstr(msg, "PCR 7 differs"));
        pair_free(&p);
}

static void test_atls_client_without_evidence_is_refused_by_mutual_server(void **state)
{
        AtlsAttester sa = vtpm_attester(&server_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, true), *c = client_ctx(NULL);
        Pair p;

        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        assert_false(atls_peer_verified(p.s));
        pair_free(&p);
}

static void test_atls_client_attesting_from_unknown_tpm_is_refused_by_server(void **state)
{
        AtlsAttester sa = vtpm_attester(&server_att), oa = vtpm_attester(&other_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, true), *c = client_ctx(&oa);
        Pair p;

        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        assert_string_equal(atls_peer_failure(p.s)->check, "ak-trust");
        pair_free(&p);
}

static SSL_CTX *plain_server_ctx(void)
{
        SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
        EVP_PKEY *key = EVP_EC_gen("P-256");
        X509 *x = X509_new();

        X509_set_version(x, X509_VERSION_3);
        ASN1_INTEGER_set(X509_get_serialNumber(x), 1);
        X509_gmtime_adj(X509_getm_notBefore(x), 0);
        X509_gmtime_adj(X509_getm_notAfter(x), 3600);
        X509_set_pubkey(x, key);
        X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
                                   (const unsigned char *) "plain", -1, -1, 0);
        X509_set_issuer_name(x, X509_get_subject_name(x));
        X509_sign(x, key, EVP_sha256());
        assert_int_equal(SSL_CTX_use_certificate(ctx, x), 1);
        assert_int_equal(SSL_CTX_use_PrivateKey(ctx, key), 1);
        X509_free(x);
        EVP_PKEY_free(key);
        return ctx;
}

static void test_atls_plain_tls_server_certificate_is_refused(void **state)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client_ctx(NULL);
        SSL_CTX *plain = plain_server_ctx();
        Pair p;

        pair_new(atls_context_ssl_ctx(c), plain, &p);
        assert_int_equal(handshake(&p), -1);
        assert_string_equal(atls_peer_failure(p.c)->check, "atls-evidence");
        assert_non_null(strstr(atls_peer_failure(p.c)->message, "plain certificate"));
        pair_free(&p);
        SSL_CTX_free(plain);
}

static void test_atls_tls12_client_is_refused(void **state)
{
        AtlsAttester sa = vtpm_attester(&server_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, false);
        SSL_CTX *old = SSL_CTX_new(TLS_client_method());
        Pair p;

        assert_int_equal(SSL_CTX_set_max_proto_version(old, TLS1_2_VERSION), 1);
        SSL_CTX_set_verify(old, SSL_VERIFY_NONE, NULL);
        pair_new(old, atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        assert_int_equal(ERR_GET_REASON(ERR_peek_last_error()) != 0, 1);
        pair_free(&p);
        SSL_CTX_free(old);
}

static void test_atls_oversized_evidence_is_refused(void **state)
{
        Hostile h = { .attack = ATTACK_OVERSIZE, .real = &server_att };
        AtlsAttester ha = { ATTEST_VARIANT_QEMU_VTPM, hostile_issue, &h };
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&ha, false),
                                                  *c = client_ctx(NULL);
        Pair p;

        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        /* The attester side refuses to send it; the client never sees evidence. */
        assert_string_equal(atls_peer_failure(p.s)->check, "evidence-size");
        assert_false(atls_peer_verified(p.c));
        pair_free(&p);
}

static void test_atls_variant_other_than_policy_is_refused(void **state)
{
        /* The server's evidence extension says sim-snp; the client's policy is qemu-vtpm. */
        AtlsAttester sa = vtpm_attester(&server_att);
        sa.variant = ATTEST_VARIANT_SIM_SNP;
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, false),
                                                  *c = client_ctx(NULL);
        Pair p;

        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        assert_string_equal(atls_peer_failure(p.c)->check, "atls-variant");
        pair_free(&p);
}

static void test_atls_sim_snp_handshake_passes_only_with_the_simulators_ark(void **state)
{
        _cleanup_(snp_sim_freep) SnpSimulator *sim = NULL, *other = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL, *wrong = NULL;
        SimSnpAttester sa;
        AtlsAttester a;
        PolicyVerifier pv, wv;
        AtlsVerifier v;
        AtlsContext *s = NULL, *c = NULL;
        Pair p;

        assert_int_equal(snp_sim_new(NULL, &sim), 0);
        assert_int_equal(snp_sim_new(NULL, &other), 0);
        assert_int_equal(fixture_policy_sim_snp(sim, &pol), 0);
        assert_int_equal(fixture_policy_sim_snp(other, &wrong), 0);
        sa.sim = sim;
        a = sim_snp_attester(&sa);
        pv = (PolicyVerifier){ .policy = pol };
        wv = (PolicyVerifier){ .policy = wrong };

        assert_int_equal(atls_context_new(ATLS_ROLE_SERVER, &a, NULL, &s), 0);
        v = policy_verifier(&pv);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), 0);
        assert_true(atls_peer_verified(p.c));
        pair_free(&p);
        c = atls_context_free(c);

        /* A policy naming another simulator's ARK refuses it. */
        v = policy_verifier(&wv);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        assert_string_equal(atls_peer_failure(p.c)->check, "snp-ark");
        pair_free(&p);
        atls_context_free(c);
        atls_context_free(s);
}

/* Runs one sim-snp handshake: the server attests with sim, the client verifies with pol. */
static int sim_snp_handshake(SnpSimulator *sim, AttestPolicy *pol, const char **ret_check)
{
        SimSnpAttester sa = { .sim = sim };
        AtlsAttester a = sim_snp_attester(&sa);
        PolicyVerifier pv = { .policy = pol };
        AtlsVerifier v = policy_verifier(&pv);
        AtlsContext *s = NULL, *c = NULL;
        static char check[64];
        Pair p;
        int r;

        assert_int_equal(atls_context_new(ATLS_ROLE_SERVER, &a, NULL, &s), 0);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        r = handshake(&p);
        (void) snprintf(check, sizeof(check), "%s", r < 0 ? atls_peer_failure(p.c)->check : "");
        *ret_check = check;
        pair_free(&p);
        atls_context_free(c);
        atls_context_free(s);
        return r;
}

static void
test_atls_snp_host_data_bound_to_the_cluster_admits_only_that_clusters_nodes(void **state)
{
        /* snp.hostDataFromClusterId: the owner launched the node with HOST_DATA derived from the
         * cluster's ID. A genuine node launched for another cluster (attested, wrong party) is
         * refused; so is any node while the verifier has not bound a cluster. */
        _cleanup_(snp_sim_freep) SnpSimulator *ours = NULL, *theirs = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        uint8_t cluster[32], other[32];
        SnpSimConfig cfg;
        const char *check;

        memset(cluster, 0x11, sizeof(cluster));
        memset(other, 0x22, sizeof(other));
        snp_sim_config_defaults(&cfg);
        snp_host_data_for_cluster(cluster, cfg.host_data);
        assert_int_equal(snp_sim_new(&cfg, &ours), 0);
        snp_host_data_for_cluster(other, cfg.host_data);
        assert_int_equal(snp_sim_new(&cfg, &theirs), 0);
        assert_int_equal(fixture_policy_sim_snp(ours, &pol), 0);
        pol->snp.host_data_from_cluster = true;

        assert_int_equal(sim_snp_handshake(ours, pol, &check), -1);
        assert_string_equal(check, "snp-host-data");

        attest_policy_bind_cluster(pol, cluster);
        assert_int_equal(sim_snp_handshake(ours, pol, &check), 0);

        /* Each simulator has its own ARK: theirs is trusted by a policy of its own, bound to our
         * cluster, so only HOST_DATA tells the two apart. */
        pol = attest_policy_free(pol);
        assert_int_equal(fixture_policy_sim_snp(theirs, &pol), 0);
        pol->snp.host_data_from_cluster = true;
        attest_policy_bind_cluster(pol, cluster);
        assert_int_equal(sim_snp_handshake(theirs, pol, &check), -1);
        assert_string_equal(check, "snp-host-data");
}

/* A plain TLS 1.3 client (no aTLS) that sends nonce_size bytes in the aTLS nonce extension, or no
 * extension when nonce_size is 0, and verifies nothing: what an aTLS server must not attest to. */
static size_t plain_nonce_size;
static unsigned char plain_nonce[64];

static int plain_nonce_add(SSL *ssl, unsigned int ext_type, unsigned int context,
                           const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx,
                           int *al, void *add_arg)
{
        if (!(context & SSL_EXT_CLIENT_HELLO) || plain_nonce_size == 0)
                return 0;
        *out = plain_nonce;
        *outlen = plain_nonce_size;
        return 1;
}

static int plain_client_handshake(size_t nonce_size)
{
        AtlsAttester sa = vtpm_attester(&server_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, false);
        SSL_CTX *plain = SSL_CTX_new(TLS_client_method());
        Pair p;
        int r;

        assert_non_null(plain);
        assert_int_equal(SSL_CTX_set_min_proto_version(plain, TLS1_3_VERSION), 1);
        assert_int_equal(
                SSL_CTX_add_custom_ext(plain, ATLS_EXTENSION_NONCE,
                                       SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_CERTIFICATE_REQUEST,
                                       plain_nonce_add, NULL, NULL, NULL, NULL),
                1);
        SSL_CTX_set_verify(plain, SSL_VERIFY_NONE, NULL);
        plain_nonce_size = nonce_size;
        memset(plain_nonce, 0x4e, sizeof(plain_nonce));
        pair_new(plain, atls_context_ssl_ctx(s), &p);
        r = handshake(&p);
        pair_free(&p);
        SSL_CTX_free(plain);
        return r;
}

static void
test_atls_server_attests_only_to_a_client_that_sent_a_nonce_of_the_right_size(void **state)
{
        /* The control: a plain client with a 32-byte nonce gets the server's certificate. */
        assert_int_equal(plain_client_handshake(ATLS_NONCE_SIZE), 0);
        /* No nonce: evidence bound to nothing the client chose would be replayable anywhere. */
        assert_int_equal(plain_client_handshake(0), -1);
        /* A short nonce (read as 32 bytes, it would take 27 from beyond what was sent), a long
         * one: refused before anything is attested. */
        assert_int_equal(plain_client_handshake(5), -1);
        assert_int_equal(plain_client_handshake(ATLS_NONCE_SIZE + 1), -1);
}

static void test_atls_peer_presenting_a_certificate_chain_is_refused(void **state)
{
        /* aTLS trusts one self-signed certificate that carries the evidence; a server that sends
         * more (here AMD's Milan ARK after its leaf) is refused, not partly ignored. */
        _cleanup_(snp_sim_freep) SnpSimulator *sim = NULL;
        _cleanup_(attest_policy_freep) AttestPolicy *pol = NULL;
        _cleanup_(freep) uint8_t *pem = NULL;
        SimSnpAttester sa;
        AtlsAttester a;
        PolicyVerifier pv;
        AtlsVerifier v;
        AtlsContext *s = NULL, *c = NULL;
        size_t size;
        BIO *bio;
        X509 *extra;
        Pair p;

        assert_int_equal(snp_sim_new(NULL, &sim), 0);
        assert_int_equal(fixture_policy_sim_snp(sim, &pol), 0);
        sa.sim = sim;
        a = sim_snp_attester(&sa);
        pv = (PolicyVerifier){ .policy = pol };
        v = policy_verifier(&pv);
        assert_int_equal(atls_context_new(ATLS_ROLE_SERVER, &a, NULL, &s), 0);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), 0); /* the control: one certificate passes */
        pair_free(&p);

        assert_int_equal(
                read_full_file(testdata_path("snp/roots/ask_ark_milan.pem"), 1 << 20, &pem, &size),
                0);
        bio = BIO_new_mem_buf(pem, (int) size);
        extra = PEM_read_bio_X509(bio, NULL, NULL, NULL);
        BIO_free(bio);
        assert_non_null(extra);
        assert_int_equal(SSL_CTX_add_extra_chain_cert(atls_context_ssl_ctx(s), extra), 1);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        assert_string_equal(atls_peer_failure(p.c)->check, "atls-certificate");
        assert_non_null(strstr(atls_peer_failure(p.c)->message, "chain of 2 certificates"));
        pair_free(&p);
        atls_context_free(c);
        atls_context_free(s);
}

static void test_atls_ek_cert_ak_never_activated_is_refused(void **state)
{
        /* akTrust ek-cert proves that the EK is a genuine TPM's, not that the AK quoting lives in
         * that TPM: only a credential-activation round trip does, which a handshake does not
         * carry. Evidence whose EK chains to the policy's CA and whose quote verifies must still
         * not pass an aTLS handshake. */
        _cleanup_(attest_policy_freep) AttestPolicy *pinned = NULL, *ek = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        _cleanup_(freep) uint8_t *roots = NULL;
        static const uint8_t binding[ATTEST_BINDING_SIZE] = { 0xe1 };
        TpmDevice *dev = NULL;
        VtpmIssueConfig cfg;
        VtpmAttester att;
        AtlsAttester a;
        AtlsVerifier v;
        PolicyVerifier pv;
        AtlsContext *s = NULL, *c = NULL;
        Vtpm tpm;
        size_t n;
        Diag d;
        Pair p;

        assert_int_equal(vtpm_start(&tpm, true), 0);
        assert_int_equal(tpm_device_open(tpm.tcti, &dev), 0);
        assert_int_equal(read_full_file(tpm.ca_cert, 1 << 20, &roots, &n), 0);
        assert_int_equal(fixture_policy_pinned(tpm.tcti, &pinned), 0);
        assert_int_equal(fixture_policy_pinned(tpm.tcti, &ek), 0);
        ek->ak_trust = AK_TRUST_EK_CERT;
        assert_int_equal(blob_set(&ek->ek_ca_roots, roots, n), 0);
        vtpm_issue_config_defaults(&cfg);
        cfg.event_log = "";
        cfg.include_ek = true;
        vtpm_attester_init(&att, dev, &cfg);
        a = vtpm_attester(&att);

        /* Outside aTLS, this evidence passes every check but one: activation is pending. */
        assert_int_equal(attest_vtpm_issue(dev, &cfg, binding, &e, &d), 0);
        diag_clear(&d);
        if (attest_verify(e, ek, binding, 0, NULL, &d) != 1)
                fail_msg("ek-cert outside aTLS: %s", d.message);

        /* The same server passes a client that pins its AK: the handshake itself is sound. */
        assert_int_equal(atls_context_new(ATLS_ROLE_SERVER, &a, NULL, &s), 0);
        pv = (PolicyVerifier){ .policy = pinned };
        v = policy_verifier(&pv);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), 0);
        assert_true(atls_peer_verified(p.c));
        pair_free(&p);
        c = atls_context_free(c);

        /* A client trusting the EK's CA instead refuses it: the AK was never activated. */
        pv = (PolicyVerifier){ .policy = ek };
        v = policy_verifier(&pv);
        assert_int_equal(atls_context_new(ATLS_ROLE_CLIENT, NULL, &v, &c), 0);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        assert_false(atls_peer_verified(p.c));
        assert_non_null(atls_peer_failure(p.c));
        assert_string_equal(atls_peer_failure(p.c)->check, "ak-activation");
        assert_non_null(strstr(atls_peer_failure(p.c)->message, "credential activation"));
        pair_free(&p);

        atls_context_free(c);
        atls_context_free(s);
        vtpm_attester_done(&att);
        tpm_device_close(dev);
        vtpm_stop(&tpm);
}

/* A hostile server that makes its own certificate, as an attacker with a genuine, trusted TPM
 * would: real evidence bound to the client's nonce and to a key of the attacker's choosing,
 * presented in `extensions` copies of the evidence extension. Only the certificate's form is
 * wrong, so only the client's certificate checks can refuse it. */
typedef struct HostileCert {
        EVP_PKEY *key;
        int extensions;
        uint8_t nonce[ATLS_NONCE_SIZE];
        bool nonce_received;
        bool built;
} HostileCert;

static int hostile_nonce_add(SSL *ssl, unsigned int ext_type, unsigned int context,
                             const unsigned char **out, size_t *outlen, X509 *x, size_t chainidx,
                             int *al, void *add_arg)
{
        return 0; /* the hostile server asks the client for nothing */
}

static int hostile_nonce_parse(SSL *ssl, unsigned int ext_type, unsigned int context,
                               const unsigned char *in, size_t inlen, X509 *x, size_t chainidx,
                               int *al, void *parse_arg)
{
        HostileCert *h = parse_arg;

        if (inlen != ATLS_NONCE_SIZE)
                return 0;
        memcpy(h->nonce, in, inlen);
        h->nonce_received = true;
        return 1;
}

static int hostile_cert_cb(SSL *ssl, void *arg)
{
        HostileCert *h = arg;
        AtlsAttester real = vtpm_attester(&server_att);
        uint8_t binding[ATLS_BINDING_SIZE], *evidence = NULL;
        unsigned char *spki = NULL;
        size_t evidence_size = 0;
        X509 *x = X509_new();
        X509_NAME *name = X509_NAME_new();
        ASN1_OCTET_STRING *os = ASN1_OCTET_STRING_new();
        ASN1_OBJECT *obj = NULL;
        char oid[64];
        bool ok = false;
        Diag d;
        int n;

        diag_clear(&d);
        n = i2d_PUBKEY(h->key, &spki);
        if (!h->nonce_received || n <= 0 || !x || !name || !os ||
            atls_binding(ATTEST_VARIANT_QEMU_VTPM, ATLS_ROLE_SERVER, h->nonce, spki, (size_t) n,
                         binding) < 0 ||
            atls_variant_oid(ATTEST_VARIANT_QEMU_VTPM, oid, sizeof(oid)) < 0 ||
            !(obj = OBJ_txt2obj(oid, 1)))
                goto out;
        const AtlsBindingInput in = {
                .variant = ATTEST_VARIANT_QEMU_VTPM,
                .role = ATLS_ROLE_SERVER,
                .nonce = h->nonce,
                .spki = spki,
                .spki_size = (size_t) n,
        };
        if (real.issue(real.userdata, binding, &in, &evidence, &evidence_size, &d) < 0 ||
            ASN1_OCTET_STRING_set(os, evidence, (int) evidence_size) != 1 ||
            X509_set_version(x, X509_VERSION_3) != 1 ||
            ASN1_INTEGER_set(X509_get_serialNumber(x), 1) != 1 ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -3600) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), 3600) ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *) "cloister-atls", -1, -1, 0) != 1 ||
            X509_set_subject_name(x, name) != 1 || X509_set_issuer_name(x, name) != 1 ||
            X509_set_pubkey(x, h->key) != 1)
                goto out;
        for (int i = 0; i < h->extensions; i++) {
                X509_EXTENSION *ext = X509_EXTENSION_create_by_OBJ(NULL, obj, 0, os);
                int added = ext ? X509_add_ext(x, ext, -1) : 0;
                X509_EXTENSION_free(ext);
                if (added != 1)
                        goto out;
        }
        ok = X509_sign(x, h->key, EVP_sha256()) > 0 && SSL_use_certificate(ssl, x) == 1 &&
             SSL_use_PrivateKey(ssl, h->key) == 1;
out:
        h->built = ok;
        OPENSSL_free(spki);
        free(evidence);
        ASN1_OBJECT_free(obj);
        ASN1_OCTET_STRING_free(os);
        X509_NAME_free(name);
        X509_free(x);
        return ok ? 1 : 0;
}

/* Handshakes the real client (whose policy trusts server_tpm) with the hostile server; returns
 * NULL when the client accepted, "" when TLS itself failed before any aTLS check, else the aTLS
 * check that refused. client_sigalgs, when set, replaces the client's signature algorithms (aTLS
 * offers ECDSA P-256 with SHA-256 only) to reach the checks behind that restriction. */
static const char *hostile_certificate_handshake(const char *curve, int extensions,
                                                 const char *client_sigalgs, char *message,
                                                 size_t message_size)
{
        _cleanup_(atls_context_freep) AtlsContext *c = client_ctx(NULL);
        SSL_CTX *hostile = SSL_CTX_new(TLS_server_method());
        HostileCert h = { .key = EVP_EC_gen(curve), .extensions = extensions };
        static char check[64];
        const Diag *d;
        Pair p;
        int r;

        assert_non_null(hostile);
        assert_non_null(h.key);
        if (client_sigalgs)
                assert_int_equal(SSL_CTX_set1_sigalgs_list(atls_context_ssl_ctx(c), client_sigalgs),
                                 1);
        assert_int_equal(SSL_CTX_set_min_proto_version(hostile, TLS1_3_VERSION), 1);
        assert_int_equal(
                SSL_CTX_add_custom_ext(hostile, ATLS_EXTENSION_NONCE,
                                       SSL_EXT_CLIENT_HELLO | SSL_EXT_TLS1_3_CERTIFICATE_REQUEST,
                                       hostile_nonce_add, NULL, NULL, hostile_nonce_parse, &h),
                1);
        SSL_CTX_set_cert_cb(hostile, hostile_cert_cb, &h);
        pair_new(atls_context_ssl_ctx(c), hostile, &p);
        r = handshake(&p);
        assert_true(h.built); /* the certificate was made: any refusal is the client's */
        d = atls_peer_failure(p.c);
        check[0] = 0;
        message[0] = 0;
        if (r < 0 && d) {
                (void) snprintf(check, sizeof(check), "%s", d->check);
                (void) snprintf(message, message_size, "%s", d->message);
        } else if (r == 0)
                assert_true(atls_peer_verified(p.c));
        pair_free(&p);
        SSL_CTX_free(hostile);
        EVP_PKEY_free(h.key);
        return r < 0 ? check : NULL;
}

static void test_atls_client_offers_only_p256_signatures_so_a_p384_server_fails_in_tls(void **state)
{
        char message[sizeof(((Diag *) NULL)->message)];

        /* The control: the hostile server's own certificate, made as aTLS makes it (P-256, one
         * extension), passes: its evidence is genuine and bound to its key and our nonce. */
        assert_null(hostile_certificate_handshake("P-256", 1, NULL, message, sizeof(message)));
        /* A P-384 key with genuine evidence bound to it: TLS 1.3 itself refuses it, before any
         * aTLS check runs (the client offers ecdsa_secp256r1_sha256 only). */
        assert_string_equal(
                hostile_certificate_handshake("P-384", 1, NULL, message, sizeof(message)), "");
}

static void
test_atls_p384_certificate_is_refused_by_the_key_check_even_where_tls_would_accept_it(void **state)
{
        char message[sizeof(((Diag *) NULL)->message)];
        const char *wide = "ECDSA+SHA256:ECDSA+SHA384";

        /* Behind the signature-algorithm restriction, the certificate check refuses any key but
         * P-256 on its own: widen what the client's TLS accepts and the P-384 server is still
         * refused, by atls-key-type (the P-256 control passes the same way). */
        assert_null(hostile_certificate_handshake("P-256", 1, wide, message, sizeof(message)));
        assert_string_equal(
                hostile_certificate_handshake("P-384", 1, wide, message, sizeof(message)),
                "atls-key-type");
        assert_non_null(strstr(message, "not ECDSA P-256"));
}

static void test_atls_server_certificate_with_two_evidence_extensions_is_refused(void **state)
{
        char message[sizeof(((Diag *) NULL)->message)];

        /* Two copies of genuine evidence: a verifier that read one and a parser that read the
         * other could disagree, so the certificate is refused rather than one copy chosen. */
        assert_null(hostile_certificate_handshake("P-256", 1, NULL, message, sizeof(message)));
        assert_string_equal(
                hostile_certificate_handshake("P-256", 2, NULL, message, sizeof(message)),
                "atls-evidence");
        assert_non_null(strstr(message, "two evidence extensions"));
}

/* docs/mesh.md: a node's WireGuard key travels in its certificate and its evidence binds it. */
static void test_atls_client_wireguard_key_is_bound_and_given_to_the_server(void **state)
{
        static const uint8_t key[ATLS_WG_KEY_SIZE] = { 0x42, 1, 2, 3 };
        AtlsAttester sa = vtpm_attester(&server_att), ca = vtpm_attester(&client_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, true), *c = client_ctx(&ca);
        uint8_t got[ATLS_WG_KEY_SIZE];
        Pair p;

        /* Without one: nothing to report. */
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), 0);
        assert_int_equal(atls_peer_wg_key(p.s, got), -ENOENT);
        pair_free(&p);

        assert_int_equal(atls_context_set_wg_key(c, key), 0);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), 0);
        assert_true(atls_peer_verified(p.s));
        assert_int_equal(atls_peer_wg_key(p.s, got), 0);
        assert_memory_equal(got, key, sizeof(key));
        pair_free(&p);
}

static void expect_wg_refused(Attack attack)
{
        static const uint8_t key[ATLS_WG_KEY_SIZE] = { 7, 7, 7 };
        Hostile h = { .attack = attack, .real = &server_att };
        AtlsAttester ha = { ATTEST_VARIANT_QEMU_VTPM, hostile_issue, &h };
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&ha, false),
                                                  *c = client_ctx(NULL);
        uint8_t got[ATLS_WG_KEY_SIZE];
        Pair p;

        assert_int_equal(atls_context_set_wg_key(s, key), 0);
        assert_int_equal(atls_context_request_wg_key(c), 0);
        pair_new(atls_context_ssl_ctx(c), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), -1);
        assert_false(atls_peer_verified(p.c));
        assert_int_equal(atls_peer_wg_key(p.c, got), -ENOENT);
        assert_string_equal(atls_peer_failure(p.c)->check, "binding");
        pair_free(&p);
}

/* A server carries its key only for a client that asks: re-attestation and evidence bundles,
 * which recompute the plain binding later, never meet one. */
static void test_atls_server_wireguard_key_is_sent_only_to_a_client_that_asks(void **state)
{
        static const uint8_t key[ATLS_WG_KEY_SIZE] = { 9, 8, 7 };
        AtlsAttester sa = vtpm_attester(&server_att);
        _cleanup_(atls_context_freep) AtlsContext *s = server_ctx(&sa, false),
                                                  *plain = client_ctx(NULL),
                                                  *asks = client_ctx(NULL);
        uint8_t got[ATLS_WG_KEY_SIZE];
        Pair p;

        assert_int_equal(atls_context_set_wg_key(s, key), 0);
        pair_new(atls_context_ssl_ctx(plain), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), 0);
        assert_int_equal(atls_peer_wg_key(p.c, got), -ENOENT);
        assert_false(atls_context_last_peer_wg_key(plain, got));
        pair_free(&p);

        assert_int_equal(atls_context_request_wg_key(asks), 0);
        pair_new(atls_context_ssl_ctx(asks), atls_context_ssl_ctx(s), &p);
        assert_int_equal(handshake(&p), 0);
        assert_int_equal(atls_peer_wg_key(p.c, got), 0);
        assert_memory_equal(got, key, sizeof(key));
        memset(got, 0, sizeof(got));
        assert_true(atls_context_last_peer_wg_key(asks, got));
        assert_memory_equal(got, key, sizeof(key));
        pair_free(&p);
}

static void test_atls_wireguard_key_the_evidence_does_not_bind_is_refused(void **state)
{
        expect_wg_refused(ATTACK_WG_UNBOUND);
        expect_wg_refused(ATTACK_WG_OTHER);
}

static void test_atls_wireguard_binding_differs_from_the_plain_one_and_per_key(void **state)
{
        uint8_t nonce[32] = { 9 }, spki[8] = { 1 }, k1[32] = { 1 }, k2[32] = { 2 }, a[32], b[32],
                c[32], d[32];

        assert_int_equal(
                atls_binding(ATTEST_VARIANT_QEMU_VTPM, ATLS_ROLE_CLIENT, nonce, spki, 8, a), 0);
        assert_int_equal(atls_binding_wg(ATTEST_VARIANT_QEMU_VTPM, ATLS_ROLE_CLIENT, nonce, spki, 8,
                                         NULL, b),
                         0);
        assert_int_equal(
                atls_binding_wg(ATTEST_VARIANT_QEMU_VTPM, ATLS_ROLE_CLIENT, nonce, spki, 8, k1, c),
                0);
        assert_int_equal(
                atls_binding_wg(ATTEST_VARIANT_QEMU_VTPM, ATLS_ROLE_CLIENT, nonce, spki, 8, k2, d),
                0);
        assert_memory_equal(a, b, 32);
        assert_memory_not_equal(a, c, 32);
        assert_memory_not_equal(c, d, 32);
}

static void test_atls_binding_is_domain_separated_by_role_and_variant(void **state)
{
        uint8_t nonce[32] = { 9 }, spki[8] = { 1 }, a[32], b[32], c[32];

        assert_int_equal(
                atls_binding(ATTEST_VARIANT_QEMU_VTPM, ATLS_ROLE_SERVER, nonce, spki, 8, a), 0);
        assert_int_equal(
                atls_binding(ATTEST_VARIANT_QEMU_VTPM, ATLS_ROLE_CLIENT, nonce, spki, 8, b), 0);
        assert_int_equal(atls_binding(ATTEST_VARIANT_SIM_SNP, ATLS_ROLE_SERVER, nonce, spki, 8, c),
                         0);
        assert_memory_not_equal(a, b, 32);
        assert_memory_not_equal(a, c, 32);
}

int main(void)
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_atls_server_attestation_succeeds_and_data_flows),
                cmocka_unit_test(test_atls_mutual_both_sides_verified),
                cmocka_unit_test(test_atls_evidence_bound_to_another_key_is_refused),
                cmocka_unit_test(test_atls_replayed_evidence_from_earlier_handshake_is_refused),
                cmocka_unit_test(test_atls_evidence_relayed_from_a_different_server_is_refused),
                cmocka_unit_test(test_atls_server_evidence_reflected_as_other_role_is_refused),
                cmocka_unit_test(test_atls_server_from_unexpected_tpm_is_refused),
                cmocka_unit_test(test_atls_pcr_mismatch_is_refused_with_expected_and_actual),
                cmocka_unit_test(test_atls_client_without_evidence_is_refused_by_mutual_server),
                cmocka_unit_test(test_atls_client_attesting_from_unknown_tpm_is_refused_by_server),
                cmocka_unit_test(test_atls_plain_tls_server_certificate_is_refused),
                cmocka_unit_test(test_atls_tls12_client_is_refused),
                cmocka_unit_test(test_atls_oversized_evidence_is_refused),
                cmocka_unit_test(test_atls_variant_other_than_policy_is_refused),
                cmocka_unit_test(test_atls_binding_is_domain_separated_by_role_and_variant),
                cmocka_unit_test(test_atls_client_wireguard_key_is_bound_and_given_to_the_server),
                cmocka_unit_test(test_atls_wireguard_key_the_evidence_does_not_bind_is_refused),
                cmocka_unit_test(test_atls_server_wireguard_key_is_sent_only_to_a_client_that_asks),
                cmocka_unit_test(
                        test_atls_wireguard_binding_differs_from_the_plain_one_and_per_key),
                cmocka_unit_test(test_atls_sim_snp_handshake_passes_only_with_the_simulators_ark),
                cmocka_unit_test(
                        test_atls_snp_host_data_bound_to_the_cluster_admits_only_that_clusters_nodes),
                cmocka_unit_test(test_atls_peer_presenting_a_certificate_chain_is_refused),
                cmocka_unit_test(
                        test_atls_server_attests_only_to_a_client_that_sent_a_nonce_of_the_right_size),
                cmocka_unit_test(test_atls_ek_cert_ak_never_activated_is_refused),
                cmocka_unit_test(
                        test_atls_client_offers_only_p256_signatures_so_a_p384_server_fails_in_tls),
                cmocka_unit_test(
                        test_atls_p384_certificate_is_refused_by_the_key_check_even_where_tls_would_accept_it),
                cmocka_unit_test(
                        test_atls_server_certificate_with_two_evidence_extensions_is_refused),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
