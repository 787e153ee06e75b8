/* cv_phone: phone numbers read with libphonenumber, behind a C interface.
 *
 * libphonenumber (Google's, C++) knows every country's numbering plan:
 * which prefixes are trunk ("8" in Russia, "0" in the UK) or international
 * ("810" in Russia, "00" in most of Europe) and which number ranges are
 * assigned. These functions hide it from the C code: they never throw,
 * never keep memory the caller has to free, and may be called from any
 * thread. The library's own log output is switched off.
 *
 * A region is an upper-case ISO 3166-1 alpha-2 code ("RU", "KZ", "GB",
 * "US"); it says how to read a number written without "+". NULL means
 * "RU". Text must be UTF-8. */
#ifndef CV_PHONE_H
#define CV_PHONE_H

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CV_PHONE_E164_SIZE 17 /* '+', at most 15 digits, NUL */

/* Writes the number in `text` as E.164 ("+79123456789") into `out` and
 * returns 0, or returns -1 with out "" (when size > 0).
 *
 * With region "RU", "8 (912) 345-67-89", "+7 912 345 67 89", "912 345 67 89"
 * and "810 44 20 7946 0958" are read as they are dialled in Russia;
 * "0044 20 7946 0958" is also taken as international when the region's own
 * reading of it is not a valid number. An extension ("доб. 123", "ext 5",
 * "x123") is dropped: the E.164 form is the line itself. Words before the
 * number ("Тел.: ") are skipped; anything else after it refuses the text.
 *
 * The number must be *valid*, not merely *possible*: its length and its
 * range must be assigned in the country's numbering plan (so "+7 000 …",
 * "+44 7700 900123", the UK's range for fiction, and most typos are
 * refused). The cost: a range allocated after the libphonenumber release
 * installed was built is refused too; Russia's mobile range is all of 9xx,
 * so Russian numbers are not affected.
 *
 * Letters are refused, except where libphonenumber reads a written-out
 * number ("1-800-FLOWERS"). A region libphonenumber does not know
 * accepts only numbers written with "+" (or "00"). */
int cv_phone_e164(const char *text, const char *region, char *out, size_t size);

/* Called once per phone number found by cv_phone_find: its E.164 form
 * (valid during the call only) and the byte range [start, end) it was
 * written in, extension included, in the searched text. */
typedef void (*cv_phone_found_fn)(const char *e164, size_t start, size_t end,
                                  void *arg);

/* Finds the valid phone numbers in free text, such as an email
 * signature ("Тел.: +7 (495) 123-45-67, доб. 123", "моб. 8 912 345 67 89"),
 * in the order written, and calls `found` (may be NULL) for each. Dates,
 * sums, INNs and order numbers are not taken for phones. A number written
 * twice is reported twice. Returns how many were found, or -1 when text
 * is NULL or not UTF-8. Gives up after CV_PHONE_FIND_TRIES candidates, so
 * a huge text costs bounded time. */
int cv_phone_find(const char *text, const char *region, cv_phone_found_fn found,
                  void *arg);

#define CV_PHONE_FIND_TRIES 10000 /* candidate numbers cv_phone_find tries */

/* True when `e164` is a mobile number by its country's plan (Russian 9xx,
 * Kazakh 70N/747/77N, UK 7NNN). False for fixed lines, toll-free, numbers
 * the plan cannot tell apart (US and Canada) and anything not E.164. */
bool cv_phone_is_mobile(const char *e164);

/* True when libphonenumber has a numbering plan for region `iso2`
 * ("RU", "KZ"); false for "ZZ", "XX", lower case or NULL. */
bool cv_phone_region_known(const char *iso2);

#ifdef __cplusplus
}
#endif

#endif
