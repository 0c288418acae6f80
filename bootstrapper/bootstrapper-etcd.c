/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The join service's etcd client certificate (docs/membership.md, "In the node image"): a
 * control plane's bootstrapper, before it hands over to the join service, issues it from the
 * etcd CA kubeadm keeps in its certificatesDir (etcd/ca.crt, etcd/ca.key: made by kubeadm init,
 * brought by kubeadm join of a control plane with the uploaded certificates). A fresh P-256 key
 * each time, 0600, never logged; the certificate says clientAuth only, for one year.
 *
 * Why not a kubeadm phase: kubeadm's certificate phases write only kubeadm's own fixed
 * certificates (etcd-healthcheck-client, apiserver-etcd-client), which belong to other
 * components; sharing one would make the join service's credential theirs too.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <stdio.h>
#include <string.h>

#include "bootstrapper.h"
#include "cloister/crypto.h"
#include "cloister/etcd.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/secret.h"

#define ETCD_CA_PEM_MAX      (64U * 1024U)
#define ETCD_CLIENT_DAYS     365L
#define ETCD_CLIENT_SUBJECT  "cloister-join-service"
#define ETCD_CLIENT_BACKDATE (5L * 60)

static int load_ca(const char *pki_dir, X509 **ret_cert, EVP_PKEY **ret_key)
{
        _cleanup_(freep) uint8_t *crt = NULL, *key = NULL;
        _cleanup_(BIO_freep) BIO *cb = NULL, *kb = NULL;
        char crt_path[PATH_MAX], key_path[PATH_MAX];
        size_t crt_size = 0, key_size = 0;
        X509 *c = NULL;
        EVP_PKEY *k = NULL;
        int r;

        (void) snprintf(crt_path, sizeof(crt_path), "%s/etcd/ca.crt", pki_dir);
        (void) snprintf(key_path, sizeof(key_path), "%s/etcd/ca.key", pki_dir);
        r = read_full_file(crt_path, ETCD_CA_PEM_MAX, &crt, &crt_size);
        if (r < 0)
                return log_error_errno(r,
                                       "Cannot read kubeadm's etcd CA %s: %m. kubeadm init (or a "
                                       "control plane's kubeadm join) writes it; check "
                                       "--kubernetes-pki.",
                                       crt_path);
        r = read_full_file(key_path, ETCD_CA_PEM_MAX, &key, &key_size);
        if (r < 0)
                return log_error_errno(r,
                                       "Cannot read kubeadm's etcd CA key %s: %m. kubeadm init "
                                       "(or a control plane's kubeadm join) writes it; check "
                                       "--kubernetes-pki.",
                                       key_path);
        cb = BIO_new_mem_buf(crt, (int) crt_size);
        kb = BIO_new_mem_buf(key, (int) key_size);
        if (cb)
                c = PEM_read_bio_X509(cb, NULL, NULL, NULL);
        if (kb)
                k = PEM_read_bio_PrivateKey(kb, NULL, NULL, NULL);
        explicit_wipe(key, key_size);
        if (!c || !k) {
                X509_free(c);
                EVP_PKEY_free(k);
                crypto_log_errors(-EBADMSG, "etcd CA");
                return log_error_errno(-EBADMSG,
                                       "The etcd CA %s or its key %s is not PEM: refusing to "
                                       "issue the join service's etcd client certificate.",
                                       crt_path, key_path);
        }
        if (X509_check_private_key(c, k) != 1 || X509_check_ca(c) < 1) {
                X509_free(c);
                EVP_PKEY_free(k);
                return log_error_errno(-EBADMSG,
                                       "%s is not a CA certificate whose key is %s: refusing to "
                                       "issue the join service's etcd client certificate.",
                                       crt_path, key_path);
        }
        *ret_cert = c;
        *ret_key = k;
        return 0;
}

static int add_extensions(X509 *x, X509 *ca)
{
        static const char *const exts[][2] = {
                { "basicConstraints", "critical,CA:FALSE" },
                { "keyUsage", "critical,digitalSignature" },
                { "extendedKeyUsage", "clientAuth" },
                { "subjectKeyIdentifier", "hash" },
                { "authorityKeyIdentifier", "keyid:always" },
        };
        X509V3_CTX ctx;

        X509V3_set_ctx(&ctx, ca, x, NULL, NULL, 0);
        for (size_t i = 0; i < ELEMENTSOF(exts); i++) {
                X509_EXTENSION *e = X509V3_EXT_conf(NULL, &ctx, exts[i][0], exts[i][1]);
                if (!e || X509_add_ext(x, e, -1) != 1) {
                        X509_EXTENSION_free(e);
                        return crypto_log_errors(-EIO, "etcd client certificate extensions");
                }
                X509_EXTENSION_free(e);
        }
        return 0;
}

static int issue(X509 *ca, EVP_PKEY *ca_key, EVP_PKEY *key, X509 **ret)
{
        _cleanup_(X509_freep) X509 *x = X509_new();
        X509_NAME *name = X509_NAME_new();
        uint8_t serial[16];
        BIGNUM *bn = NULL;
        int r = -EIO;

        if (!x || !name || RAND_bytes(serial, sizeof(serial)) != 1)
                goto finish;
        serial[0] &= 0x7f; /* positive, at most 20 octets (RFC 5280 4.1.2.2) */
        serial[0] |= 0x01;
        bn = BN_bin2bn(serial, sizeof(serial), NULL);
        if (!bn || !BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(x)) ||
            X509_set_version(x, X509_VERSION_3) != 1 ||
            !X509_gmtime_adj(X509_getm_notBefore(x), -ETCD_CLIENT_BACKDATE) ||
            !X509_gmtime_adj(X509_getm_notAfter(x), ETCD_CLIENT_DAYS * 24 * 3600) ||
            X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                       (const unsigned char *) ETCD_CLIENT_SUBJECT, -1, -1,
                                       0) != 1 ||
            X509_set_subject_name(x, name) != 1 ||
            X509_set_issuer_name(x, X509_get_subject_name(ca)) != 1 || X509_set_pubkey(x, key) != 1)
                goto finish;
        r = add_extensions(x, ca);
        if (r < 0)
                goto finish;
        r = -EIO;
        if (X509_sign(x, ca_key, EVP_sha256()) <= 0)
                goto finish;
        *ret = TAKE_PTR(x);
        r = 0;
finish:
        BN_free(bn);
        X509_NAME_free(name);
        return r < 0 ? crypto_log_errors(r, "etcd client certificate") : 0;
}

/* PEM of obj (a key when is_key) into a file written atomically with mode; the buffer is wiped. */
static int write_pem(const char *path, X509 *cert, EVP_PKEY *key, mode_t mode)
{
        _cleanup_(BIO_freep) BIO *b = BIO_new(BIO_s_mem());
        char *data = NULL;
        long size;
        int r;

        if (!b || (key ? PEM_write_bio_PrivateKey(b, key, NULL, NULL, 0, NULL, NULL)
                       : PEM_write_bio_X509(b, cert)) != 1)
                return crypto_log_errors(-EIO, "etcd client certificate: PEM");
        size = BIO_get_mem_data(b, &data);
        if (size <= 0)
                return -EIO;
        r = write_file_atomic(path, data, (size_t) size, mode, WRITE_FILE_SYNC);
        explicit_wipe(data, (size_t) size);
        if (r < 0)
                return log_error_errno(r, "Cannot write %s: %m", path);
        return 0;
}

int bootstrapper_etcd_client_issue(const char *pki_dir, const char *out_dir,
                                   BootstrapperEtcdClient *ret)
{
        _cleanup_(X509_freep) X509 *ca = NULL, *cert = NULL;
        _cleanup_(EVP_PKEY_freep) EVP_PKEY *ca_key = NULL, *key = NULL;
        int r;

        *ret = (BootstrapperEtcdClient){};
        r = load_ca(pki_dir, &ca, &ca_key);
        if (r < 0)
                return r;
        key = EVP_EC_gen("P-256");
        if (!key)
                return crypto_log_errors(-EIO, "etcd client key");
        r = issue(ca, ca_key, key, &cert);
        if (r < 0)
                return r;
        (void) snprintf(ret->cert, sizeof(ret->cert), "%s/etcd-client.crt", out_dir);
        (void) snprintf(ret->key, sizeof(ret->key), "%s/etcd-client.key", out_dir);
        (void) snprintf(ret->ca, sizeof(ret->ca), "%s/etcd/ca.crt", pki_dir);
        /* The key first: a certificate on disk always has its key next to it. */
        r = write_pem(ret->key, NULL, key, 0600);
        if (r >= 0)
                r = write_pem(ret->cert, cert, NULL, 0644);
        if (r < 0)
                return r;
        log_info("bootstrapper: issued the join service's etcd client certificate %s from "
                 "kubeadm's etcd CA %s",
                 ret->cert, ret->ca);
        return 0;
}

/* kubeadm's local etcd serves clients on this port on its advertise address. */
#define ETCD_CLIENT_PORT 2379

/* The host of a member record's endpoint ("HOST:PORT" or "[V6]:PORT") if it is an IP address;
 * false otherwise (a name would go into a URL unchecked: the record is skipped). */
static bool endpoint_ip(const char *endpoint, char *host, size_t size, bool *v6)
{
        const char *colon = strrchr(endpoint, ':');
        uint8_t buf[16];
        size_t n;

        if (!colon)
                return false;
        n = (size_t) (colon - endpoint);
        if (n >= 2 && endpoint[0] == '[' && endpoint[n - 1] == ']') {
                endpoint++;
                n -= 2;
        }
        if (n == 0 || n >= size)
                return false;
        memcpy(host, endpoint, n);
        host[n] = '\0';
        *v6 = inet_pton(AF_INET6, host, buf) == 1;
        return *v6 || inet_pton(AF_INET, host, buf) == 1;
}

/* One member record (members/NAME): the etcd endpoint of a control plane other than this node,
 * appended to list; anything else is skipped (a record that cannot be read, with a warning). */
static int add_control_plane(const EtcdKv *kv, const char *self, char *list, size_t size)
{
        _cleanup_(json_decrefp) json_t *m = NULL;
        const char *name = NULL, *role = NULL, *endpoint = NULL;
        char host[64], url[128];
        bool v6 = false;
        Diag d;
        JsonCtx ctx = { .source = kv->key, .path = "", .diag = &d };

        diag_clear(&d);
        if (json_parse_buffer(kv->value, kv->value_size, kv->key, &m, &d) < 0 ||
            json_get_string(&ctx, m, "name", true, &name) < 0 ||
            json_get_string(&ctx, m, "role", true, &role) < 0 ||
            json_get_string(&ctx, m, "endpoint", true, &endpoint) < 0) {
                log_warning("bootstrapper: the member record %s is skipped: %s", kv->key,
                            d.message);
                return 0;
        }
        if (strcmp(role, "control-plane") != 0 || strcmp(name, self) == 0)
                return 0;
        if (!endpoint_ip(endpoint, host, sizeof(host), &v6)) {
                log_warning("bootstrapper: control plane %s is skipped: its endpoint is not "
                            "IP:PORT",
                            name);
                return 0;
        }
        (void) snprintf(url, sizeof(url), v6 ? "https://[%s]:%u" : "https://%s:%u", host,
                        ETCD_CLIENT_PORT);
        size_t used = strlen(list);

        if (used + 1 + strlen(url) >= size)
                return -E2BIG;
        (void) snprintf(list + used, size - used, ",%s", url);
        return 1;
}

int bootstrapper_etcd_endpoints(const Bootstrapper *b, const BootstrapperEtcdClient *client,
                                const char *local, char *ret, size_t size)
{
        _cleanup_(json_decrefp) json_t *st = NULL;
        _cleanup_(etcd_client_freep) EtcdClient *c = NULL;
        _cleanup_(freep) char *path = NULL, *end = NULL;
        char prefix[ETCD_KEY_MAX];
        const char *cid = NULL;
        EtcdRange rg = {};
        size_t n = 1;
        Diag d;
        JsonCtx ctx = { .path = "", .diag = &d };
        int r;

        if (strlen(local) >= size)
                return -E2BIG;
        (void) snprintf(ret, size, "%s", local);
        diag_clear(&d);
        if (asprintf(&path, "%s/node-state.json", b->state_dir) < 0)
                return log_oom();
        ctx.source = path;
        r = json_parse_file(path, 64 * 1024, &st, &d);
        if (r >= 0)
                r = json_get_string(&ctx, st, "clusterId", true, &cid);
        if (r >= 0 && (strlen(cid) != 64 || strspn(cid, "0123456789abcdef") != 64))
                r = diag_fail(&d, -EBADMSG, "node-state", -1, "clusterId is not 64 hex digits");
        if (r < 0)
                return log_error_errno(r, "Cannot read this node's cluster ID: %s", d.message);
        (void) snprintf(prefix, sizeof(prefix), ETCD_KEY_PREFIX "%s/members/", cid);
        end = etcd_prefix_end(prefix);
        if (!end)
                return log_oom();
        const EtcdConfig cfg = { .endpoints = local,
                                 .cert = client->cert,
                                 .key = client->key,
                                 .ca = client->ca,
                                 .total_timeout_ms = 3000,
                                 .rounds = 1 };
        r = etcd_client_new(&cfg, &c, &d);
        if (r >= 0)
                r = etcd_range(c, prefix, end, 0, &rg, &d);
        if (r < 0) {
                /* Right after kubeadm init the membership is empty anyway; the join service
                 * reads it again itself. */
                log_warning("bootstrapper: the control planes could not be read from etcd at "
                            "%s (%s): the join service starts with this node's etcd member "
                            "only",
                            local, d.message);
                return 0;
        }
        for (size_t i = 0; i < rg.n_kvs && r >= 0; i++) {
                if (n >= ETCD_ENDPOINTS_MAX) {
                        log_warning("bootstrapper: more than %u control planes: the join "
                                    "service gets the first %u etcd endpoints",
                                    ETCD_ENDPOINTS_MAX, ETCD_ENDPOINTS_MAX);
                        break;
                }
                r = add_control_plane(&rg.kvs[i], b->node_name, ret, size);
                if (r > 0)
                        n++;
        }
        etcd_range_done(&rg);
        if (r < 0)
                return log_error_errno(r, "The etcd endpoints of the control planes are too "
                                          "long.");
        log_info("bootstrapper: the join service's etcd endpoints (this member, then the "
                 "control planes in the membership): %s",
                 ret);
        return 0;
}
