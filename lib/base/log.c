/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cloister/journal.h"
#include "cloister/log.h"

static int max_level = LOG_INFO;
/* With a log file (log_set_file) max_level is LOG_DEBUG for the file's sake; what the console (or
 * the journal, or a sink) shows stays at this level. */
static int console_level = LOG_INFO;
static int file_fd = -1;
static LogTarget target = LOG_TARGET_AUTO;
static LogSink sink;
static void *sink_userdata;
static const char *journal_path = JOURNAL_SOCKET;

/* A log line longer than this is truncated; it bounds the stack buffer below. */
#define LOG_MESSAGE_MAX 2048

/* Per thread: the servers log from worker threads; the CLI reads its main thread's. */
static _Thread_local char last_error[LOG_MESSAGE_MAX];

/* log_ring_enable(): this process's recent records, in memory (what a node may hand its owner
 * after a failed init: docs/troubleshooting.md). Records are whole lines; the oldest go first. */
static pthread_mutex_t ring_lock = PTHREAD_MUTEX_INITIALIZER;
static char *ring;
static size_t ring_max, ring_len;
static bool ring_dropped;

static const char *const level_names[] = {
        [LOG_EMERG] = "emerg", [LOG_ALERT] = "alert",     [LOG_CRIT] = "crit",
        [LOG_ERR] = "error",   [LOG_WARNING] = "warning", [LOG_NOTICE] = "notice",
        [LOG_INFO] = "info",   [LOG_DEBUG] = "debug",
};

void log_set_max_level(int level)
{
        if (level < LOG_EMERG || level > LOG_DEBUG)
                return;
        console_level = level;
        max_level = file_fd >= 0 ? LOG_DEBUG : level;
}

void log_set_file(int fd)
{
        file_fd = fd;
        max_level = fd >= 0 ? LOG_DEBUG : console_level;
}

/* One record in the log file: "2026-12-07T09:30:00.123Z debug: message". */
static void log_file_write(int level, const char *msg)
{
        char line[LOG_MESSAGE_MAX + 64], stamp[32];
        struct timespec ts;
        struct tm tm;
        int n;

        (void) clock_gettime(CLOCK_REALTIME, &ts);
        if (!gmtime_r(&ts.tv_sec, &tm) ||
            strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
                stamp[0] = '\0';
        n = snprintf(line, sizeof(line), "%s.%03ldZ %s: %s\n", stamp, ts.tv_nsec / 1000000L,
                     level_names[level & 7], msg);
        if (n > 0)
                (void) !write(file_fd, line, MIN((size_t) n, sizeof(line) - 1));
}

int log_get_max_level(void)
{
        return max_level;
}

int log_level_from_string(const char *s)
{
        if (!s)
                return -EINVAL;
        if (strcmp(s, "err") == 0)
                return LOG_ERR;
        for (size_t i = 0; i < ELEMENTSOF(level_names); i++)
                if (strcmp(s, level_names[i]) == 0)
                        return (int) i;
        return -EINVAL;
}

void log_set_target(LogTarget t)
{
        if (t >= 0 && t < _LOG_TARGET_MAX)
                target = t;
}

/* systemd sets $JOURNAL_STREAM to "dev:ino" of the stream stderr is connected to (systemd.exec(5)).
 */
static bool stderr_is_journal(void)
{
        const char *e = getenv("JOURNAL_STREAM");
        unsigned long long dev, ino;
        struct stat st;
        char *end;

        if (!e)
                return false;
        errno = 0;
        dev = strtoull(e, &end, 10);
        if (errno != 0 || end == e || *end != ':')
                return false;
        e = end + 1;
        ino = strtoull(e, &end, 10);
        if (errno != 0 || end == e || *end != 0)
                return false;
        if (fstat(STDERR_FILENO, &st) < 0)
                return false;
        return (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

LogTarget log_get_effective_target(void)
{
        if (target != LOG_TARGET_AUTO)
                return target;
        return stderr_is_journal() ? LOG_TARGET_JOURNAL : LOG_TARGET_STDERR;
}

void log_parse_environment(void)
{
        int l = log_level_from_string(getenv("CLOISTER_LOG_LEVEL"));
        if (l >= 0)
                log_set_max_level(l);
}

const char *log_last_error(void)
{
        return last_error;
}

int log_ring_enable(size_t size)
{
        char *r = size > 0 ? calloc(1, size) : NULL;

        if (size > 0 && !r)
                return -ENOMEM;
        (void) pthread_mutex_lock(&ring_lock);
        free(ring);
        ring = r;
        ring_max = size;
        ring_len = 0;
        ring_dropped = false;
        (void) pthread_mutex_unlock(&ring_lock);
        return 0;
}

static void ring_append(int level, const char *msg)
{
        char line[LOG_MESSAGE_MAX + 16];
        int n = snprintf(line, sizeof(line), "%s: %s\n", level_names[level & 7], msg);
        size_t len = n < 0 ? 0 : MIN((size_t) n, sizeof(line) - 1);

        (void) pthread_mutex_lock(&ring_lock);
        if (ring && len > 0 && len <= ring_max) {
                /* Drop whole records from the front until this one fits. */
                if (ring_len + len > ring_max) {
                        size_t cut = ring_len + len - ring_max;
                        const char *nl = memchr(ring + cut - 1, '\n', ring_len - cut + 1);
                        cut = nl ? (size_t) (nl - ring) + 1 : ring_len;
                        memmove(ring, ring + cut, ring_len - cut);
                        ring_len -= cut;
                        ring_dropped = true;
                }
                memcpy(ring + ring_len, line, len);
                ring_len += len;
        }
        (void) pthread_mutex_unlock(&ring_lock);
}

int log_ring_read(char **ret, size_t *ret_size, bool *ret_dropped)
{
        char *copy;

        (void) pthread_mutex_lock(&ring_lock);
        copy = ring ? malloc(ring_len + 1) : NULL;
        if (copy) {
                memcpy(copy, ring, ring_len);
                copy[ring_len] = '\0';
                *ret_size = ring_len;
                *ret_dropped = ring_dropped;
        }
        (void) pthread_mutex_unlock(&ring_lock);
        if (!copy)
                return ring ? -ENOMEM : -ENODATA;
        *ret = copy;
        return 0;
}

void log_set_sink(LogSink s, void *userdata)
{
        sink = s;
        sink_userdata = userdata;
}

void log_set_journal_socket(const char *path)
{
        journal_path = path ? path : JOURNAL_SOCKET;
}

/* One journal record; a negative errno when it cannot be sent (the caller then writes stderr,
 * which under systemd is the journal's stream: the line is kept, without its fields). */
static int log_to_journal(int level, int error, const char *file, int line, const char *func,
                          const char *msg)
{
        JournalRecord rec = JOURNAL_RECORD_INIT;

        (void) journal_record_add(&rec, "MESSAGE", msg);
        (void) journal_record_addf(&rec, "PRIORITY", "%d", level & 7);
        if (error > 0)
                (void) journal_record_addf(&rec, "ERRNO", "%d", error);
        (void) journal_record_add(&rec, "CODE_FILE", file);
        (void) journal_record_addf(&rec, "CODE_LINE", "%d", line);
        (void) journal_record_add(&rec, "CODE_FUNC", func);
        (void) journal_record_add(&rec, "SYSLOG_IDENTIFIER", program_invocation_short_name);
        return journal_record_send(&rec, journal_path);
}

int log_internal(int level, int error, const char *file, int line, const char *func,
                 const char *format, ...)
{
        char msg[LOG_MESSAGE_MAX];
        int saved_errno = errno;
        va_list ap;

        if (error < 0)
                error = -error;

        /* Make %m print the error we were given, not whatever errno happens to hold. */
        errno = error;
        va_start(ap, format);
        (void) vsnprintf(msg, sizeof(msg), format, ap);
        va_end(ap);
        if (level <= LOG_ERR)
                memcpy(last_error, msg, sizeof(last_error));

        if (file_fd >= 0)
                log_file_write(level, msg);
        if (level > console_level) /* for the file only */
                goto finish;
        if (__atomic_load_n(&ring, __ATOMIC_RELAXED))
                ring_append(level, msg);
        if (sink)
                sink(level, error, msg, sink_userdata);
        else if (log_get_effective_target() != LOG_TARGET_JOURNAL ||
                 log_to_journal(level, error, file, line, func, msg) < 0) {
                if (level <= LOG_WARNING || console_level >= LOG_DEBUG)
                        (void) fprintf(stderr, "%s: %s\n", level_names[level & 7], msg);
                else
                        (void) fprintf(stderr, "%s\n", msg);
        }
finish:
        errno = saved_errno;
        return -error;
}
