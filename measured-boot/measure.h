/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

int verb_eventlog(int argc, char *argv[], void *userdata);
int verb_authenticode(int argc, char *argv[], void *userdata);
int verb_sign(int argc, char *argv[], void *userdata);
int verb_verify(int argc, char *argv[], void *userdata);
int verb_uki(int argc, char *argv[], void *userdata);
int verb_image(int argc, char *argv[], void *userdata);
int verb_snp_launch(int argc, char *argv[], void *userdata);
int verb_snp_host_data(int argc, char *argv[], void *userdata);
