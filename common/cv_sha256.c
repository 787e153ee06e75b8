/* cv_sha256: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104). */
#include "cv_sha256.h"

#include <stdint.h>
#include <string.h>

static const uint32_t cv_sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1,
    0x923f82a4, 0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3,
    0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786,
    0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147,
    0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13,
    0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
    0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a,
    0x5b9cca4f, 0x682e6ff3, 0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208,
    0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t cv_sha256_ror(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void cv_sha256_block(cv_sha256_t *ctx, const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | (uint32_t)p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = cv_sha256_ror(w[i - 15], 7) ^ cv_sha256_ror(w[i - 15], 18) ^
                      (w[i - 15] >> 3);
        uint32_t s1 = cv_sha256_ror(w[i - 2], 17) ^ cv_sha256_ror(w[i - 2], 19) ^
                      (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = ctx->state[0], b = ctx->state[1], c = ctx->state[2],
             d = ctx->state[3], e = ctx->state[4], f = ctx->state[5],
             g = ctx->state[6], h = ctx->state[7];
    for (int i = 0; i < 64; i++) {
        uint32_t s1 = cv_sha256_ror(e, 6) ^ cv_sha256_ror(e, 11) ^
                      cv_sha256_ror(e, 25);
        uint32_t ch = (e & f) ^ (~e & g);
        uint32_t t1 = h + s1 + ch + cv_sha256_k[i] + w[i];
        uint32_t s0 = cv_sha256_ror(a, 2) ^ cv_sha256_ror(a, 13) ^
                      cv_sha256_ror(a, 22);
        uint32_t maj = (a & b) ^ (a & c) ^ (b & c);
        uint32_t t2 = s0 + maj;
        h = g;
        g = f;
        f = e;
        e = d + t1;
        d = c;
        c = b;
        b = a;
        a = t1 + t2;
    }
    ctx->state[0] += a;
    ctx->state[1] += b;
    ctx->state[2] += c;
    ctx->state[3] += d;
    ctx->state[4] += e;
    ctx->state[5] += f;
    ctx->state[6] += g;
    ctx->state[7] += h;
}

void cv_sha256_update(cv_sha256_t *ctx, const void *data,
                                 size_t size)
{
    const uint8_t *p = data;
    ctx->length += size;
    while (size > 0) {
        size_t take = 64 - ctx->used;
        if (take > size)
            take = size;
        memcpy(ctx->block + ctx->used, p, take);
        ctx->used += take;
        p += take;
        size -= take;
        if (ctx->used == 64) {
            cv_sha256_block(ctx, ctx->block);
            ctx->used = 0;
        }
    }
}

void cv_sha256_init(cv_sha256_t *ctx)
{
    static const uint32_t initial[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372,
                                        0xa54ff53a, 0x510e527f, 0x9b05688c,
                                        0x1f83d9ab, 0x5be0cd19};
    memset(ctx, 0, sizeof(*ctx));
    memcpy(ctx->state, initial, sizeof(initial));
}

void cv_sha256_final(cv_sha256_t *ctx, uint8_t digest[CV_SHA256_SIZE])
{
    /* 0x80, zeros up to 56 bytes into a block, the length in bits */
    uint64_t bits = ctx->length * 8;
    uint8_t tail[72] = {0x80};
    size_t pad = ctx->used < 56 ? 56 - ctx->used : 120 - ctx->used;
    for (int i = 0; i < 8; i++)
        tail[pad + (size_t)i] = (uint8_t)(bits >> (56 - 8 * i));
    cv_sha256_update(ctx, tail, pad + 8);
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 4; j++)
            digest[4 * i + j] = (uint8_t)(ctx->state[i] >> (24 - 8 * j));
}

void cv_sha256_to_hex(const uint8_t digest[CV_SHA256_SIZE],
                      char hex[CV_SHA256_HEX])
{
    static const char digits[] = "0123456789abcdef";
    for (int i = 0; i < CV_SHA256_SIZE; i++) {
        hex[2 * i] = digits[digest[i] >> 4];
        hex[2 * i + 1] = digits[digest[i] & 0xf];
    }
    hex[2 * CV_SHA256_SIZE] = '\0';
}

void cv_sha256_hex(const void *a, size_t a_size, const void *b, size_t b_size,
                   char hex[CV_SHA256_HEX])
{
    cv_sha256_t ctx;
    uint8_t digest[CV_SHA256_SIZE];
    cv_sha256_init(&ctx);
    if (a_size > 0)
        cv_sha256_update(&ctx, a, a_size);
    if (b_size > 0)
        cv_sha256_update(&ctx, b, b_size);
    cv_sha256_final(&ctx, digest);
    cv_sha256_to_hex(digest, hex);
}

void cv_hmac_sha256(const void *key, size_t key_size, const void *message,
                    size_t message_size, uint8_t mac[CV_SHA256_SIZE])
{
    /* a key longer than a block is hashed first (RFC 2104 section 2) */
    uint8_t block[64] = {0};
    if (key_size > sizeof(block)) {
        cv_sha256_t ctx;
        cv_sha256_init(&ctx);
        cv_sha256_update(&ctx, key, key_size);
        cv_sha256_final(&ctx, block);
    } else if (key_size > 0) {
        memcpy(block, key, key_size);
    }
    uint8_t pad[64];
    uint8_t inner[CV_SHA256_SIZE];
    cv_sha256_t ctx;
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = block[i] ^ 0x36;
    cv_sha256_init(&ctx);
    cv_sha256_update(&ctx, pad, sizeof(pad));
    if (message_size > 0)
        cv_sha256_update(&ctx, message, message_size);
    cv_sha256_final(&ctx, inner);
    for (size_t i = 0; i < sizeof(pad); i++)
        pad[i] = block[i] ^ 0x5c;
    cv_sha256_init(&ctx);
    cv_sha256_update(&ctx, pad, sizeof(pad));
    cv_sha256_update(&ctx, inner, sizeof(inner));
    cv_sha256_final(&ctx, mac);
}
