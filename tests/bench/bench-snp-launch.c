/* SPDX-License-Identifier: Apache-2.0 */
/*
 * `cloister-measure snp-launch` for 1, 8 and 64 vCPUs against `sha384sum` of the same firmware
 * file, both run as processes in interleaved rounds of the same run (median of the per-round
 * ratios). The firmware is Debian's OVMF.fd (2 MiB, the ovmf package, scripts/install-deps), or
 * a 4 MiB image built from the AmdSev test fixture where it is missing; with Debian's, the 4 MiB
 * image is measured too (for information), and `openssl dgst -sha384` of the same file shows what
 * any program that starts libcrypto costs against sha384sum.
 *
 * Growth with the vCPU count, in process (the firmware digest given in advance, so only the
 * metadata sections and the VMSAs are measured): the cost of each vCPU past the first at 64
 * vCPUs must not exceed 1.5x that at 8 (linear, not worse).
 */
#include <fcntl.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/snp-launch.h"
#include "helpers/bench.h"
#include "helpers/unit.h"

#define DEBIAN_OVMF "/usr/share/ovmf/OVMF.fd"

extern char **environ;

static double run(char *const argv[])
{
        posix_spawn_file_actions_t fa;
        double t0 = bench_now();
        pid_t pid;
        int status;

        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
        if (posix_spawn(&pid, argv[0], &fa, NULL, argv, environ) != 0 ||
            waitpid(pid, &status, 0) != pid || !WIFEXITED(status) || WEXITSTATUS(status) != 0) {
                fprintf(stderr, "bench: %s failed\n", argv[0]);
                exit(1);
        }
        posix_spawn_file_actions_destroy(&fa);
        return bench_now() - t0;
}

/* A 4 MiB firmware (the size of trixie's and AWS's OVMF): the AmdSev fixture at the end of
 * 0xFF bytes. */
static const char *firmware_4m(char *path, size_t size)
{
        uint8_t *suffix = NULL, *image;
        size_t n;
        FILE *f;

        if (read_full_file(testdata_path("snp-measure/ovmf_AmdSev_suffix.bin"), 1 << 20, &suffix,
                           &n) < 0 ||
            !(image = malloc(4 << 20))) {
                fprintf(stderr, "bench: no firmware to measure\n");
                exit(1);
        }
        memset(image, 0xFF, 4 << 20);
        memcpy(image + (4 << 20) - n, suffix, n);
        (void) snprintf(path, size, "%s/bench-ovmf.fd", test_tmpdir());
        f = fopen(path, "we");
        if (!f || fwrite(image, 1, 4 << 20, f) != 4 << 20 || fclose(f) != 0) {
                fprintf(stderr, "bench: cannot write %s\n", path);
                exit(1);
        }
        free(image);
        free(suffix);
        return path;
}

/* Median seconds of one in-process launch digest for vcpus vCPUs, from a given firmware digest. */
static double digest_seconds(const uint8_t *fw, size_t size, const uint8_t seed[48], unsigned vcpus,
                             int rounds)
{
        SnpLaunchInput in = { .firmware = fw,
                              .firmware_size = size,
                              .firmware_digest = seed,
                              .vcpus = vcpus,
                              .vcpu_signature = 0x00A00F11,
                              .guest_features = 1 };
        double *t = calloc((size_t) rounds, sizeof(double)), m;
        uint8_t ld[48];

        for (int i = 0; i < rounds; i++) {
                double t0 = bench_now();
                if (snp_launch_digest(&in, ld, NULL) < 0) {
                        fprintf(stderr, "bench: launch digest failed\n");
                        exit(1);
                }
                t[i] = bench_now() - t0;
        }
        m = bench_median(t, rounds);
        free(t);
        return m;
}

int main(int argc, char *argv[])
{
        static const unsigned counts[] = { 1, 8, 64 };
        int n = argc > 1 ? bench_pairs(argv[1]) : 200, failed = 0, rounds = n / 4 + 5;
        double ratio4m = 0;
        const char *out = argc > 2 ? argv[2] : "build/bench/snp-launch.json";
        char self[4096], measure[4096 + 64], fwpath[4096], vc[3][8];
        double *base = calloc((size_t) rounds, sizeof(double)), base_m, ratio[3], t_d[4];
        double *r[3];
        const char *fw;
        uint8_t *fwdata = NULL, seed[48];
        size_t fwsize;
        ssize_t k;

        /* cloister-measure beside this bench: $(BUILD)/bench/.. /bin/ */
        k = readlink("/proc/self/exe", self, sizeof(self) - 1);
        if (k <= 0) {
                fprintf(stderr, "bench: cannot find myself\n");
                return 1;
        }
        self[k] = 0;
        *strrchr(self, '/') = 0;
        (void) snprintf(measure, sizeof(measure), "%s/../bin/cloister-measure", self);
        fw = access(DEBIAN_OVMF, R_OK) == 0 ? DEBIAN_OVMF : firmware_4m(fwpath, sizeof(fwpath));
        for (int c = 0; c < 3; c++) {
                r[c] = calloc((size_t) rounds, sizeof(double));
                (void) snprintf(vc[c], sizeof(vc[c]), "%u", counts[c]);
        }
        char *sha[] = { (char *) "/usr/bin/sha384sum", (char *) fw, NULL };
        char *ossl[] = { (char *) "/usr/bin/openssl", (char *) "dgst", (char *) "-sha384",
                         (char *) fw, NULL };
        double *o = calloc((size_t) rounds, sizeof(double));
        for (int i = -3; i < rounds; i++) {
                double b = run(sha);
                /* OpenSSL's own CLI hashing the same file once: the floor of any program that
                 * starts libcrypto, for reference. */
                double t_o = access(ossl[0], X_OK) == 0 ? run(ossl) : 0;
                if (i >= 0)
                        o[i] = t_o / b;
                for (int c = 0; c < 3; c++) {
                        char *m[] = { measure,
                                      (char *) "snp-launch",
                                      (char *) "--firmware",
                                      (char *) fw,
                                      (char *) "--vcpus",
                                      vc[c],
                                      (char *) "--vcpu-type",
                                      (char *) "EPYC-Milan",
                                      NULL };
                        double t = run(m);
                        if (i >= 0)
                                r[c][i] = t / b;
                }
                if (i >= 0)
                        base[i] = b;
        }
        base_m = bench_median(base, rounds);
        double ratio_ossl = bench_median(o, rounds);
        free(o);
        for (int c = 0; c < 3; c++)
                ratio[c] = bench_median(r[c], rounds);
        /* The same at 1 vCPU on a 4 MiB firmware: the fixed cost of starting the program
         * weighs half as much. */
        if (strcmp(fw, DEBIAN_OVMF) == 0) {
                const char *fw4 = firmware_4m(fwpath, sizeof(fwpath));
                char *sha4[] = { (char *) "/usr/bin/sha384sum", (char *) fw4, NULL };
                char *m4[] = { measure,      (char *) "snp-launch", (char *) "--firmware",
                               (char *) fw4, (char *) "--vcpus",    (char *) "1",
                               NULL };
                for (int i = -3; i < rounds; i++) {
                        double b = run(sha4), t = run(m4);
                        if (i >= 0)
                                r[0][i] = t / b;
                }
                ratio4m = bench_median(r[0], rounds);
        }

        /* In process: growth with the vCPU count. */
        if (read_full_file(fw, SNP_FIRMWARE_SIZE_MAX, &fwdata, &fwsize) < 0 ||
            snp_firmware_digest(fwdata, fwsize, seed, NULL) < 0) {
                fprintf(stderr, "bench: cannot read %s\n", fw);
                return 1;
        }
        /* In process, whole launch at 1 vCPU against one SHA-384 over the file's bytes. */
        double *lib = calloc((size_t) rounds * 4, sizeof(double));
        for (int i = 0; i < 4 * rounds; i++) {
                SnpLaunchInput in = { .firmware = fwdata,
                                      .firmware_size = fwsize,
                                      .vcpus = 1,
                                      .vcpu_signature = 0x00A00F11,
                                      .guest_features = 1 };
                IoVec v = { fwdata, fwsize };
                uint8_t d1[48], d2[48];
                double t0 = bench_now(), t1, t2;

                (void) crypto_digest("SHA384", &v, 1, d1, sizeof(d1));
                t1 = bench_now();
                (void) snp_launch_digest(&in, d2, NULL);
                t2 = bench_now();
                lib[i] = (t2 - t1) / (t1 - t0);
        }
        double ratio_lib = bench_median(lib, 4 * rounds);
        free(lib);
        static const unsigned grow[] = { 1, 8, 64, 512 };
        for (int c = 0; c < 4; c++)
                t_d[c] = digest_seconds(fwdata, fwsize, seed, grow[c], 4 * rounds);
        double per8 = (t_d[1] - t_d[0]) / 7, per64 = (t_d[2] - t_d[0]) / 63,
               per512 = (t_d[3] - t_d[0]) / 511, growth = per64 / per8;

        printf("firmware %s (%zu bytes), %d rounds\n", fw, fwsize, rounds);
        printf("%-34s %12s %12s %8s %-7s %s\n", "name", "baseline", "candidate", "ratio", "target",
               "verdict");
        printf("%-34s %12.6f %12.6f %8.3f <=%-5.2f %s\n", "snp-launch-1vcpu-vs-sha384sum", base_m,
               base_m * ratio[0], ratio[0], 1.5, ratio[0] <= 1.5 ? "PASS" : "FAIL");
        printf("%-34s %12.6f %12.6f %8.3f %-7s %s\n", "snp-launch-8vcpu-vs-sha384sum", base_m,
               base_m * ratio[1], ratio[1], "-", "info");
        printf("%-34s %12.6f %12.6f %8.3f %-7s %s\n", "snp-launch-64vcpu-vs-sha384sum", base_m,
               base_m * ratio[2], ratio[2], "-", "info");
        if (ratio_ossl > 0)
                printf("%-34s %12s %12s %8.3f %-7s %s\n", "openssl-dgst-sha384-vs-sha384sum", "",
                       "", ratio_ossl, "-", "info");
        printf("%-34s %12s %12s %8.3f %-7s %s\n", "snp-launch-in-process-vs-one-sha384", "", "",
               ratio_lib, "-", "info");
        if (ratio4m > 0)
                printf("%-34s %12s %12s %8.3f %-7s %s\n", "snp-launch-1vcpu-4MiB-vs-sha384sum", "",
                       "", ratio4m, "-", "info");
        printf("%-34s %12.9f %12.9f %8.3f <=%-5.2f %s\n", "snp-vcpu-cost-at-64-vs-at-8", per8,
               per64, growth, 1.5, growth <= 1.5 ? "PASS" : "FAIL");
        printf("(per extra vCPU in process: %.2f us at 8, %.2f us at 64, %.2f us at 512)\n",
               per8 * 1e6, per64 * 1e6, per512 * 1e6);
        failed = (ratio[0] > 1.5) + (growth > 1.5);
        {
                json_t *j = json_pack("{s:s,s:i,s:i,s:f,s:f,s:f,s:f,s:f,s:f,s:f}", "firmware", fw,
                                      "firmwareSize", (int) fwsize, "rounds", rounds,
                                      "sha384sumSeconds", base_m, "ratio1", ratio[0], "ratio8",
                                      ratio[1], "ratio64", ratio[2], "perVcpuSeconds8", per8,
                                      "perVcpuSeconds64", per64, "growth", growth);
                if (j)
                        (void) json_object_set_new(j, "ratioInProcess", json_real(ratio_lib));
                if (j)
                        (void) json_object_set_new(j, "ratioOpensslDgst", json_real(ratio_ossl));
                if (j && ratio4m > 0)
                        (void) json_object_set_new(j, "ratio1FourMiB", json_real(ratio4m));
                char *text = NULL;
                FILE *f = fopen(out, "we");
                if (j && f && json_dump_pretty(j, &text) >= 0)
                        fprintf(f, "%s\n", text);
                if (f)
                        fclose(f);
                free(text);
                json_decref(j);
        }
        printf("bench: %d passed, %d failed\n", 2 - failed, failed);
        for (int c = 0; c < 3; c++)
                free(r[c]);
        free(base);
        free(fwdata);
        return failed ? 1 : 0;
}
