/* SPDX-License-Identifier: Apache-2.0 */
#include <fcntl.h>
#include <linux/sev-guest.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cloister/fileio.h"
#include "cloister/reader.h"
#include "cloister/sev-snp.h"
#include "cloister/snp-guest.h"

/* GUIDs of the certificate table (GHCB specification, "SNP Extended Guest Request"), in their
 * on-the-wire (EFI, mixed-endian) byte order. */
static const uint8_t guid_vcek[16] = { 0x8d, 0x75, 0xda, 0x63, 0x64, 0xe6, 0x64, 0x45,
                                       0xad, 0xc5, 0xf4, 0xb9, 0x3b, 0xe8, 0xac, 0xcd };
static const uint8_t guid_vlek[16] = { 0xc2, 0x4b, 0x07, 0xa8, 0x5a, 0xa2, 0x3e, 0x48,
                                       0xaa, 0xe6, 0x39, 0xc0, 0x45, 0xa0, 0xb8, 0xa1 };
static const uint8_t guid_ask[16] = { 0x79, 0xb3, 0xb7, 0x4a, 0xac, 0xbb, 0xe4, 0x4f,
                                      0xa0, 0x2f, 0x05, 0xae, 0xf3, 0x27, 0xc7, 0x82 };
static const uint8_t guid_ark[16] = { 0xa4, 0x06, 0xb4, 0xc0, 0x03, 0xa8, 0x52, 0x49,
                                      0x97, 0x43, 0x3f, 0xb6, 0x01, 0x4c, 0xd0, 0xae };

int snp_cert_table_parse(const uint8_t *data, size_t size, SnpCertTable *ret, Diag *d)
{
        Reader r = reader_init(data, size);
        SnpCertTable t = {};

        if (size > SNP_CERT_TABLE_MAX)
                return diag_fail(d, -EMSGSIZE, "snp-cert-table", -1,
                                 "certificate table larger than %u bytes", SNP_CERT_TABLE_MAX);
        for (unsigned i = 0;; i++) {
                const uint8_t *guid, **slot = NULL;
                size_t *slot_size = NULL;
                uint32_t off, len;

                if (i > SNP_CERT_TABLE_ENTRIES_MAX)
                        return diag_fail(d, -EBADMSG, "snp-cert-table", (int) i,
                                         "certificate table: more than %d entries",
                                         SNP_CERT_TABLE_ENTRIES_MAX);
                if (reader_bytes(&r, 16, &guid) < 0 || reader_u32le(&r, &off) < 0 ||
                    reader_u32le(&r, &len) < 0)
                        return diag_fail(d, -EBADMSG, "snp-cert-table", (int) i,
                                         "certificate table: entry %u truncated (no terminator)",
                                         i);
                bool zero = off == 0 && len == 0;
                for (int k = 0; zero && k < 16; k++)
                        zero = guid[k] == 0;
                if (zero)
                        break;
                if ((size_t) off > size || (size_t) len > size - off || len == 0)
                        return diag_fail(d, -EBADMSG, "snp-cert-table", (int) i,
                                         "certificate table: entry %u points outside the table", i);
                if (memcmp(guid, guid_vcek, 16) == 0)
                        slot = &t.vcek, slot_size = &t.vcek_size;
                else if (memcmp(guid, guid_vlek, 16) == 0)
                        slot = &t.vlek, slot_size = &t.vlek_size;
                else if (memcmp(guid, guid_ask, 16) == 0)
                        slot = &t.ask, slot_size = &t.ask_size;
                else if (memcmp(guid, guid_ark, 16) == 0)
                        slot = &t.ark, slot_size = &t.ark_size;
                else
                        continue; /* e.g. a CRL or a vendor entry */
                if (*slot)
                        return diag_fail(d, -EBADMSG, "snp-cert-table", (int) i,
                                         "certificate table: duplicate entry %u", i);
                *slot = data + off;
                *slot_size = len;
        }
        *ret = t;
        return 0;
}

static int write_all(const char *path, const void *data, size_t size)
{
        int fd = open(path, O_WRONLY | O_CLOEXEC);
        ssize_t n;

        if (fd < 0)
                return negative_errno();
        n = write(fd, data, size);
        (void) close(fd);
        return n == (ssize_t) size ? 0 : -EIO;
}

/* configfs-tsm (Linux 6.7+): a report is a directory we create, an inblob we write and an
 * outblob we read (Documentation/ABI/testing/configfs-tsm). */
static int via_configfs(const uint8_t report_data[static 64], uint8_t **ret, size_t *ret_size,
                        uint8_t **certs, size_t *certs_size)
{
        char dir[128], path[192];
        int r;

        (void) snprintf(dir, sizeof(dir), "%s/cloister-%d", SNP_GUEST_CONFIGFS_TSM, (int) getpid());
        if (mkdir(dir, 0700) < 0)
                return negative_errno();
        (void) snprintf(path, sizeof(path), "%s/inblob", dir);
        r = write_all(path, report_data, 64);
        if (r >= 0) {
                (void) snprintf(path, sizeof(path), "%s/outblob", dir);
                r = read_full_file(path, 16 * 1024, ret, ret_size);
        }
        if (r >= 0 && certs) {
                (void) snprintf(path, sizeof(path), "%s/auxblob", dir);
                if (read_full_file(path, SNP_CERT_TABLE_MAX, certs, certs_size) < 0)
                        *certs = NULL, *certs_size = 0;
        }
        (void) rmdir(dir);
        return r;
}

static int via_ioctl(const uint8_t report_data[static 64], uint8_t **ret, size_t *ret_size, Diag *d)
{
        struct snp_report_req req = {};
        struct snp_report_resp resp = {};
        struct snp_guest_request_ioctl io = {
                .msg_version = 1,
                .req_data = (uint64_t) (uintptr_t) &req,
                .resp_data = (uint64_t) (uintptr_t) &resp,
        };
        uint32_t status, size;
        int fd, r;

        memcpy(req.user_data, report_data, 64);
        fd = open(SNP_GUEST_DEVICE, O_RDWR | O_CLOEXEC);
        if (fd < 0)
                return errno == ENOENT ? -ENODEV : negative_errno();
        r = ioctl(fd, SNP_GET_REPORT, &io);
        (void) close(fd);
        if (r < 0)
                return diag_fail(d, negative_errno(), "snp-guest", -1,
                                 "SNP_GET_REPORT failed (firmware error 0x%x, VMM error 0x%x)",
                                 io.fw_error, io.vmm_error);
        /* MSG_REPORT_RSP (SNP ABI): status, report size, 24 reserved bytes, the report. */
        memcpy(&status, resp.data, 4);
        memcpy(&size, resp.data + 4, 4);
        if (status != 0 || size != SNP_REPORT_SIZE || 32 + (size_t) size > sizeof(resp.data))
                return diag_fail(d, -EPROTO, "snp-guest", -1,
                                 "the firmware answered status 0x%x with %u bytes", status, size);
        *ret = malloc(size);
        if (!*ret)
                return -ENOMEM;
        memcpy(*ret, resp.data + 32, size);
        *ret_size = size;
        return 0;
}

int snp_guest_get_report(const uint8_t report_data[static 64], uint8_t **ret_report,
                         size_t *ret_size, uint8_t **ret_certs, size_t *ret_certs_size, Diag *d)
{
        struct stat st;
        int r;

        if (ret_certs) {
                *ret_certs = NULL;
                *ret_certs_size = 0;
        }
        if (stat(SNP_GUEST_CONFIGFS_TSM, &st) == 0) {
                r = via_configfs(report_data, ret_report, ret_size, ret_certs, ret_certs_size);
                if (r >= 0)
                        return 0;
        }
        r = via_ioctl(report_data, ret_report, ret_size, d);
        if (r == -ENODEV)
                return diag_fail(d, r, "snp-guest", -1,
                                 "this machine is not an SEV-SNP guest (neither %s nor %s)",
                                 SNP_GUEST_CONFIGFS_TSM, SNP_GUEST_DEVICE);
        return r;
}
