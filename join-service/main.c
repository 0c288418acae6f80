/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloister/attest-atls.h"
#include "cloister/evidence.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/journal.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/node-attester.h"
#include "cloister/notify.h"
#include "cloister/rpc-text.h"
#include "cloister/rpc.h"
#include "cloister/sandbox.h"
#include "cloister/tpm-device.h"
#include "cloister/verbs.h"
#include "cloister/version.h"

#include "join-service-reattest.h"
#include "join-service.h"

/* The user the network process runs as when it exists (a system user the image may create);
 * otherwise nobody:nogroup. */
#define JOIN_NETWORK_USER         "cloister-network"
#define JOIN_NETWORK_ID_FALLBACK  65534
#define JOIN_NETWORK_ROOT_DEFAULT "/run/cloister-join-network"

#ifndef JOIN_WORKERS
#define JOIN_WORKERS 8 /* handler threads: kubeadm calls and fsyncs overlap */
#endif

static const char *arg_os_release = OS_RELEASE_DEFAULT;
static const char *arg_tcti, *arg_address = "127.0.0.1", *arg_state_dir, *arg_policy,
                             *arg_kubeadm = "kubeadm", *arg_event_log = "", *arg_audit_log;
static uint16_t arg_port = 9000;
static unsigned arg_token_ttl = 15;
static int arg_listen_fd = -1;
static bool arg_insecure_any_ak;
static AttestVariant arg_attest = ATTEST_VARIANT_QEMU_VTPM;
static const char *arg_sim_tdx_root;
static bool arg_sim_tdx_no_collateral;
/* The network process's identity and root (docs/join.md, "Privilege separation"). */
static const char *arg_network_root = JOIN_NETWORK_ROOT_DEFAULT;
static unsigned arg_checkpoint_interval = JOIN_CHECKPOINT_INTERVAL_SEC;
static uid_t arg_network_uid;
static gid_t arg_network_gid;
static const char *arg_tdx_cache_dir, *arg_tdx_pcs_url;
static unsigned arg_tdx_refresh_ahead = 24 * 3600, arg_tdx_refresh_interval = 3600;
/* GET /metrics in plain HTTP, on a loopback address only (docs/reattestation.md, "Metrics"). */
static const char *arg_metrics_listen;
static int metrics_fd = -1;
static const char *arg_etcd_endpoints, *arg_etcd_cert, *arg_etcd_key, *arg_etcd_ca;
static MeshBackend arg_mesh = _MESH_BACKEND_INVALID; /* invalid: no mesh */
static unsigned arg_mesh_interval = 10;

static void help(void)
{
        printf("Usage: cloister-join-service [OPTIONS]\n\n"
               "Runs on control-plane nodes. Serves joining nodes over mutually attested TLS: the\n"
               "node must prove it runs the cluster's image and belongs to no cluster yet (PCR 15\n"
               "zero); it must see this node prove the same image and the cluster ID in PCR 15.\n"
               "An admitted node gets a join ticket: a short-lived kubeadm bootstrap token, the\n"
               "CA pin, its disk key (derived from the master secret and its disk's UUID), the\n"
               "measurement secret and salt, and for control planes the certificate key and the\n"
               "master secret. Every admission and refusal goes to a hash-chained audit log.\n\n"
               "  --tcti CONF              TPM (default $CLOISTER_TPM_TCTI or device:/dev/tpmrm0)\n"
               "  --listen ADDR:PORT       default 127.0.0.1:9000 (port 0: any free port)\n"
               "  --state-dir DIR          node-state.json, master-secret.json, admin.conf, pki/\n"
               "                           (on the encrypted state disk; required)\n"
               "  --policy FILE            the cluster's attestation policy, reloaded when the\n"
               "                           file changes (default DIR/cluster-policy.json)\n"
               "  --audit-log FILE         default DIR/audit.log\n"
               "  --audit-checkpoint-interval SEC\n"
               "                           re-sign the audit log's head this often (default\n"
               "                           600; 0: only at start, on admissions and when served)\n"
               "  --kubeadm PATH           kubeadm binary (default: kubeadm in $PATH)\n"
               "  --event-log PATH         boot event log to include in evidence\n"
               "  --attest VARIANT         this node's evidence: qemu-vtpm (default), tdx or\n"
               "                           sim-tdx (SIMULATED, needs --sim-tdx-root); must be\n"
               "                           the cluster policy's variant\n"
               "  --sim-tdx-root FILE      sim-tdx: the simulated platform's root and key\n"
               "  --sim-tdx-no-collateral  sim-tdx: the evidence carries no collateral, as a real\n"
               "                           TD's: joining nodes take it from their cache\n"
               "  --tdx-cache-dir DIR      cached TDX collateral (Intel PCS/PCCS downloads)\n"
               "                           for tdx evidence that carries none: joins read it,\n"
               "                           never fetch (default STATE-DIR/tdx-collateral)\n"
               "  --tdx-pcs-url URL        where the refresher fetches it: a URL ending in\n"
               "                           /tdx/certification/v4 (default Intel PCS; a PCCS\n"
               "                           serves the same paths)\n"
               "  --tdx-refresh-ahead SEC  refresh an item this long before its nextUpdate\n"
               "                           (default 86400)\n"
               "  --tdx-refresh-interval SEC\n"
               "                           how often the refresher looks (default 3600; after\n"
               "                           a failure: a backoff from SEC/8, doubling)\n"
               "  --token-ttl MINUTES      bootstrap token lifetime, 1..60 (default 15)\n"
               "  --os-release FILE        the image's versions GET /v1/node reports (default\n"
               "                           " OS_RELEASE_DEFAULT ")\n"
               "  --listen-fd FD           serve this inherited listening socket (the\n"
               "                           bootstrapper's, handed over) instead of binding\n"
               "  --network-user USER|UID:GID\n"
               "                           who the network process (TLS, HTTP, JSON) runs as:\n"
               "                           never root; default the user " JOIN_NETWORK_USER " if\n"
               "                           it exists, else 65534:65534 (nobody:nogroup)\n"
               "  --network-root DIR       the empty directory it is shut in (chroot), made\n"
               "                           if missing; root's, writable by no one else\n"
               "                           (default " JOIN_NETWORK_ROOT_DEFAULT ")\n"
               "  --metrics-listen ADDR:PORT\n"
               "                           serve GET /metrics (Prometheus text: each member's\n"
               "                           re-attestation verdict, last attested, failures,\n"
               "                           response) in plain HTTP on this LOOPBACK address:\n"
               "                           127.0.0.1:PORT or [::1]:PORT; any other address is\n"
               "                           refused (the text is unauthenticated; scrape it\n"
               "                           from the node). Off by default\n"
               "  --etcd-endpoints URLS    keep the membership and the audit chain in the\n"
               "                           cluster's etcd (https://HOST:PORT,...), shared by\n"
               "                           every join service; the local files become a cache.\n"
               "                           Joins and rejoins are refused while etcd does not\n"
               "                           answer (docs/membership.md)\n"
               "  --etcd-cert FILE, --etcd-key FILE, --etcd-ca FILE\n"
               "                           this join service's etcd client certificate and key,\n"
               "                           and etcd's CA (all three required with endpoints)\n"
               "  --mesh kernel|userspace  this node in the WireGuard mesh of attested members:\n"
               "                           its key made here, its own entry registered in the\n"
               "                           membership, cloister0 kept to it by the kernel's\n"
               "                           module or wireguard-go (docs/mesh.md; default: no\n"
               "                           mesh). Not with --etcd-endpoints yet\n"
               "  --mesh-interval SEC      how often cloister0 is brought to the membership\n"
               "                           again (default 10; at once when a member registers)\n"
               "  --insecure-allow-any-ak  INSECURE, throw-away tests only: load a policy with\n"
               "                           akTrust insecure-any (any TPM, so anyone, can join as\n"
               "                           a worker); refused without it. Control planes are\n"
               "                           never admitted under such a policy.\n"
               "\nExit status: 0 success, 1 failure (one error line says why), 2 usage error\n"
               "(an unknown option, a missing argument, a malformed value).\n");
}

/* USER (a name in the user database) or UID:GID; never root. */
static int parse_network_user(const char *s)
{
        unsigned long u, g;
        struct passwd *pw;
        char *end;

        if (strchr(s, ':')) {
                u = strtoul(s, &end, 10);
                if (end == s || *end != ':')
                        goto bad;
                g = strtoul(end + 1, &end, 10);
                if (*end || u == 0 || g == 0 || u >= 0xFFFFFFFFUL || g >= 0xFFFFFFFFUL)
                        goto bad;
                arg_network_uid = (uid_t) u;
                arg_network_gid = (gid_t) g;
                return 0;
        }
        pw = getpwnam(s);
        if (!pw)
                return log_error_errno(-EUSAGE,
                                       "--network-user '%s': no such user. Give a user name or "
                                       "UID:GID.",
                                       s);
        if (pw->pw_uid == 0 || pw->pw_gid == 0)
                goto bad;
        arg_network_uid = pw->pw_uid;
        arg_network_gid = pw->pw_gid;
        return 0;
bad:
        return log_error_errno(-EUSAGE,
                               "--network-user '%s': a user name or UID:GID, neither of them 0 "
                               "(the network process never runs as root).",
                               s);
}

/* The default identity of the network process: JOIN_NETWORK_USER, else nobody:nogroup. */
static void default_network_user(void)
{
        struct passwd *pw;

        if (arg_network_uid != 0)
                return;
        pw = getpwnam(JOIN_NETWORK_USER);
        if (pw && pw->pw_uid != 0 && pw->pw_gid != 0) {
                arg_network_uid = pw->pw_uid;
                arg_network_gid = pw->pw_gid;
                return;
        }
        arg_network_uid = JOIN_NETWORK_ID_FALLBACK;
        arg_network_gid = JOIN_NETWORK_ID_FALLBACK;
}

static int parse_argv(int argc, char *argv[])
{
        enum {
                ARG_TCTI = 0x100,
                ARG_LISTEN,
                ARG_DIR,
                ARG_POLICY,
                ARG_AUDIT,
                ARG_KUBEADM,
                ARG_LOG,
                ARG_TTL,
                ARG_LISTEN_FD,
                ARG_INSECURE_ANY_AK,
                ARG_OS_RELEASE,
                ARG_NETWORK_USER,
                ARG_NETWORK_ROOT,
                ARG_ATTEST,
                ARG_SIM_TDX_ROOT,
                ARG_SIM_TDX_NO_COLLATERAL,
                ARG_CHECKPOINT_INTERVAL,
                ARG_TDX_CACHE_DIR,
                ARG_TDX_PCS_URL,
                ARG_TDX_REFRESH_AHEAD,
                ARG_TDX_REFRESH_INTERVAL,
                ARG_METRICS_LISTEN,
                ARG_ETCD_ENDPOINTS,
                ARG_ETCD_CERT,
                ARG_ETCD_KEY,
                ARG_ETCD_CA,
                ARG_MESH,
                ARG_MESH_INTERVAL,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "tcti", required_argument, NULL, ARG_TCTI },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "state-dir", required_argument, NULL, ARG_DIR },
                { "policy", required_argument, NULL, ARG_POLICY },
                { "audit-log", required_argument, NULL, ARG_AUDIT },
                { "kubeadm", required_argument, NULL, ARG_KUBEADM },
                { "event-log", required_argument, NULL, ARG_LOG },
                { "token-ttl", required_argument, NULL, ARG_TTL },
                { "listen-fd", required_argument, NULL, ARG_LISTEN_FD },
                { "insecure-allow-any-ak", no_argument, NULL, ARG_INSECURE_ANY_AK },
                { "os-release", required_argument, NULL, ARG_OS_RELEASE },
                { "network-user", required_argument, NULL, ARG_NETWORK_USER },
                { "network-root", required_argument, NULL, ARG_NETWORK_ROOT },
                { "attest", required_argument, NULL, ARG_ATTEST },
                { "sim-tdx-root", required_argument, NULL, ARG_SIM_TDX_ROOT },
                { "sim-tdx-no-collateral", no_argument, NULL, ARG_SIM_TDX_NO_COLLATERAL },
                { "audit-checkpoint-interval", required_argument, NULL, ARG_CHECKPOINT_INTERVAL },
                { "tdx-cache-dir", required_argument, NULL, ARG_TDX_CACHE_DIR },
                { "tdx-pcs-url", required_argument, NULL, ARG_TDX_PCS_URL },
                { "tdx-refresh-ahead", required_argument, NULL, ARG_TDX_REFRESH_AHEAD },
                { "tdx-refresh-interval", required_argument, NULL, ARG_TDX_REFRESH_INTERVAL },
                { "metrics-listen", required_argument, NULL, ARG_METRICS_LISTEN },
                { "etcd-endpoints", required_argument, NULL, ARG_ETCD_ENDPOINTS },
                { "etcd-cert", required_argument, NULL, ARG_ETCD_CERT },
                { "etcd-key", required_argument, NULL, ARG_ETCD_KEY },
                { "etcd-ca", required_argument, NULL, ARG_ETCD_CA },
                { "mesh", required_argument, NULL, ARG_MESH },
                { "mesh-interval", required_argument, NULL, ARG_MESH_INTERVAL },
                {},
        };
        char *end;
        unsigned long v;
        int c, r;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("cloister-join-service %s\n", CLOISTER_VERSION);
                        return 0;
                case ARG_TCTI:
                        arg_tcti = optarg;
                        break;
                case ARG_LISTEN:
                        r = parse_listen_address(optarg, &arg_address, &arg_port);
                        if (r < 0)
                                return log_error_errno(r, "--listen '%s': use ADDR:PORT.", optarg);
                        break;
                case ARG_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_POLICY:
                        arg_policy = optarg;
                        break;
                case ARG_AUDIT:
                        arg_audit_log = optarg;
                        break;
                case ARG_CHECKPOINT_INTERVAL:
                        errno = 0;
                        v = strtoul(optarg, &end, 10);
                        if (errno != 0 || end == optarg || *end || optarg[0] == '-' || v > 86400)
                                return log_error_errno(-EUSAGE, "--audit-checkpoint-interval: "
                                                                "0..86400 seconds.");
                        arg_checkpoint_interval = (unsigned) v;
                        break;
                case ARG_KUBEADM:
                        arg_kubeadm = optarg;
                        break;
                case ARG_LOG:
                        arg_event_log = optarg;
                        break;
                case ARG_OS_RELEASE:
                        arg_os_release = optarg;
                        break;
                case ARG_TTL:
                        v = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || v == 0 || v > 60)
                                return log_error_errno(-EUSAGE, "--token-ttl: 1..60 minutes.");
                        arg_token_ttl = (unsigned) v;
                        break;
                case ARG_LISTEN_FD:
                        v = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || v < 3 || v > 65535)
                                return log_error_errno(-EUSAGE, "--listen-fd: a descriptor >= 3.");
                        arg_listen_fd = (int) v;
                        break;
                case ARG_INSECURE_ANY_AK:
                        arg_insecure_any_ak = true;
                        break;
                case ARG_NETWORK_USER:
                        r = parse_network_user(optarg);
                        if (r < 0)
                                return r;
                        break;
                case ARG_NETWORK_ROOT:
                        if (optarg[0] != '/' || strcmp(optarg, "/") == 0)
                                return log_error_errno(-EUSAGE,
                                                       "--network-root '%s': an absolute path "
                                                       "of an empty directory, not /.",
                                                       optarg);
                        arg_network_root = optarg;
                        break;
                case ARG_ATTEST:
                        arg_attest = attest_variant_from_string(optarg);
                        if (arg_attest < 0)
                                return log_error_errno(-EUSAGE, "--attest '%s': use one of %s.",
                                                       optarg, node_attester_variants());
                        break;
                case ARG_SIM_TDX_ROOT:
                        arg_sim_tdx_root = optarg;
                        break;
                case ARG_SIM_TDX_NO_COLLATERAL:
                        arg_sim_tdx_no_collateral = true;
                        break;
                case ARG_TDX_CACHE_DIR:
                        arg_tdx_cache_dir = optarg;
                        break;
                case ARG_TDX_PCS_URL:
                        arg_tdx_pcs_url = optarg;
                        break;
                case ARG_TDX_REFRESH_AHEAD:
                case ARG_TDX_REFRESH_INTERVAL:
                        v = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || v == 0 || v > 90UL * 24 * 3600)
                                return log_error_errno(-EUSAGE,
                                                       "--tdx-refresh-ahead/-interval: 1..7776000 "
                                                       "seconds.");
                        if (c == ARG_TDX_REFRESH_AHEAD)
                                arg_tdx_refresh_ahead = (unsigned) v;
                        else
                                arg_tdx_refresh_interval = (unsigned) v;
                        break;
                case ARG_METRICS_LISTEN: {
                        const char *colon = strrchr(optarg, ':');
                        char host[64];

                        if (!colon || colon == optarg || (size_t) (colon - optarg) >= sizeof(host))
                                return log_error_errno(-EUSAGE,
                                                       "--metrics-listen '%s': use "
                                                       "127.0.0.1:PORT or [::1]:PORT.",
                                                       optarg);
                        memcpy(host, optarg, (size_t) (colon - optarg));
                        host[colon - optarg] = '\0';
                        /* Plain HTTP without authentication: never on an address another
                         * machine (or a pod on another network) can reach. */
                        if (!rpc_address_is_loopback(host))
                                return log_error_errno(-EUSAGE,
                                                       "--metrics-listen '%s': REFUSED, not a "
                                                       "loopback address. /metrics is plain, "
                                                       "unauthenticated HTTP and is served on "
                                                       "127.0.0.0/8 or [::1] only; scrape it on "
                                                       "the node (or forward it over an "
                                                       "authenticated channel).",
                                                       optarg);
                        arg_metrics_listen = optarg;
                        break;
                }
                case ARG_ETCD_ENDPOINTS:
                        arg_etcd_endpoints = optarg;
                        break;
                case ARG_ETCD_CERT:
                        arg_etcd_cert = optarg;
                        break;
                case ARG_ETCD_KEY:
                        arg_etcd_key = optarg;
                        break;
                case ARG_ETCD_CA:
                        arg_etcd_ca = optarg;
                        break;
                case ARG_MESH:
                        arg_mesh = mesh_backend_from_string(optarg);
                        if (arg_mesh < 0)
                                return log_error_errno(
                                        -EUSAGE, "--mesh '%s': use kernel or userspace.", optarg);
                        break;
                case ARG_MESH_INTERVAL:
                        v = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || v == 0 || v > 3600)
                                return log_error_errno(-EUSAGE, "--mesh-interval: 1..3600 s.");
                        arg_mesh_interval = (unsigned) v;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if ((arg_etcd_endpoints || arg_etcd_cert || arg_etcd_key || arg_etcd_ca) &&
            !(arg_etcd_endpoints && arg_etcd_cert && arg_etcd_key && arg_etcd_ca))
                return log_error_errno(-EUSAGE,
                                       "--etcd-endpoints, --etcd-cert, --etcd-key and --etcd-ca go "
                                       "together: give all four, or none for local files. See "
                                       "--help.");
        if (!arg_state_dir)
                return log_error_errno(-EUSAGE, "--state-dir is required. See --help.");
        if (arg_sim_tdx_root && arg_attest != ATTEST_VARIANT_SIM_TDX)
                return log_error_errno(-EUSAGE, "--sim-tdx-root goes with --attest sim-tdx.");
        if (arg_sim_tdx_no_collateral && arg_attest != ATTEST_VARIANT_SIM_TDX)
                return log_error_errno(-EUSAGE,
                                       "--sim-tdx-no-collateral goes with --attest sim-tdx.");
        if (arg_tdx_pcs_url && !tdx_pcs_url_ok(arg_tdx_pcs_url))
                return log_error_errno(-EUSAGE,
                                       "--tdx-pcs-url %s: give the TDX base URL of Intel PCS or a "
                                       "PCCS, ending in /tdx/certification/v4 (default %s).",
                                       arg_tdx_pcs_url, TDX_PCS_URL_DEFAULT);
        default_network_user();
        return 1;
}

/* The node state the bootstrapper wrote at init or join; the master secret next to it. */
static int load_cluster(JoinService *js)
{
        static const char *const keys[] = { "clusterId",
                                            "clusterName",
                                            "role",
                                            "node",
                                            "endpoint",
                                            "diskUuid",
                                            "controlPlaneEndpoint",
                                            "measurementSalt",
                                            "kubernetesVersion",
                                            NULL };
        _cleanup_(json_decrefp) json_t *st = NULL;
        _cleanup_(freep) char *path = NULL;
        JsonCtx ctx = { .source = NULL, .path = "" };
        const char *cid, *role, *node, *cpe, *msalt, *endpoint = "", *disk = "", *k8s = NULL;
        Diag d;
        int r;

        if (asprintf(&path, "%s/node-state.json", arg_state_dir) < 0)
                return log_oom();
        diag_clear(&d);
        ctx.source = path;
        ctx.diag = &d;
        r = json_parse_file(path, 64 * 1024, &st, &d);
        if (r >= 0)
                r = json_check_keys(&ctx, st, keys);
        if (r >= 0)
                r = json_get_string(&ctx, st, "clusterId", true, &cid);
        if (r >= 0)
                r = json_get_string(&ctx, st, "role", true, &role);
        if (r >= 0)
                r = json_get_string(&ctx, st, "node", true, &node);
        if (r >= 0)
                r = json_get_string(&ctx, st, "controlPlaneEndpoint", true, &cpe);
        if (r >= 0)
                r = json_get_string(&ctx, st, "measurementSalt", true, &msalt);
        if (r >= 0)
                r = json_get_string(&ctx, st, "endpoint", true, &endpoint);
        if (r >= 0)
                r = json_get_string(&ctx, st, "diskUuid", true, &disk);
        if (r >= 0) {
                KubernetesVersion kv;
                /* Recorded since versions are recorded (docs/upgrade.md); older states lack it. */
                r = json_get_string(&ctx, st, "kubernetesVersion", false, &k8s);
                if (r == -ENOENT)
                        r = 0;
                else if (r >= 0 && kubernetes_version_parse(k8s, &kv) < 0)
                        r = diag_fail(&d, -EBADMSG, "json-schema", -1,
                                      "%s: kubernetesVersion is not v1.MINOR.PATCH", path);
        }
        if (r < 0)
                return log_error_errno(r,
                                       "This node has no usable cluster state (%s): it must be "
                                       "initialised or joined as a control plane first.",
                                       d.message);
        if (strcmp(role, "control-plane") != 0)
                return log_error_errno(-EPERM,
                                       "%s: this node is a %s; join services run on "
                                       "control planes only.",
                                       path, role);
        if (hex_decode_exact(cid, js->cluster_id, sizeof(js->cluster_id)) < 0 ||
            hex_decode_exact(msalt, js->measurement_salt, sizeof(js->measurement_salt)) < 0 ||
            strlen(cpe) >= sizeof(js->control_plane_endpoint))
                return log_error_errno(-EBADMSG,
                                       "%s: clusterId, measurementSalt or "
                                       "controlPlaneEndpoint is malformed.",
                                       path);
        (void) snprintf(js->cluster_id_hex, sizeof(js->cluster_id_hex), "%s", cid);
        (void) snprintf(js->control_plane_endpoint, sizeof(js->control_plane_endpoint), "%s", cpe);
        (void) snprintf(js->kubernetes_version, sizeof(js->kubernetes_version), "%s", k8s ?: "");
        js->node_name = strdup(node);
        js->node_endpoint = strdup(endpoint);
        js->node_disk_uuid = strdup(disk);
        if (!js->node_name || !js->node_endpoint || !js->node_disk_uuid)
                return log_oom();
        return 0;
}

/* The monitor only, after the network process was forked: the master secret is never in that
 * process's memory, not even as a freed buffer. */
static int load_master_secret(JoinService *js)
{
        _cleanup_(freep) char *mpath = NULL;
        _cleanup_(secret_freep) Secret *msecret = NULL;
        uint8_t derived[CLUSTER_ID_SIZE];
        Diag d;
        int r;

        if (asprintf(&mpath, "%s/master-secret.json", arg_state_dir) < 0)
                return log_oom();
        diag_clear(&d);
        r = master_secret_load(mpath, &js->master, &d);
        if (r < 0)
                return log_error_errno(r, "Cannot load the master secret: %s", d.message);
        /* The state must be this master secret's cluster, or every ticket would be wrong. */
        r = kdf_measurement_secret(js->master->key, js->master->salt, &msecret);
        if (r >= 0)
                r = kdf_cluster_id(msecret, js->measurement_salt, derived);
        if (r < 0)
                return log_error_errno(r, "Key derivation failed: %m");
        if (memcmp(derived, js->cluster_id, sizeof(derived)) != 0)
                return log_error_errno(-EBADMSG,
                                       "%s does not derive the cluster ID in %s/node-state.json: "
                                       "the state directory is inconsistent.",
                                       mpath, arg_state_dir);
        return 0;
}

/* The member record of this node itself, with the attestation key its evidence carries. */
static int record_self(JoinService *js, TpmDevice *tpm)
{
        static const uint8_t zero[ATTEST_BINDING_SIZE];
        _cleanup_(json_decrefp) json_t *members = NULL;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        VtpmIssueConfig cfg;
        const json_t *self;
        const char *known;
        char ak[65];
        Diag d;
        int r;

        vtpm_issue_config_defaults(&cfg);
        cfg.event_log = "";
        diag_clear(&d);
        r = attest_vtpm_issue(tpm, &cfg, zero, &e, &d);
        if (r >= 0)
                r = evidence_ak_digest(e, ak);
        if (r < 0)
                return log_error_errno(r, "Cannot read this node's attestation key: %s", d.message);
        r = members_load(js, &members);
        if (r < 0)
                return log_error_errno(r, "Cannot read the membership: %m");
        self = members_find(members, js->node_name);
        known = self ? json_string_value(json_object_get(self, "akDigest")) ?: "" : NULL;
        if (known && strcmp(known, ak) == 0)
                return 0;
        if (known && known[0])
                log_warning("join-service: this node's attestation key changed (%s, was %s): "
                            "recording the key it quotes with now",
                            ak, known);
        r = members_record(js, js->node_name, "control-plane", js->node_endpoint,
                           js->node_disk_uuid, ak);
        if (r < 0)
                return log_error_errno(r, "Cannot record this node in the membership: %m");
        return 0;
}

#ifdef CLOISTER_FAULT_INJECTION
#include <time.h>

/* Tests only (the fault build): CLOISTER_FAKE_NETWORK=PROG replaces the network process with
 * PROG, given the channels in $CLOISTER_CHANNEL_FDS, to speak to the monitor as a compromised
 * network process would. */
static void exec_fake_network(const int fds[static JOIN_CHANNELS])
{
        const char *prog = getenv("CLOISTER_FAKE_NETWORK");
        char list[JOIN_CHANNELS * 12] = "";
        size_t k = 0;

        if (!prog)
                return;
        for (size_t i = 0; i < JOIN_CHANNELS; i++) {
                (void) fcntl(fds[i], F_SETFD, 0);
                k += (size_t) snprintf(list + k, sizeof(list) - k, "%s%d", i ? "," : "", fds[i]);
        }
        (void) setenv("CLOISTER_CHANNEL_FDS", list, 1);
        (void) execl(prog, prog, (char *) NULL);
        _exit(127);
}
/* Tests only: CLOISTER_NETWORK_PROBE=FILE:SOCKET makes the network process, once confined
 * (its uid, its root) and before its seccomp filter, try to read FILE and connect to the unix
 * socket SOCKET, and print what happened: what its uid and root alone keep it from. */
static void probe_confinement(void)
{
        const char *spec = getenv("CLOISTER_NETWORK_PROBE");
        struct sockaddr_un a = { .sun_family = AF_UNIX };
        char file[256];
        const char *sock;
        int fd, r;

        if (!spec || !(sock = strchr(spec, ':')) || (size_t) (sock - spec) >= sizeof(file))
                return;
        (void) snprintf(file, sizeof(file), "%.*s", (int) (sock - spec), spec);
        sock++;
        fd = open(file, O_RDONLY | O_CLOEXEC);
        r = fd < 0 ? errno : 0;
        if (fd >= 0)
                (void) close(fd);
        printf("network probe: open %s: %s\n", file, r ? strerror(r) : "opened");
        (void) snprintf(a.sun_path, sizeof(a.sun_path), "%s", sock);
        fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        r = fd < 0 ? errno : connect(fd, (struct sockaddr *) &a, sizeof(a)) < 0 ? errno : 0;
        if (fd >= 0)
                (void) close(fd);
        printf("network probe: connect %s: %s\n", sock, r ? strerror(r) : "connected");
        fflush(stdout);
}

/* Tests only: CLOISTER_FAULT=slow-verify:MS makes each check of a client's evidence in the
 * handshake take MS milliseconds longer, before the real one and outside its locks (what a
 * slow policy fetch from the monitor or a loaded machine does): the handshake workers must
 * keep other clients going meanwhile (tests/integration/test_join_handshakes.py). */
static AtlsVerifier fault_verifier;
static unsigned long fault_verify_ms;

static int fault_slow_verify(void *userdata, const uint8_t *evidence, size_t size,
                             const uint8_t binding[static ATLS_BINDING_SIZE], Diag *d)
{
        struct timespec ts = { (time_t) (fault_verify_ms / 1000),
                               (long) (fault_verify_ms % 1000) * 1000000L };

        log_warning("fault: checking a client's evidence %lu ms late", fault_verify_ms);
        (void) nanosleep(&ts, NULL);
        return fault_verifier.verify(fault_verifier.userdata, evidence, size, binding, d);
}

static void fault_wrap_verifier(AtlsVerifier *v)
{
        const char *f = getenv("CLOISTER_FAULT");

        if (!f || strncmp(f, "slow-verify:", 12) != 0)
                return;
        fault_verify_ms = strtoul(f + 12, NULL, 10);
        fault_verifier = *v;
        v->verify = fault_slow_verify;
}
#else
static void exec_fake_network(const int fds[static JOIN_CHANNELS])
{
        (void) fds;
}

static void probe_confinement(void)
{
}

static void fault_wrap_verifier(AtlsVerifier *v)
{
        (void) v;
}
#endif

/* The network process: TLS, HTTP, JSON, the first check of evidence; no secret of the cluster.
 * Never returns. */
static __attribute__((noreturn)) void run_network(JoinService *js, pid_t monitor, int ready,
                                                  const int fds[static JOIN_CHANNELS])
{
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(rpc_server_freep) RpcServer *server = NULL;
        RpcTextServer *metrics = NULL;
        MonitorChannels channels;
        RpcServerConfig rc;
        AtlsAttester a;
        AtlsVerifier v;
        char go;
        int r;

        /* Gone with the monitor (kill -9 included): a network process alone holds nothing and
         * must not keep the port. */
        if (prctl(PR_SET_PDEATHSIG, SIGKILL) < 0 || getppid() != monitor)
                _exit(1);
        /* The monitor says when its own start-up (the master secret) succeeded. */
        if (read(fds[0], &go, 1) != 1)
                _exit(1);
        /* 'w': this node is in the mesh, and its WireGuard public key follows. */
        if (go == 'w') {
                size_t got = 0;

                while (got < MESH_KEY_SIZE) {
                        ssize_t k = read(fds[0], js->mesh_public_key + got, MESH_KEY_SIZE - got);

                        if (k <= 0)
                                _exit(1);
                        got += (size_t) k;
                }
                js->mesh_key_set = true;
        }
        exec_fake_network(fds);
        monitor_channels_init(&channels, fds);
        js->monitor = &channels;
        if (js->attest_variant == ATTEST_VARIANT_TDX ||
            js->attest_variant == ATTEST_VARIANT_SIM_TDX)
                join_tdx_network_init(js);

        /* Nothing but what it is given: no descriptor inherited from the bootstrapper or opened
         * by the monitor before the fork (a directory would name files outside the root, a file
         * could be a secret). */
        {
                int keep[JOIN_CHANNELS + 7] = {
                        0, 1, 2, ready, arg_listen_fd, journal_socket_fd(), metrics_fd
                };
                memcpy(keep + 7, fds, JOIN_CHANNELS * sizeof(int));
                r = sandbox_close_other_fds(keep, ELEMENTSOF(keep));
                if (r < 0) {
                        log_error_errno(r,
                                        "Cannot close the network process's other descriptors: %m");
                        _exit(1);
                }
        }
        /* No TPM here (the monitor quotes for it); shut in an empty root as an unprivileged
         * user with no capabilities. Capabilities are per thread: before the server starts its
         * workers. */
        r = sandbox_drop_privileges(arg_network_root, arg_network_uid, arg_network_gid);
        if (r < 0) {
                log_error_errno(r,
                                "Cannot confine the network process (root %s, uid %u, gid %u): "
                                "%m. Check --network-root and --network-user.",
                                arg_network_root, (unsigned) arg_network_uid,
                                (unsigned) arg_network_gid);
                _exit(1);
        }
        /* The death signal survived the uid change (sandbox_drop_privileges() set it again):
         * if the monitor died before that, it was not delivered. */
        if (getppid() != monitor)
                _exit(1);
        probe_confinement();
        a = join_monitor_attester(js);
        v = join_verifier(js);
        fault_wrap_verifier(&v);
        r = atls_context_new(ATLS_ROLE_SERVER, &a, &v, &atls);
        if (r >= 0)
                r = atls_context_allow_unattested_clients(atls);
        /* Its WireGuard key, for a verifier that asks (cloister verify --cluster): the monitor
         * quotes the wg binding only for the key it made. */
        if (r >= 0 && js->mesh_key_set)
                r = atls_context_set_wg_key(atls, js->mesh_public_key);
        /* The nonces clients bind their evidence to are the monitor's: it admits evidence bound
         * to one it issued, once (no replay of evidence captured on another connection). */
        if (r >= 0)
                r = atls_context_set_nonce_source(atls, join_monitor_nonce, js);
        if (r < 0) {
                log_error_errno(r, "Cannot set up aTLS: %m");
                _exit(1);
        }
        rpc_server_config_defaults(&rc);
        rc.address = arg_address;
        rc.port = arg_port;
        /* The service manager hears the monitor, the main process (NotifyAccess=main). */
        rc.notify = false;
        rc.on_refusal = join_on_refusal;
        rc.listen_fd = arg_listen_fd;
        /* Requests wait on the monitor (kubeadm, fsyncs) beside the loop, which keeps
         * handshaking. */
        rc.workers = JOIN_WORKERS;
        r = rpc_server_new(&rc, atls, join_network_routes, js, &server);
        if (r < 0) {
                log_error_errno(r, "Cannot listen on %s:%u: %m", arg_address, arg_port);
                _exit(1);
        }
        js->rpc = server; /* its counters in /metrics; set before that thread starts */
        /* /metrics: its own thread and event loop, made before the filter; each scrape is one
         * JOIN_PRIVSEP_METRICS to the monitor. */
        if (metrics_fd >= 0) {
                uint16_t port = rpc_text_socket_port(metrics_fd);

                r = rpc_text_server_new(metrics_fd, "/metrics", join_network_metrics, js, &metrics);
                if (r >= 0)
                        r = rpc_text_server_start(metrics);
                if (r < 0) {
                        log_error_errno(r, "Cannot serve /metrics: %m");
                        _exit(1);
                }
                printf("cloister-join-service: metrics on %s (port %u, loopback only, plain "
                       "HTTP)\n",
                       arg_metrics_listen, (unsigned) port);
        }
        r = sandbox_network_filter();
        if (r < 0) {
                log_error_errno(r, "Cannot install the network process's seccomp filter: %m");
                _exit(1);
        }
        printf("cloister-join-service: cluster %s, serving joins on %s:%u (network process %d, "
               "uid %u, root %s, no capabilities, seccomp)\n",
               js->cluster_id_hex, arg_address, rpc_server_port(server), (int) getpid(),
               (unsigned) arg_network_uid, arg_network_root);
        fflush(stdout);
        if (write(ready, "r", 1) != 1)
                _exit(1);
        (void) close(ready);
        r = rpc_server_run(server);
        fflush(stdout);
#if defined(__SANITIZE_ADDRESS__)
        /* LeakSanitizer's checker needs ptrace, which the filter kills: the monitor's exit is
         * the one checked. */
        _exit(r < 0 ? 1 : 0);
#endif
        metrics = rpc_text_server_free(metrics);
        server = rpc_server_free(server);
        atls = atls_context_free(atls);
        exit(r < 0 ? 1 : 0);
}

/* The monitor's main thread: signals. SIGTERM/SIGINT go on to the network process, whose exit
 * ends the service. */
static int wait_network(pid_t child, const sigset_t *set)
{
        for (;;) {
                siginfo_t si;
                int status;

                if (sigwaitinfo(set, &si) < 0) {
                        if (errno == EINTR)
                                continue;
                        return -errno;
                }
                if (si.si_signo == SIGTERM || si.si_signo == SIGINT) {
                        service_notify("STOPPING=1");
                        (void) kill(child, SIGTERM);
                        continue;
                }
                if (waitpid(child, &status, WNOHANG) != child)
                        continue;
                if (WIFEXITED(status))
                        return WEXITSTATUS(status) == 0 ? 0 : -EIO;
                log_error("join-service: the network process died of signal %d%s", WTERMSIG(status),
                          WTERMSIG(status) == SIGSYS ? " (a syscall its seccomp filter forbids)"
                                                     : "");
                return -EIO;
        }
}

typedef struct ServeArgs {
        JoinService *js;
        const int *fds;
} ServeArgs;

static void *serve_thread(void *arg)
{
        ServeArgs *a = arg;

        (void) join_monitor_serve(a->js, a->fds);
        return NULL;
}

int main(int argc, char *argv[])
{
        _cleanup_(tpm_device_closep) TpmDevice *tpm = NULL;
        _cleanup_(freep) char *policy_path = NULL, *audit_path = NULL, *tdx_cache = NULL;
        uint8_t pcrs[TPM_DEVICE_PCRS][32], expected[32];
        int pair[2], mon[JOIN_CHANNELS], net[JOIN_CHANNELS], ready[2];
        char byte;
        JoinService js = { .token_ttl_min = 15 };
        _cleanup_(node_attester_donep) NodeAttester attester = {};
        NodeAttesterConfig issue = {};
        pthread_t serving;
        ServeArgs serve_args;
        sigset_t set;
        pid_t child, self, reattest_pid = -1;
        int reattest_fd = -1;
        Diag d;
        int r;

        log_parse_environment();
        r = parse_argv(argc, argv);
        if (r <= 0)
                return exit_status_from_errno(r);
        if ((!arg_policy && asprintf(&policy_path, "%s/cluster-policy.json", arg_state_dir) < 0) ||
            (!arg_audit_log && asprintf(&audit_path, "%s/audit.log", arg_state_dir) < 0) ||
            (!arg_tdx_cache_dir && asprintf(&tdx_cache, "%s/tdx-collateral", arg_state_dir) < 0))
                return log_oom(), 1;
        join_tdx_configure(arg_tdx_cache_dir ?: tdx_cache, arg_tdx_pcs_url, arg_tdx_refresh_ahead,
                           arg_tdx_refresh_interval);
        js.state_dir = arg_state_dir;
        js.os_release = arg_os_release;
        js.kubeadm = arg_kubeadm;
        js.audit_log = arg_audit_log ?: audit_path;
        js.token_ttl_min = arg_token_ttl;
        js.policy.path = arg_policy ?: policy_path;
        js.policy.insecure_any_ak = arg_insecure_any_ak;
        join_service_init_locks(&js);

        r = load_cluster(&js);
        if (r < 0)
                goto finish;
        js.policy.cluster_id = js.cluster_id;
        diag_clear(&d);
        r = policy_holder_refresh(&js.policy, &d);
        if (r < 0) {
                log_error_errno(r, "Cannot load the cluster policy: %s", d.message);
                goto finish;
        }

        /* Joining nodes hold this node's evidence to the cluster's policy. */
        if (js.policy.policy->variant != arg_attest) {
                r = log_error_errno(-EINVAL,
                                    "The cluster policy is for %s, but this node attests with %s "
                                    "(--attest): joining nodes could not verify it. Start it "
                                    "with --attest %s.",
                                    attest_variant_to_string(js.policy.policy->variant),
                                    attest_variant_to_string(arg_attest),
                                    attest_variant_to_string(js.policy.policy->variant));
                goto finish;
        }
        js.attest_variant = arg_attest;
        r = tpm_device_open(arg_tcti, &tpm);
        if (r < 0) {
                log_error_errno(r, "Cannot open the TPM: %m. Check --tcti.");
                goto finish;
        }
        /* Joining nodes check that this node holds the cluster ID; check it first ourselves. */
        r = tpm_device_pcr_read(tpm, 1U << 15, pcrs);
        if (r < 0) {
                log_error_errno(r, "Cannot read PCR 15: %m");
                goto finish;
        }
        kdf_pcr15_expected(js.cluster_id, expected);
        if (memcmp(pcrs[15], expected, 32) != 0) {
                r = log_error_errno(-EPERM,
                                    "PCR 15 does not hold cluster %s: this node has not "
                                    "(re)joined its cluster since boot; refusing to serve "
                                    "joins.",
                                    js.cluster_id_hex);
                goto finish;
        }

        /* This node is a member too (verify --cluster attests every member), bound to its own
         * attestation key like every other member: a rejoin under its name must come from its
         * TPM. */
        r = record_self(&js, tpm);
        if (r < 0)
                goto finish;
        /* Closed before the fork: the network process never holds the TPM; the monitor opens
         * it again to quote for it. */
        tpm = tpm_device_close(tpm);
        r = sandbox_prepare_empty_root(arg_network_root);
        if (r < 0) {
                log_error_errno(r,
                                "Cannot use %s as the network process's root: %m. It must be an "
                                "empty directory owned by root that no one else can write to; "
                                "see --network-root.",
                                arg_network_root);
                goto finish;
        }

        /* Bound here, before any process is confined (a low port needs no capability later);
         * the network process serves it, the monitor closes its copy after the fork. */
        if (arg_metrics_listen) {
                r = rpc_text_listen(arg_metrics_listen, &metrics_fd);
                if (r < 0) {
                        log_error_errno(r,
                                        "Cannot listen for /metrics on %s: %m. Choose another "
                                        "port with --metrics-listen, or leave it out.",
                                        arg_metrics_listen);
                        goto finish;
                }
        }

        /* Privilege separation (docs/join.md): one channel per request in flight. */
        for (size_t i = 0; i < JOIN_CHANNELS; i++) {
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) < 0) {
                        r = log_error_errno(-errno, "Cannot create the monitor's channels: %m");
                        goto finish;
                }
                mon[i] = pair[0];
                net[i] = pair[1];
        }
        /* The network process says here when it serves. */
        if (pipe2(ready, O_CLOEXEC) < 0) {
                r = log_error_errno(-errno, "Cannot create the monitor's channels: %m");
                goto finish;
        }
        fflush(stdout);
        fflush(stderr);
        self = getpid();
        child = fork();
        if (child < 0) {
                r = log_error_errno(-errno, "Cannot fork the network process: %m");
                goto finish;
        }
        if (child == 0) {
                for (size_t i = 0; i < JOIN_CHANNELS; i++)
                        (void) close(mon[i]);
                (void) close(ready[0]);
                run_network(&js, self, ready[1], net);
        }
        for (size_t i = 0; i < JOIN_CHANNELS; i++)
                (void) close(net[i]);
        (void) close(ready[1]);
        /* The listening sockets are the network process's alone. */
        if (arg_listen_fd >= 0)
                (void) close(arg_listen_fd);
        if (metrics_fd >= 0)
                (void) close(metrics_fd);
        /* The re-attestation process too, before the master secret is loaded
         * (docs/reattestation.md). */
        r = reattest_fork(js.policy.policy->variant, arg_network_root, arg_network_uid,
                          arg_network_gid, &reattest_pid, &reattest_fd);
        if (r < 0) {
                log_error_errno(r, "Cannot fork the re-attestation process: %m");
                (void) kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                goto finish;
        }
        sigemptyset(&set);
        sigaddset(&set, SIGTERM);
        sigaddset(&set, SIGINT);
        sigaddset(&set, SIGCHLD);
        (void) pthread_sigmask(SIG_BLOCK, &set, NULL);

        r = load_master_secret(&js);
        if (r >= 0) {
                r = privsep_nonces_init(&js.nonces, JOIN_NONCES_MAX, JOIN_NONCE_TTL_SEC);
                if (r < 0)
                        log_error_errno(r, "Cannot make the monitor's nonce table: %m");
        }
        /* The etcd client (and so its certificate's key) exists in the monitor only: the
         * network process was forked before it. */
        if (r >= 0 && arg_etcd_endpoints) {
                EtcdConfig ec = { .endpoints = arg_etcd_endpoints,
                                  .cert = arg_etcd_cert,
                                  .key = arg_etcd_key,
                                  .ca = arg_etcd_ca,
                                  .total_timeout_ms = 3000,
                                  .rounds = 1 };
                r = join_etcd_start(&js, &ec);
        }
        if (r >= 0) {
                r = tpm_device_open(arg_tcti, &tpm);
                if (r < 0)
                        log_error_errno(r, "Cannot open the TPM again: %m. Check --tcti.");
        }
        if (r < 0) {
                (void) kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                (void) kill(reattest_pid, SIGKILL);
                (void) waitpid(reattest_pid, NULL, 0);
                goto finish;
        }
        issue = (NodeAttesterConfig){ .variant = arg_attest,
                                      .tpm = tpm,
                                      .sim_tdx_root = arg_sim_tdx_root,
                                      .sim_tdx_no_collateral = arg_sim_tdx_no_collateral };
        vtpm_issue_config_defaults(&issue.vtpm);
        issue.vtpm.event_log = arg_event_log;
        diag_clear(&d);
        r = node_attester_init(&attester, &issue, &d);
        if (r < 0) {
                log_error_errno(r, "Cannot attest with %s: %s.",
                                attest_variant_to_string(arg_attest), d.message);
                (void) kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                goto finish;
        }
        js.attester = &attester;
        /* The audit log's head, signed with this TPM's attestation key before anything is
         * served (docs/audit-log.md, "Signed checkpoints"). */
        (void) join_checkpoint_start(&js, arg_checkpoint_interval);
        log_info("join-service: monitor %d holds the secrets; network process %d serves",
                 (int) getpid(), (int) child);
        /* TDX clusters only (the policy's variant is the node's, checked above). */
        if (arg_attest == ATTEST_VARIANT_TDX || arg_attest == ATTEST_VARIANT_SIM_TDX)
                join_tdx_monitor_init();
        serve_args = (ServeArgs){ .js = &js, .fds = mon };
        if (pthread_create(&serving, NULL, serve_thread, &serve_args) != 0) {
                r = log_error_errno(-EAGAIN, "Cannot start the monitor's threads.");
                (void) kill(child, SIGKILL);
                (void) waitpid(child, NULL, 0);
                goto finish;
        }
        /* Before the first request: a rejoin is decided with the cordons an earlier run left
         * (restored here). */
        if (reattest_start(&js, reattest_pid, reattest_fd) < 0)
                log_error("join-service: cannot start re-attestation: members are not attested "
                          "again");
        /* This node in the mesh (docs/mesh.md): the key pair made now, after the fork, so the
         * network process never holds its private half; it is told the public half ('w' and
         * the 32 bytes), which it puts in its certificate for a verifier that asks. */
        if (arg_mesh >= 0 && js.etcd)
                log_warning("--mesh: this join service keeps its membership in etcd, where the "
                            "mesh's keys are not kept yet (docs/mesh.md): this node does not join "
                            "the mesh, and its traffic to the mesh range stays closed");
        else if (arg_mesh >= 0 && join_mesh_start(&js, arg_mesh, arg_mesh_interval) < 0)
                log_error("--mesh: this node does NOT join the mesh (see above); its traffic to "
                          "the mesh range stays closed");
        {
                uint8_t go[1 + MESH_KEY_SIZE] = { 'g' };
                size_t n = 1;

                if (js.mesh_key_set) {
                        go[0] = 'w';
                        memcpy(go + 1, js.mesh_public_key, MESH_KEY_SIZE);
                        n += MESH_KEY_SIZE;
                }
                if (write(mon[0], go, n) != (ssize_t) n)
                        log_error("join-service: cannot start the network process: %m");
        }
        /* Ready once the network process serves (nothing comes if it failed: its exit is
         * reaped below). */
        if (read(ready[0], &byte, 1) == 1)
                service_notify("READY=1");
        (void) close(ready[0]);
        r = wait_network(child, &set);
        reattest_stop(&js);
        /* Its channels are closed now: the monitor's threads end. */
        (void) pthread_join(serving, NULL);
        /* After them: a mesh request still being answered wakes the mesh thread. */
        join_mesh_stop(&js);
        join_checkpoint_stop(&js);
        join_tdx_monitor_done();
        node_attester_done(&attester);
finish:
        privsep_nonces_done(&js.nonces);
        join_service_done(&js);
        master_secret_free(js.master);
        free((char *) js.node_name);
        free((char *) js.node_endpoint);
        free((char *) js.node_disk_uuid);
        return r < 0 ? 1 : 0;
}
