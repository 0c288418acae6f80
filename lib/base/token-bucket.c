/* SPDX-License-Identifier: Apache-2.0 */
#include "cloister/token-bucket.h"

void token_bucket_init(TokenBucket *b, unsigned rate, unsigned burst, uint64_t now_ms)
{
        *b = (TokenBucket){
                .rate = rate,
                .burst = burst ?: 1,
                .milli = (uint64_t) (burst ?: 1) * 1000U,
                .at_ms = now_ms,
        };
}

static void refill(TokenBucket *b, uint64_t now_ms)
{
        uint64_t cap = (uint64_t) b->burst * 1000U;

        /* A clock that went back (it does not: CLOCK_MONOTONIC) would add nothing. */
        if (now_ms > b->at_ms) {
                uint64_t add = (now_ms - b->at_ms) * b->rate; /* ms × tokens/s: thousandths */
                b->milli = add >= cap - b->milli ? cap : b->milli + add;
        }
        b->at_ms = now_ms;
}

bool token_bucket_ready(TokenBucket *b, uint64_t now_ms)
{
        if (b->rate == 0)
                return true;
        refill(b, now_ms);
        return b->milli >= 1000U;
}

void token_bucket_spend(TokenBucket *b)
{
        if (b->rate == 0)
                return;
        b->milli = b->milli >= 1000U ? b->milli - 1000U : 0;
}

void token_bucket_refund(TokenBucket *b)
{
        uint64_t cap = (uint64_t) b->burst * 1000U;

        if (b->rate == 0)
                return;
        b->milli = b->milli + 1000U >= cap ? cap : b->milli + 1000U;
}

uint64_t token_bucket_wait_ms(const TokenBucket *b)
{
        if (b->rate == 0 || b->milli >= 1000U)
                return 0;
        /* Rounded up: waking a little late finds the token there. */
        return (1000U - b->milli + b->rate - 1) / b->rate;
}

bool token_bucket_full(TokenBucket *b, uint64_t now_ms)
{
        if (b->rate == 0)
                return true;
        refill(b, now_ms);
        return b->milli >= (uint64_t) b->burst * 1000U;
}
