/* SPDX-License-Identifier: Apache-2.0 */
#include "cli.h"
#include "cloister/log.h"

int verb_attestation(int argc, char *argv[], void *userdata)
{
        return log_error_errno(-EOPNOTSUPP, "cloister attestation: not built yet.");
}
