/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Continuous re-attestation, the monitor's side (docs/reattestation.md): every member of this
 * join service is attested again on a jittered schedule, with a nonce chosen here, against the
 * policy in force with PCR 15 = this cluster; the verdict, the failing check and the response
 * are kept per member and shown in GET /v1/members; failures, unreachability and recoveries go
 * to the audit log. The connections are opened here (to recorded member endpoints only) and
 * handed to the confined re-attestation process, which speaks TLS and HTTP on them; the evidence
 * it returns is verified here, never taken on its word.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cloister/attest-atls.h"
#include "cloister/crypto.h"
#include "cloister/fileio.h"
#include "cloister/hex.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/privsep-reattest.h"
#include "cloister/rpc-text.h"
#include "cloister/spawn.h"

#include "join-service-reattest.h"
#include "join-service.h"

#define REATTEST_MEMBERS_MAX 4096
#define REATTEST_TICK_MS     100
/* The cordons in force, kept across restarts (STATE_DIR, the encrypted state disk). */
#define REATTEST_CORDONS_FILE     "reattest-cordons.json"
#define REATTEST_CORDONS_SIZE_MAX (2U * 1024U * 1024U)

typedef enum ReattestVerdict {
        VERDICT_NONE,
        VERDICT_PASS,
        VERDICT_REJOINING, /* genuine and as the policy expects, PCR 15 zero: rebooted, not back */
        VERDICT_FAILED,
        VERDICT_UNREACHABLE,
        _VERDICT_MAX,
} ReattestVerdict;

static const char *const verdict_names[_VERDICT_MAX] = {
        [VERDICT_NONE] = "pending",
        [VERDICT_PASS] = "pass",
        [VERDICT_REJOINING] = "rejoining",
        [VERDICT_FAILED] = "failed",
        [VERDICT_UNREACHABLE] = "unreachable",
};

static const char *const action_names[_REATTEST_ACTION_MAX] = {
        [REATTEST_ACTION_WARN] = "warn",
        [REATTEST_ACTION_CORDON] = "cordon",
        [REATTEST_ACTION_EVICT] = "evict",
};

typedef struct ReattestMember {
        char name[64];
        char role[16];
        char endpoint[264];
        char ak[65];
        /* The admission as last read (with ak): what an eviction removes, and nothing else. */
        char disk[40];
        char admitted[32];
        bool seen; /* in the membership at the last read */
        uint64_t next_ms;
        /* The job in flight: its id and nonce stay here, the process never chooses them. */
        bool in_flight;
        uint64_t job_id, job_sent_ms;
        uint8_t nonce[ATLS_NONCE_SIZE];
        ReattestVerdict verdict;
        unsigned misses; /* intervals in a row without an answer */
        unsigned fails;  /* answers in a row that did not verify */
        unsigned attempts, passes;
        time_t last_attested, last_result;
        char checks[256]; /* why it failed, or why it is unreachable */
        char response[32];
        char reported_state[32];
        bool cordoned;
} ReattestMember;

typedef struct Reattest {
        JoinService *js;
        pthread_mutex_t lock; /* everything below; after members_lock, before policy.lock */
        ReattestConfig cfg;
        char cfg_digest[65];
        ReattestMember *m;
        size_t n, allocated;
        uint64_t next_id;
        uint64_t attempts; /* since start, all members */
        uint64_t members_read_ms;
        int fd; /* the channel to the re-attestation process */
        pid_t pid;
        pthread_mutex_t send_lock;
        pthread_mutex_t persist_lock; /* the cordons file; before lock */
        pthread_t scheduler, reader;
        bool stop;
        char kubectl[1024];
} Reattest;

static Reattest *the_reattest; /* js->reattest would touch a shared struct: one per process */

void reattest_config_defaults(ReattestConfig *c)
{
        *c = (ReattestConfig){
                .enabled = true,
                .interval_ms = 60000,
                .jitter_percent = 20,
                .timeout_ms = 10000,
                .unreachable_after = 3,
                .on_failure = REATTEST_ACTION_WARN,
                .on_unreachable = REATTEST_ACTION_WARN,
        };
}

static int parse_action(const JsonCtx *ctx, const json_t *o, const char *key, ReattestAction *ret)
{
        const char *s;
        int r = json_get_string(ctx, o, key, false, &s);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        for (int i = 0; i < _REATTEST_ACTION_MAX; i++)
                if (strcmp(s, action_names[i]) == 0) {
                        *ret = (ReattestAction) i;
                        return 0;
                }
        return diag_fail(ctx->diag, -EBADMSG, "json-schema", -1,
                         "%s: .reattestation.%s: '%s' is not warn, cordon or evict", ctx->source,
                         key, s);
}

static int get_uint(const JsonCtx *ctx, const json_t *o, const char *key, int64_t min, int64_t max,
                    unsigned scale, unsigned *ret)
{
        int64_t v;
        int r = json_get_int(ctx, o, key, false, min, max, &v);

        if (r == -ENOENT)
                return 0;
        if (r < 0)
                return r;
        *ret = (unsigned) v * scale;
        return 0;
}

int reattest_config_parse(const char *policy_text, size_t size, ReattestConfig *ret, Diag *d)
{
        static const char *const keys[] = { "enabled",          "intervalSeconds",
                                            "jitterPercent",    "timeoutSeconds",
                                            "unreachableAfter", "onFailure",
                                            "onUnreachable",    NULL };
        _cleanup_(json_decrefp) json_t *doc = NULL;
        JsonCtx root = { .source = "policy", .path = "", .diag = d }, ctx;
        ReattestConfig c;
        json_t *sec = NULL;
        char buf[64];
        int r;

        reattest_config_defaults(&c);
        r = json_parse_buffer(policy_text, size, "policy", &doc, d);
        if (r < 0)
                return r;
        r = json_get_object(&root, doc, "reattestation", false, &sec);
        if (r == -ENOENT) {
                *ret = c;
                return 0;
        }
        if (r < 0)
                return r;
        ctx = json_ctx_child(&root, "reattestation", buf, sizeof(buf));
        r = json_check_keys(&ctx, sec, keys);
        if (r >= 0) {
                r = json_get_bool(&ctx, sec, "enabled", false, &c.enabled);
                if (r == -ENOENT)
                        r = 0;
        }
        if (r >= 0)
                r = get_uint(&ctx, sec, "intervalSeconds", 1, 86400, 1000, &c.interval_ms);
        if (r >= 0)
                r = get_uint(&ctx, sec, "jitterPercent", 0, 50, 1, &c.jitter_percent);
        if (r >= 0)
                r = get_uint(&ctx, sec, "timeoutSeconds", 1, 60, 1000, &c.timeout_ms);
        if (r >= 0)
                r = get_uint(&ctx, sec, "unreachableAfter", 1, 1000, 1, &c.unreachable_after);
        if (r >= 0)
                r = parse_action(&ctx, sec, "onFailure", &c.on_failure);
        if (r >= 0)
                r = parse_action(&ctx, sec, "onUnreachable", &c.on_unreachable);
        if (r < 0)
                return r;
        *ret = c;
        return 0;
}

static uint64_t now_ms(void)
{
        struct timespec ts;

        (void) clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000U + (uint64_t) ts.tv_nsec / 1000000U;
}

/* A uniform value in [0, n) (n > 0), from the kernel's CSPRNG: members must not be predictable
 * enough to be asked all at once. */
static uint64_t random_below(uint64_t n)
{
        uint64_t v = 0;

        if (getrandom(&v, sizeof(v), 0) != (ssize_t) sizeof(v))
                v = now_ms() * 6364136223846793005ULL;
        return v % n;
}

/* The interval with the jitter applied: interval * (1 +- jitter), uniformly. */
static uint64_t jittered(const ReattestConfig *c)
{
        uint64_t spread = (uint64_t) c->interval_ms * c->jitter_percent / 100U;

        if (spread == 0)
                return c->interval_ms;
        return c->interval_ms - spread + random_below(2 * spread + 1);
}

/* The policy's section, when the policy changed (policy.lock is taken here). */
static void refresh_config(Reattest *rt)
{
        JoinService *js = rt->js;
        ReattestConfig c;
        char digest[65];
        Diag d;
        int r = 0;

        (void) pthread_mutex_lock(&js->policy.lock);
        diag_clear(&d);
        if (policy_holder_refresh(&js->policy, &d) < 0)
                log_error("join-service: the changed policy is refused, the previous one stays in "
                          "force: %s",
                          d.message);
        (void) snprintf(digest, sizeof(digest), "%s", js->policy.digest);
        if (strcmp(digest, rt->cfg_digest) != 0) {
                diag_clear(&d);
                r = reattest_config_parse(js->policy.text ?: "{}", strlen(js->policy.text ?: "{}"),
                                          &c, &d);
        }
        (void) pthread_mutex_unlock(&js->policy.lock);
        if (strcmp(digest, rt->cfg_digest) == 0)
                return;
        (void) pthread_mutex_lock(&rt->lock);
        (void) snprintf(rt->cfg_digest, sizeof(rt->cfg_digest), "%s", digest);
        if (r < 0)
                log_error("join-service: re-attestation: the policy's reattestation section is "
                          "refused, the previous settings stay in force: %s",
                          d.message);
        else {
                bool sooner = c.interval_ms < rt->cfg.interval_ms;
                rt->cfg = c;
                /* A shorter interval applies now, not after the longer one ran out. */
                for (size_t i = 0; sooner && i < rt->n; i++)
                        rt->m[i].next_ms = now_ms() + random_below(c.interval_ms);
                log_info("join-service: re-attestation %s: every %u s (jitter %u%%, timeout %u s), "
                         "a failure: %s, unreachable after %u intervals: %s",
                         c.enabled ? "on" : "off", c.interval_ms / 1000U, c.jitter_percent,
                         c.timeout_ms / 1000U, action_names[c.on_failure], c.unreachable_after,
                         action_names[c.on_unreachable]);
        }
        (void) pthread_mutex_unlock(&rt->lock);
}

static ReattestMember *member_find(Reattest *rt, const char *name)
{
        for (size_t i = 0; i < rt->n; i++)
                if (strcmp(rt->m[i].name, name) == 0)
                        return &rt->m[i];
        return NULL;
}

/* The membership, read again: new members get a first time spread over one interval. */
static void refresh_members(Reattest *rt)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        const json_t *m;
        size_t i;

        if (members_load(rt->js, &doc) < 0)
                return;
        (void) pthread_mutex_lock(&rt->lock);
        for (i = 0; i < rt->n; i++)
                rt->m[i].seen = false;
        json_array_foreach (json_object_get(doc, "members"), i, m) {
                const char *name = json_string_value(json_object_get(m, "name"));
                const char *ep = json_string_value(json_object_get(m, "endpoint"));
                const char *role = json_string_value(json_object_get(m, "role"));
                const char *ak = json_string_value(json_object_get(m, "akDigest")) ?: "";
                const char *disk = json_string_value(json_object_get(m, "diskUuid")) ?: "";
                const char *admitted = json_string_value(json_object_get(m, "admitted")) ?: "";
                ReattestMember *x;

                if (!name || !ep || strlen(name) >= sizeof(x->name) ||
                    strlen(ep) >= sizeof(x->endpoint))
                        continue;
                x = member_find(rt, name);
                /* The name now holds another machine (another key or disk: removed and admitted
                 * again between two reads): another member, judged afresh. What the old one
                 * did (its verdict, a cordon, an answer still in flight) is not held against
                 * it. */
                if (x && (strcmp(x->ak, ak) != 0 || strcasecmp(x->disk, disk) != 0)) {
                        log_info("join-service: re-attestation: %s is another admission now "
                                 "(disk %s): judged afresh",
                                 name, disk);
                        *x = rt->m[--rt->n];
                        x = NULL;
                }
                if (!x) {
                        if (rt->n == rt->allocated) {
                                size_t na = rt->allocated ? 2 * rt->allocated : 16;
                                ReattestMember *p;
                                if (na > REATTEST_MEMBERS_MAX)
                                        break;
                                p = realloc(rt->m, na * sizeof(*p));
                                if (!p)
                                        break;
                                rt->m = p;
                                rt->allocated = na;
                        }
                        x = &rt->m[rt->n++];
                        *x = (ReattestMember){ .next_ms = now_ms() +
                                                          random_below(rt->cfg.interval_ms) };
                        (void) snprintf(x->name, sizeof(x->name), "%s", name);
                        (void) snprintf(x->response, sizeof(x->response), "none");
                }
                x->seen = true;
                (void) snprintf(x->endpoint, sizeof(x->endpoint), "%s", ep);
                (void) snprintf(x->role, sizeof(x->role), "%s", role ?: "");
                (void) snprintf(x->ak, sizeof(x->ak), "%s", ak);
                (void) snprintf(x->disk, sizeof(x->disk), "%s", disk);
                (void) snprintf(x->admitted, sizeof(x->admitted), "%s", admitted);
        }
        /* Gone from the membership (evicted): forgotten. */
        for (i = 0; i < rt->n;)
                if (!rt->m[i].seen)
                        rt->m[i] = rt->m[--rt->n];
                else
                        i++;
        (void) pthread_mutex_unlock(&rt->lock);
}

/* HOST:PORT or [V6]:PORT with a numeric host: a member's recorded endpoint. A name is not
 * resolved here (the monitor would parse DNS answers): such a member shows unreachable. */
static int endpoint_sockaddr(const char *ep, struct sockaddr_storage *ss, socklen_t *len)
{
        char host[256];
        const char *colon = strrchr(ep, ':');
        unsigned long port;
        char *end;
        size_t hn;

        if (!colon || colon == ep)
                return -EINVAL;
        port = strtoul(colon + 1, &end, 10);
        if (*end || end == colon + 1 || port == 0 || port > 65535)
                return -EINVAL;
        hn = (size_t) (colon - ep);
        if (ep[0] == '[' && hn >= 2 && ep[hn - 1] == ']') {
                ep++;
                hn -= 2;
        }
        if (hn >= sizeof(host))
                return -EINVAL;
        memcpy(host, ep, hn);
        host[hn] = '\0';
        memset(ss, 0, sizeof(*ss));
        if (inet_pton(AF_INET, host, &((struct sockaddr_in *) ss)->sin_addr) == 1) {
                ((struct sockaddr_in *) ss)->sin_family = AF_INET;
                ((struct sockaddr_in *) ss)->sin_port = htons((uint16_t) port);
                *len = sizeof(struct sockaddr_in);
                return 0;
        }
        if (inet_pton(AF_INET6, host, &((struct sockaddr_in6 *) ss)->sin6_addr) == 1) {
                ((struct sockaddr_in6 *) ss)->sin6_family = AF_INET6;
                ((struct sockaddr_in6 *) ss)->sin6_port = htons((uint16_t) port);
                *len = sizeof(struct sockaddr_in6);
                return 0;
        }
        return -EINVAL;
}

/* A connection to the member's endpoint, still connecting (non-blocking): the process waits for
 * it under the job's deadline, so a silent address holds up nobody here. */
static int open_conn(const char *endpoint, int *ret)
{
        struct sockaddr_storage ss;
        socklen_t len;
        int fd, r;

        r = endpoint_sockaddr(endpoint, &ss, &len);
        if (r < 0)
                return r;
        fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0)
                return -errno;
        if (connect(fd, (struct sockaddr *) &ss, len) < 0 && errno != EINPROGRESS) {
                r = -errno;
                (void) close(fd);
                return r;
        }
        *ret = fd;
        return 0;
}

static int send_job(Reattest *rt, int conn, const ReattestMember *x, uint64_t id)
{
        char byte = 'C', control[CMSG_SPACE(sizeof(int))] = {}, ids[21], timeout[12];
        struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
        struct msghdr mh = { .msg_iov = &iov,
                             .msg_iovlen = 1,
                             .msg_control = control,
                             .msg_controllen = sizeof(control) };
        struct cmsghdr *c = CMSG_FIRSTHDR(&mh);
        PrivsepBuf b;
        ssize_t k;
        int r;

        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &conn, sizeof(int));
        (void) snprintf(ids, sizeof(ids), "%llu", (unsigned long long) id);
        (void) snprintf(timeout, sizeof(timeout), "%u", rt->cfg.timeout_ms);
        privsep_buf_begin(&b, REATTEST_PRIVSEP_JOB, 0);
        privsep_buf_add_text(&b, ids);
        privsep_buf_add(&b, x->nonce, ATLS_NONCE_SIZE);
        privsep_buf_add_text(&b, x->name);
        privsep_buf_add_text(&b, x->endpoint);
        privsep_buf_add_text(&b, timeout);
        (void) pthread_mutex_lock(&rt->send_lock);
        do
                k = sendmsg(rt->fd, &mh, MSG_NOSIGNAL);
        while (k < 0 && errno == EINTR);
        r = k == 1 ? privsep_send(rt->fd, &b) : -errno;
        (void) pthread_mutex_unlock(&rt->send_lock);
        privsep_buf_done(&b);
        return r;
}

static void handle_unreachable(Reattest *rt, ReattestMember *x, const char *why);

/* Starts the jobs that are due (rt->lock held). */
static void start_due(Reattest *rt)
{
        uint64_t now = now_ms();

        for (size_t i = 0; i < rt->n; i++) {
                ReattestMember *x = &rt->m[i];
                int conn = -1, r;

                /* A job the process never answered (it died, or lost it): a missed interval. */
                if (x->in_flight && now > x->job_sent_ms + rt->cfg.timeout_ms + 5000U) {
                        x->in_flight = false;
                        handle_unreachable(rt, x, "the re-attestation process did not answer");
                }
                if (x->in_flight || now < x->next_ms)
                        continue;
                x->next_ms = now + jittered(&rt->cfg);
                x->attempts++;
                rt->attempts++;
                if (getrandom(x->nonce, sizeof(x->nonce), 0) != (ssize_t) sizeof(x->nonce)) {
                        handle_unreachable(rt, x, "no nonce could be made");
                        continue;
                }
                r = open_conn(x->endpoint, &conn);
                if (r < 0) {
                        char why[400];
                        (void) snprintf(why, sizeof(why), "cannot connect to %s: %s", x->endpoint,
                                        r == -EINVAL ? "not a numeric address and port"
                                                     : strerror(-r));
                        handle_unreachable(rt, x, why);
                        continue;
                }
                x->job_id = ++rt->next_id;
                x->job_sent_ms = now;
                x->in_flight = true;
                r = send_job(rt, conn, x, x->job_id);
                (void) close(conn);
                if (r < 0) {
                        x->in_flight = false;
                        handle_unreachable(rt, x, "the re-attestation process is gone");
                }
        }
}

static void *scheduler_thread(void *arg)
{
        Reattest *rt = arg;

        for (;;) {
                struct timespec ts = { 0, REATTEST_TICK_MS * 1000000L };
                uint64_t now = now_ms();
                bool stop;

                /* The policy file and the membership: once a second (a changed policy applies
                 * from then on). */
                if (now >= rt->members_read_ms + 1000U) {
                        refresh_config(rt);
                        refresh_members(rt);
                        rt->members_read_ms = now;
                }
                (void) pthread_mutex_lock(&rt->lock);
                stop = rt->stop;
                if (!stop && rt->cfg.enabled)
                        start_due(rt);
                (void) pthread_mutex_unlock(&rt->lock);
                if (stop)
                        break;
                (void) nanosleep(&ts, NULL);
        }
        return NULL;
}

/* -- responses ------------------------------------------------------------------------------ */

static void audit(Reattest *rt, const char *event, const ReattestMember *x, const char *digest,
                  const char *verdict, const char *fmt, ...) _printf_(6, 7);
static void audit(Reattest *rt, const char *event, const ReattestMember *x, const char *digest,
                  const char *verdict, const char *fmt, ...)
{
        char reason[600];
        va_list ap;

        va_start(ap, fmt);
        (void) vsnprintf(reason, sizeof(reason), fmt, ap);
        va_end(ap);
        join_audit(rt->js, event, x->name, x->role, digest ?: "", verdict, reason);
}

/* kubectl through the spawn helper, beside kubeadm (the driver that runs it: the same
 * directory, or $PATH), with the control plane's admin.conf. Its output goes to a log in the
 * state directory. */
static int run_kubectl(Reattest *rt, const char *verb, const char *what, const char *name)
{
        _cleanup_(freep) char *conf = NULL, *logpath = NULL;
        char *argv[8];
        size_t n = 0;
        int r;

        if (asprintf(&conf, "%s/admin.conf", rt->js->state_dir) < 0 ||
            asprintf(&logpath, "%s/kubectl-join-service.log", rt->js->state_dir) < 0)
                return -ENOMEM;
        argv[n++] = rt->kubectl;
        argv[n++] = (char *) "--kubeconfig";
        argv[n++] = conf;
        argv[n++] = (char *) verb;
        if (what)
                argv[n++] = (char *) what;
        argv[n++] = (char *) name;
        argv[n] = NULL;
        r = spawn_wait(argv, logpath);
        if (r != 0)
                log_error("join-service: re-attestation: kubectl %s %s failed (exit %d, see %s)",
                          verb, name, r, logpath);
        return r == 0 ? 0 : -EIO;
}

/* The admission judged (x: disk, key, admission time as read when it was judged) removed.
 * With etcd, the member goes from there first, with its eviction entry (e) in the same
 * transaction, then from the cache; without, from members.json (e is the caller's to audit).
 * -ESTALE (d says why) when the name holds another admission now: nothing is removed. */
static int members_remove(JoinService *js, const char *name, const JoinRemoval *x,
                          const AuditEntry *e, Diag *d)
{
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(freep) char *path = NULL, *text = NULL;
        json_t *list, *m;
        size_t i;
        int r;

        if (js->etcd) {
                r = join_etcd_remove(js, e, name, x, d);
                if (r == -ESTALE)
                        return r;
                if (r < 0)
                        return log_error_errno(r,
                                               "join-service: cannot remove %s from the "
                                               "cluster's membership in etcd: %s",
                                               name, d->message);
        }
        r = members_load_local(js, &doc);
        if (r < 0)
                return r;
        list = json_object_get(doc, "members");
        json_array_foreach (list, i, m)
                if (strcmp(json_string_value(json_object_get(m, "name")) ?: "", name) == 0) {
                        const char *uuid = json_string_value(json_object_get(m, "diskUuid"));
                        const char *ak = json_string_value(json_object_get(m, "akDigest"));
                        const char *t = json_string_value(json_object_get(m, "admitted"));

                        /* With local files, the same comparison as etcd's (the caller holds
                         * members_lock, which every writer of members.json takes). */
                        if (!js->etcd && (strcasecmp(uuid ?: "", x->disk_uuid) != 0 ||
                                          strcmp(ak ?: "", x->ak_digest) != 0 ||
                                          strcmp(t ?: "", x->admitted) != 0))
                                return diag_fail(d, -ESTALE, "eviction-stale", -1,
                                                 "%s in members.json is another admission (disk "
                                                 "%s, admitted %s) than the one re-attestation "
                                                 "judged (disk %.40s, admitted %.32s): it was "
                                                 "admitted again since; it is not evicted for "
                                                 "what the judged admission did",
                                                 name, uuid ?: "", t ?: "", x->disk_uuid,
                                                 x->admitted);
                        (void) json_array_remove(list, i);
                        if (asprintf(&path, "%s/members.json", js->state_dir) < 0)
                                return -ENOMEM;
                        r = json_dump_pretty(doc, &text);
                        if (r < 0)
                                return r;
                        return write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
                }
        return js->etcd ? 0 : -ENOENT;
}

/* What a response does, decided under rt->lock and carried out after it (kubectl, the
 * membership file). */
typedef struct Deferred {
        ReattestAction action;
        bool uncordon;
        char name[64];
        char role[16];
        char why[300];
        /* The admission judged, as read when it was (an eviction removes that one only). */
        char ak[65], disk[40], admitted[32];
} Deferred;

static bool is_self(Reattest *rt, const ReattestMember *x)
{
        return strcmp(x->name, rt->js->node_name) == 0;
}

/* The policy's response to a failure or to unreachability (rt->lock held). */
static void respond(Reattest *rt, ReattestMember *x, ReattestAction a, Deferred *out)
{
        /* This join service's own node: never cordoned or evicted by itself (it would refuse
         * nothing it needs, and could not rejoin through itself anyway): warned. */
        if (is_self(rt, x))
                a = REATTEST_ACTION_WARN;
        *out = (Deferred){ .action = a };
        (void) snprintf(out->name, sizeof(out->name), "%s", x->name);
        (void) snprintf(out->role, sizeof(out->role), "%s", x->role);
        (void) snprintf(out->why, sizeof(out->why), "%s", x->checks);
        (void) snprintf(out->ak, sizeof(out->ak), "%s", x->ak);
        (void) snprintf(out->disk, sizeof(out->disk), "%s", x->disk);
        (void) snprintf(out->admitted, sizeof(out->admitted), "%s", x->admitted);
        switch (a) {
        case REATTEST_ACTION_WARN:
                /* A cordon stays until the member passes: still what it is under. */
                (void) snprintf(x->response, sizeof(x->response), "%s",
                                x->cordoned ? "cordoned" : "warned");
                break;
        case REATTEST_ACTION_CORDON:
                x->cordoned = true;
                (void) snprintf(x->response, sizeof(x->response), "cordoned");
                break;
        case REATTEST_ACTION_EVICT:
                x->cordoned = true; /* until the membership file no longer names it */
                (void) snprintf(x->response, sizeof(x->response), "evicted");
                break;
        default:
                break;
        }
}

/* STATE_DIR/reattest-cordons.json: {"version": 1, "cordoned": [{"name", "akDigest",
 * "checks"}]}, every member cordoned now, written whole (renamed into place) when one is
 * cordoned or lifted. A restart finds them there (restore_cordons()): a member cordoned before
 * stays cordoned (no key material) until it passes again. */
static void persist_cordons(Reattest *rt)
{
        _cleanup_(json_decrefp) json_t *doc = json_pack("{s:i,s:[]}", "version", 1, "cordoned");
        _cleanup_(freep) char *path = NULL, *text = NULL;
        json_t *list = json_object_get(doc, "cordoned");
        int r = doc ? 0 : -ENOMEM;

        (void) pthread_mutex_lock(&rt->persist_lock);
        (void) pthread_mutex_lock(&rt->lock);
        for (size_t i = 0; r >= 0 && i < rt->n; i++)
                if (rt->m[i].cordoned &&
                    json_array_append_new(list, json_pack("{s:s,s:s,s:s}", "name", rt->m[i].name,
                                                          "akDigest", rt->m[i].ak, "checks",
                                                          rt->m[i].checks)) < 0)
                        r = -ENOMEM;
        (void) pthread_mutex_unlock(&rt->lock);
        if (r >= 0 && asprintf(&path, "%s/%s", rt->js->state_dir, REATTEST_CORDONS_FILE) < 0)
                r = -ENOMEM;
        if (r >= 0)
                r = json_dump_pretty(doc, &text);
        if (r >= 0)
                r = write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
        (void) pthread_mutex_unlock(&rt->persist_lock);
        if (r < 0)
                log_error_errno(r,
                                "join-service: re-attestation: cannot record the cordons in %s/%s "
                                "(%m): a restart would forget them until the members' next "
                                "attempts",
                                rt->js->state_dir, REATTEST_CORDONS_FILE);
}

/* At start: the cordons an earlier run left, for members still in the membership with the same
 * attestation key (a name admitted again since, with another key, is another machine). */
static void restore_cordons(Reattest *rt)
{
        static const char *const keys[] = { "version", "cordoned", NULL };
        static const char *const entry_keys[] = { "name", "akDigest", "checks", NULL };
        _cleanup_(json_decrefp) json_t *doc = NULL;
        _cleanup_(freep) char *path = NULL;
        JsonCtx ctx = { .path = "" };
        json_t *list = NULL, *e;
        unsigned restored = 0;
        size_t i;
        Diag d;
        int r;

        if (asprintf(&path, "%s/%s", rt->js->state_dir, REATTEST_CORDONS_FILE) < 0)
                return;
        diag_clear(&d);
        ctx.source = path;
        ctx.diag = &d;
        r = json_parse_file(path, REATTEST_CORDONS_SIZE_MAX, &doc, &d);
        if (r == -ENOENT)
                return;
        if (r >= 0)
                r = json_check_keys(&ctx, doc, keys);
        if (r >= 0)
                r = json_get_array(&ctx, doc, "cordoned", true, &list);
        json_array_foreach (list, i, e) {
                const char *name = NULL, *ak = NULL, *checks = NULL;
                ReattestMember *x;

                if (r < 0)
                        break;
                r = json_check_keys(&ctx, e, entry_keys);
                if (r >= 0)
                        r = json_get_string(&ctx, e, "name", true, &name);
                if (r >= 0)
                        r = json_get_string(&ctx, e, "akDigest", true, &ak);
                if (r >= 0)
                        r = json_get_string(&ctx, e, "checks", true, &checks);
                if (r < 0)
                        break;
                (void) pthread_mutex_lock(&rt->lock);
                x = member_find(rt, name);
                if (x && strcmp(x->ak, ak) == 0) {
                        x->cordoned = true;
                        (void) snprintf(x->response, sizeof(x->response), "cordoned");
                        (void) snprintf(x->checks, sizeof(x->checks),
                                        "cordoned before the join service restarted: %.180s",
                                        checks);
                        restored++;
                }
                (void) pthread_mutex_unlock(&rt->lock);
        }
        if (r < 0) {
                /* Fail closed: the file is the monitor's own, on the encrypted disk; if it does
                 * not parse, every member is held until it passes. */
                log_error("join-service: re-attestation: %s does not parse (%s): every member is "
                          "treated as cordoned until it passes re-attestation",
                          path, d.message);
                (void) pthread_mutex_lock(&rt->lock);
                for (size_t k = 0; k < rt->n; k++)
                        if (!is_self(rt, &rt->m[k])) {
                                rt->m[k].cordoned = true;
                                (void) snprintf(rt->m[k].response, sizeof(rt->m[k].response),
                                                "cordoned");
                        }
                (void) pthread_mutex_unlock(&rt->lock);
                return;
        }
        if (restored > 0)
                log_warning("join-service: re-attestation: %u member(s) stay cordoned from before "
                            "the restart (%s) until they pass again",
                            restored, path);
}

#ifdef CLOISTER_FAULT_INJECTION
/* Tests only: CLOISTER_FAULT=evict-delay:MS holds an eviction MS milliseconds between the
 * verdict and its write, so that a test can remove and admit the name again in that window, as
 * a slow etcd or another join service could (tests/integration/test_membership_etcd.py). */
static void fault_delay_eviction(void)
{
        const char *f = getenv("CLOISTER_FAULT");
        unsigned long ms;
        struct timespec ts;

        if (!f || strncmp(f, "evict-delay:", 12) != 0)
                return;
        ms = strtoul(f + 12, NULL, 10);
        log_info("join-service: fault: eviction held %lu ms", ms);
        ts = (struct timespec){ (time_t) (ms / 1000), (long) (ms % 1000) * 1000000L };
        (void) nanosleep(&ts, NULL);
}
#else
static void fault_delay_eviction(void)
{
}
#endif

static void carry_out(Reattest *rt, const Deferred *dd)
{
        ReattestMember shown = {};
        Diag d;
        int r;

        (void) snprintf(shown.name, sizeof(shown.name), "%s", dd->name);
        (void) snprintf(shown.role, sizeof(shown.role), "%s", dd->role);
        if (dd->uncordon) {
                persist_cordons(rt);
                (void) run_kubectl(rt, "uncordon", NULL, dd->name);
                return;
        }
        if (dd->action == REATTEST_ACTION_CORDON || dd->action == REATTEST_ACTION_EVICT)
                persist_cordons(rt);
        switch (dd->action) {
        case REATTEST_ACTION_WARN:
                log_warning("join-service: re-attestation: member %s: %s", dd->name, dd->why);
                break;
        case REATTEST_ACTION_CORDON:
                log_warning("join-service: re-attestation: member %s cordoned (no key material "
                            "until it passes again): %s",
                            dd->name, dd->why);
                (void) run_kubectl(rt, "cordon", NULL, dd->name);
                break;
        case REATTEST_ACTION_EVICT:
                fault_delay_eviction();
                diag_clear(&d);
                (void) pthread_mutex_lock(&rt->js->members_lock);
                {
                        char reason[600], policy_digest[65];
                        const JoinRemoval judged = { .disk_uuid = dd->disk,
                                                     .ak_digest = dd->ak,
                                                     .admitted = dd->admitted };
                        AuditEntry e;

                        (void) snprintf(reason, sizeof(reason),
                                        "removed from the membership by re-attestation: %s",
                                        dd->why);
                        join_audit_entry(rt->js, &e, policy_digest, "eviction", shown.name,
                                         shown.role, "", "refused", reason);
                        r = members_remove(rt->js, dd->name, &judged, &e, &d);
                        /* With etcd the entry went there with the removal. */
                        if (r >= 0 && rt->js->etcd)
                                join_audit_local(rt->js, "eviction", shown.name, shown.role, "",
                                                 "refused", reason);
                        else if (r >= 0)
                                audit(rt, "eviction", &shown, "", "refused", "%s", reason);
                        else if (r == -ESTALE)
                                /* Audited (in the cluster's chain too): a dropped eviction is a
                                 * verdict the owner must be able to see. */
                                audit(rt, "refusal", &shown, "", "refused",
                                      "eviction dropped: %s (the judged admission failed "
                                      "re-attestation: %.200s)",
                                      d.message, dd->why);
                }
                (void) pthread_mutex_unlock(&rt->js->members_lock);
                if (r == -ESTALE) {
                        ReattestMember *x;

                        log_warning("join-service: re-attestation: eviction of %s dropped: %s",
                                    dd->name, d.message);
                        /* The same machine admitted again (a rejoin since): judged again, and a
                         * failure then responds again; still cordoned until it passes. Another
                         * machine is judged afresh (refresh_members()). */
                        (void) pthread_mutex_lock(&rt->lock);
                        x = member_find(rt, dd->name);
                        if (x && x->verdict == VERDICT_FAILED)
                                x->verdict = VERDICT_NONE;
                        (void) pthread_mutex_unlock(&rt->lock);
                        break;
                }
                if (r < 0) {
                        log_error_errno(r, "join-service: re-attestation: cannot evict %s: %m",
                                        dd->name);
                        break;
                }
                log_warning("join-service: re-attestation: member %s evicted: %s", dd->name,
                            dd->why);
                (void) run_kubectl(rt, "cordon", NULL, dd->name);
                (void) run_kubectl(rt, "delete", "node", dd->name);
                break;
        default:
                break;
        }
}

/* No answer this interval (rt->lock held): unreachable after unreachableAfter in a row. */
static void handle_unreachable(Reattest *rt, ReattestMember *x, const char *why)
{
        Deferred dd;
        ReattestMember copy;

        x->misses++;
        x->last_result = time(NULL);
        if (x->misses < rt->cfg.unreachable_after || x->verdict == VERDICT_UNREACHABLE) {
                if (x->verdict == VERDICT_UNREACHABLE)
                        (void) snprintf(x->checks, sizeof(x->checks), "%s", why);
                return;
        }
        x->verdict = VERDICT_UNREACHABLE;
        (void) snprintf(x->checks, sizeof(x->checks), "no answer for %u intervals: %s", x->misses,
                        why);
        respond(rt, x, rt->cfg.on_unreachable, &dd);
        copy = *x;
        /* The audit log and kubectl are slow: not under the lock (the member copy is what was
         * decided). */
        (void) pthread_mutex_unlock(&rt->lock);
        audit(rt, "reattest-unreachable", &copy, "", "refused", "%s; response: %s", copy.checks,
              copy.response);
        carry_out(rt, &dd);
        (void) pthread_mutex_lock(&rt->lock);
}

/* The evidence a member answered with, verified here: the policy in force with PCR 15 this
 * cluster's (or zero: a member rebooted and not back yet, genuine), the binding recomputed from
 * the nonce this monitor chose and the key the TLS connection was made with, the attestation
 * key the member joined with, and the name it gives. */
static ReattestVerdict judge(Reattest *rt, const ReattestMember *x, const PrivsepMsg *m,
                             char digest_hex[static 65], Diag *d)
{
        JoinService *js = rt->js;
        _cleanup_(evidence_freep) Evidence *e = NULL;
        uint8_t binding[ATLS_BINDING_SIZE], digest[32];
        PolicyVerifier pv;
        AtlsVerifier v;
        ReattestVerdict verdict = VERDICT_PASS;
        const char *name = privsep_text(m, 3);
        char ak[65] = "";
        Diag zd;
        int r;

        crypto_sha256(m->fields[1].data, m->fields[1].size, digest);
        hex_encode_buf(digest, sizeof(digest), digest_hex, 65);
        (void) pthread_mutex_lock(&js->policy.lock);
        r = atls_binding(js->policy.policy->variant, ATLS_ROLE_SERVER, x->nonce, m->fields[2].data,
                         m->fields[2].size, binding);
        if (r < 0)
                (void) diag_fail(d, r, "atls-binding", -1, "cannot compute the binding");
        if (r >= 0) {
                pv = (PolicyVerifier){ .policy = js->policy.member };
                v = policy_verifier(&pv);
                r = v.verify(v.userdata, m->fields[1].data, m->fields[1].size, binding, d);
                if (r < 0 && strcmp(d->check, "pcr") == 0 && d->index == 15) {
                        diag_clear(&zd);
                        pv = (PolicyVerifier){ .policy = js->policy.policy };
                        v = policy_verifier(&pv);
                        if (v.verify(v.userdata, m->fields[1].data, m->fields[1].size, binding,
                                     &zd) >= 0) {
                                r = 0;
                                diag_clear(d);
                                verdict = VERDICT_REJOINING;
                        } else if (!(strcmp(zd.check, "pcr") == 0 && zd.index == 15)) {
                                /* PCR 15 zero is a reboot; what else fails is the reason. */
                                *d = zd;
                        }
                }
        }
        (void) pthread_mutex_unlock(&js->policy.lock);
        if (r < 0)
                return VERDICT_FAILED;
        /* The same machine as admitted: its TPM's attestation key (a genuine node of this image
         * at the member's address is not the member). */
        r = evidence_parse(m->fields[1].data, m->fields[1].size, &e, d);
        if (r >= 0)
                r = evidence_ak_digest(e, ak);
        if (r < 0)
                return VERDICT_FAILED;
        if (x->ak[0] && strcmp(ak, x->ak) != 0) {
                (void) diag_fail(d, -EPERM, "attestation-key", -1,
                                 "the node at %s quotes with another attestation key than "
                                 "member %s joined with",
                                 x->endpoint, x->name);
                diag_set_values(d, x->ak, ak);
                return VERDICT_FAILED;
        }
        /* The name is what the node says (not in its evidence: the attestation key above is
         * its identity); another name means the endpoint leads elsewhere. None at all: a node
         * between its admission and its node state (kubeadm join running) has none yet. */
        if (strcmp(name, "-") != 0 && strcmp(name, x->name) != 0) {
                (void) diag_fail(d, -EPERM, "node-name", -1,
                                 "the node at %s calls itself '%s', not member %s", x->endpoint,
                                 name, x->name);
                return VERDICT_FAILED;
        }
        return verdict;
}

static void handle_answer(Reattest *rt, const PrivsepMsg *m)
{
        ReattestMember *x = NULL, copy;
        ReattestVerdict verdict, before;
        Deferred dd = {};
        bool act = false, recovered = false;
        char digest[65] = "";
        unsigned long long id;
        char *end;
        Diag d;

        id = strtoull(privsep_text(m, 0), &end, 10);
        (void) pthread_mutex_lock(&rt->lock);
        for (size_t i = 0; *end == '\0' && i < rt->n; i++)
                if (rt->m[i].in_flight && rt->m[i].job_id == id)
                        x = &rt->m[i];
        if (!x) {
                (void) pthread_mutex_unlock(&rt->lock);
                return; /* late (counted as missed already) or not ours */
        }
        x->in_flight = false;
        if ((m->op & ~PRIVSEP_REPLY) == REATTEST_PRIVSEP_UNREACHABLE) {
                handle_unreachable(rt, x, privsep_text(m, 1));
                (void) pthread_mutex_unlock(&rt->lock);
                return;
        }
        copy = *x;
        (void) pthread_mutex_unlock(&rt->lock);

        /* Verification outside the lock: the member's nonce and key are in copy. */
        diag_clear(&d);
        verdict = judge(rt, &copy, m, digest, &d);

        (void) pthread_mutex_lock(&rt->lock);
        x = member_find(rt, copy.name);
        if (!x) {
                (void) pthread_mutex_unlock(&rt->lock);
                return;
        }
        before = x->verdict;
        x->misses = 0;
        x->last_result = time(NULL);
        (void) snprintf(x->reported_state, sizeof(x->reported_state), "%s", privsep_text(m, 4));
        x->fails = verdict == VERDICT_FAILED ? x->fails + 1 : 0;
        if (verdict == VERDICT_FAILED) {
                (void) snprintf(x->checks, sizeof(x->checks), "%.40s: %.200s", d.check, d.message);
                x->verdict = verdict;
                if (before != VERDICT_FAILED) {
                        respond(rt, x, rt->cfg.on_failure, &dd);
                        act = true;
                }
        } else {
                x->passes++;
                x->last_attested = x->last_result;
                x->checks[0] = '\0';
                x->verdict = verdict;
                recovered = before == VERDICT_FAILED || before == VERDICT_UNREACHABLE;
                if (x->cordoned) {
                        /* Passes again: its key material is released again. */
                        x->cordoned = false;
                        dd = (Deferred){ .uncordon = true };
                        (void) snprintf(dd.name, sizeof(dd.name), "%s", x->name);
                        act = true;
                }
                if (recovered)
                        (void) snprintf(x->response, sizeof(x->response), "none");
        }
        copy = *x;
        (void) pthread_mutex_unlock(&rt->lock);

        if (verdict == VERDICT_FAILED && before != VERDICT_FAILED)
                audit(rt, "reattest-failed", &copy, digest, "refused", "%s; response: %s",
                      copy.checks, copy.response);
        if (recovered)
                audit(rt, "reattest-passed", &copy, digest, "admitted",
                      "passes re-attestation again%s (was %s)",
                      verdict == VERDICT_REJOINING ? " (rebooted, PCR 15 zero until it rejoins)"
                                                   : "",
                      verdict_names[before]);
        if (act)
                carry_out(rt, &dd);
}

static void *reader_thread(void *arg)
{
        Reattest *rt = arg;

        for (;;) {
                uint8_t *buf = NULL;
                size_t size = 0;
                PrivsepMsg m;
                int r;

                r = privsep_recv(rt->fd, &buf, &size);
                if (r >= 0)
                        r = privsep_parse(buf, size, reattest_privsep_answers,
                                          reattest_privsep_n_answers, &m);
                if (r >= 0 && !(m.op & PRIVSEP_REPLY))
                        r = -EBADMSG;
                if (r >= 0)
                        handle_answer(rt, &m);
                privsep_wipe_free(buf, size);
                if (r < 0) {
                        bool stopping;
                        (void) pthread_mutex_lock(&rt->lock);
                        stopping = rt->stop;
                        (void) pthread_mutex_unlock(&rt->lock);
                        if (!stopping)
                                log_error("join-service: re-attestation: the process's channel "
                                          "is closed (%s): members are no longer re-attested "
                                          "and will show unreachable",
                                          strerror(-r));
                        break;
                }
        }
        return NULL;
}

/* -- the monitor's interface ---------------------------------------------------------------- */

int reattest_start(JoinService *js, pid_t pid, int fd)
{
        Reattest *rt = calloc(1, sizeof(Reattest));
        const char *slash;

        if (!rt)
                return -ENOMEM;
        rt->js = js;
        rt->fd = fd;
        rt->pid = pid;
        reattest_config_defaults(&rt->cfg);
        (void) pthread_mutex_init(&rt->lock, NULL);
        (void) pthread_mutex_init(&rt->send_lock, NULL);
        (void) pthread_mutex_init(&rt->persist_lock, NULL);
        /* kubectl beside kubeadm: the same driver, the same place. */
        slash = strrchr(js->kubeadm, '/');
        if (slash)
                (void) snprintf(rt->kubectl, sizeof(rt->kubectl), "%.*s/kubectl",
                                (int) (slash - js->kubeadm), js->kubeadm);
        else
                (void) snprintf(rt->kubectl, sizeof(rt->kubectl), "kubectl");
        the_reattest = rt;
        /* The membership and the cordons an earlier run left, before the first attempt and
         * before any rejoin is decided on these records. */
        refresh_config(rt);
        refresh_members(rt);
        rt->members_read_ms = now_ms();
        restore_cordons(rt);
        log_info("join-service: re-attestation process %d speaks TLS on the connections the "
                 "monitor opens to members (confined like the network process)",
                 (int) pid);
        if (pthread_create(&rt->reader, NULL, reader_thread, rt) != 0)
                return -EAGAIN;
        if (pthread_create(&rt->scheduler, NULL, scheduler_thread, rt) != 0) {
                (void) shutdown(fd, SHUT_RDWR);
                (void) pthread_join(rt->reader, NULL);
                return -EAGAIN;
        }
        return 0;
}

void reattest_stop(JoinService *js)
{
        Reattest *rt = the_reattest;

        (void) js;
        if (!rt)
                return;
        (void) pthread_mutex_lock(&rt->lock);
        rt->stop = true;
        (void) pthread_mutex_unlock(&rt->lock);
        (void) pthread_join(rt->scheduler, NULL);
        (void) shutdown(rt->fd, SHUT_RDWR);
        (void) kill(rt->pid, SIGKILL);
        (void) pthread_join(rt->reader, NULL);
        (void) waitpid(rt->pid, NULL, 0);
        (void) close(rt->fd);
        the_reattest = NULL;
        free(rt->m);
        free(rt);
}

bool reattest_refuses_rejoin(JoinService *js, const char *name, char *buf, size_t size)
{
        Reattest *rt = the_reattest;
        ReattestMember *x;
        bool refused = false;

        (void) js;
        if (!rt)
                return false;
        (void) pthread_mutex_lock(&rt->lock);
        x = member_find(rt, name);
        if (x && x->cordoned) {
                refused = true;
                (void) snprintf(buf, size,
                                "%s is cordoned: it did not pass re-attestation (%s); it gets "
                                "its key again once it passes",
                                name, x->checks[0] ? x->checks : verdict_names[x->verdict]);
        }
        (void) pthread_mutex_unlock(&rt->lock);
        return refused;
}

static json_t *time_json(time_t t)
{
        char s[32];
        struct tm tm;

        if (t == 0)
                return json_null();
        (void) gmtime_r(&t, &tm);
        (void) strftime(s, sizeof(s), "%Y-%m-%dT%H:%M:%SZ", &tm);
        return json_string(s);
}

void reattest_annotate_members(JoinService *js, json_t *doc)
{
        Reattest *rt = the_reattest;
        const json_t *list = json_object_get(doc, "members");
        json_t *m;
        size_t i;

        (void) js;
        if (!rt)
                return;
        (void) pthread_mutex_lock(&rt->lock);
        json_array_foreach (list, i, m) {
                const char *name = json_string_value(json_object_get(m, "name"));
                ReattestMember *x = name ? member_find(rt, name) : NULL;
                json_t *o;

                if (!x)
                        continue;
                o = json_pack(
                        "{s:s,s:o,s:o,s:s,s:s,s:i,s:i,s:i,s:i,s:s}", "verdict",
                        verdict_names[x->verdict], "lastAttested", time_json(x->last_attested),
                        "lastResult", time_json(x->last_result), "checks", x->checks, "response",
                        x->response, "misses", (int) x->misses, "attempts", (int) x->attempts,
                        "passes", (int) x->passes, "intervalSeconds",
                        (int) (rt->cfg.interval_ms / 1000U), "reportedState", x->reported_state);
                if (o)
                        (void) json_object_set_new(m, "reattestation", o);
        }
        (void) pthread_mutex_unlock(&rt->lock);
}

/* -- metrics (GET /metrics on the loopback listener; docs/reattestation.md, "Metrics") ------- */

static void metric_help(FILE *f, const char *name, const char *type, const char *help)
{
        fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One sample per member of a gauge: name{member="..",role=".."} value. The labels come from the
 * membership (a joining node chose its name): escaped, and a name that cannot be escaped into
 * the buffer is left out rather than cut. */
typedef struct MetricLabels {
        char member[64 * 2 + 1];
        char role[16 * 2 + 1];
} MetricLabels;

static bool metric_labels(const ReattestMember *x, MetricLabels *ret)
{
        return rpc_text_escape_label(x->name, ret->member, sizeof(ret->member)) >= 0 &&
               rpc_text_escape_label(x->role, ret->role, sizeof(ret->role)) >= 0;
}

static const ReattestVerdict verdicts[] = { VERDICT_NONE, VERDICT_PASS, VERDICT_REJOINING,
                                            VERDICT_FAILED, VERDICT_UNREACHABLE };
static const char *const responses[] = { "none", "warned", "cordoned", "evicted" };

/* A member's value for a metric; -1: not known (NaN). */
static long long value_last_attested(const ReattestMember *x, time_t now)
{
        (void) now;
        return (long long) x->last_attested;
}
static long long value_since(const ReattestMember *x, time_t now)
{
        if (x->last_attested == 0)
                return -1;
        return now > x->last_attested ? (long long) (now - x->last_attested) : 0;
}
static long long value_fails(const ReattestMember *x, time_t now)
{
        (void) now;
        return x->fails;
}
static long long value_misses(const ReattestMember *x, time_t now)
{
        (void) now;
        return x->misses;
}
static long long value_unreachable(const ReattestMember *x, time_t now)
{
        (void) now;
        return x->verdict == VERDICT_UNREACHABLE;
}
static long long value_cordoned(const ReattestMember *x, time_t now)
{
        (void) now;
        return x->cordoned;
}
static long long value_attempts(const ReattestMember *x, time_t now)
{
        (void) now;
        return x->attempts;
}
static long long value_passes(const ReattestMember *x, time_t now)
{
        (void) now;
        return x->passes;
}

/* The per-member series, labelled member and role (and verdict or response for the one-hot
 * ones). */
typedef struct MemberMetric {
        const char *name, *type, *help;
        long long (*value)(const ReattestMember *x, time_t now);
        bool one_hot_verdict, one_hot_response;
} MemberMetric;

static const MemberMetric member_metrics[] = {
        { "cloister_reattest_verdict", "gauge",
          "1 for the member's current verdict (pending, pass, rejoining, failed, unreachable), 0 "
          "for the others.",
          NULL, true, false },
        { "cloister_reattest_last_attested_timestamp_seconds", "gauge",
          "Unix time the member last passed (0: never since the join service started).",
          value_last_attested },
        { "cloister_reattest_seconds_since_last_attested", "gauge",
          "Seconds since the member last passed (NaN: never since the join service started).",
          value_since },
        { "cloister_reattest_consecutive_failures", "gauge",
          "Answers in a row whose evidence did not verify.", value_fails },
        { "cloister_reattest_consecutive_misses", "gauge",
          "Attempts in a row without an answer (unreachable at the policy's unreachableAfter).",
          value_misses },
        { "cloister_reattest_unreachable", "gauge",
          "1 if the member is unreachable (no evidence for unreachableAfter intervals).",
          value_unreachable },
        { "cloister_reattest_cordoned", "gauge",
          "1 if the member is cordoned: a rejoin gets no key material until it passes.",
          value_cordoned },
        { "cloister_reattest_response", "gauge",
          "1 for the response taken (none, warned, cordoned, evicted), 0 for the others.", NULL,
          false, true },
        { "cloister_reattest_member_attempts_total", "counter",
          "Re-attestation attempts for the member since the join service started.",
          value_attempts },
        { "cloister_reattest_member_passes_total", "counter",
          "Attempts the member passed since the join service started.", value_passes },
};

/* A one-hot series: one sample per possible verdict (or response), 1 for the member's. */
static void write_one_hot(FILE *f, const MemberMetric *mm, const ReattestMember *x,
                          const MetricLabels *l)
{
        size_t count = mm->one_hot_verdict ? ELEMENTSOF(verdicts) : ELEMENTSOF(responses);

        for (size_t v = 0; v < count; v++) {
                const char *value = mm->one_hot_verdict ? verdict_names[verdicts[v]] : responses[v];
                bool on = mm->one_hot_verdict ? x->verdict == verdicts[v]
                                              : strcmp(x->response, responses[v]) == 0;

                fprintf(f, "%s{member=\"%s\",role=\"%s\",%s=\"%s\"} %d\n", mm->name, l->member,
                        l->role, mm->one_hot_verdict ? "verdict" : "response", value, on ? 1 : 0);
        }
}

int reattest_metrics(JoinService *js, char **ret)
{
        _cleanup_(json_decrefp) json_t *version = NULL;
        _cleanup_(freep) char *text = NULL;
        Reattest *rt = the_reattest;
        MetricLabels *labels = NULL;
        ReattestMember *m = NULL;
        ReattestConfig cfg;
        uint64_t attempts;
        char digest[sizeof(js->policy.digest)];
        size_t n = 0, size = 0;
        time_t now = time(NULL);
        FILE *f;

        /* Before the re-attestation lock: the policy's lock comes after it. */
        if (join_policy_version(js, &version) < 0)
                version = NULL;
        (void) pthread_mutex_lock(&js->policy.lock);
        (void) snprintf(digest, sizeof(digest), "%s", js->policy.digest);
        (void) pthread_mutex_unlock(&js->policy.lock);
        reattest_config_defaults(&cfg);
        attempts = 0;
        /* A copy, so that the text is written without holding up the schedule. */
        if (rt) {
                (void) pthread_mutex_lock(&rt->lock);
                if (rt->n > 0) {
                        m = malloc(rt->n * sizeof(*m));
                        if (!m) {
                                (void) pthread_mutex_unlock(&rt->lock);
                                return -ENOMEM;
                        }
                        memcpy(m, rt->m, rt->n * sizeof(*m));
                        n = rt->n;
                }
                cfg = rt->cfg;
                attempts = rt->attempts;
                (void) pthread_mutex_unlock(&rt->lock);
        }
        labels = calloc(n ?: 1, sizeof(*labels));
        f = labels ? open_memstream(&text, &size) : NULL;
        if (!f) {
                free(m);
                free(labels);
                return -ENOMEM;
        }
        metric_help(f, "cloister_join_members", "gauge",
                    "Members this join service re-attests (its members.json).");
        fprintf(f, "cloister_join_members %zu\n", n);
        metric_help(f, "cloister_join_policy_version", "gauge",
                    "Version of the owner's policy update in force (0: never pushed; NaN: the "
                    "file in force is not a pushed version).");
        if (json_is_integer(version))
                fprintf(f, "cloister_join_policy_version %lld\n",
                        (long long) json_integer_value(version));
        else
                fprintf(f, "cloister_join_policy_version NaN\n");
        metric_help(f, "cloister_join_policy_info", "gauge",
                    "The policy in force, by its SHA-256 digest (always 1).");
        fprintf(f, "cloister_join_policy_info{digest=\"%s\"} 1\n", digest);
        metric_help(f, "cloister_reattest_enabled", "gauge",
                    "1 if the policy's reattestation section enables re-attestation.");
        fprintf(f, "cloister_reattest_enabled %d\n", cfg.enabled ? 1 : 0);
        metric_help(f, "cloister_reattest_interval_seconds", "gauge",
                    "The policy's intervalSeconds (before jitter).");
        fprintf(f, "cloister_reattest_interval_seconds %u\n", cfg.interval_ms / 1000U);
        metric_help(f, "cloister_reattest_attempts_total", "counter",
                    "Re-attestation attempts started since the join service started, all members.");
        fprintf(f, "cloister_reattest_attempts_total %llu\n", (unsigned long long) attempts);

        for (size_t i = 0; i < n; i++)
                if (!metric_labels(&m[i], &labels[i]))
                        labels[i].member[0] = '\0';
        for (size_t k = 0; k < ELEMENTSOF(member_metrics); k++) {
                const MemberMetric *mm = &member_metrics[k];

                metric_help(f, mm->name, mm->type, mm->help);
                for (size_t i = 0; i < n; i++) {
                        if (!labels[i].member[0])
                                continue;
                        if (mm->one_hot_verdict || mm->one_hot_response) {
                                write_one_hot(f, mm, &m[i], &labels[i]);
                                continue;
                        }
                        fprintf(f, "%s{member=\"%s\",role=\"%s\"} ", mm->name, labels[i].member,
                                labels[i].role);
                        if (mm->value(&m[i], now) < 0)
                                fprintf(f, "NaN\n");
                        else
                                fprintf(f, "%lld\n", mm->value(&m[i], now));
                }
        }
        free(m);
        free(labels);
        if (fclose(f) != 0 || !text)
                return -ENOMEM;
        *ret = TAKE_PTR(text);
        return 0;
}
