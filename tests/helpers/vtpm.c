/* SPDX-License-Identifier: Apache-2.0 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "helpers/vtpm.h"

static Vtpm *live[16];

/* Runs argv with stdout/stderr to a log file in dir; never a shell. */
static int run(char *const argv[], const char *log)
{
        pid_t pid = fork();
        int status;

        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
                if (fd >= 0) {
                        (void) dup2(fd, STDOUT_FILENO);
                        (void) dup2(fd, STDERR_FILENO);
                }
                execvp(argv[0], argv);
                _exit(127);
        }
        if (waitpid(pid, &status, 0) < 0)
                return -errno;
        return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -EIO;
}

static void write_file(const char *path, const char *content)
{
        FILE *f = fopen(path, "we");
        if (f) {
                fputs(content, f);
                fclose(f);
        }
}

static void cleanup_all(void)
{
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (live[i])
                        vtpm_stop(live[i]);
}

int vtpm_start(Vtpm *v, bool with_ek_cert)
{
        static bool registered;
        char state[128], sock[128], ctrl[128], pidfile[128], log[128], conf[128], lconf[128],
                lopts[128], cadir[128], content[1024], dirarg[160];
        int r;

        memset(v, 0, sizeof(*v));
        (void) snprintf(v->dir, sizeof(v->dir), "/tmp/cloister-vtpm-XXXXXX");
        if (!mkdtemp(v->dir))
                return -errno;
        (void) snprintf(state, sizeof(state), "%s/state", v->dir);
        (void) snprintf(sock, sizeof(sock), "%s/sock", v->dir);
        (void) snprintf(ctrl, sizeof(ctrl), "%s/sock.ctrl", v->dir);
        (void) snprintf(pidfile, sizeof(pidfile), "%s/pid", v->dir);
        (void) snprintf(log, sizeof(log), "%s/log", v->dir);
        (void) mkdir(state, 0700);

        if (with_ek_cert) {
                /* A private swtpm-localca configuration, so the CA lives in this directory and
                 * tests neither need nor touch /var/lib/swtpm-localca. */
                (void) snprintf(conf, sizeof(conf), "%s/swtpm_setup.conf", v->dir);
                (void) snprintf(lconf, sizeof(lconf), "%s/swtpm-localca.conf", v->dir);
                (void) snprintf(lopts, sizeof(lopts), "%s/swtpm-localca.options", v->dir);
                (void) snprintf(cadir, sizeof(cadir), "%s/ca", v->dir);
                (void) mkdir(cadir, 0700);
                (void) snprintf(content, sizeof(content),
                                "create_certs_tool = /usr/bin/swtpm_localca\n"
                                "create_certs_tool_config = %s\n"
                                "create_certs_tool_options = %s\n"
                                "active_pcr_banks = sha256\n",
                                lconf, lopts);
                write_file(conf, content);
                (void) snprintf(content, sizeof(content),
                                "statedir = %s\n"
                                "signingkey = %s/signkey.pem\n"
                                "issuercert = %s/issuercert.pem\n"
                                "certserial = %s/certserial\n",
                                cadir, cadir, cadir, cadir);
                write_file(lconf, content);
                write_file(lopts, "--platform-manufacturer Cloister\n--platform-version 2.1\n"
                                  "--platform-model QEMU\n");
                (void) snprintf(v->ca_cert, sizeof(v->ca_cert), "%s/ca-bundle.pem", cadir);
                char *const argv[] = { (char *) "swtpm_setup", (char *) "--tpm2",
                                       (char *) "--tpmstate",  state,
                                       (char *) "--createek",  (char *) "--create-ek-cert",
                                       (char *) "--pcr-banks", (char *) "sha256",
                                       (char *) "--config",    conf,
                                       (char *) "--overwrite", NULL };
                r = run(argv, log);
        } else {
                char *const argv[] = { (char *) "swtpm_setup",
                                       (char *) "--tpm2",
                                       (char *) "--tpmstate",
                                       state,
                                       (char *) "--createek",
                                       (char *) "--pcr-banks",
                                       (char *) "sha256",
                                       (char *) "--overwrite",
                                       NULL };
                r = run(argv, log);
        }
        if (r < 0)
                goto fail;
        if (with_ek_cert) {
                /* The policy's caRoots: swtpm-localca's root and the intermediate that signs EK
                 * certificates (the TPM does not carry the intermediate). */
                char root[256], issuer[256];
                FILE *out = fopen(v->ca_cert, "we");

                (void) snprintf(root, sizeof(root), "%s/swtpm-localca-rootca-cert.pem", cadir);
                (void) snprintf(issuer, sizeof(issuer), "%s/issuercert.pem", cadir);
                for (int i = 0; out && i < 2; i++) {
                        FILE *in = fopen(i == 0 ? root : issuer, "re");
                        int c;
                        while (in && (c = fgetc(in)) != EOF)
                                fputc(c, out);
                        if (in)
                                fclose(in);
                }
                if (out)
                        fclose(out);
        }

        (void) snprintf(dirarg, sizeof(dirarg), "dir=%s", state);
        char server[160], ctrlarg[160], pidarg[160];
        (void) snprintf(server, sizeof(server), "type=unixio,path=%s", sock);
        (void) snprintf(ctrlarg, sizeof(ctrlarg), "type=unixio,path=%s", ctrl);
        (void) snprintf(pidarg, sizeof(pidarg), "file=%s", pidfile);
        char *const argv[] = { (char *) "swtpm",
                               (char *) "socket",
                               (char *) "--tpm2",
                               (char *) "--tpmstate",
                               dirarg,
                               (char *) "--server",
                               server,
                               (char *) "--ctrl",
                               ctrlarg,
                               (char *) "--flags",
                               (char *) "startup-clear",
                               (char *) "--pid",
                               pidarg,
                               (char *) "--daemon",
                               NULL };
        r = run(argv, log);
        if (r < 0)
                goto fail;
        /* --daemon returns once the sockets exist; read the pid to stop it later. */
        for (int i = 0; i < 100 && v->pid <= 0; i++) {
                FILE *f = fopen(pidfile, "re");
                if (f) {
                        if (fscanf(f, "%d", &v->pid) != 1)
                                v->pid = 0;
                        fclose(f);
                }
                if (v->pid <= 0) {
                        struct timespec ts = { 0, 20 * 1000 * 1000 };
                        (void) nanosleep(&ts, NULL);
                }
        }
        if (v->pid <= 0) {
                r = -ETIMEDOUT;
                goto fail;
        }
        (void) snprintf(v->tcti, sizeof(v->tcti), "swtpm:path=%s", sock);
        if (!registered) {
                atexit(cleanup_all);
                registered = true;
        }
        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (!live[i]) {
                        live[i] = v;
                        break;
                }
        return 0;
fail:
        fprintf(stderr, "vtpm: swtpm failed to start, see %s\n", log);
        return r;
}

void vtpm_stop(Vtpm *v)
{
        char *const argv[] = { (char *) "rm", (char *) "-rf", v->dir, NULL };

        for (size_t i = 0; i < sizeof(live) / sizeof(live[0]); i++)
                if (live[i] == v)
                        live[i] = NULL;
        if (v->pid > 0) {
                (void) kill(v->pid, SIGTERM);
                for (int i = 0; i < 50 && kill(v->pid, 0) == 0; i++) {
                        struct timespec ts = { 0, 10 * 1000 * 1000 };
                        (void) nanosleep(&ts, NULL);
                }
                v->pid = 0;
        }
        if (v->dir[0])
                (void) run(argv, "/dev/null");
        v->dir[0] = 0;
}
