/* SPDX-License-Identifier: Apache-2.0 */
#include <arpa/inet.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cloister/attest-atls.h"
#include "cloister/etcd.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/luks.h"
#include "cloister/metadata.h"
#include "cloister/node-attester.h"
#include "cloister/notify.h"
#include "cloister/rpc-text.h"
#include "cloister/rpc.h"
#include "cloister/tpm-device.h"
#include "cloister/verbs.h"
#include "cloister/version.h"

#include "bootstrapper.h"

static const char *arg_tcti, *arg_address = "127.0.0.1", *arg_state_disk, *arg_first_boot_key,
                             *arg_state_dir, *arg_kubeadm = "kubeadm", *arg_event_log = "";
static uint16_t arg_port = 9000;
static const char *arg_metadata, *arg_metadata_url, *arg_dmi_dir;
/* The provider --metadata named or SMBIOS gave (auto); --state-disk auto looks for its disk. */
static MetadataProvider metadata_provider = _METADATA_PROVIDER_INVALID;
static char state_disk_found[PATH_MAX];
static unsigned arg_metadata_timeout = 30;
/* --state-disk auto: the disk mapper ran before and waited for the disk; this is a margin. */
#define STATE_DISK_WAIT_MS (60U * 1000U)
static const char *arg_advertise_address;
static bool arg_print_metadata, arg_insecure_no_init_secret, arg_insecure_any_ak;
static const char *arg_join_policy, *arg_join_service;
static unsigned arg_join_timeout = 600, arg_failed_join_linger;
static MeshBackend arg_mesh = _MESH_BACKEND_INVALID; /* invalid: no mesh */
static unsigned arg_mesh_interval = 10;
static const char *arg_state_mount, *arg_state_bind, *arg_disk_mapper;
static const char *arg_os_release = OS_RELEASE_DEFAULT;
static AttestVariant arg_attest = ATTEST_VARIANT_QEMU_VTPM;
static const char *arg_sim_tdx_root;
static bool arg_sim_tdx_no_collateral;
static const char *arg_tdx_cache_dir, *arg_tdx_pcs_url;
static AttestTdxPcsSource tdx_collateral;
/* The node's side of re-attestation (bootstrapper-fail-closed.c); off by default. */
static unsigned arg_fail_closed_after, arg_join_service_attest_interval;
/* Handed to the join service a control plane becomes (its --metrics-listen). */
static const char *arg_metrics_listen;
/* --etcd-membership: the join service keeps the membership in the cluster's etcd, with a client
 * certificate from kubeadm's etcd CA (docs/membership.md, "In the node image"). */
static bool arg_etcd_membership;
static const char *arg_kubernetes_pki = "/etc/kubernetes/pki";
static const char *arg_etcd_local_endpoint = "https://127.0.0.1:2379";

static void help(void)
{
        printf("Usage: cloister-bootstrapper [OPTIONS]\n\n"
               "Serves the first node's init endpoint over attested TLS (the node attests with "
               "its\n"
               "TPM; the CLI verifies it before sending the cluster's secrets), then derives the\n"
               "cluster ID, extends it into PCR 15, re-keys the state disk and runs kubeadm.\n\n"
               "  --tcti CONF              TPM (default $CLOISTER_TPM_TCTI or device:/dev/tpmrm0)\n"
               "  --listen ADDR:PORT       default 127.0.0.1:9000 (port 0: any free port)\n"
               "  --state-disk PATH|auto   the LUKS2 state disk (required); auto: the disk the\n"
               "                           Terraform module attaches, by its stable name in the\n"
               "                           provider --metadata names or SMBIOS shows (GCP\n"
               "                           device name state-disk, Azure LUN 0, AWS /dev/sdb,\n"
               "                           QEMU the partition cloister-state; docs/cloud.md)"
               "\n"
               "  --first-boot-key PATH    key file of its first-boot keyslot (required)\n"
               "  --state-dir DIR          node state, kubeadm config and admin.conf (required)\n"
               "  --state-mount DIR        the state dir lives on the state disk, which the disk\n"
               "                           mapper mounts on DIR: while DIR is not mounted and the\n"
               "                           disk is initialized, the disk is locked, and the node\n"
               "                           rejoins (peers) or serves recovery; once the key is\n"
               "                           released it runs the disk mapper's setup with it\n"
               "  --state-bind PATH,...    with --state-mount: the paths bound from DIR (as the\n"
               "                           disk mapper's --bind)\n"
               "  --disk-mapper PATH       cloister-disk-mapper (default: next to this binary)\n"
               "  --kubeadm PATH           kubeadm binary (default: kubeadm in $PATH)\n"
               "  --event-log PATH         boot event log to include in evidence (default: none)\n"
               "  --attest VARIANT         the evidence this node presents: qemu-vtpm (default),\n"
               "                           tdx (a TDX guest: configfs-tsm) or sim-tdx (SIMULATED:\n"
               "                           tests and local clusters, needs --sim-tdx-root); with\n"
               "                           tdx and sim-tdx the TPM's quote rides along as the\n"
               "                           node's identity (docs/join.md)\n"
               "  --sim-tdx-root FILE      sim-tdx: the simulated platform's root certificate and\n"
               "                           key ('cloister attestation sim-tdx-root')\n"
               "  --sim-tdx-no-collateral  sim-tdx: the evidence carries no collateral, as a real\n"
               "                           TD's: verifiers take it from their cache\n"
               "  --tdx-cache-dir DIR      TDX collateral (Intel PCS/PCCS downloads) for a join\n"
               "                           service's tdx evidence, which carries none: taken\n"
               "                           from DIR while valid, else fetched and cached there\n"
               "                           (default STATE-DIR/tdx-collateral; the join service\n"
               "                           this node becomes uses the same)\n"
               "  --tdx-pcs-url URL        where it is fetched: a URL ending in\n"
               "                           /tdx/certification/v4 (default Intel PCS; a PCCS\n"
               "                           serves the same paths)\n"
               "  --metadata PROVIDER      where the node learns its name, role, peers and the\n"
               "                           init-secret hash: gcp, azure, aws, qemu (fw_cfg),\n"
               "                           local:FILE, or auto: the provider SMBIOS names\n"
               "                           (" METADATA_DMI_DIR "; unknown hardware is\n"
               "                           refused, naming what it read)\n"
               "  --dmi-dir DIR            where auto reads SMBIOS (tests; default\n"
               "                           " METADATA_DMI_DIR ")\n"
               "  --metadata-url URL       the provider's base URL (tests; default: the cloud's);\n"
               "                           qemu: a file path or file:// URL instead of\n"
               "                           " METADATA_QEMU_FW_CFG "\n"
               "  --metadata-timeout SEC   how long to retry an unreachable service, or to wait\n"
               "                           for qemu's fw_cfg file to appear (default 30)\n"
               "  --advertise-address IP   the API server's address on this node (default: the\n"
               "                           --listen address unless that is a wildcard)\n"
               "  --print-metadata         fetch the metadata, print it as JSON and exit\n"
               "  --join-policy FILE       joining nodes (metadata with peers): the variant and "
               "AK\n"
               "                           trust join services are held to; the image PCRs are\n"
               "                           this node's own, PCR 15 the metadata's cluster ID\n"
               "  --join-timeout SEC       how long to keep asking join services (default 600)\n"
               "  --failed-join-linger SEC after a join (or rejoin) gave up: keep serving\n"
               "                           GET /v1/node (state join-failed) and POST /v1/log for\n"
               "                           SEC s before exiting, so the owner can fetch why\n"
               "                           ('cloister logs'; default 0: exit at once)\n"
               "  --join-service PATH      control planes: the join service this process becomes\n"
               "                           after init or join (default: next to this binary)\n"
               "  --metrics-listen ADDR:PORT\n"
               "                           control planes: the join service's GET /metrics on\n"
               "                           this LOOPBACK address (its --metrics-listen; off by\n"
               "                           default)\n"
               "  --etcd-membership        control planes: the join service keeps the cluster's\n"
               "                           membership in etcd (its --etcd-*), with a client\n"
               "                           certificate issued from kubeadm's etcd CA; default:\n"
               "                           local files (docs/membership.md)\n"
               "  --kubernetes-pki DIR     with --etcd-membership: kubeadm's certificatesDir\n"
               "                           (default /etc/kubernetes/pki; its etcd CA in etcd/)\n"
               "  --etcd-local-endpoint URL\n"
               "                           with --etcd-membership: this control plane's etcd\n"
               "                           member (default https://127.0.0.1:2379)\n"
               "  --fail-closed-after SEC  members with peers: attest the join services again\n"
               "                           and again; when none has passed for more than SEC s,\n"
               "                           stop serving POST /v1/log (anything beyond the\n"
               "                           node's evidence) until one passes; GET /v1/node\n"
               "                           says so. A trade-off: a control plane that is only\n"
               "                           down closes it too (docs/reattestation.md). Default\n"
               "                           0: off\n"
               "  --join-service-attest-interval SEC\n"
               "                           with --fail-closed-after: how often (default a third\n"
               "                           of --fail-closed-after, at most 60)\n"
               "  --os-release FILE        where the image build recorded the node's image and\n"
               "                           Kubernetes versions, which GET /v1/node reports\n"
               "                           (default " OS_RELEASE_DEFAULT ")\n"
               "  --mesh kernel|userspace  once a worker is a member: fetch the WireGuard mesh of\n"
               "                           attested members from its join services and apply it\n"
               "                           to the cloister0 device, made by the kernel's module\n"
               "                           or by wireguard-go; a control plane passes it to its\n"
               "                           join service, which makes the key and registers this\n"
               "                           node itself (docs/mesh.md; default: no mesh)\n"
               "  --mesh-interval SEC      how often the mesh is fetched (applied) again\n"
               "                           (default 10)\n"
               "  --insecure-no-init-secret\n"
               "                           INSECURE: serve init to anyone who reaches this node\n"
               "                           first when the metadata has no init-secret hash\n"
               "  --insecure-allow-any-ak  INSECURE, throw-away tests only: accept a join policy\n"
               "                           or an owner's cluster policy with akTrust insecure-any\n"
               "                           (any TPM is trusted); refused without it\n"
               "\nInit is refused unless the request carries the init secret whose scrypt hash\n"
               "the metadata holds. A node whose metadata lists peers joins through their join\n"
               "services instead (mutual attestation); with an initialised state disk it rejoins\n"
               "(disk key only), or, as a control plane without peers, serves recovery for\n"
               "'cloister recover'. See docs/join.md.\n"
               "\nKeys never go on a command line: the disk mapper gets the state disk's key on\n"
               "its standard input.\n"
               "\nExit status: 0 success, 1 failure (one error line says why), 2 usage error\n"
               "(an unknown option, a missing argument, a malformed value).\n");
}

static int parse_argv(int argc, char *argv[])
{
        enum {
                ARG_TCTI = 0x100,
                ARG_LISTEN,
                ARG_DISK,
                ARG_KEY,
                ARG_DIR,
                ARG_KUBEADM,
                ARG_LOG,
                ARG_METADATA,
                ARG_METADATA_URL,
                ARG_PRINT_METADATA,
                ARG_INSECURE_NO_INIT_SECRET,
                ARG_INSECURE_ANY_AK,
                ARG_METADATA_TIMEOUT,
                ARG_ADVERTISE,
                ARG_JOIN_POLICY,
                ARG_JOIN_TIMEOUT,
                ARG_JOIN_SERVICE,
                ARG_STATE_MOUNT,
                ARG_STATE_BIND,
                ARG_DISK_MAPPER,
                ARG_OS_RELEASE,
                ARG_FAILED_JOIN_LINGER,
                ARG_MESH,
                ARG_MESH_INTERVAL,
                ARG_ATTEST,
                ARG_SIM_TDX_ROOT,
                ARG_SIM_TDX_NO_COLLATERAL,
                ARG_TDX_CACHE_DIR,
                ARG_TDX_PCS_URL,
                ARG_FAIL_CLOSED_AFTER,
                ARG_JOIN_SERVICE_ATTEST_INTERVAL,
                ARG_METRICS_LISTEN,
                ARG_DMI_DIR,
                ARG_ETCD_MEMBERSHIP,
                ARG_KUBERNETES_PKI,
                ARG_ETCD_LOCAL_ENDPOINT,
        };
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "version", no_argument, NULL, 'V' },
                { "tcti", required_argument, NULL, ARG_TCTI },
                { "listen", required_argument, NULL, ARG_LISTEN },
                { "state-disk", required_argument, NULL, ARG_DISK },
                { "first-boot-key", required_argument, NULL, ARG_KEY },
                { "state-dir", required_argument, NULL, ARG_DIR },
                { "kubeadm", required_argument, NULL, ARG_KUBEADM },
                { "event-log", required_argument, NULL, ARG_LOG },
                { "metadata", required_argument, NULL, ARG_METADATA },
                { "metadata-url", required_argument, NULL, ARG_METADATA_URL },
                { "print-metadata", no_argument, NULL, ARG_PRINT_METADATA },
                { "metadata-timeout", required_argument, NULL, ARG_METADATA_TIMEOUT },
                { "advertise-address", required_argument, NULL, ARG_ADVERTISE },
                { "insecure-no-init-secret", no_argument, NULL, ARG_INSECURE_NO_INIT_SECRET },
                { "insecure-allow-any-ak", no_argument, NULL, ARG_INSECURE_ANY_AK },
                { "join-policy", required_argument, NULL, ARG_JOIN_POLICY },
                { "join-timeout", required_argument, NULL, ARG_JOIN_TIMEOUT },
                { "join-service", required_argument, NULL, ARG_JOIN_SERVICE },
                { "state-mount", required_argument, NULL, ARG_STATE_MOUNT },
                { "state-bind", required_argument, NULL, ARG_STATE_BIND },
                { "disk-mapper", required_argument, NULL, ARG_DISK_MAPPER },
                { "os-release", required_argument, NULL, ARG_OS_RELEASE },
                { "failed-join-linger", required_argument, NULL, ARG_FAILED_JOIN_LINGER },
                { "mesh", required_argument, NULL, ARG_MESH },
                { "mesh-interval", required_argument, NULL, ARG_MESH_INTERVAL },
                { "attest", required_argument, NULL, ARG_ATTEST },
                { "sim-tdx-root", required_argument, NULL, ARG_SIM_TDX_ROOT },
                { "sim-tdx-no-collateral", no_argument, NULL, ARG_SIM_TDX_NO_COLLATERAL },
                { "tdx-cache-dir", required_argument, NULL, ARG_TDX_CACHE_DIR },
                { "tdx-pcs-url", required_argument, NULL, ARG_TDX_PCS_URL },
                { "fail-closed-after", required_argument, NULL, ARG_FAIL_CLOSED_AFTER },
                { "join-service-attest-interval", required_argument, NULL,
                  ARG_JOIN_SERVICE_ATTEST_INTERVAL },
                { "metrics-listen", required_argument, NULL, ARG_METRICS_LISTEN },
                { "dmi-dir", required_argument, NULL, ARG_DMI_DIR },
                { "etcd-membership", no_argument, NULL, ARG_ETCD_MEMBERSHIP },
                { "kubernetes-pki", required_argument, NULL, ARG_KUBERNETES_PKI },
                { "etcd-local-endpoint", required_argument, NULL, ARG_ETCD_LOCAL_ENDPOINT },
                {},
        };
        char *end;
        unsigned long port;
        int c;

        while ((c = getopt_long(argc, argv, "h", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        help();
                        return 0;
                case 'V':
                        printf("cloister-bootstrapper %s\n", CLOISTER_VERSION);
                        return 0;
                case ARG_TCTI:
                        arg_tcti = optarg;
                        break;
                case ARG_LISTEN:
                        if (parse_listen_address(optarg, &arg_address, &arg_port) < 0)
                                return log_error_errno(-EUSAGE,
                                                       "--listen '%s': use ADDR:PORT (port "
                                                       "0..65535).",
                                                       optarg);
                        break;
                case ARG_DISK:
                        arg_state_disk = optarg;
                        break;
                case ARG_KEY:
                        arg_first_boot_key = optarg;
                        break;
                case ARG_DIR:
                        arg_state_dir = optarg;
                        break;
                case ARG_KUBEADM:
                        arg_kubeadm = optarg;
                        break;
                case ARG_LOG:
                        arg_event_log = optarg;
                        break;
                case ARG_METADATA:
                        arg_metadata = optarg;
                        break;
                case ARG_METADATA_URL:
                        arg_metadata_url = optarg;
                        break;
                case ARG_DMI_DIR:
                        arg_dmi_dir = optarg;
                        break;
                case ARG_PRINT_METADATA:
                        arg_print_metadata = true;
                        break;
                case ARG_ADVERTISE:
                        arg_advertise_address = optarg;
                        break;
                case ARG_METADATA_TIMEOUT:
                        port = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || port == 0 || port > 600)
                                return log_error_errno(-EUSAGE,
                                                       "--metadata-timeout: 1..600 seconds.");
                        arg_metadata_timeout = (unsigned) port;
                        break;
                case ARG_INSECURE_NO_INIT_SECRET:
                        arg_insecure_no_init_secret = true;
                        break;
                case ARG_INSECURE_ANY_AK:
                        arg_insecure_any_ak = true;
                        break;
                case ARG_JOIN_POLICY:
                        arg_join_policy = optarg;
                        break;
                case ARG_JOIN_TIMEOUT:
                        port = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || port == 0 || port > 86400)
                                return log_error_errno(-EUSAGE, "--join-timeout: 1..86400 s.");
                        arg_join_timeout = (unsigned) port;
                        break;
                case ARG_JOIN_SERVICE:
                        arg_join_service = optarg;
                        break;
                case ARG_FAIL_CLOSED_AFTER:
                case ARG_JOIN_SERVICE_ATTEST_INTERVAL:
                        errno = 0;
                        port = strtoul(optarg, &end, 10);
                        if (errno != 0 || *end || end == optarg || optarg[0] == '-' ||
                            port > 7UL * 86400 ||
                            (c == ARG_JOIN_SERVICE_ATTEST_INTERVAL && port == 0))
                                return log_error_errno(-EUSAGE, "--%s: %s..604800 seconds.",
                                                       c == ARG_FAIL_CLOSED_AFTER
                                                               ? "fail-closed-after"
                                                               : "join-service-attest-interval",
                                                       c == ARG_FAIL_CLOSED_AFTER ? "0" : "1");
                        if (c == ARG_FAIL_CLOSED_AFTER)
                                arg_fail_closed_after = (unsigned) port;
                        else
                                arg_join_service_attest_interval = (unsigned) port;
                        break;
                case ARG_METRICS_LISTEN: {
                        const char *colon = strrchr(optarg, ':');
                        char host[64] = "";

                        if (colon && (size_t) (colon - optarg) < sizeof(host))
                                memcpy(host, optarg, (size_t) (colon - optarg));
                        /* Said now, not when the join service starts after the join. */
                        if (!colon || !rpc_address_is_loopback(host))
                                return log_error_errno(-EUSAGE,
                                                       "--metrics-listen '%s': REFUSED, not a "
                                                       "loopback address (127.0.0.1:PORT or "
                                                       "[::1]:PORT): /metrics is plain, "
                                                       "unauthenticated HTTP.",
                                                       optarg);
                        arg_metrics_listen = optarg;
                        break;
                }
                case ARG_ETCD_MEMBERSHIP:
                        arg_etcd_membership = true;
                        break;
                case ARG_KUBERNETES_PKI:
                        if (optarg[0] != '/')
                                return log_error_errno(-EUSAGE,
                                                       "--kubernetes-pki: an absolute path "
                                                       "(kubeadm's certificatesDir).");
                        arg_kubernetes_pki = optarg;
                        break;
                case ARG_ETCD_LOCAL_ENDPOINT:
                        if (strncmp(optarg, "https://", 8) != 0 || strchr(optarg, ','))
                                return log_error_errno(-EUSAGE,
                                                       "--etcd-local-endpoint '%s': one "
                                                       "https://HOST:PORT (etcd is reached with "
                                                       "mutual TLS only).",
                                                       optarg);
                        arg_etcd_local_endpoint = optarg;
                        break;
                case ARG_FAILED_JOIN_LINGER:
                        port = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || port > 86400)
                                return log_error_errno(-EUSAGE,
                                                       "--failed-join-linger: 0..86400 s.");
                        arg_failed_join_linger = (unsigned) port;
                        break;
                case ARG_STATE_MOUNT:
                        if (optarg[0] != '/')
                                return log_error_errno(-EUSAGE, "--state-mount: an absolute path.");
                        arg_state_mount = optarg;
                        break;
                case ARG_STATE_BIND:
                        if (!*optarg)
                                return log_error_errno(-EUSAGE,
                                                       "--state-bind: a comma-separated list of "
                                                       "absolute paths.");
                        arg_state_bind = optarg;
                        break;
                case ARG_DISK_MAPPER:
                        arg_disk_mapper = optarg;
                        break;
                case ARG_OS_RELEASE:
                        arg_os_release = optarg;
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
                case ARG_MESH:
                        arg_mesh = mesh_backend_from_string(optarg);
                        if (arg_mesh < 0)
                                return log_error_errno(
                                        -EUSAGE, "--mesh '%s': use kernel or userspace.", optarg);
                        break;
                case ARG_MESH_INTERVAL:
                        port = strtoul(optarg, &end, 10);
                        if (*end || end == optarg || port == 0 || port > 3600)
                                return log_error_errno(-EUSAGE, "--mesh-interval: 1..3600 s.");
                        arg_mesh_interval = (unsigned) port;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (arg_print_metadata && !arg_metadata)
                return log_error_errno(-EUSAGE, "--print-metadata needs --metadata.");
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
        if (arg_state_bind && !arg_state_mount)
                return log_error_errno(-EUSAGE, "--state-bind needs --state-mount.");
        if (!arg_print_metadata && (!arg_state_disk || !arg_first_boot_key || !arg_state_dir))
                return log_error_errno(-EUSAGE, "--state-disk, --first-boot-key and --state-dir "
                                                "are required. See --help.");
        if (arg_join_service_attest_interval && !arg_fail_closed_after)
                return log_error_errno(-EUSAGE, "--join-service-attest-interval goes with "
                                                "--fail-closed-after.");
        /* At least three attempts within the grace period. */
        if (arg_fail_closed_after && !arg_join_service_attest_interval)
                arg_join_service_attest_interval = MIN(60U, MAX(1U, arg_fail_closed_after / 3));
        return 1;
}

/* The provider SMBIOS names (--metadata auto, --state-disk auto). */
static int detect_provider(MetadataProvider *ret)
{
        Diag d;
        int r;

        diag_clear(&d);
        r = metadata_provider_detect(arg_dmi_dir, ret, &d);
        if (r < 0)
                return log_error_errno(r,
                                       "Cannot tell which cloud this node runs in: %s. Pass "
                                       "--metadata gcp|azure|aws|qemu|local:FILE instead of "
                                       "auto (and --state-disk PATH).",
                                       d.message);
        log_info("metadata: SMBIOS says this node runs in %s", metadata_provider_to_string(*ret));
        return 0;
}

static int load_metadata(NodeMetadata *ret)
{
        const char *colon = strchr(arg_metadata, ':'), *source = arg_metadata_url;
        char name[16];
        MetadataProvider p;
        Diag d;
        int r;

        (void) snprintf(name, sizeof(name), "%.*s",
                        (int) (colon ? (size_t) (colon - arg_metadata) : strlen(arg_metadata)),
                        arg_metadata);
        if (strcmp(arg_metadata, "auto") == 0) {
                r = detect_provider(&p);
                if (r < 0)
                        return r;
                (void) snprintf(name, sizeof(name), "%s", metadata_provider_to_string(p));
        } else
                p = metadata_provider_from_string(name);
        if (p < 0)
                return log_error_errno(-EUSAGE,
                                       "--metadata '%s': use gcp, azure, aws, qemu or "
                                       "local:FILE, or auto (the provider SMBIOS names).",
                                       arg_metadata);
        if (p == METADATA_LOCAL) {
                if (!colon || !colon[1])
                        return log_error_errno(-EUSAGE, "--metadata local needs a file: "
                                                        "local:FILE.");
                source = colon + 1;
        }
        metadata_provider = p;
        diag_clear(&d);
        r = metadata_fetch(p, source, arg_metadata_timeout * 1000, ret, &d);
        if (r < 0)
                return log_error_errno(r, "Cannot read the node's %s metadata: %s", name,
                                       d.message);
        return 0;
}

/* --state-disk auto: the disk of the provider --metadata chose, else of the one SMBIOS names. */
static int find_state_disk(void)
{
        MetadataProvider p = metadata_provider;
        Diag d;
        int r;

        if (p < 0 || p == METADATA_LOCAL) {
                r = detect_provider(&p);
                if (r < 0)
                        return r;
        }
        diag_clear(&d);
        r = metadata_state_disk_find(p, NULL, STATE_DISK_WAIT_MS, state_disk_found,
                                     sizeof(state_disk_found), &d);
        if (r < 0)
                return log_error_errno(r,
                                       "Cannot find the state disk: %s. Else pass --state-disk "
                                       "PATH instead of auto.",
                                       d.message);
        log_info("state disk: %s (the %s state disk)", state_disk_found,
                 metadata_provider_to_string(p));
        arg_state_disk = state_disk_found;
        return 0;
}

static int print_metadata(const NodeMetadata *m)
{
        _cleanup_(json_decrefp) json_t *peers = json_array(), *o = NULL;
        _cleanup_(freep) char *text = NULL;

        for (size_t i = 0; peers && i < m->n_peers; i++)
                (void) json_array_append_new(peers, json_string(m->peers[i]));
        o = json_pack("{s:s,s:s,s:s,s:O,s:s}", "name", m->name, "role",
                      node_role_to_string(m->role), "endpoint", m->endpoint, "peers", peers,
                      "initSecretHash", m->init_secret_hash);
        if (!o || json_dump_pretty(o, &text) < 0)
                return log_oom();
        printf("%s\n", text);
        return 0;
}

/* A program of ours next to this binary: buf gets <dir of /proc/self/exe>/name. */
static const char *next_to_self(const char *name, char *buf, size_t size)
{
        char self[PATH_MAX];
        ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
        char *slash;

        self[n > 0 ? n : 0] = '\0';
        slash = strrchr(self, '/');
        if (slash)
                *slash = '\0';
        (void) snprintf(buf, size, "%s/%s", self, name);
        return buf;
}

/* A control plane's bootstrapper is done once the node is a member: the join service takes
 * its place (same process, so a service manager sees one service; it alone uses the TPM). */
static int exec_join_service(Bootstrapper *b, NodeAttester *attester, TpmDevice **tpm,
                             int listen_fd)
{
        char listen[300], fd[16];
        bool with_fd = listen_fd >= 0;
        BootstrapperEtcdClient etcd = {};
        char etcd_endpoints[ETCD_ENDPOINTS_MAX * 128];
        char mesh_interval[16];

        (void) snprintf(listen, sizeof(listen), strchr(arg_address, ':') ? "[%s]:%u" : "%s:%u",
                        arg_address, arg_port);
        (void) snprintf(fd, sizeof(fd), "%d", listen_fd);
        (void) snprintf(mesh_interval, sizeof(mesh_interval), "%u", arg_mesh_interval);
        char *argv[48];
        size_t n = 0;

        argv[n++] = (char *) b->join_service;
        argv[n++] = (char *) "--tcti";
        argv[n++] = (char *) (arg_tcti ?: getenv("CLOISTER_TPM_TCTI") ?: TPM_DEVICE_TCTI_DEFAULT);
        argv[n++] = (char *) "--listen";
        argv[n++] = listen;
        argv[n++] = (char *) "--state-dir";
        argv[n++] = (char *) b->state_dir;
        argv[n++] = (char *) "--kubeadm";
        argv[n++] = (char *) b->kubeadm;
        argv[n++] = (char *) "--event-log";
        argv[n++] = (char *) arg_event_log;
        argv[n++] = (char *) "--os-release";
        argv[n++] = (char *) arg_os_release;
        if (with_fd) {
                argv[n++] = (char *) "--listen-fd";
                argv[n++] = fd;
        }
        if (b->insecure_any_ak)
                argv[n++] = (char *) "--insecure-allow-any-ak";
        /* The join service presents the same evidence as this node. */
        argv[n++] = (char *) "--attest";
        argv[n++] = (char *) attest_variant_to_string(arg_attest);
        if (arg_sim_tdx_root) {
                argv[n++] = (char *) "--sim-tdx-root";
                argv[n++] = (char *) arg_sim_tdx_root;
        }
        if (arg_sim_tdx_no_collateral)
                argv[n++] = (char *) "--sim-tdx-no-collateral";
        /* One collateral cache per node: what the bootstrapper fetched serves joins too. */
        argv[n++] = (char *) "--tdx-cache-dir";
        argv[n++] = (char *) tdx_collateral.pcs.cache_dir;
        if (arg_tdx_pcs_url) {
                argv[n++] = (char *) "--tdx-pcs-url";
                argv[n++] = (char *) arg_tdx_pcs_url;
        }
        if (arg_metrics_listen) {
                argv[n++] = (char *) "--metrics-listen";
                argv[n++] = (char *) arg_metrics_listen;
        }
        /* This node in the mesh: its join service makes its key and registers it. */
        if (arg_mesh >= 0) {
                argv[n++] = (char *) "--mesh";
                argv[n++] = (char *) mesh_backend_to_string(arg_mesh);
                argv[n++] = (char *) "--mesh-interval";
                argv[n++] = mesh_interval;
        }
        if (b->kubernetes_pki) {
                /* A fresh client certificate from kubeadm's etcd CA at every hand-over (init,
                 * a control plane's join, a rejoin, a recovery): without it no join service. */
                if (bootstrapper_etcd_client_issue(b->kubernetes_pki, b->state_dir, &etcd) < 0)
                        return log_error_errno(-EIO,
                                               "The join service is not started: it keeps the "
                                               "membership in etcd (--etcd-membership) and has "
                                               "no etcd client certificate (see above)."),
                               1;
                if (bootstrapper_etcd_endpoints(b, &etcd, arg_etcd_local_endpoint, etcd_endpoints,
                                                sizeof(etcd_endpoints)) < 0)
                        return 1;
                argv[n++] = (char *) "--etcd-endpoints";
                argv[n++] = etcd_endpoints;
                argv[n++] = (char *) "--etcd-cert";
                argv[n++] = etcd.cert;
                argv[n++] = (char *) "--etcd-key";
                argv[n++] = etcd.key;
                argv[n++] = (char *) "--etcd-ca";
                argv[n++] = etcd.ca;
        }
        argv[n] = NULL;
        node_attester_done(attester);
        *tpm = tpm_device_close(*tpm);
        log_info("bootstrapper: this node is a control plane of its cluster now; handing over to "
                 "%s",
                 b->join_service);
        fflush(stdout);
        fflush(stderr);
        execv(argv[0], argv);
        return log_error_errno(-errno, "Cannot start the join service %s: %m", argv[0]), 1;
}

typedef struct ServeThread {
        RpcServer *server;
        int r;
        bool done;
} ServeThread;

static void *serve_thread(void *arg)
{
        ServeThread *t = arg;

        t->r = rpc_server_run(t->server);
        __atomic_store_n(&t->done, true, __ATOMIC_RELEASE);
        return NULL;
}

/* A join that gave up: the node keeps answering GET /v1/node ("join-failed") and POST /v1/log
 * (the owner's 'cloister logs') for --failed-join-linger seconds, or until SIGTERM ends the
 * server loop; then the caller stops the server and exits with the failure. */
static void linger_after_failed_join(Bootstrapper *b, ServeThread *st)
{
        struct timespec tick = { .tv_nsec = 200 * 1000 * 1000 };
        time_t deadline = time(NULL) + (time_t) arg_failed_join_linger;

        __atomic_store_n(&b->join_failed, true, __ATOMIC_RELEASE);
        log_error("bootstrapper: the join failed (see above). Serving this node's state and, to "
                  "the owner only, its log for %u s: run 'cloister logs --node %s' in the "
                  "cluster's workspace.",
                  arg_failed_join_linger, b->endpoint ?: "HOST");
        printf("cloister-bootstrapper: join failed; serving node state and log on %s\n",
               b->endpoint ?: "?");
        fflush(stdout);
        while (!__atomic_load_n(&st->done, __ATOMIC_ACQUIRE) && time(NULL) < deadline)
                (void) nanosleep(&tick, NULL);
}

/* The node's WireGuard key is wiped on every way out of main(), a failed join's included. */
static void mesh_key_donep(MeshKey **k)
{
        if (*k)
                mesh_key_done(*k);
}

int main(int argc, char *argv[])
{
        /* Every mode answers both POSTs: the one its state does not allow is refused with
         * the state in words (bootstrapper_handle_wrong_state), not with "not found". */
        static const RpcRoute routes_recover[] = {
                { "POST", "/v1/recover", bootstrapper_handle_recover },
                { "POST", "/v1/init", bootstrapper_handle_wrong_state },
                { "GET", "/v1/node", bootstrapper_handle_node },
                { "POST", "/v1/log", bootstrapper_handle_log },
                {},
        };
        static const RpcRoute routes_member[] = {
                { "GET", "/v1/node", bootstrapper_handle_node },
                { "POST", "/v1/init", bootstrapper_handle_wrong_state },
                { "POST", "/v1/recover", bootstrapper_handle_wrong_state },
                { "POST", "/v1/log", bootstrapper_handle_log },
                {},
        };
        static const RpcRoute routes[] = {
                { "POST", "/v1/init", bootstrapper_handle_init },
                { "POST", "/v1/recover", bootstrapper_handle_wrong_state },
                { "GET", "/v1/node", bootstrapper_handle_node },
                { "POST", "/v1/log", bootstrapper_handle_log },
                {},
        };
        _cleanup_(tpm_device_closep) TpmDevice *tpm = NULL;
        _cleanup_(atls_context_freep) AtlsContext *atls = NULL;
        _cleanup_(rpc_server_freep) RpcServer *server = NULL;
        NodeAttesterConfig cfg = {};
        _cleanup_(node_attester_donep) NodeAttester attester = {};
        RpcServerConfig rc;
        AtlsAttester a;
        Bootstrapper b = {};
        _cleanup_(mesh_key_donep) MeshKey *mesh_key = &b.mesh_key;
        NodeMetadata md = {};
        char join_service[4096 + 32], disk_mapper[4096 + 32], own_endpoint[300];
        char disk_uuid[LUKS_UUID_SIZE];
        enum { MODE_INIT, MODE_JOIN, MODE_REJOIN, MODE_RECOVER } mode;
        LuksState disk_state;
        Diag d;
        bool zero, joining, resume_join, mounted;
        int r;

        log_parse_environment();
        /* Kept for the owner, who gets it with a failed init's answer (bootstrapper-init.c). */
        (void) log_ring_enable(BOOTSTRAPPER_LOG_MAX);
        r = parse_argv(argc, argv);
        if (r <= 0)
                return exit_status_from_errno(r);
        /* A join service's tdx evidence carries no collateral (a real TD's): this node's cache,
         * filled from the PCS when missing or stale (docs/tdx.md, "The other direction"). */
        tdx_pcs_config_defaults(&tdx_collateral.pcs);
        tdx_collateral.pcs.budget_ms = ATTEST_TDX_PCS_BUDGET_MS;
        if (arg_tdx_pcs_url)
                tdx_collateral.pcs.base_url = arg_tdx_pcs_url;
        if (arg_tdx_cache_dir)
                tdx_collateral.pcs.cache_dir = arg_tdx_cache_dir;
        else if (arg_state_dir) {
                static char tdx_cache[PATH_MAX];
                (void) snprintf(tdx_cache, sizeof(tdx_cache), "%s/tdx-collateral", arg_state_dir);
                tdx_collateral.pcs.cache_dir = tdx_cache;
        }
        tdx_collateral.fetch_hint = "check --tdx-pcs-url and that it is reachable from this node";
        attest_tdx_collateral_source_set(attest_tdx_collateral_from_pcs, &tdx_collateral);
        if (arg_metadata) {
                r = load_metadata(&md);
                if (r < 0)
                        return 1;
                if (arg_print_metadata)
                        return exit_status_from_errno(print_metadata(&md));
        }
        if (arg_state_disk && strcmp(arg_state_disk, "auto") == 0 && find_state_disk() < 0)
                return 1;
        joining = md.n_peers > 0;
        if (joining && !arg_join_policy) {
                log_error("This node's metadata lists join services (peers), so it joins: pass "
                          "--join-policy FILE (the AK trust to hold them to). In a cloud no "
                          "join policy reaches a node yet: the host must not supply it "
                          "(docs/cloud.md, \"A joining node's join policy\").");
                return 1;
        }
        /* The state disk says whether this node was in a cluster before this boot. It is read
         * once: every decision below (init secret required, mode) comes from this one reading. */
        diag_clear(&d);
        r = luks_validate(arg_state_disk, disk_uuid, &disk_state, &d);
        if (r < 0) {
                log_error_errno(r, "The state disk is refused: %s", d.message);
                return 1;
        }
        /* The first control plane after a full outage needs no init secret: it serves recovery,
         * which only the owner's master secret can complete. */
        if (!joining && !md.init_secret_hash[0] && disk_state != LUKS_STATE_INITIALIZED) {
                if (!arg_insecure_no_init_secret) {
                        log_error("The node metadata carries no init-secret hash (%s), so anyone "
                                  "who reaches this node first could initialise it: refusing to "
                                  "start. Set cloister-init-secret-hash in the metadata (cloister "
                                  "init-secret generate), or pass --insecure-no-init-secret.",
                                  arg_metadata ? "cloister-init-secret-hash" : "no --metadata");
                        return 1;
                }
                log_warning("INSECURE: --insecure-no-init-secret: this node will accept init from "
                            "whoever reaches it first.");
        }

        r = tpm_device_open(arg_tcti, &tpm);
        if (r < 0) {
                log_error_errno(r, "Cannot open the TPM: %s. Check --tcti.",
                                tpm_device_open_explain(r));
                return 1;
        }
        cfg = (NodeAttesterConfig){ .variant = arg_attest,
                                    .tpm = tpm,
                                    .sim_tdx_root = arg_sim_tdx_root,
                                    .sim_tdx_no_collateral = arg_sim_tdx_no_collateral };
        vtpm_issue_config_defaults(&cfg.vtpm);
        cfg.vtpm.event_log = arg_event_log;
        diag_clear(&d);
        r = node_attester_init(&attester, &cfg, &d);
        if (r < 0) {
                log_error("Cannot attest with %s: %s.", attest_variant_to_string(arg_attest),
                          d.message);
                return 1;
        }
        if (!arg_join_service)
                arg_join_service =
                        next_to_self("cloister-join-service", join_service, sizeof(join_service));
        if (!arg_disk_mapper)
                arg_disk_mapper =
                        next_to_self("cloister-disk-mapper", disk_mapper, sizeof(disk_mapper));
        b = (Bootstrapper){ .tpm = tpm,
                            .tpm_lock = &attester.tpm.lock,
                            .state_disk = arg_state_disk,
                            .first_boot_key = arg_first_boot_key,
                            .state_dir = arg_state_dir,
                            .kubeadm = arg_kubeadm,
                            .init_secret_hash = md.init_secret_hash[0] ? md.init_secret_hash : NULL,
                            .join_service =
                                    md.role == NODE_ROLE_CONTROL_PLANE ? arg_join_service : NULL,
                            .state_mount = arg_state_mount,
                            .state_bind = arg_state_bind,
                            .disk_mapper = arg_disk_mapper,
                            .insecure_any_ak = arg_insecure_any_ak,
                            .os_release = arg_os_release,
                            .kubernetes_pki = arg_etcd_membership ? arg_kubernetes_pki : NULL };
        (void) snprintf(b.disk_uuid, sizeof(b.disk_uuid), "%s", disk_uuid);
        (void) pthread_mutex_init(&b.op_lock, NULL);
        if (arg_mesh >= 0) {
                Diag md_d;

                /* Closed from the start: until a mesh document is applied (a join service that
                 * does not answer, a control plane that never applies one), traffic to or from
                 * the mesh range is dropped rather than sent in the clear. */
                diag_clear(&md_d);
                if (mesh_close(&md_d) < 0)
                        log_error("--mesh: %s; traffic to the mesh range is not closed until a "
                                  "mesh document is applied (install nftables, run as root)",
                                  md_d.message);
        }
        /* A control plane's key is its join service's: made there (in its monitor) at the
         * hand-over, which passes --mesh on (docs/mesh.md, "Control planes"). */
        if (arg_mesh >= 0 && md.role != NODE_ROLE_CONTROL_PLANE) {
                /* The node's WireGuard key: made now, in locked memory only, bound into the
                 * evidence of every mesh request (docs/mesh.md). */
                r = mesh_key_generate(&b.mesh_key);
                if (r < 0) {
                        log_error_errno(r, "Cannot make this node's WireGuard key: %m");
                        return 1;
                }
                b.mesh = true;
                b.mesh_backend = arg_mesh;
                b.mesh_interval_sec = arg_mesh_interval;
                b.mesh_runtime_dir = arg_state_dir;
        }

        {
                static char node_name[METADATA_NAME_MAX], endpoint[METADATA_ENDPOINT_MAX + 8];
                unsigned char ip[16];
                const char *adv = arg_advertise_address ?: arg_address;

                if (md.name[0])
                        (void) snprintf(node_name, sizeof(node_name), "%s", md.name);
                else if (gethostname(node_name, sizeof(node_name) - 1) < 0)
                        (void) snprintf(node_name, sizeof(node_name), "cloister-node");
                for (char *c = node_name; *c; c++)
                        if (*c >= 'A' && *c <= 'Z')
                                *c = (char) (*c - 'A' + 'a');
                if (strcmp(adv, "0.0.0.0") == 0 || strcmp(adv, "::") == 0 ||
                    (inet_pton(AF_INET, adv, ip) != 1 && inet_pton(AF_INET6, adv, ip) != 1)) {
                        log_error("The API server needs a concrete address: pass "
                                  "--advertise-address IP (the --listen address '%s' is not "
                                  "one).",
                                  adv);
                        return 1;
                }
                if (md.endpoint[0])
                        (void) snprintf(endpoint, sizeof(endpoint), "%s", md.endpoint);
                else
                        (void) snprintf(endpoint, sizeof(endpoint),
                                        strchr(adv, ':') ? "[%s]:6443" : "%s:6443", adv);
                /* Everything kubeadm will be given is checked now, before any init request can
                 * extend PCR 15: a bad value found later would leave a node that cannot finish. */
                if (!kubeadm_node_name_ok(node_name)) {
                        log_error("Node name '%s' is not a DNS-1123 subdomain (Kubernetes needs "
                                  "one): fix the metadata's name.",
                                  node_name);
                        return 1;
                }
                /* The join service keys membership by a DNS-1123 label (Kubernetes node names
                 * may be subdomains, Cloister's members may not). */
                if (md.n_peers > 0 && strchr(node_name, '.')) {
                        log_error("Node name '%s' has dots: a joining node's name must be a "
                                  "DNS-1123 label. Fix the metadata's name.",
                                  node_name);
                        return 1;
                }
                b.node_name = node_name;
                b.advertise_address = adv;
                b.control_plane_endpoint = endpoint;
        }

        r = bootstrapper_pcr15_is_zero(&b, &zero);
        if (r < 0) {
                log_error_errno(r, "Cannot read PCR 15: %m");
                return 1;
        }

        /* With --state-mount, the state directory is on the disk. The disk mapper left it locked
         * at boot if it is initialized (or its re-key needs the disk key): then nothing of the
         * node's state can be read yet, and its key must come from a join service or the owner. */
        if (arg_state_mount &&
            (disk_state == LUKS_STATE_INITIALIZED || disk_state == LUKS_STATE_REKEYING)) {
                r = bootstrapper_is_mount_point(arg_state_mount, &mounted);
                if (r < 0) {
                        log_error_errno(r, "Cannot tell whether %s is mounted: %m",
                                        arg_state_mount);
                        return 1;
                }
                b.state_locked = !mounted;
        }
        /* A join cut short after PCR 15 (kubeadm join failed, the process was stopped): PCR 15
         * holds the metadata's cluster, but the node never recorded its membership. (PCR 15 is
         * extended only once the state disk is open, so a locked disk never gets here.) */
        resume_join = !zero && joining && !b.state_locked && !bootstrapper_node_state_exists(&b) &&
                      bootstrapper_pcr15_is_cluster(&b, md.cluster_id);
        if (!zero && !resume_join) {
                log_error("PCR 15 is already extended: this node has joined its cluster since it "
                          "booted. Refusing to serve init or to join again (reboot to rejoin).");
                return 1;
        }
        if (b.state_locked) {
                /* node-state.json is on the locked disk: the metadata decides. A rejoin that
                 * finds no node state once the disk is open finishes a join cut short. */
                mode = md.role == NODE_ROLE_CONTROL_PLANE && !joining ? MODE_RECOVER : MODE_REJOIN;
                log_info("bootstrapper: the state disk is %s and locked (%s is not mounted): its "
                         "key comes from %s",
                         luks_state_to_string(disk_state), arg_state_mount,
                         mode == MODE_RECOVER ? "the owner ('cloister recover')"
                                              : "the join service (rejoin)");
        } else if (resume_join || (joining && disk_state == LUKS_STATE_INITIALIZED &&
                                   !bootstrapper_node_state_exists(&b)))
                mode = MODE_JOIN; /* finish a join that was cut short */
        else if (disk_state == LUKS_STATE_INITIALIZED)
                mode = md.role == NODE_ROLE_CONTROL_PLANE && !joining ? MODE_RECOVER : MODE_REJOIN;
        else
                mode = joining ? MODE_JOIN : MODE_INIT;
        if (mode == MODE_REJOIN && !arg_join_policy) {
                log_error("This node's state disk belongs to a cluster: it rejoins through the "
                          "join services in its metadata. Pass --join-policy FILE (in a "
                          "cloud: docs/cloud.md, \"A joining node's join policy\").");
                return 1;
        }

        a = node_attester_atls(&attester);
        b.attester = a;
        r = atls_context_new(ATLS_ROLE_SERVER, &a, NULL, &atls);
        /* Its WireGuard key, bound, for a verifier that asks (cloister verify --cluster). */
        if (r >= 0 && b.mesh)
                r = atls_context_set_wg_key(atls, b.mesh_key.public_key);
        if (r < 0) {
                log_error_errno(r, "Cannot set up aTLS: %m");
                return 1;
        }
        /* Bound first: the node's own endpoint (its port) is part of what it joins with. */
        rpc_server_config_defaults(&rc);
        rc.address = arg_address;
        rc.port = arg_port;
        /* An init's scrypt, kubeadm and re-key run beside the loop: GET /v1/node is answered
         * meanwhile, and no connection waiting its turn times out behind them. */
        rc.workers = 4;
        /* Joining nodes say READY=1 themselves, once they are members. */
        rc.notify = mode != MODE_JOIN && mode != MODE_REJOIN;
        b.mode = mode == MODE_INIT     ? BOOTSTRAPPER_MODE_INIT
                 : mode == MODE_JOIN   ? BOOTSTRAPPER_MODE_JOIN
                 : mode == MODE_REJOIN ? BOOTSTRAPPER_MODE_REJOIN
                                       : BOOTSTRAPPER_MODE_RECOVER;
        r = rpc_server_new(&rc, atls,
                           mode == MODE_INIT      ? routes
                           : mode == MODE_RECOVER ? routes_recover
                                                  : routes_member,
                           &b, &server);
        if (r < 0) {
                log_error_errno(r, "Cannot listen on %s:%u: %m", arg_address, arg_port);
                return 1;
        }
        b.server = server;
        arg_port = rpc_server_port(server);
        (void) snprintf(own_endpoint, sizeof(own_endpoint),
                        strchr(b.advertise_address, ':') ? "[%s]:%u" : "%s:%u", b.advertise_address,
                        arg_port);
        b.endpoint = own_endpoint;

        if (mode == MODE_JOIN || mode == MODE_REJOIN) {
                /* GET /v1/node is served while the node joins, so the owner can attest a node
                 * that waits for (or is refused by) join services; the service is ready once
                 * the node is a member. */
                ServeThread st = { .server = server };
                pthread_t thread;
                bool serving = pthread_create(&thread, NULL, serve_thread, &st) == 0;

                r = mode == MODE_JOIN
                            ? bootstrapper_join(&b, &md, arg_join_policy, arg_join_timeout)
                            : bootstrapper_rejoin(&b, &md, arg_join_policy, arg_join_timeout);
                if (r == BOOTSTRAPPER_REJOIN_UNFINISHED_JOIN)
                        r = bootstrapper_join(&b, &md, arg_join_policy, arg_join_timeout);
                b.handoff = r >= 0 && b.join_service != NULL;
                if (serving && r < 0 && arg_failed_join_linger > 0)
                        linger_after_failed_join(&b, &st);
                if (serving && (r < 0 || b.handoff)) {
                        if (b.handoff)
                                rpc_server_stop_for_handover(server);
                        else
                                rpc_server_stop(server);
                        (void) pthread_join(thread, NULL);
                        if (b.handoff && rpc_server_handover_signalled(server)) {
                                log_info("bootstrapper: asked to stop; the join service is not "
                                         "started.");
                                return 0;
                        }
                }
                if (r < 0)
                        return 1;
                if (!b.handoff) {
                        BootstrapperMesh *mesh = NULL;

                        /* A worker member: the mesh of attested members (docs/mesh.md). A
                         * failure to start it is the node's failure: no plain fallback. */
                        if (b.mesh &&
                            bootstrapper_mesh_start(&b, &md, arg_join_policy, &mesh) < 0) {
                                if (serving) {
                                        rpc_server_stop(server);
                                        (void) pthread_join(thread, NULL);
                                }
                                return 1;
                        }
                        service_notify("READY=1");
                        /* A member from now on: it holds its join services to their evidence
                         * (fail-closed mode, off by default). */
                        if (arg_fail_closed_after > 0 &&
                            bootstrapper_watch_start(&b, &md, arg_join_policy,
                                                     arg_fail_closed_after,
                                                     arg_join_service_attest_interval) < 0)
                                log_error("bootstrapper: fail-closed mode is NOT active (see "
                                          "above)");
                        if (serving) {
                                printf("cloister-bootstrapper: serving node state on %s:%u\n",
                                       arg_address, arg_port);
                                fflush(stdout);
                                (void) pthread_join(thread, NULL);
                                bootstrapper_watch_stop(&b);
                                bootstrapper_mesh_stop(mesh);
                                mesh_key_done(&b.mesh_key);
                                node_attester_done(&attester);
                                return st.r < 0 ? 1 : 0;
                        }
                }
        }
        if (!b.handoff) {
                printf("cloister-bootstrapper: serving %s on %s:%u\n",
                       mode == MODE_INIT      ? "init"
                       : mode == MODE_RECOVER ? "recovery"
                                              : "node state",
                       arg_address, arg_port);
                fflush(stdout);
                r = rpc_server_run(server);
                if (r >= 0 && b.handoff && rpc_server_handover_signalled(server)) {
                        log_info("bootstrapper: asked to stop; the join service is not started.");
                        b.handoff = false;
                }
        }
        if (r >= 0 && b.handoff) {
                /* The listening socket itself goes to the join service: clients that connect
                 * meanwhile wait in its backlog instead of finding the port closed. */
                int fd = rpc_server_dup_listen_fd(server);
                server = rpc_server_free(server);
                b.server = NULL;
                return exec_join_service(&b, &attester, &tpm, fd);
        }
        node_attester_done(&attester);
        return r < 0 ? 1 : 0;
}
