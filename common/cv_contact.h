/* cv_contact: contact details in one canonical form.
 *
 * The same person must be recognised whichever channel they arrive by, so
 * every phone, email, Telegram handle and INN is reduced to one spelling
 * before it is stored or compared. Each function writes the canonical form
 * into `out` (NUL-terminated) and returns 0, or returns -1 when the text is
 * not such a contact (out is then ""). Nothing is returned for the caller
 * to free. */
#ifndef CV_CONTACT_H
#define CV_CONTACT_H

#include <stdbool.h>
#include <stddef.h>

#define CV_CONTACT_SIZE 256 /* enough for any canonical contact */

/* A phone number as E.164 ("+79123456789"), read by cv_phone_e164 (see
 * cv_phone.h) in the process-wide default region: with "RU",
 * "8 (912) 345-67-89", "+7 912 345 67 89" and "912 345 67 89" all become
 * "+79123456789", "810 44 …" and "0044 …" are international. The number
 * must be valid in its country's numbering plan; an extension ("доб. 123")
 * is dropped. */
int cv_contact_phone(const char *text, char *out, size_t size);

/* Sets the region cv_contact_phone reads numbers without "+" in: an
 * upper-case ISO 3166-1 alpha-2 code libphonenumber has a plan for ("RU",
 * "KZ", "BY"). Returns 0, or -1 leaving the region as it was. "RU" until
 * set. Call it at start-up, before other threads normalise phones: the
 * region is a plain process-wide variable. */
int cv_contact_set_region(const char *iso2);

/* An email address, trimmed and lower-cased: one '@', a plausible local
 * part and a domain with at least two labels. */
int cv_contact_email(const char *text, char *out, size_t size);

/* A Telegram username, lower-cased, without '@' or a "t.me/" link prefix:
 * letters, digits and '_' only. */
int cv_contact_telegram(const char *text, char *out, size_t size);

/* A Russian INN (tax id), spaces and dashes ignored: 10 digits for a
 * company, 12 for a person or sole trader, with the tax service's check
 * digits right (the last one for 10 digits, the last two for 12) and a
 * region code other than "00" in front, so "0000000000" is refused. */
int cv_contact_inn(const char *text, char *out, size_t size);

/* True when `domain` (lower-case) is a free mail provider (gmail.com,
 * mail.ru, yandex.ru, …), which says nothing about the sender's company. */
bool cv_contact_free_mail(const char *domain);

/* The company domain of a canonical email: its domain unless that is a
 * free mail provider. Returns true and fills `out`, or false with out "". */
bool cv_contact_company_domain(const char *email, char *out, size_t size);

#endif
