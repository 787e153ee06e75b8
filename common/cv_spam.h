/* cv_spam: is an incoming lead spam?
 *
 * Cheap checks that catch what form bots and list sellers send, so the
 * lead is stored as `rejected: spam` instead of reaching a person:
 * - a honeypot: a form field hidden from people that only bots fill in;
 * - link density: more links in the message than a person writes;
 * - blocklists of email domains (also matched against the message's
 *   links) and of phone numbers, from the configuration.
 * Nothing here allocates after cv_spam_new. */
#ifndef CV_SPAM_H
#define CV_SPAM_H

#include <stddef.h>

typedef struct cv_spam cv_spam_t;

/* The rules: `honeypot` is the hidden field's name ("" for none);
 * `max_links` the most links a message may hold; `block_domains` and
 * `block_phones` comma-separated lists (phones in any spelling; they are
 * normalised with cv_contact_phone, domains lower-cased; a domain also
 * blocks its subdomains). Returns NULL after logging why (a phone in the
 * list that is not a phone number). The caller owns the result. */
cv_spam_t *cv_spam_new(const char *honeypot, int max_links,
                       const char *block_domains, const char *block_phones);
/* NULL-safe; nulls *self_p. */
void cv_spam_destroy(cv_spam_t **self_p);

/* What the check looks at; any field may be NULL. */
typedef struct {
    const char *honeypot_value; /* the honeypot field as sent */
    const char *message;        /* free text of the lead */
    const char *email;          /* canonical email (cv_contact_email) */
    const char *phone;          /* canonical phone (E.164) */
} cv_spam_lead_t;

/* Why the lead is spam, as a short reason ("honeypot field filled",
 * "5 links in the message (at most 3)", "blocked domain 'spam.example'",
 * "blocked phone '+79990000000'") written into `reason`; returns 1 for
 * spam, 0 for a lead that passed. */
int cv_spam_check(const cv_spam_t *self, const cv_spam_lead_t *lead,
                  char *reason, size_t reason_size);

/* The honeypot field's name ("" when none). */
const char *cv_spam_honeypot(const cv_spam_t *self);

#endif
