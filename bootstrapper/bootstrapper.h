/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include <pthread.h>

#include "cloister/rpc.h"
#include "cloister/tpm-device.h"

typedef struct Bootstrapper {
        TpmDevice *tpm;
        pthread_mutex_t *tpm_lock;    /* shared with the aTLS attester */
        const char *state_disk;       /* LUKS2 image or device */
        const char *first_boot_key;   /* key file of the first-boot keyslot */
        const char *state_dir;        /* node state and the kubeconfig */
        const char *kubeadm;          /* kubeadm binary (a test double where none exists) */
        const char *init_secret_hash; /* from metadata; NULL only with the insecure option */
        const char *node_name;        /* from metadata (or the host name) */
        const char *advertise_address;
        const char *control_plane_endpoint; /* from metadata, or advertise_address:6443 */
        bool initialized;
} Bootstrapper;

int bootstrapper_pcr15_is_zero(Bootstrapper *b, bool *ret);
int bootstrapper_handle_init(void *userdata, const RpcRequest *req, json_t **ret_response,
                             char *detail, size_t detail_size);
int bootstrapper_handle_node(void *userdata, const RpcRequest *req, json_t **ret_response,
                             char *detail, size_t detail_size);

typedef struct KubeadmParams {
        const char *node_name, *cluster_name, *version, *service_cidr;
        const char *advertise_address;      /* this node's address */
        const char *control_plane_endpoint; /* host:port */
        const char *endpoint_host;          /* its host part (a certificate SAN) */
        const char *audit_policy;           /* file the API server reads its audit policy from */
} KubeadmParams;

bool kubeadm_name_ok(const char *s);
bool kubeadm_node_name_ok(const char *s);
bool kubeadm_version_ok(const char *s);
bool kubeadm_cidr_ok(const char *s);
/* -EINVAL if a parameter is malformed; the file is written 0600. */
int kubeadm_write_config(const KubeadmParams *p, const char *path);
int kubeadm_write_audit_policy(const char *path);
