/* SPDX-License-Identifier: Apache-2.0 */
/* Option parsing shared by several verbs. */
#include <arpa/inet.h>
#include <ctype.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "cli.h"
#include "cloister/hex.h"
#include "cloister/log.h"
#include "cloister/rpc.h"

int cli_parse_timeout(const char *arg, RpcClientConfig *c)
{
        char *end;
        unsigned long t = strtoul(arg, &end, 10);

        if (*end || end == arg || t == 0 || t > 3600)
                return log_error_errno(-EUSAGE, "--timeout '%s': 1..3600 seconds.", arg);
        c->total_timeout_ms = (unsigned) t * 1000;
        if (c->connect_timeout_ms > c->total_timeout_ms)
                c->connect_timeout_ms = c->total_timeout_ms;
        return 0;
}

int cli_parse_file_option(int argc, char *argv[], const char *usage, const char **file)
{
        static const struct option options[] = {
                { "help", no_argument, NULL, 'h' },
                { "file", required_argument, NULL, 'f' },
                {},
        };
        int c;

        optind = 0;
        while ((c = getopt_long(argc, argv, "hf:", options, NULL)) >= 0) {
                switch (c) {
                case 'h':
                        fputs(usage, stdout);
                        return 0;
                case 'f':
                        *file = optarg;
                        break;
                default:
                        return -EUSAGE;
                }
        }
        if (optind < argc)
                return log_error_errno(-EUSAGE, "Unexpected argument '%s'. See --help.",
                                       argv[optind]);
        return 1;
}

/* HOST: a DNS name or IPv4 address (letters, digits, '.', '-'), or an IPv6 address in []. */
static bool endpoint_host_valid(const char *host, size_t len)
{
        char buf[INET6_ADDRSTRLEN + 2];
        struct in6_addr a6;

        if (len == 0 || len > 253)
                return false;
        if (host[0] == '[') {
                if (len < 3 || host[len - 1] != ']' || len - 2 >= sizeof(buf))
                        return false;
                memcpy(buf, host + 1, len - 2);
                buf[len - 2] = '\0';
                return inet_pton(AF_INET6, buf, &a6) == 1;
        }
        for (size_t i = 0; i < len; i++)
                if (!isalnum((unsigned char) host[i]) && host[i] != '.' && host[i] != '-')
                        return false;
        return host[0] != '-' && host[0] != '.';
}

int cli_endpoint_url(const char *option, const char *arg, char url[static CLI_URL_MAX])
{
        const char *rest = arg, *scheme_end = strstr(arg, "://"), *close, *colon;
        size_t len, host_len;
        unsigned long port = CLI_NODE_PORT_DEFAULT;

        if (scheme_end) {
                if ((size_t) (scheme_end - arg) != 5 || strncasecmp(arg, "https", 5) != 0)
                        return log_error_errno(-EUSAGE,
                                               "%s '%s': Cloister nodes speak only https (attested "
                                               "TLS): give https://HOST[:PORT] or HOST[:PORT].",
                                               option, arg);
                rest = scheme_end + 3;
        }
        len = strlen(rest);
        if (len > 0 && rest[len - 1] == '/') /* https://host:port/ */
                len--;
        if (memchr(rest, '/', len) || memchr(rest, '?', len) || memchr(rest, '#', len) ||
            memchr(rest, '@', len))
                return log_error_errno(-EUSAGE,
                                       "%s '%s': an endpoint is HOST[:PORT] only: no path, query, "
                                       "user or second scheme.",
                                       option, arg);
        close = memchr(rest, ']', len);
        colon = NULL;
        for (const char *p = rest + len; p > (close ?: rest);)
                if (*--p == ':') {
                        colon = p;
                        break;
                }
        host_len = colon ? (size_t) (colon - rest) : len;
        if (colon) {
                const char *digits = colon + 1;
                size_t n = (size_t) (rest + len - digits);
                if (n == 0 || n > 5 || strspn(digits, "0123456789") < n)
                        port = 0;
                else
                        port = strtoul(digits, NULL, 10);
        }
        if (!endpoint_host_valid(rest, host_len))
                return log_error_errno(
                        -EUSAGE,
                        "%s '%s': not HOST[:PORT] (a DNS name, an IPv4 address or an "
                        "IPv6 address in [], e.g. 10.0.0.5:9000 or [fd00::5]).",
                        option, arg);
        if (port == 0 || port > 65535)
                return log_error_errno(-EUSAGE,
                                       "%s '%s': the port must be a number from 1 to 65535.",
                                       option, arg);
        (void) snprintf(url, CLI_URL_MAX, "https://%.*s:%lu", (int) host_len, rest, port);
        return 0;
}

int cli_node_url(const char *arg, char url[static CLI_URL_MAX])
{
        return cli_endpoint_url("--node", arg, url);
}

int cli_parse_at_option(const char *arg, time_t *ret)
{
        if (cli_parse_time(arg, ret) < 0)
                return log_error_errno(-EUSAGE,
                                       "--at '%s': use YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ.", arg);
        return 0;
}

int cli_parse_output_option(const char *arg, OutputFormat *ret)
{
        OutputFormat f = output_format_from_string(arg);

        if (f < 0)
                return log_error_errno(-EUSAGE, "-o '%s': use text or json.", arg);
        *ret = f;
        return 0;
}

void cli_target_init(CliTarget *t, RpcClientConfig *rc)
{
        *t = (CliTarget){ .state_path = CLI_STATE_FILE_DEFAULT };
        rpc_client_config_defaults(rc);
}

int cli_target_option(CliTarget *t, RpcClientConfig *rc, int c, const char *arg)
{
        switch (c) {
        case CLI_ARG_TARGET_NODE:
                return cli_node_url(arg, t->url) < 0 ? -EUSAGE : 1;
        case CLI_ARG_TARGET_CLUSTER_ID:
                t->cluster_id = arg;
                return 1;
        case CLI_ARG_TARGET_STATE:
                t->state_path = arg;
                t->state_given = true;
                return 1;
        case CLI_ARG_TARGET_TIMEOUT:
                return cli_parse_timeout(arg, rc) < 0 ? -EUSAGE : 1;
        default:
                return 0;
        }
}

int cli_target_resolve(const char *verb, CliTarget *t)
{
        uint8_t state_cid[32];
        char state_ep[CLI_URL_MAX];
        int r;

        if (t->cluster_id && hex_decode_exact(t->cluster_id, t->cid, sizeof(t->cid)) < 0)
                return log_error_errno(-EUSAGE, "--cluster-id: 64 hex digits expected (as "
                                                "'cloister apply' printed it).");
        if (t->cluster_id && t->url[0] && !t->state_given)
                return 0;
        if (!t->state_given && access(t->state_path, F_OK) < 0 && errno == ENOENT)
                return log_error_errno(-ENOENT,
                                       "%s: no %s here: give --node HOST and --cluster-id HEX (as "
                                       "'cloister apply' printed it), or --state-file FILE.",
                                       verb, t->state_path);
        r = cli_state_load(t->state_path, state_cid, state_ep, sizeof(state_ep));
        if (r < 0)
                return r;
        if (t->cluster_id && memcmp(t->cid, state_cid, sizeof(state_cid)) != 0)
                return log_error_errno(-EUSAGE,
                                       "%s: --cluster-id differs from the cluster ID in %s: give "
                                       "one of them.",
                                       verb, t->state_path);
        memcpy(t->cid, state_cid, sizeof(state_cid));
        if (!t->url[0])
                (void) snprintf(t->url, sizeof(t->url), "%s", state_ep);
        return 0;
}
