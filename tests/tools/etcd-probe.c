/* SPDX-License-Identifier: Apache-2.0 */
/*
 * etcd-probe: drives the etcd client (lib/etcd) from the tests, against a real etcd or a
 * hostile one.
 *
 *   etcd-probe --endpoints URLS --cert F --key F --ca F [--repeat N] get KEY
 *   etcd-probe ... put KEY VALUE
 *   etcd-probe ... create KEY VALUE      (a transaction: put only if KEY does not exist)
 *
 * Prints one line per call: "ok REVISION ..." (get: the value, or "absent"; create: "created" or
 * "exists") or "error ERRNO CHECK: MESSAGE", and exits 1 if any call failed. With --repeat, the
 * same call N times on one client (the highest revision seen carries over between them).
 */
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cloister/etcd.h"

static int one(EtcdClient *c, const char *verb, const char *key, const char *value)
{
        Diag d;
        int r;

        diag_clear(&d);
        if (strcmp(verb, "get") == 0) {
                EtcdRange rg = {};
                r = etcd_range(c, key, NULL, 0, &rg, &d);
                if (r >= 0) {
                        if (rg.n_kvs == 1)
                                printf("ok %" PRId64 " %.*s\n", rg.revision,
                                       (int) rg.kvs[0].value_size, (const char *) rg.kvs[0].value);
                        else
                                printf("ok %" PRId64 " absent\n", rg.revision);
                        etcd_range_done(&rg);
                }
        } else if (strcmp(verb, "put") == 0) {
                int64_t rev;
                r = etcd_put(c, key, value, strlen(value), &rev, &d);
                if (r >= 0)
                        printf("ok %" PRId64 "\n", rev);
        } else {
                EtcdCompare cmp = { .key = key,
                                    .target = ETCD_COMPARE_CREATE,
                                    .result = ETCD_EQUAL };
                EtcdOp put = {
                        .type = ETCD_OP_PUT, .key = key, .value = value, .value_size = strlen(value)
                };
                EtcdOp get = { .type = ETCD_OP_RANGE, .key = key };
                EtcdTxnResult t = {};
                r = etcd_txn(c, &cmp, 1, &put, 1, &get, 1, &t, &d);
                if (r >= 0) {
                        printf("ok %" PRId64 " %s\n", t.revision,
                               t.succeeded ? "created" : "exists");
                        etcd_txn_result_done(&t);
                }
        }
        if (r < 0)
                printf("error %d %s: %s\n", -r, d.check, d.message);
        fflush(stdout);
        return r;
}

int main(int argc, char *argv[])
{
        static const struct option options[] = {
                { "endpoints", required_argument, NULL, 'e' },
                { "cert", required_argument, NULL, 'c' },
                { "key", required_argument, NULL, 'k' },
                { "ca", required_argument, NULL, 'a' },
                { "repeat", required_argument, NULL, 'n' },
                { "timeout-ms", required_argument, NULL, 't' },
                {},
        };
        EtcdConfig cfg = {};
        EtcdClient *c = NULL;
        unsigned repeat = 1;
        int opt, failed = 0;
        Diag d;

        while ((opt = getopt_long(argc, argv, "", options, NULL)) >= 0)
                switch (opt) {
                case 'e':
                        cfg.endpoints = optarg;
                        break;
                case 'c':
                        cfg.cert = optarg;
                        break;
                case 'k':
                        cfg.key = optarg;
                        break;
                case 'a':
                        cfg.ca = optarg;
                        break;
                case 'n':
                        repeat = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                case 't':
                        cfg.total_timeout_ms = (unsigned) strtoul(optarg, NULL, 10);
                        break;
                default:
                        return 2;
                }
        if (argc - optind < 2 || (strcmp(argv[optind], "get") != 0 && argc - optind < 3)) {
                fprintf(stderr, "usage: etcd-probe --endpoints URLS --cert F --key F --ca F "
                                "get KEY | put KEY VALUE | create KEY VALUE\n");
                return 2;
        }
        diag_clear(&d);
        if (etcd_client_new(&cfg, &c, &d) < 0) {
                printf("error config %s\n", d.message);
                return 1;
        }
        for (unsigned i = 0; i < repeat; i++)
                if (one(c, argv[optind], argv[optind + 1], argv[optind + 2]) < 0)
                        failed = 1;
        etcd_client_free(c);
        return failed;
}
