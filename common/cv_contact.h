/* cv_contact: contact details in one canonical form.
 *
 * The same person must be recognised whichever channel they arrive by, so
 * every phone, email, Telegram handle and INN is reduced to one spelling
 * before it is stored or compared. Each function writes the canonical form
 * into `out` (NUL-terminated) and returns 0, or returns -1 when the text is
 * not such a contact (out is then ""). None of them allocate. */
#ifndef CV_CONTACT_H
#define CV_CONTACT_H

#include <stdbool.h>
#include <stddef.h>

#define CV_CONTACT_SIZE 256 /* enough for any canonical contact */

/* A phone number as E.164 ("+79123456789"). Spaces, dots, dashes and
 * parentheses are ignored. Without a leading '+' the default region is
 * Russia: "8 (912) 345-67-89", "7 912 …" and "912 345 67 89" all become
 * "+79123456789"; "00" starts an international number. Anything with
 * other characters, fewer than 10 or more than 15 digits, or a +7 number
 * that is not 11 digits long, is refused. */
int cv_contact_phone(const char *text, char *out, size_t size);

/* An email address, trimmed and lower-cased: one '@', a plausible local
 * part and a domain with at least two labels. */
int cv_contact_email(const char *text, char *out, size_t size);

/* A Telegram username, lower-cased, without '@' or a "t.me/" link prefix:
 * letters, digits and '_' only. */
int cv_contact_telegram(const char *text, char *out, size_t size);

/* A Russian INN (tax id): 10 or 12 digits, spaces and dashes ignored. */
int cv_contact_inn(const char *text, char *out, size_t size);

/* True when `domain` (lower-case) is a free mail provider (gmail.com,
 * mail.ru, yandex.ru, …), which says nothing about the sender's company. */
bool cv_contact_free_mail(const char *domain);

/* The company domain of a canonical email: its domain unless that is a
 * free mail provider. Returns true and fills `out`, or false with out "". */
bool cv_contact_company_domain(const char *email, char *out, size_t size);

#endif
