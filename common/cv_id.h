/* cv_id: unique identifiers that sort by creation time
 * ("lead_019aac3f2e1b5d0c9a7e0001"). */
#ifndef CV_ID_H
#define CV_ID_H

#include <stddef.h>

#define CV_ID_SIZE 48 /* enough for any prefix we use plus 32 hex digits */

/* Writes prefix + "_" + 24 hex digits (12 of the millisecond, 8 of a
 * per-process random tag, 4 of a counter) into buf. Thread-safe. Returns
 * buf. */
char *cv_id_new(const char *prefix, char *buf, size_t size);

/* Writes prefix + "_" + 32 hex digits of fresh randomness (128 bits): for
 * secrets such as API tokens, which must not be guessable from another
 * id. Returns buf. */
char *cv_id_secret(const char *prefix, char *buf, size_t size);

#endif
