/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

#include "cloister/verbs.h"

/* -o json as the verb parsed it: a failure then leaves an error document on stdout (main.c,
 * docs/json.md). */
extern OutputFormat arg_output;

int verb_eventlog(int argc, char *argv[], void *userdata);
int verb_authenticode(int argc, char *argv[], void *userdata);
int verb_sign(int argc, char *argv[], void *userdata);
int verb_verify(int argc, char *argv[], void *userdata);
int verb_uki(int argc, char *argv[], void *userdata);
int verb_image(int argc, char *argv[], void *userdata);
int verb_snp_launch(int argc, char *argv[], void *userdata);
int verb_snp_host_data(int argc, char *argv[], void *userdata);
