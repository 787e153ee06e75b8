/* cv_id: random identifiers ("lead_9f86d081884c7d65"), from getrandom(2). */
#ifndef CV_ID_H
#define CV_ID_H

#include <stddef.h>

#define CV_ID_SIZE 48 /* enough for any prefix we use plus 16 hex digits */

/* Writes prefix + "_" + 16 random hex digits into buf. Returns buf. */
char *cv_id_new(const char *prefix, char *buf, size_t size);

#endif
