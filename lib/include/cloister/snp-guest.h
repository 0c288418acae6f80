/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * Issuing SEV-SNP reports inside a confidential VM, and the extended report's certificate table.
 * The device paths exist only on SNP guests; on other machines these fail with -ENODEV.
 */

#include <stddef.h>
#include <stdint.h>

#include "cloister/diag.h"

#define SNP_GUEST_CONFIGFS_TSM     "/sys/kernel/config/tsm/report"
#define SNP_GUEST_DEVICE           "/dev/sev-guest"
#define SNP_CERT_TABLE_MAX         (64U * 1024U)
#define SNP_CERT_TABLE_ENTRIES_MAX 16

/* A report with REPORT_DATA = report_data, from configfs-tsm where the kernel has it, else the
 * /dev/sev-guest ioctls. ret_report gets the raw report; ret_certs (may be NULL) the
 * certificate table the host supplied (NULL, 0 if none). */
int snp_guest_get_report(const uint8_t report_data[static 64], uint8_t **ret_report,
                         size_t *ret_size, uint8_t **ret_certs, size_t *ret_certs_size, Diag *d);

typedef struct SnpCertTable {
        const uint8_t *vcek, *vlek, *ask, *ark; /* DER, pointing into the parsed buffer */
        size_t vcek_size, vlek_size, ask_size, ark_size;
} SnpCertTable;

/* The GHCB certificate table: {GUID, offset, length} entries up to an all-zero one, offsets
 * from the table's start. Unknown GUIDs are skipped; out-of-range entries, duplicates, a missing
 * terminator or too many entries are -EBADMSG. */
int snp_cert_table_parse(const uint8_t *data, size_t size, SnpCertTable *ret, Diag *d);
