/* cv_spam: honeypot, link density and blocklists. */
#include "cv_spam.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cv_contact.h"
#include "cv_log.h"

#define SPAM_LIST_MAX 256 /* entries per blocklist */

struct cv_spam {
    char honeypot[64];                          /* hidden field's name */
    int max_links;                              /* links a message may hold */
    char domains[SPAM_LIST_MAX][CV_CONTACT_SIZE]; /* blocked, lower-case */
    int domain_count;                           /* used entries of domains */
    char phones[SPAM_LIST_MAX][CV_CONTACT_SIZE];  /* blocked, E.164 */
    int phone_count;                            /* used entries of phones */
};

/* Calls `add` with each trimmed, non-empty item of the comma-separated
 * `list`. Stops at the first failure and returns it. */
static int spam_each_item(cv_spam_t *self, const char *list,
                          int (*add)(cv_spam_t *, const char *))
{
    const char *p = list;

    while (p != NULL && *p != '\0') {
        const char *comma = strchr(p, ',');
        const char *end = comma != NULL ? comma : p + strlen(p);
        char item[CV_CONTACT_SIZE];
        size_t len;

        while (p < end && isspace((unsigned char)*p))
            p++;
        while (end > p && isspace((unsigned char)end[-1]))
            end--;
        len = (size_t)(end - p);
        if (len >= sizeof(item))
            return cv_error("cannot use blocklist entry '%.*s': too long",
                            (int)len, p);
        if (len > 0) {
            memcpy(item, p, len);
            item[len] = '\0';
            if (add(self, item) != 0)
                return -1;
        }
        p = comma != NULL ? comma + 1 : NULL;
    }
    return 0;
}

static int spam_add_domain(cv_spam_t *self, const char *item)
{
    char *d;

    if (self->domain_count >= SPAM_LIST_MAX)
        return cv_error("cannot block domain '%s': more than %d domains",
                        item, SPAM_LIST_MAX);
    d = self->domains[self->domain_count++];
    snprintf(d, CV_CONTACT_SIZE, "%s", item[0] == '@' ? item + 1 : item);
    for (char *c = d; *c != '\0'; c++)
        *c = (char)tolower((unsigned char)*c);
    return 0;
}

static int spam_add_phone(cv_spam_t *self, const char *item)
{
    if (self->phone_count >= SPAM_LIST_MAX)
        return cv_error("cannot block phone '%s': more than %d phones", item,
                        SPAM_LIST_MAX);
    if (cv_contact_phone(item, self->phones[self->phone_count],
                         CV_CONTACT_SIZE) != 0)
        return cv_error("cannot block phone '%s': not a phone number", item);
    self->phone_count++;
    return 0;
}

cv_spam_t *cv_spam_new(const char *honeypot, int max_links,
                       const char *block_domains, const char *block_phones)
{
    cv_spam_t *self = calloc(1, sizeof(*self));

    if (self == NULL) {
        cv_error("cannot create the spam check: out of memory");
        return NULL;
    }
    snprintf(self->honeypot, sizeof(self->honeypot), "%s",
             honeypot != NULL ? honeypot : "");
    self->max_links = max_links;
    if (spam_each_item(self, block_domains, spam_add_domain) != 0 ||
        spam_each_item(self, block_phones, spam_add_phone) != 0)
        cv_spam_destroy(&self);
    return self;
}

void cv_spam_destroy(cv_spam_t **self_p)
{
    if (self_p == NULL || *self_p == NULL)
        return;
    free(*self_p);
    *self_p = NULL;
}

const char *cv_spam_honeypot(const cv_spam_t *self)
{
    return self->honeypot;
}

/* True when `host` (length `len`, any case) is a blocked domain or one of
 * its subdomains; the matching entry in *which. */
static bool spam_domain_blocked(const cv_spam_t *self, const char *host,
                                size_t len, const char **which)
{
    for (int i = 0; i < self->domain_count; i++) {
        const char *d = self->domains[i];
        size_t dlen = strlen(d);

        if (len < dlen || strncasecmp(host + len - dlen, d, dlen) != 0)
            continue;
        if (len == dlen || host[len - dlen - 1] == '.') {
            *which = d;
            return true;
        }
    }
    return false;
}

/* Where a link starts at `p`, or NULL: "http://", "https://", "www.". */
static const char *spam_link_host(const char *p)
{
    if (strncasecmp(p, "http://", 7) == 0)
        return p + 7;
    if (strncasecmp(p, "https://", 8) == 0)
        return p + 8;
    if (strncasecmp(p, "www.", 4) == 0)
        return p;
    return NULL;
}

int cv_spam_check(const cv_spam_t *self, const cv_spam_lead_t *lead,
                  char *reason, size_t reason_size)
{
    const char *which = NULL;

    if (reason_size > 0)
        reason[0] = '\0';
    if (self->honeypot[0] != '\0' && lead->honeypot_value != NULL &&
        lead->honeypot_value[0] != '\0') {
        snprintf(reason, reason_size, "honeypot field '%s' filled",
                 self->honeypot);
        return 1;
    }
    if (lead->email != NULL) {
        const char *at = strrchr(lead->email, '@');
        if (at != NULL &&
            spam_domain_blocked(self, at + 1, strlen(at + 1), &which)) {
            snprintf(reason, reason_size, "blocked domain '%s'", which);
            return 1;
        }
    }
    if (lead->phone != NULL) {
        for (int i = 0; i < self->phone_count; i++) {
            if (strcmp(lead->phone, self->phones[i]) == 0) {
                snprintf(reason, reason_size, "blocked phone '%s'",
                         self->phones[i]);
                return 1;
            }
        }
    }
    if (lead->message != NULL) {
        int links = 0;
        bool word_start = true;

        for (const char *p = lead->message; *p != '\0'; p++) {
            const char *host = word_start ? spam_link_host(p) : NULL;

            word_start = isspace((unsigned char)*p) || *p == '(' ||
                         *p == '<' || *p == '"' || *p == '\'';
            if (host == NULL)
                continue;
            links++;
            size_t len = strcspn(host, "/?#:\"'<>) \t\r\n");
            if (spam_domain_blocked(self, host, len, &which)) {
                snprintf(reason, reason_size,
                         "blocked domain '%s' in a link", which);
                return 1;
            }
        }
        if (links > self->max_links) {
            snprintf(reason, reason_size,
                     "%d links in the message (at most %d)", links,
                     self->max_links);
            return 1;
        }
    }
    return 0;
}
