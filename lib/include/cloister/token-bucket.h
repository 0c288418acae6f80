/* SPDX-License-Identifier: Apache-2.0 */
#pragma once

/*
 * A token bucket: at most `burst` actions at once, then `rate` a second. Time is the caller's
 * (milliseconds of CLOCK_MONOTONIC), so that tests drive it; no locking (the caller's lock).
 */

#include <stdbool.h>
#include <stdint.h>

typedef struct TokenBucket {
        unsigned rate;  /* tokens a second; 0: no limit */
        unsigned burst; /* at most this many saved (>= 1) */
        uint64_t milli; /* tokens saved, in thousandths */
        uint64_t at_ms; /* when milli was last brought up to date */
} TokenBucket;

/* Full: a bucket never used allows its whole burst. */
void token_bucket_init(TokenBucket *b, unsigned rate, unsigned burst, uint64_t now_ms);
/* Whether one token is there now (after the time since the last call refilled it). */
bool token_bucket_ready(TokenBucket *b, uint64_t now_ms);
/* Spends one token; call only after token_bucket_ready() said yes. */
void token_bucket_spend(TokenBucket *b);
/* Gives one token back (an action that turned out not to need it), up to the burst. */
void token_bucket_refund(TokenBucket *b);
/* Milliseconds until one token is there (0: now), as of the last token_bucket_ready(). */
uint64_t token_bucket_wait_ms(const TokenBucket *b);
/* Whether it holds its whole burst (a bucket that is full is as good as a new one). */
bool token_bucket_full(TokenBucket *b, uint64_t now_ms);
