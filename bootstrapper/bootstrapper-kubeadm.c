/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Kubernetes driver: kubeadm's v1beta4 configuration for the first control plane, hardened,
 * written as two JSON documents (JSON is YAML; kubeadm reads "---"-separated documents), then
 * `kubeadm init --config` through an argument vector.
 */
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bootstrapper.h"
#include "cloister/fileio.h"
#include "cloister/json.h"
#include "cloister/log.h"
#include "cloister/spawn.h"

#define API_PORT  6443
#define AUDIT_DIR "/var/log/kubernetes/audit"

/* DNS-1123 label: what Kubernetes accepts for names we put into the configuration. */
bool kubeadm_name_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 63 || s[0] == '-' || s[n - 1] == '-')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-'))
                        return false;
        return true;
}

/* DNS-1123 subdomain: node names. */
bool kubeadm_node_name_ok(const char *s)
{
        size_t n = strlen(s);

        if (n == 0 || n > 253 || s[0] == '-' || s[0] == '.' || s[n - 1] == '-' || s[n - 1] == '.')
                return false;
        for (size_t i = 0; i < n; i++)
                if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') || s[i] == '-' ||
                      s[i] == '.'))
                        return false;
        return true;
}

bool kubeadm_version_ok(const char *s)
{
        unsigned a, b, c;
        int end = 0;

        return sscanf(s, "v%u.%u.%u%n", &a, &b, &c, &end) == 3 && s[end] == '\0' && a == 1 &&
               b >= 28 && b < 100 && c < 1000;
}

/* IPv4 or IPv6 CIDR with a sane prefix for a service range (kubeadm's own limits: /12../24 for
 * IPv4 services is what fits its allocator; we accept /8../28). */
bool kubeadm_cidr_ok(const char *s)
{
        char buf[64];
        const char *slash = strchr(s, '/');
        unsigned char addr[16];
        char *end;
        long prefix;
        bool v6;

        if (!slash || (size_t) (slash - s) >= sizeof(buf))
                return false;
        memcpy(buf, s, (size_t) (slash - s));
        buf[slash - s] = '\0';
        v6 = strchr(buf, ':') != NULL;
        if (inet_pton(v6 ? AF_INET6 : AF_INET, buf, addr) != 1)
                return false;
        prefix = strtol(slash + 1, &end, 10);
        if (*end || end == slash + 1)
                return false;
        return v6 ? prefix >= 64 && prefix <= 120 : prefix >= 8 && prefix <= 28;
}

static json_t *arg(const char *name, const char *value)
{
        return json_pack("{s:s,s:s}", "name", name, "value", value);
}

int kubeadm_write_config(const KubeadmParams *p, const char *path)
{
        _cleanup_(json_decrefp) json_t *init = NULL, *cluster = NULL;
        _cleanup_(freep) char *a = NULL, *c = NULL, *text = NULL;
        char endpoint[300];
        int r;

        if (!kubeadm_node_name_ok(p->node_name) || !kubeadm_name_ok(p->cluster_name) ||
            !kubeadm_version_ok(p->version) || !kubeadm_cidr_ok(p->service_cidr))
                return -EINVAL;
        (void) snprintf(endpoint, sizeof(endpoint), "%s", p->control_plane_endpoint);

        init = json_pack("{s:s,s:s,s:{s:s,s:s,s:[o],s:[]},s:{s:s,s:i},s:[s]}", "apiVersion",
                         "kubeadm.k8s.io/v1beta4", "kind", "InitConfiguration", "nodeRegistration",
                         "name", p->node_name, "criSocket",
                         "unix:///run/containerd/containerd.sock", "kubeletExtraArgs",
                         arg("node-ip", p->advertise_address), "taints", "localAPIEndpoint",
                         "advertiseAddress", p->advertise_address, "bindPort", API_PORT,
                         "skipPhases", "addon/kube-proxy");
        /* Hardening (CIS Kubernetes Benchmark 1.2.x/1.3.x/1.4.x where kubeadm allows it):
         * audit logging with a policy, profiling off everywhere, only TLS 1.3, admission with
         * NodeRestriction. The API server keeps anonymous requests for /livez, /readyz and
         * /healthz only: kubeadm's static-pod probes need them (docs/kubernetes.md). */
        cluster = json_pack(
                "{s:s,s:s,s:s,s:s,s:s,s:{s:s,s:s},"
                "s:{s:[s,s,s],s:[o,o,o,o,o,o,o,o],s:[{s:s,s:s,s:s,s:b,s:s},{s:s,s:s,s:s,s:b,"
                "s:s}]},"
                "s:{s:[o,o]},s:{s:[o,o]},s:{s:{s:s}}}",
                "apiVersion", "kubeadm.k8s.io/v1beta4", "kind", "ClusterConfiguration",
                "clusterName", p->cluster_name, "kubernetesVersion", p->version,
                "controlPlaneEndpoint", endpoint, "networking", "serviceSubnet", p->service_cidr,
                "dnsDomain", "cluster.local", "apiServer", "certSANs", p->advertise_address,
                p->node_name, p->endpoint_host, "extraArgs", arg("profiling", "false"),
                arg("audit-log-path", AUDIT_DIR "/audit.log"),
                arg("audit-policy-file", p->audit_policy), arg("audit-log-maxage", "30"),
                arg("audit-log-maxbackup", "10"), arg("audit-log-maxsize", "100"),
                arg("tls-min-version", "VersionTLS13"),
                arg("enable-admission-plugins", "NodeRestriction"), "extraVolumes", "name",
                "audit-policy", "hostPath", p->audit_policy, "mountPath", p->audit_policy,
                "readOnly", true, "pathType", "File", "name", "audit-log", "hostPath", AUDIT_DIR,
                "mountPath", AUDIT_DIR, "readOnly", false, "pathType", "DirectoryOrCreate",
                "controllerManager", "extraArgs", arg("profiling", "false"),
                arg("tls-min-version", "VersionTLS13"), "scheduler", "extraArgs",
                arg("profiling", "false"), arg("tls-min-version", "VersionTLS13"), "etcd", "local",
                "dataDir", "/var/lib/etcd");
        if (!init || !cluster)
                return -ENOMEM;
        /* Where kubeadm keeps its certificates, the etcd CA among them (etcd/ca.crt, ca.key):
         * the join service's etcd client certificate is issued from it (bootstrapper-etcd.c). */
        if (p->certificates_dir) {
                if (p->certificates_dir[0] != '/')
                        return -EINVAL;
                if (json_object_set_new(cluster, "certificatesDir",
                                        json_string(p->certificates_dir)) < 0)
                        return -ENOMEM;
        }
        r = json_dump_pretty(init, &a);
        if (r >= 0)
                r = json_dump_pretty(cluster, &c);
        if (r < 0 || asprintf(&text, "%s\n---\n%s\n", a, c) < 0)
                return -ENOMEM;
        return write_file_atomic(path, text, strlen(text), 0600, 0);
}

/* The audit policy the API server is pointed at: metadata for everything, no bodies (request
 * bodies may hold secrets). */
int kubeadm_write_audit_policy(const char *path)
{
        static const char policy[] = "apiVersion: audit.k8s.io/v1\n"
                                     "kind: Policy\n"
                                     "omitStages: [RequestReceived]\n"
                                     "rules:\n"
                                     "- level: Metadata\n";
        return write_file_atomic(path, policy, strlen(policy), 0600, 0);
}

int kubeadm_write_join_config(const KubeadmJoinParams *p, const char *path)
{
        _cleanup_(json_decrefp) json_t *join = NULL;
        _cleanup_(freep) char *text = NULL;
        int r;

        if (!kubeadm_node_name_ok(p->node_name))
                return -EINVAL;
        join = json_pack("{s:s,s:s,s:{s:{s:s,s:s,s:[s]}},s:{s:s,s:s,s:[o]}}", "apiVersion",
                         "kubeadm.k8s.io/v1beta4", "kind", "JoinConfiguration", "discovery",
                         "bootstrapToken", "apiServerEndpoint", p->control_plane_endpoint, "token",
                         p->token, "caCertHashes", p->ca_cert_hash, "nodeRegistration", "name",
                         p->node_name, "criSocket", "unix:///run/containerd/containerd.sock",
                         "kubeletExtraArgs", arg("node-ip", p->advertise_address));
        if (!join)
                return -ENOMEM;
        if (p->certificate_key &&
            json_object_set_new(join, "controlPlane",
                                json_pack("{s:{s:s,s:i},s:s}", "localAPIEndpoint",
                                          "advertiseAddress", p->advertise_address, "bindPort",
                                          API_PORT, "certificateKey", p->certificate_key)) < 0)
                return -ENOMEM;
        r = json_dump_pretty(join, &text);
        if (r < 0)
                return r;
        /* It holds the bootstrap token (and the certificate key): 0600, wiped from memory. */
        r = write_file_atomic(path, text, strlen(text), 0600, WRITE_FILE_SYNC);
        explicit_wipe(text, strlen(text));
        return r;
}
