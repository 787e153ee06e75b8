/* intake_sha256: SHA-256 (FIPS 180-4) of a byte string, for telling an
 * Idempotency-Key retry with the same body from one with another body. */
#ifndef INTAKE_SHA256_H
#define INTAKE_SHA256_H

#include <stddef.h>

#define INTAKE_SHA256_HEX 65 /* 64 hex digits and the NUL */

/* Hashes the concatenation of `a` and `b` (either may be empty) and
 * writes the digest as lower-case hex into hex. */
void intake_sha256_hex(const void *a, size_t a_size, const void *b,
                       size_t b_size, char hex[INTAKE_SHA256_HEX]);

#endif
