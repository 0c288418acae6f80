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

#include "cli.h"
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
