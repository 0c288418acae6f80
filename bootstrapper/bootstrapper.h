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
        bool initialized;
} Bootstrapper;

int bootstrapper_pcr15_is_zero(Bootstrapper *b, bool *ret);
int bootstrapper_handle_init(void *userdata, const RpcRequest *req, json_t **ret_response,
                             char *detail, size_t detail_size);
int bootstrapper_handle_node(void *userdata, const RpcRequest *req, json_t **ret_response,
                             char *detail, size_t detail_size);
