/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * The state disk's LUKS2 header, through libcryptsetup (the only module that includes it).
 * One profile is accepted: aes-xts-plain64 with a 512-bit volume key, 4096-byte sectors, one data
 * segment, exactly one luks2 keyslot with PBKDF2-SHA256 (the keys are full-entropy machine keys:
 * a memory-hard KDF adds nothing but boot time; docs in disk-mapper/README.md), and exactly one
 * Cloister token recording the disk's state. Anything else is refused before any key is tried.
 */

#include <stdbool.h>

#include "cloister/diag.h"
#include "cloister/secret.h"

#define LUKS_CIPHER          "aes"
#define LUKS_CIPHER_MODE     "xts-plain64"
#define LUKS_VOLUME_KEY_SIZE 64
/* Authenticated mode: dm-integrity keeps an HMAC-SHA256 tag per sector, so a host that changes
 * ciphertext gets read errors instead of silently corrupted plaintext; the volume key then also
 * holds the 256-bit HMAC key. */
#define LUKS_INTEGRITY                 "hmac(sha256)"
#define LUKS_VOLUME_KEY_SIZE_INTEGRITY (64 + 32)
#define LUKS_SECTOR_SIZE               4096
#define LUKS_PBKDF_ITERATIONS          1000
#define LUKS_TOKEN_TYPE                "cloister"
#define LUKS_FORMAT_VERSION            1
#define LUKS_UUID_SIZE                 37 /* 36 + NUL */

/*
 * The disk's life, recorded in the Cloister token. Every step that changes keyslots first records
 * where it is, so an interruption (power cut) at any instant leaves a disk that opens with the old
 * or the new key, or that is recognisably unused ("formatting": never held data):
 *   (none) -> formatting -> new -> rekeying -> initialized -> reset -> formatting ...
 */
typedef enum LuksState {
        LUKS_STATE_NEW,         /* keyed with the first-boot key */
        LUKS_STATE_INITIALIZED, /* keyed with the attestation-released disk key */
        LUKS_STATE_FORMATTING,  /* format was interrupted: no data; may be formatted again */
        LUKS_STATE_REKEYING,    /* re-key in progress: the old and/or the new key open it */
        LUKS_STATE_RESET,       /* the owner asked to wipe it: formatted again at next boot */
        _LUKS_STATE_MAX,
        _LUKS_STATE_INVALID = -EINVAL,
} LuksState;

const char *luks_state_to_string(LuksState s);

/* Formats path (a block device or image file) with the profile and a keyslot for key; the
 * token says "new". Refuses (-EEXIST) a device that already carries a LUKS header, unless that
 * header can hold no data (no keyslot, or state "formatting") or its owner reset it. */
int luks_format(const char *path, const Secret *key, char uuid[static LUKS_UUID_SIZE], Diag *d);
typedef enum LuksFormatFlags {
        /* Authenticated mode: needs device-mapper with dm-integrity (the data area is written
         * once through the mapping so every sector has a valid tag). */
        LUKS_FORMAT_INTEGRITY = 1 << 0,
        /* Also format over a disk in state "new", or "rekeying" before its new keyslot existed:
         * at boot, when its first-boot key (tmpfs only) is gone, such a disk never joined and
         * cannot be opened by anyone any more. */
        LUKS_FORMAT_OVER_NEW = 1 << 1,
} LuksFormatFlags;
int luks_format_flags(const char *path, const Secret *key, LuksFormatFlags flags,
                      char uuid[static LUKS_UUID_SIZE], Diag *d);
/* Whether this kernel can run authenticated mode now (device-mapper and dm-integrity loaded). */
bool luks_integrity_available(void);

/* Strict validation of an existing header against the profile; fills uuid and state. */
int luks_validate(const char *path, char uuid[static LUKS_UUID_SIZE], LuksState *ret_state,
                  Diag *d);
/* The same, also telling whether the disk is in authenticated mode. */
int luks_validate_ex(const char *path, char uuid[static LUKS_UUID_SIZE], LuksState *ret_state,
                     bool *ret_integrity, Diag *d);

/* The profile checks on the header's JSON metadata alone (as crypt_dump_json() gives it). */
int luks_validate_metadata_json(const char *json, size_t size, LuksState *ret_state, Diag *d);

/* -EKEYREJECTED unless key opens the (validated) header's keyslot. */
int luks_check_key(const char *path, const Secret *key, Diag *d);

/* Re-keys from old_key to new_key and marks the disk initialized. At every instant at least one
 * keyslot opens the disk: the new keyslot is added and proven before the old one is destroyed.
 * An interrupted re-key is finished by calling it again (old_key may then be gone: a disk in
 * state "rekeying" that new_key opens is completed with it alone; old_key may be NULL). A disk
 * already initialized with new_key is left as it is. */
int luks_rekey(const char *path, const Secret *old_key, const Secret *new_key, Diag *d);

/* Active keyslots of the validated header. */
int luks_keyslot_count(const char *path, unsigned *ret, Diag *d);

/* Marks the disk to be formatted again at next boot (state "reset"); key must open it. */
int luks_reset(const char *path, const Secret *key, Diag *d);

/* Activates the validated disk as /dev/mapper/<name> with key (device-mapper required). States
 * formatting and reset are refused: such a disk must be formatted first. */
int luks_open(const char *path, const char *name, const Secret *key, Diag *d);
/* Deactivates /dev/mapper/<name>; -ENODEV if it is not active. */
int luks_close(const char *name, Diag *d);
/* Whether /dev/mapper/<name> is active, and (if so) the backing device. */
int luks_active(const char *name, bool *ret_active, char *ret_device, size_t size);
