/* SPDX-License-Identifier: Apache-2.0 */
/* Running terraform for create and terminate (cli-terraform.h). */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli-terraform.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/macro.h"
#include "cloister/spawn.h"
#include "cloister/verbs.h"

#define TF_ARGS_MAX     16
#define TF_ERROR_LINES  12
#define TF_LOG_READ_MAX (4U * 1024U * 1024U)
#define TF_MODULE_FILES 256

static void closedirp(DIR **d)
{
        if (*d)
                (void) closedir(*d);
}

static int find_on_path(const char *name, char **ret)
{
        const char *path = getenv("PATH");

        for (const char *p = path; p && *p;) {
                const char *colon = strchr(p, ':');
                size_t n = colon ? (size_t) (colon - p) : strlen(p);
                char *cand = NULL;

                if (n > 0 && asprintf(&cand, "%.*s/%s", (int) n, p, name) < 0)
                        return -ENOMEM;
                if (cand && access(cand, X_OK) == 0) {
                        *ret = cand;
                        return 0;
                }
                free(cand);
                p = colon ? colon + 1 : NULL;
        }
        return -ENOENT;
}

/* "1.9.8" or "1.10.0-beta1" → major, minor; anything else is refused. */
static int parse_version(const char *v, unsigned *major, unsigned *minor)
{
        char *end;
        unsigned long a, b;

        if (!v || v[0] < '0' || v[0] > '9')
                return -EBADMSG;
        a = strtoul(v, &end, 10);
        if (*end != '.' || end[1] < '0' || end[1] > '9')
                return -EBADMSG;
        b = strtoul(end + 1, &end, 10);
        if ((*end != '.' && *end != '\0') || a > 1000 || b > 1000)
                return -EBADMSG;
        *major = (unsigned) a;
        *minor = (unsigned) b;
        return 0;
}

int tf_find(const char *given, Terraform *tf)
{
        char tmp[] = "/tmp/cloister-tf-version-XXXXXX";
        _cleanup_(json_decrefp) json_t *j = NULL;
        _cleanup_(freep) uint8_t *data = NULL;
        const char *v;
        unsigned major = 0, minor = 0;
        size_t size = 0;
        Diag d;
        int fd, r;

        *tf = (Terraform){};
        if (given) {
                if (access(given, X_OK) < 0)
                        return log_error_errno(
                                -errno, "--terraform %s: not an executable file (%m).", given);
                /* What was checked is what runs: never a PATH lookup of a bare name. */
                tf->binary = realpath(given, NULL);
        } else {
                r = find_on_path("terraform", &tf->binary);
                if (r == -ENOENT)
                        r = find_on_path("tofu", &tf->binary);
                if (r == -ENOENT)
                        return log_error_errno(r,
                                               "Neither terraform nor tofu is on PATH: install "
                                               "Terraform >= %u.%u or OpenTofu, or pass "
                                               "--terraform PATH.",
                                               TF_VERSION_MIN_MAJOR, TF_VERSION_MIN_MINOR);
                if (r < 0)
                        return log_oom();
        }
        if (!tf->binary)
                return log_oom();
        fd = mkstemp(tmp);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot create a temporary file: %m");
        close(fd);
        {
                char *argv[] = { tf->binary, (char *) "version", (char *) "-json", NULL };
                r = spawn_wait_output(argv, tmp, "/dev/null");
        }
        if (r == 0)
                r = read_full_file(tmp, 64 * 1024, &data, &size);
        (void) unlink(tmp);
        if (r != 0)
                return log_error_errno(r < 0 ? r : -EPROTO,
                                       "%s version -json failed (%s): is it terraform or tofu?",
                                       tf->binary, r < 0 ? strerror(-r) : "non-zero exit");
        diag_clear(&d);
        r = json_parse_buffer(data, size, "terraform version -json", &j, &d);
        v = r >= 0 ? json_string_value(json_object_get(j, "terraform_version")) : NULL;
        if (!v || parse_version(v, &major, &minor) < 0 || strlen(v) >= sizeof(tf->version))
                return log_error_errno(-EBADMSG,
                                       "%s version -json did not report a terraform_version "
                                       "this understands.",
                                       tf->binary);
        if (major < TF_VERSION_MIN_MAJOR ||
            (major == TF_VERSION_MIN_MAJOR && minor < TF_VERSION_MIN_MINOR))
                return log_error_errno(-EPROTONOSUPPORT,
                                       "%s is version %s; Cloister's modules need >= %u.%u. "
                                       "Install a newer Terraform or OpenTofu, or pass "
                                       "--terraform PATH.",
                                       tf->binary, v, TF_VERSION_MIN_MAJOR, TF_VERSION_MIN_MINOR);
        (void) snprintf(tf->version, sizeof(tf->version), "%s", v);
        (void) snprintf(tf->log, sizeof(tf->log), "%s/%s", TF_WORKSPACE, TF_OUTPUT_LOG);
        return 0;
}

void tf_done(Terraform *tf)
{
        free(tf->binary);
        tf->binary = NULL;
}

int tf_set_log_level(const char *level)
{
        static const char *const levels[] = { "TRACE", "DEBUG", "INFO", "WARN", "ERROR", NULL };
        char cwd[PATH_MAX], path[PATH_MAX + 64];
        bool ok = false;

        for (size_t i = 0; levels[i]; i++)
                ok = ok || strcmp(level, levels[i]) == 0;
        if (!ok)
                return log_error_errno(
                        -EUSAGE, "--tf-log %s: one of TRACE, DEBUG, INFO, WARN, ERROR.", level);
        if (!getcwd(cwd, sizeof(cwd)))
                return log_error_errno(-errno, "Cannot tell the current directory: %m");
        /* -chdir changes terraform's directory: the log path must be absolute. */
        (void) snprintf(path, sizeof(path), "%s/%s/terraform.log", cwd, TF_WORKSPACE);
        if (setenv("TF_LOG", level, 1) < 0 || setenv("TF_LOG_PATH", path, 1) < 0)
                return log_oom();
        return 0;
}

/* Terraform's diagnostics from the log: the lines of each "Error:" block. */
static void print_errors(const char *log_path)
{
        _cleanup_(freep) uint8_t *data = NULL;
        size_t size = 0, printed = 0;
        bool in_error = false;
        char *save = NULL;

        if (read_full_file(log_path, TF_LOG_READ_MAX, &data, &size) < 0 || !data)
                return;
        for (char *line = strtok_r((char *) data, "\n", &save); line && printed < TF_ERROR_LINES;
             line = strtok_r(NULL, "\n", &save)) {
                const char *s = line;
                while (*s == ' ' || *s == '\t' || (unsigned char) *s == 0xe2 ||
                       (unsigned char) *s == 0x94 || (unsigned char) *s == 0x82)
                        s++; /* "│ " frames of newer releases */
                if (strncmp(s, "Error:", 6) == 0)
                        in_error = true;
                else if (strncmp(s, "Warning:", 8) == 0)
                        in_error = false;
                if (in_error && *s) {
                        fprintf(stderr, "  %s\n", s);
                        printed++;
                }
        }
}

static volatile sig_atomic_t interrupted;

static void on_interrupt(int sig)
{
        (void) sig;
        interrupted = 1;
}

int tf_run(const Terraform *tf, const char *stdout_path, const char *const args[])
{
        struct sigaction sa = { .sa_handler = on_interrupt }, old;
        char *argv[TF_ARGS_MAX + 3];
        char chdir_arg[] = "-chdir=" TF_WORKSPACE;
        const char *arg = args[0];
        size_t n = 0;
        int r;

        argv[n++] = tf->binary;
        argv[n++] = chdir_arg;
        for (size_t i = 0; args[i] && n < TF_ARGS_MAX; i++)
                argv[n++] = (char *) args[i];
        argv[n] = NULL;
        /* The spawn helper appends: a capture starts empty. */
        if (stdout_path && unlink(stdout_path) < 0 && errno != ENOENT)
                return log_error_errno(-errno, "Cannot remove %s: %m", stdout_path);
        /* Ctrl-C reaches terraform too (the terminal's process group): it stops cleanly and
         * saves its state. This process outlives it (a handler, not SIG_IGN, which the child
         * would inherit), so the caller can still roll back or say what is left. */
        interrupted = 0;
        (void) sigemptyset(&sa.sa_mask);
        (void) sigaction(SIGINT, &sa, &old);
        r = spawn_wait_output(argv, stdout_path ?: tf->log, tf->log);
        (void) sigaction(SIGINT, &old, NULL);
        if (interrupted)
                log_error("Interrupted: terraform %s was stopped (Terraform saved its state).",
                          arg);
        if (r == -ENOENT || r == 126)
                return log_error_errno(-ENOENT, "Cannot run %s.", tf->binary);
        if (r < 0)
                return log_error_errno(r, "terraform %s: %m", arg);
        if (r > 0) {
                log_error("terraform %s failed (exit status %d):", arg, r);
                print_errors(tf->log);
                fprintf(stderr, "  Terraform's whole output: %s\n", tf->log);
                return -EPROTO;
        }
        return 0;
}

static bool is_exe_dir_candidate(const char *dir, const char *provider)
{
        char path[PATH_MAX];
        int n = snprintf(path, sizeof(path), "%s/%s/main.tf", dir, provider);
        return n > 0 && (size_t) n < sizeof(path) && access(path, R_OK) == 0;
}

int tf_modules_dir(const char *given, const char *provider, char **ret)
{
        char exe[PATH_MAX], cand[PATH_MAX + 64];
        const char *env = getenv("CLOISTER_TERRAFORM_MODULES");
        static const char *const rel[] = { "../share/cloister/terraform", "../../terraform", NULL };
        ssize_t n;

        if (given || env) {
                const char *d = given ?: env;
                if (!is_exe_dir_candidate(d, provider))
                        return log_error_errno(-ENOENT,
                                               "%s has no %s/main.tf: point %s at Cloister's "
                                               "terraform/ directory.",
                                               d, provider,
                                               given ? "--modules" : "CLOISTER_TERRAFORM_MODULES");
                *ret = realpath(d, NULL);
                return *ret ? 0 : log_oom();
        }
        n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
        if (n > 0) {
                char *slash;
                exe[n] = '\0';
                slash = strrchr(exe, '/');
                if (slash)
                        *slash = '\0';
                for (size_t i = 0; rel[i]; i++) {
                        (void) snprintf(cand, sizeof(cand), "%s/%s", exe, rel[i]);
                        if (is_exe_dir_candidate(cand, provider)) {
                                *ret = realpath(cand, NULL);
                                return *ret ? 0 : log_oom();
                        }
                }
        }
        return log_error_errno(-ENOENT,
                               "Cannot find Cloister's Terraform modules (terraform/%s): pass "
                               "--modules DIR or set CLOISTER_TERRAFORM_MODULES.",
                               provider);
}

static bool module_file(const char *name)
{
        size_t n = strlen(name);
        return (n > 3 && strcmp(name + n - 3, ".tf") == 0) ||
               strcmp(name, ".terraform.lock.hcl") == 0;
}

static int copy_dir(const char *src, const char *dst, unsigned depth, unsigned *files)
{
        _cleanup_(closedirp) DIR *d = NULL;
        struct dirent *e;
        int r;

        if (depth > 4)
                return -ELOOP;
        if (mkdir(dst, 0700) < 0 && errno != EEXIST)
                return -errno;
        d = opendir(src);
        if (!d)
                return -errno;
        while ((e = readdir(d))) {
                char s[PATH_MAX], t[PATH_MAX];
                struct stat st;

                if (e->d_name[0] == '.' && strcmp(e->d_name, ".terraform.lock.hcl") != 0)
                        continue;
                if (snprintf(s, sizeof(s), "%s/%s", src, e->d_name) >= (int) sizeof(s) ||
                    snprintf(t, sizeof(t), "%s/%s", dst, e->d_name) >= (int) sizeof(t))
                        return -ENAMETOOLONG;
                if (lstat(s, &st) < 0)
                        return -errno;
                if (S_ISDIR(st.st_mode)) {
                        r = copy_dir(s, t, depth + 1, files);
                        if (r < 0)
                                return r;
                } else if (S_ISREG(st.st_mode) && module_file(e->d_name)) {
                        _cleanup_(freep) uint8_t *data = NULL;
                        size_t size = 0;

                        if (++*files > TF_MODULE_FILES)
                                return -EMFILE;
                        r = read_full_file(s, 1024 * 1024, &data, &size);
                        if (r >= 0)
                                r = write_file_atomic(t, data ?: (uint8_t *) "", size, 0600,
                                                      WRITE_FILE_EXCLUSIVE);
                        if (r < 0)
                                return r;
                }
        }
        return 0;
}

int tf_copy_module(const char *src, const char *dst)
{
        unsigned files = 0;
        int r = copy_dir(src, dst, 0, &files);

        if (r < 0)
                return log_error_errno(r, "Cannot copy the module %s to %s: %m", src, dst);
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
        (void) st;
        (void) ftw;
        if (flag == FTW_DP)
                return rmdir(path) < 0 ? -1 : 0;
        return unlink(path) < 0 ? -1 : 0;
}

int tf_workspace_remove(void)
{
        if (access(TF_WORKSPACE, F_OK) < 0)
                return 0;
        if (nftw(TF_WORKSPACE, remove_entry, 16, FTW_DEPTH | FTW_PHYS) < 0)
                return log_error_errno(-errno, "Cannot remove %s/: %m. Remove it by hand.",
                                       TF_WORKSPACE);
        return 0;
}

int tf_state_uid(char uid[static 16])
{
        _cleanup_(json_decrefp) json_t *j = NULL;
        json_t *res, *e;
        size_t i;
        Diag d;

        uid[0] = '\0';
        diag_clear(&d);
        if (json_parse_file(TF_WORKSPACE "/terraform.tfstate", 64U * 1024U * 1024U, &j, &d) < 0)
                return -ENOENT;
        res = json_object_get(j, "resources");
        json_array_foreach (res, i, e) {
                const char *t = json_string_value(json_object_get(e, "type"));
                const char *n = json_string_value(json_object_get(e, "name"));
                json_t *inst = json_array_get(json_object_get(e, "instances"), 0);
                const char *hex = json_string_value(
                        json_object_get(json_object_get(inst, "attributes"), "hex"));

                if (t && n && strcmp(t, "random_id") == 0 && strcmp(n, "uid") == 0 && hex &&
                    strlen(hex) < 16 && strspn(hex, "0123456789abcdef") == strlen(hex) && *hex) {
                        memcpy(uid, hex, strlen(hex) + 1);
                        return 0;
                }
        }
        return -ENOENT;
}

void tf_print_manual_cleanup(const char *provider, const char *uid)
{
        if (!uid || !*uid) {
                fprintf(stderr,
                        "  The cluster's uid is not known yet: %s/terraform.tfstate lists what "
                        "Terraform created.\n",
                        TF_WORKSPACE);
                return;
        }
        fprintf(stderr, "  Every resource of this cluster carries the label/tag cloister-uid=%s:\n",
                uid);
        if (strcmp(provider, "gcp") == 0)
                fprintf(stderr,
                        "    gcloud asset search-all-resources --scope=projects/PROJECT "
                        "--query='labels.cloister-uid:%s'\n",
                        uid);
        else if (strcmp(provider, "azure") == 0)
                fprintf(stderr, "    az resource list --tag cloister-uid=%s\n", uid);
        else if (strcmp(provider, "aws") == 0)
                fprintf(stderr,
                        "    aws resourcegroupstaggingapi get-resources --tag-filters "
                        "Key=cloister-uid,Values=%s\n",
                        uid);
}

int tf_ask(const char *question, bool yes)
{
        char line[16];

        if (yes)
                return 1;
        if (!isatty(STDIN_FILENO))
                return log_error_errno(-EINVAL,
                                       "No terminal to ask '%s': pass -y (--yes) to go ahead "
                                       "without asking.",
                                       question);
        printf("%s [y/N] ", question);
        fflush(stdout);
        if (!fgets(line, sizeof(line), stdin))
                return 0;
        return strcmp(line, "y\n") == 0 || strcmp(line, "yes\n") == 0 || strcmp(line, "Y\n") == 0;
}
