/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The workspace: the directory whose files every verb takes its defaults from (the current one,
 * or -C DIR / --workspace DIR as git's -C: as if run there). Its files are listed in one place,
 * docs/workflows.md, "The workspace".
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"

/* Takes argv[i] (and its value) out of argv; returns the value or NULL if it is not -C or
 * --workspace. *consumed: how many elements were taken (0, 1 or 2). */
static const char *workspace_option(int argc, char *argv[], int i, int *consumed)
{
        const char *a = argv[i];

        *consumed = 0;
        if (strncmp(a, "--workspace=", strlen("--workspace=")) == 0) {
                *consumed = 1;
                return a + strlen("--workspace=");
        }
        if (strcmp(a, "-C") != 0 && strcmp(a, "--workspace") != 0)
                return NULL;
        *consumed = i + 1 < argc ? 2 : 1;
        return i + 1 < argc ? argv[i + 1] : "";
}

int cli_global_options(int *argc, char *argv[], const char **ret_workspace, bool *ret_debug)
{
        const char *workspace = NULL;
        bool debug = false;
        int out = 1;

        for (int i = 1; i < *argc && argv[i];) {
                int consumed;
                const char *value;

                /* After "--" everything belongs to someone else ('mini exec -- CMD'). */
                if (strcmp(argv[i], "--") == 0) {
                        while (i < *argc)
                                argv[out++] = argv[i++];
                        break;
                }
                if (strcmp(argv[i], "--debug") == 0) {
                        debug = true;
                        i++;
                        continue;
                }
                value = workspace_option(*argc, argv, i, &consumed);
                if (!value) {
                        argv[out++] = argv[i++];
                        continue;
                }
                if (consumed == 1 && strncmp(argv[i], "--workspace=", 12) != 0)
                        return log_error_errno(-EUSAGE,
                                               "cloister: %s needs a directory: -C DIR or "
                                               "--workspace DIR.",
                                               argv[i]);
                if (!*value)
                        return log_error_errno(-EUSAGE,
                                               "cloister: --workspace= needs a directory.");
                if (workspace && strcmp(workspace, value) != 0)
                        return log_error_errno(-EUSAGE,
                                               "cloister: two workspaces given ('%s' and '%s'): "
                                               "give one.",
                                               workspace, value);
                workspace = value;
                i += consumed;
        }
        argv[out] = NULL;
        *argc = out;
        *ret_workspace = workspace;
        *ret_debug = debug;
        return 0;
}

static bool workspace_given;

bool cli_workspace_given(void)
{
        return workspace_given;
}

int cli_workspace_enter(const char *dir)
{
        struct stat st;

        if (stat(dir, &st) < 0) {
                if (errno == ENOENT)
                        return log_error_errno(-EUSAGE,
                                               "cloister: workspace '%s' does not exist: create "
                                               "it (mkdir -p '%s') or give another -C DIR.",
                                               dir, dir);
                return log_error_errno(-errno, "cloister: workspace '%s' cannot be used: %m.", dir);
        }
        if (!S_ISDIR(st.st_mode))
                return log_error_errno(-EUSAGE,
                                       "cloister: workspace '%s' is not a directory: -C takes "
                                       "the directory that holds cloister.json and "
                                       "cloister-state.json.",
                                       dir);
        if (chdir(dir) < 0)
                return log_error_errno(-errno,
                                       "cloister: cannot enter workspace '%s': %m. Check its "
                                       "permissions, or give another -C DIR.",
                                       dir);
        /* A directory one can enter but not list: reading the state file would still work, yet
         * writing or finding files would fail later with a less clear message. */
        if (access(".", R_OK | X_OK) < 0)
                return log_error_errno(-errno,
                                       "cloister: cannot read workspace '%s': %m. Check its "
                                       "permissions, or give another -C DIR.",
                                       dir);
        log_debug("Workspace: %s", dir);
        workspace_given = true;
        return 0;
}

const char *cli_workspace_config_default(const char *policy, const char **config_path)
{
        if (policy || *config_path)
                return NULL;
        if (access(CLI_CONFIG_FILE_DEFAULT, F_OK) < 0)
                return NULL;
        *config_path = CLI_CONFIG_FILE_DEFAULT;
        log_debug("No --policy or --config: the workspace's %s.", CLI_CONFIG_FILE_DEFAULT);
        return *config_path;
}

int cli_workspace_cluster(const char *state_path, bool required, uint8_t cid[static 32],
                          char *endpoint, size_t endpoint_size)
{
        _cleanup_(json_decrefp) json_t *st = NULL;
        const char *status;
        Diag d;
        int r;

        if (!required && access(state_path, F_OK) < 0 && errno == ENOENT)
                return 0;
        diag_clear(&d);
        r = json_parse_file(state_path, JSON_FILE_SIZE_MAX, &st, &d);
        if (r < 0)
                return log_error_errno(r, "%s (written by 'cloister apply').", d.message);
        status = json_string_value(json_object_get(st, "status"));
        /* 'created': the nodes exist, no cluster yet; 'pending': init not finished. Neither is
         * a cluster whose ID a member shows. */
        if (!required && (!status || strcmp(status, "initialized") != 0)) {
                log_debug("%s: status %s, no cluster ID taken.", state_path, status ?: "missing");
                return 0;
        }
        r = cli_state_load(state_path, cid, endpoint, endpoint_size);
        if (r < 0)
                return r;
        log_debug("Cluster ID from %s.", state_path);
        return 1;
}

char *cli_command_line(int argc, char *argv[])
{
        size_t n = 1;
        char *s, *p;

        for (int i = 0; i < argc; i++)
                n += 3 + 4 * strlen(argv[i]); /* a quote becomes 4 */
        p = s = malloc(n);
        if (!s)
                return NULL;
        for (int i = 0; i < argc; i++) {
                bool quote = !argv[i][0] || strpbrk(argv[i], " \t\n'\"\\$`") != NULL;
                if (i > 0)
                        *p++ = ' ';
                if (quote)
                        *p++ = '\'';
                for (const char *c = argv[i]; *c; c++) {
                        if (quote && *c == '\'') {
                                memcpy(p, "'\\''", 4); /* close, escaped quote, reopen */
                                p += 4;
                                continue;
                        }
                        *p++ = (*c >= 0x20 && *c != 0x7f) ? *c : '?';
                }
                if (quote)
                        *p++ = '\'';
        }
        *p = '\0';
        return s;
}

int cli_debug_log_open(const char *command_line, const char *version)
{
        _cleanup_(freep) char *cwd = getcwd(NULL, 0);
        char stamp[32];
        struct stat st;
        time_t now = time(NULL);
        struct tm tm;
        int fd;

        fd = open(CLI_DEBUG_LOG, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY,
                  0600);
        if (fd < 0)
                return log_error_errno(-errno,
                                       "--debug: cannot write %s/%s: %m. Run it in a workspace "
                                       "you can write to (-C DIR).",
                                       cwd ?: ".", CLI_DEBUG_LOG);
        /* Someone else's file, or one others may read: not for records of our commands. */
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_uid != geteuid()) {
                (void) close(fd);
                return log_error_errno(-EPERM,
                                       "--debug: %s/%s is not a regular file of yours: move it "
                                       "away.",
                                       cwd ?: ".", CLI_DEBUG_LOG);
        }
        if ((st.st_mode & 0077) && fchmod(fd, 0600) < 0) {
                int r = -errno;
                (void) close(fd);
                return log_error_errno(r, "--debug: cannot make %s private (0600): %m.",
                                       CLI_DEBUG_LOG);
        }
        if (!gmtime_r(&now, &tm) || strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
                stamp[0] = '\0';
        (void) dprintf(fd, "\n==== %s cloister %s, pid %ld, workspace %s\n==== %s\n", stamp,
                       version, (long) getpid(), cwd ?: "?", command_line);
        log_set_file(fd);
        /* The cloister commands this one starts ('mini up', 'mini exec') log to their own
         * workspace's file too. */
        if (setenv("CLOISTER_DEBUG", "1", /* overwrite= */ 1) < 0)
                log_debug_errno(-errno, "Cannot set $CLOISTER_DEBUG: %m");
        /* Said on stderr once, so the file can be found (and sent along with a report). */
        (void) fprintf(stderr, "Debug log: %s/%s\n", cwd ?: ".", CLI_DEBUG_LOG);
        return fd;
}

/* The lock of the workspace's cluster: one open file description held for the process's life
 * (flock is dropped by the kernel when the holder dies, however it dies: a lock left by a killed
 * process is free, and its recorded holder is only text). */
static int workspace_lock_fd = -1;

int cli_workspace_lock(const char *state_path, const char *what)
{
        _cleanup_(freep) char *dir = NULL, *path = NULL;
        char holder[256] = "", self[256];
        const char *slash;
        ssize_t n;
        int fd, r;

        /* 'upgrade apply' runs 'policy push' in this process: already ours. */
        if (workspace_lock_fd >= 0)
                return 0;
        slash = strrchr(state_path, '/');
        dir = slash ? strndup(state_path, (size_t) (slash - state_path) + (slash == state_path))
                    : strdup(".");
        if (!dir || asprintf(&path, "%s/" CLI_LOCK_FILE, dir) < 0)
                return log_oom();
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW | O_NOCTTY, 0600);
        if (fd < 0)
                return log_error_errno(-errno, "Cannot open the workspace's lock %s: %m", path);
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                r = -errno;
                if (r == -EWOULDBLOCK) {
                        n = pread(fd, holder, sizeof(holder) - 1, 0);
                        holder[n > 0 ? n : 0] = '\0';
                        holder[strcspn(holder, "\n")] = '\0';
                        for (char *p = holder; *p; p++)
                                if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                                        *p = '?';
                }
                (void) close(fd);
                if (r != -EWOULDBLOCK)
                        return log_error_errno(r, "Cannot lock %s: %m", path);
                return log_error_errno(-EBUSY,
                                       "%s: refused: another command is changing this cluster "
                                       "(%s holds %s). Wait until it ends, or stop it: its lock "
                                       "goes with it. Then run this again (an interrupted "
                                       "'upgrade apply' resumes with 'cloister upgrade apply').",
                                       what, holder[0] ? holder : "a process", path);
        }
        n = snprintf(self, sizeof(self), "pid %ld ('cloister %s', since %ld)\n", (long) getpid(),
                     what, (long) time(NULL));
        if (ftruncate(fd, 0) < 0 || pwrite(fd, self, (size_t) n, 0) != n)
                log_debug("Cannot record the holder in %s: %m", path);
        workspace_lock_fd = fd;
        return 0;
}
