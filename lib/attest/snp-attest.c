/* SPDX-License-Identifier: Apache-2.0 */
#include <stdio.h>
#include <string.h>

#include "attest-internal.h"
#include "cloister/log.h"
#include "cloister/snp-guest.h"
#include "cloister/snp-sim.h"

int attest_sim_snp_issue(SnpSimulator *sim, const uint8_t binding[static ATTEST_BINDING_SIZE],
                         Evidence **ret, Diag *d)
{
        _cleanup_(evidence_freep) Evidence *e = evidence_new(ATTEST_VARIANT_SIM_SNP);
        uint8_t report_data[64] = {}, raw[SNP_SIM_REPORT_SIZE];
        char *chain = NULL;
        int r;

        if (!e)
                return -ENOMEM;
        /* REPORT_DATA = binding || 32 zero bytes. */
        memcpy(report_data, binding, ATTEST_BINDING_SIZE);
        r = snp_sim_report(sim, report_data, raw);
        if (r >= 0)
                r = blob_set(&e->snp.report, raw, sizeof(raw));
        if (r >= 0)
                r = snp_sim_vcek_der(sim, &e->snp.vcek.data, &e->snp.vcek.size);
        if (r >= 0)
                r = snp_sim_chain_pem(sim, &chain);
        if (r >= 0) {
                e->snp.chain = (Blob){ (uint8_t *) chain, strlen(chain) };
                e->has_snp = true;
        }
        if (r < 0)
                return diag_fail(d, r, "snp-issue", -1, "the SNP simulator failed");
        *ret = TAKE_PTR(e);
        return 0;
}

int attest_sev_snp_issue(const uint8_t binding[static ATTEST_BINDING_SIZE], Evidence **ret, Diag *d)
{
        _cleanup_(evidence_freep) Evidence *e = evidence_new(ATTEST_VARIANT_SEV_SNP);
        uint8_t report_data[64] = {};
        int r;

        if (!e)
                return -ENOMEM;
        memcpy(report_data, binding, ATTEST_BINDING_SIZE);
        r = snp_guest_get_report(report_data, &e->snp.report.data, &e->snp.report.size,
                                 &e->snp.certificates.data, &e->snp.certificates.size, d);
        if (r < 0)
                return r;
        e->has_snp = true;
        *ret = TAKE_PTR(e);
        return 0;
}

int attest_verify_snp(const Evidence *e, const AttestPolicy *p, const uint8_t *binding, time_t at,
                      AttestReport *r, Diag *d)
{
        _cleanup_(snp_trust_freep) SnpTrust *trust = NULL;
        const EvidenceSnp *s = &e->snp;
        const uint8_t *vcek = s->vcek.data, *chain = s->chain.data;
        size_t vcek_size = s->vcek.size, chain_size = s->chain.size;
        _cleanup_(freep) uint8_t *table_chain = NULL;
        uint8_t report_data[64] = {};
        SnpProduct product;
        SnpReport rep;
        Diag sub;
        int k;

        diag_clear(&sub);
        k = snp_report_parse(s->report.data, s->report.size, &rep, &sub);
        if (k < 0)
                return report_fail(r, d, k, sub.check, -1, NULL, 0, NULL, 0, "%s", sub.message);
        /* sim-snp never trusts AMD's roots, and sev-snp never trusts anything else by default:
         * a simulated report passes only a policy that names the simulator's ARK. */
        k = snp_trust_new(!attest_variant_info(e->variant)->simulated, &trust);
        if (k < 0)
                return k;
        if (p->snp_trusted_arks.data) {
                k = snp_trust_add_ark_pem(trust, (const char *) p->snp_trusted_arks.data,
                                          p->snp_trusted_arks.size);
                if (k < 0)
                        return report_fail(r, d, -EINVAL, "snp-ark", -1, NULL, 0, NULL, 0,
                                           "the policy's trustedArks hold no valid ARK");
        }
        if (attest_variant_info(e->variant)->simulated)
                log_debug("attest: verifying SIMULATED SEV-SNP evidence (not hardware)");
        /* Certificates from the extended report's table, where the host supplied them. */
        if ((!vcek || !chain) && s->certificates.data) {
                SnpCertTable ct;

                k = snp_cert_table_parse(s->certificates.data, s->certificates.size, &ct, &sub);
                if (k < 0)
                        return report_fail(r, d, k, "snp-cert-table", -1, NULL, 0, NULL, 0, "%s",
                                           sub.message);
                if (!vcek) {
                        vcek = ct.vcek ?: ct.vlek;
                        vcek_size = ct.vcek ? ct.vcek_size : ct.vlek_size;
                }
                if (!chain && ct.ask) {
                        /* The ASK alone suffices: only trusted ARKs anchor the chain. */
                        table_chain = malloc(ct.ask_size);
                        if (!table_chain)
                                return -ENOMEM;
                        memcpy(table_chain, ct.ask, ct.ask_size);
                        chain = table_chain;
                        chain_size = ct.ask_size;
                }
        }
        k = snp_verify_report(&rep, s->report.data, s->report.size, vcek, vcek_size, chain,
                              chain_size, trust, at, &product, &sub);
        if (k < 0) {
                CheckResult *c;
                k = report_fail(r, d, k, sub.check, -1, NULL, 0, NULL, 0, "%s", sub.message);
                c = r && r->n_checks > 0 ? &r->checks[r->n_checks - 1] : NULL;
                if (c) {
                        (void) snprintf(c->expected, sizeof(c->expected), "%s", sub.expected);
                        (void) snprintf(c->actual, sizeof(c->actual), "%s", sub.actual);
                }
                if (d && (sub.expected[0] || sub.actual[0]))
                        diag_set_values(d, sub.expected, sub.actual);
                return k;
        }
        report_add(r, "snp-authenticity", -1, CHECK_PASS, true,
                   "report signed by a %s %s chaining to a trusted ARK",
                   snp_product_to_string(product), rep.signing_key == 1 ? "VLEK" : "VCEK");
        if (binding)
                memcpy(report_data, binding, ATTEST_BINDING_SIZE);
        else
                report_add(r, "snp-report-data", -1, CHECK_SKIPPED, true,
                           "not checked: no expected binding given (freshness unknown)");
        return snp_check_policy(&rep, product, &p->snp, binding ? report_data : NULL,
                                attest_report_record, r, d);
}
