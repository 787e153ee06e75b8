/* cv_sha256: SHA-256 (FIPS 180-4) and HMAC-SHA256 (RFC 2104).
 *
 * Intake hashes request bodies to tell an Idempotency-Key retry with the
 * same body from one with another body; the notifier signs webhooks. */
#ifndef CV_SHA256_H
#define CV_SHA256_H

#include <stddef.h>
#include <stdint.h>

#define CV_SHA256_SIZE 32 /* digest bytes */
#define CV_SHA256_HEX  65 /* 64 hex digits and the NUL */

/* A running hash; fill with cv_sha256_init, feed, then finish once. */
typedef struct {
    uint32_t state[8];  /* the running hash */
    uint64_t length;    /* bytes hashed so far */
    uint8_t block[64];  /* the block being filled */
    size_t used;        /* bytes in block */
} cv_sha256_t;

void cv_sha256_init(cv_sha256_t *ctx);
void cv_sha256_update(cv_sha256_t *ctx, const void *data, size_t size);
void cv_sha256_final(cv_sha256_t *ctx, uint8_t digest[CV_SHA256_SIZE]);

/* Lower-case hex of a digest. */
void cv_sha256_to_hex(const uint8_t digest[CV_SHA256_SIZE],
                      char hex[CV_SHA256_HEX]);

/* Hashes the concatenation of `a` and `b` (either may be empty) and
 * writes the digest as lower-case hex into hex. */
void cv_sha256_hex(const void *a, size_t a_size, const void *b, size_t b_size,
                   char hex[CV_SHA256_HEX]);

/* HMAC-SHA256 of the message under the key (any length). */
void cv_hmac_sha256(const void *key, size_t key_size, const void *message,
                    size_t message_size, uint8_t mac[CV_SHA256_SIZE]);

#endif
