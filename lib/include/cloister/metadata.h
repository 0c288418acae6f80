/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Node metadata: who am I, what is my role, who are my peers, where is the cluster endpoint,
 * what is the init-secret hash. From the cloud's instance metadata service (GCP, Azure, AWS),
 * QEMU's firmware configuration device (local clusters of VMs) or a JSON file. Metadata is
 * host-controlled input: every field is bounded and checked for shape here, and nothing in it is
 * trusted for security beyond what init-secret.h says.
 *
 * Where the values live:
 *   local  {"name", "role", "endpoint", "peers": [...], "initSecretHash", "clusterId",
 *           "controlPlaneAuthorization"} (strict keys)
 *   gcp    GET /computeMetadata/v1/instance/?recursive=true (Metadata-Flavor: Google):
 *          name, attributes.cloister-role|-endpoint|-peers|-init-secret-hash|-cluster-id|
 *          -control-plane-authorization
 *   azure  GET /metadata/instance?api-version=2021-02-01 (Metadata: true):
 *          compute.name, compute.tagsList[] with the same names
 *   aws    IMDSv2: PUT /latest/api/token, then GET /latest/meta-data/instance-id and
 *          /latest/meta-data/tags/instance/<name> (instance tags in metadata enabled); the node's
 *          name is the tag cloister-name if set (a name the owner chose and authorized in
 *          advance: a further control plane), else the instance ID
 *   qemu   the local form, from the fw_cfg item opt/cloister/metadata, which the guest kernel's
 *          qemu_fw_cfg driver shows at METADATA_QEMU_FW_CFG (the VM is started with
 *          `-fw_cfg name=opt/cloister/metadata,file=FILE`)
 * peers is a comma-separated list of host:port in the cloud forms.
 */

#include <stddef.h>

#include "cloister/cp-authorization.h"
#include "cloister/diag.h"
#include "cloister/init-secret.h"

#define METADATA_NAME_MAX     64
#define METADATA_ENDPOINT_MAX 256
#define METADATA_PEERS_MAX    16
#define METADATA_SIZE_MAX     (256U * 1024U)
#define METADATA_QEMU_FW_CFG  "/sys/firmware/qemu_fw_cfg/by_name/opt/cloister/metadata/raw"
/* qemu: the driver may load late; an absent item is looked for again, backing off from the
 * first delay, doubling up to the last. */
#define METADATA_QEMU_BACKOFF_FIRST_MS 200U
#define METADATA_QEMU_BACKOFF_MAX_MS   5000U

typedef enum MetadataProvider {
        METADATA_LOCAL,
        METADATA_GCP,
        METADATA_AZURE,
        METADATA_AWS,
        METADATA_QEMU,
        _METADATA_PROVIDER_MAX,
        _METADATA_PROVIDER_INVALID = -EINVAL,
} MetadataProvider;

typedef enum NodeRole {
        NODE_ROLE_CONTROL_PLANE,
        NODE_ROLE_WORKER,
        _NODE_ROLE_MAX,
        _NODE_ROLE_INVALID = -EINVAL,
} NodeRole;

#define METADATA_CLUSTER_ID_SIZE 32

/* The fields every provider yields, in this order (set_all() takes them as an array). */
typedef enum MetadataField {
        METADATA_FIELD_NAME,
        METADATA_FIELD_ROLE,
        METADATA_FIELD_ENDPOINT,
        METADATA_FIELD_PEERS,
        METADATA_FIELD_HASH,
        METADATA_FIELD_CLUSTER,
        METADATA_FIELD_CP_AUTH,
        _METADATA_FIELD_MAX,
} MetadataField;

typedef struct NodeMetadata {
        char name[METADATA_NAME_MAX];
        NodeRole role;
        char endpoint[METADATA_ENDPOINT_MAX]; /* host:port of the control plane, may be "" */
        char peers[METADATA_PEERS_MAX][METADATA_ENDPOINT_MAX];
        size_t n_peers;
        char init_secret_hash[INIT_SECRET_HASH_MAX]; /* "" if the metadata has none */
        /* Hex cluster ID a joining node expects its join service to hold in PCR 15; "" if none */
        char cluster_id[2 * METADATA_CLUSTER_ID_SIZE + 1];
        /* The owner's authorization for a joining control plane (cp-authorization.h), passed on
         * to the join service, which checks it; "" if none. Only its shape is checked here. */
        char cp_authorization[CP_AUTHORIZATION_MAX];
} NodeMetadata;

MetadataProvider metadata_provider_from_string(const char *s);
const char *metadata_provider_to_string(MetadataProvider p);
const char *node_role_to_string(NodeRole r);

/* source: the file for local; for clouds the service's base URL, or NULL for the real one
 * (tests point it at a loopback server). Retries with backoff while the service is unreachable
 * or answers 5xx, for at most timeout_ms in all. qemu: source is a file path or a file:// URL
 * (NULL: METADATA_QEMU_FW_CFG), read again with backoff while it does not exist, for at most
 * timeout_ms; -ENOENT then, with a diagnostic that names the file and the -fw_cfg option. */
int metadata_fetch(MetadataProvider p, const char *source, unsigned timeout_ms, NodeMetadata *ret,
                   Diag *d);

/*
 * Which cloud this node runs in, from the SMBIOS values the kernel shows in sysfs (dmi_dir; NULL:
 * METADATA_DMI_DIR): one row per provider in metadata-detect.c, each a set of exact values that
 * must all hold (GCP: sys_vendor "Google" and product_name "Google Compute Engine"; Azure:
 * sys_vendor "Microsoft Corporation" and Azure's chassis asset tag; AWS: sys_vendor "Amazon EC2";
 * QEMU: sys_vendor "QEMU"). The rows name different sys_vendor values, so no hardware matches
 * two. The host writes these values: they only choose where the (equally untrusted) metadata and
 * the state disk are looked for; a wrong choice fails, it never makes a node trust anything
 * (docs/cloud.md). Each value is read bounded (METADATA_DMI_VALUE_MAX bytes). Unknown hardware:
 * -ENXIO (a diagnostic that quotes what was read and names --metadata PROVIDER); no DMI
 * directory: -ENOENT; a value longer than the bound: -EMSGSIZE. ret is written on success only.
 */
#define METADATA_DMI_DIR       "/sys/class/dmi/id"
#define METADATA_DMI_VALUE_MAX 128
int metadata_provider_detect(const char *dmi_dir, MetadataProvider *ret, Diag *d);

/*
 * The state disk the Terraform modules attach, by the stable names the node looks for, in
 * order (NULL-terminated; NULL for local, which has no fixed disk): GCP the device name
 * "state-disk", Azure LUN 0, AWS the device name /dev/sdb, QEMU the partition cloister-state.
 * A name may be a glob pattern (Azure's by-path link carries the bus's ACPI name).
 */
#define METADATA_STATE_DISK_GCP_DEVICE_NAME "state-disk"
#define METADATA_STATE_DISK_AZURE_LUN       "0"
#define METADATA_STATE_DISK_AWS_DEVICE_NAME "/dev/sdb"
#define METADATA_STATE_DISK_QEMU_PARTLABEL  "cloister-state"
const char *const *metadata_state_disk_names(MetadataProvider p);

/*
 * Finds the state disk of provider p: the first of its names that exists under root (NULL or
 * "": the real /; tests give a directory standing in for it), looked for again with backoff
 * while none exists, for at most timeout_ms (udev makes the links as the disks appear). A name
 * that matches more than one path is refused (-ENOTUNIQ). None after the timeout: -ENOENT, with
 * a diagnostic naming every name looked for and --state-disk PATH. ret gets the path found
 * (with root in front); written on success only.
 */
int metadata_state_disk_find(MetadataProvider p, const char *root, unsigned timeout_ms, char *ret,
                             size_t size, Diag *d);

/*
 * GCP over NVMe (the C3 machines of TDX, and any disk attached as NVMe): Compute Engine puts a
 * disk's device name into the vendor-specific part (bytes 384..4095) of its NVMe Identify
 * Namespace data, as JSON ({"device_name":"state-disk","disk_type":"PERSISTENT"}), which
 * Google's udev helper reads to make /dev/disk/by-id/google-NAME. The image's udev rule
 * (65-cloister-gce-nvme.rules) does the same through 'cloister-disk-mapper gce-nvme-name'.
 * The bytes are the host's: the area is bounded, the JSON parsed strictly (an object whose
 * device_name is 1..63 of [A-Za-z0-9_-]), anything else refused (-EBADMSG; -ENODATA for an
 * area with no JSON at all). ret is written on success only.
 */
#define METADATA_NVME_IDENTIFY_SIZE     4096
#define METADATA_GCE_NVME_VENDOR_OFFSET 384
#define METADATA_GCE_DEVICE_NAME_MAX    64
int metadata_gce_nvme_device_name(const void *identify_ns, size_t size,
                                  char ret[static METADATA_GCE_DEVICE_NAME_MAX], Diag *d);
/* Issues NVMe Identify Namespace to the namespace block device path (root only) and returns
 * the device name above. */
int metadata_gce_nvme_read(const char *path, char ret[static METADATA_GCE_DEVICE_NAME_MAX],
                           Diag *d);

/* Parses the local JSON form. */
int metadata_parse_local(const void *data, size_t size, NodeMetadata *ret, Diag *d);
/* Parses a GCP (recursive instance) or Azure (IMDS instance) JSON document; what the fetchers
 * use, exposed for the fuzzer. */
int metadata_parse_cloud_json(MetadataProvider p, const void *data, size_t size, NodeMetadata *ret,
                              Diag *d);
