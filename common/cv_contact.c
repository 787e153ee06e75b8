/* cv_contact: contact details in one canonical form. */
#include "cv_contact.h"

#include <stdio.h>
#include <string.h>

#include "cv_phone.h"

#define CV_CONTACT_INN_COMPANY 10 /* digits in a company's INN */
#define CV_CONTACT_INN_PERSON  12 /* digits in a person's INN */

/* Free mail providers: an address there names a person, not a company. */
static const char *const cv_contact_free_domains[] = {
    "gmail.com",    "googlemail.com", "mail.ru",     "yandex.ru",
    "yandex.com",   "ya.ru",          "bk.ru",       "list.ru",
    "inbox.ru",     "outlook.com",    "hotmail.com", "live.com",
    "yahoo.com",    "icloud.com",     "me.com",      "rambler.ru",
    "protonmail.com", "proton.me",    "aol.com",
};

static bool cv_contact_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
           c == '\v';
}

static char cv_contact_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? (char)(c - 'A' + 'a') : c;
}

/* Copies `text` without surrounding white space into out, lower-cased.
 * -1 when it does not fit. */
static int cv_contact_trim_lower(const char *text, char *out, size_t size)
{
    while (cv_contact_space(*text))
        text++;
    size_t len = strlen(text);
    while (len > 0 && cv_contact_space(text[len - 1]))
        len--;
    if (len + 1 > size)
        return -1;
    for (size_t i = 0; i < len; i++)
        out[i] = cv_contact_lower(text[i]);
    out[len] = '\0';
    return 0;
}

static int cv_contact_refuse(char *out, size_t size)
{
    if (out != NULL && size > 0)
        out[0] = '\0';
    return -1;
}

/* The region cv_contact_phone reads numbers without "+" in. */
static char cv_contact_region[3] = "RU";

int cv_contact_set_region(const char *iso2)
{
    if (iso2 == NULL || strlen(iso2) != 2 || iso2[0] < 'A' || iso2[0] > 'Z' ||
        iso2[1] < 'A' || iso2[1] > 'Z' || !cv_phone_region_known(iso2))
        return -1;
    memcpy(cv_contact_region, iso2, 3);
    return 0;
}

/* The spelling nearly every Russian lead's phone arrives in, read without
 * libphonenumber: a 9xx mobile number as "+7 912 345-67-89",
 * "8 (912) 345 67 89" or "9123456789" — digits, with spaces, dashes and
 * brackets between them, and nothing else. libphonenumber runs several ICU
 * regexes per number (about a seventh of intake's CPU per lead); for these
 * shapes it gives exactly this answer, because Russia's numbering plan
 * makes every ten-digit national number that starts with 9 a valid mobile
 * number, and libphonenumber skips the separators as punctuation (test_contact.c compares the two readings). Only in
 * region RU, where "8" is the trunk prefix. Returns false for anything
 * else, which libphonenumber then reads. */
static bool cv_contact_phone_ru_mobile(const char *text, char *out,
                                       size_t size)
{
    char digits[12];
    size_t count = 0;
    size_t len = 0;
    bool plus = text[0] == '+';
    const char *p = plus ? text + 1 : text;
    /* a digit first (after "+") and last: no words, no extension */
    if (!(p[0] >= '0' && p[0] <= '9'))
        return false;
    for (; *p != '\0'; p++, len++) {
        char c = *p;
        if (c >= '0' && c <= '9') {
            if (count == sizeof(digits) - 1)
                return false;
            digits[count++] = c;
        } else if (!(c == ' ' || c == '-' || c == '(' || c == ')') ||
                   len > 32) {
            return false;
        }
    }
    if (!(p[-1] >= '0' && p[-1] <= '9'))
        return false;
    const char *national; /* the ten digits after the country code */
    if (count == 11 && digits[0] == (plus ? '7' : '8'))
        national = digits + 1;
    else if (count == 10 && !plus)
        national = digits;
    else
        return false;
    if (national[0] != '9')
        return false;
    if (size < 13) /* "+7", ten digits, NUL */
        return false;
    out[0] = '+';
    out[1] = '7';
    memcpy(out + 2, national, 10);
    out[12] = '\0';
    return true;
}

int cv_contact_phone(const char *text, char *out, size_t size)
{
    if (text != NULL && out != NULL && strcmp(cv_contact_region, "RU") == 0 &&
        cv_contact_phone_ru_mobile(text, out, size))
        return 0;
    return cv_phone_e164(text, cv_contact_region, out, size);
}

/* Characters allowed in an unquoted local part (RFC 5322 atext and '.'),
 * plus any UTF-8 byte (RFC 6531). */
static bool cv_contact_local_char(unsigned char c)
{
    if (c >= 0x80)
        return true;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~.", c) != NULL;
}

static bool cv_contact_domain_ok(const char *domain)
{
    size_t len = strlen(domain);
    if (len < 3 || len > 253)
        return false;
    int labels = 0;
    const char *label = domain;
    for (;;) {
        const char *dot = strchr(label, '.');
        size_t label_len = dot != NULL ? (size_t)(dot - label)
                                       : strlen(label);
        if (label_len == 0 || label_len > 63 || label[0] == '-' ||
            label[label_len - 1] == '-')
            return false;
        for (size_t i = 0; i < label_len; i++) {
            unsigned char c = (unsigned char)label[i];
            if (!(c >= 0x80 || (c >= 'a' && c <= 'z') ||
                  (c >= '0' && c <= '9') || c == '-'))
                return false;
        }
        labels++;
        if (dot == NULL) {
            /* the top-level domain is at least two characters */
            return labels >= 2 && label_len >= 2;
        }
        label = dot + 1;
    }
}

int cv_contact_email(const char *text, char *out, size_t size)
{
    if (text == NULL || out == NULL || size == 0)
        return cv_contact_refuse(out, size);
    char email[CV_CONTACT_SIZE];
    if (cv_contact_trim_lower(text, email, sizeof(email)) != 0)
        return cv_contact_refuse(out, size);
    size_t len = strlen(email);
    char *at = strchr(email, '@');
    if (len > 254 || at == NULL || strchr(at + 1, '@') != NULL)
        return cv_contact_refuse(out, size);
    size_t local_len = (size_t)(at - email);
    if (local_len == 0 || local_len > 64 || email[0] == '.' ||
        email[local_len - 1] == '.')
        return cv_contact_refuse(out, size);
    for (size_t i = 0; i < local_len; i++) {
        if (!cv_contact_local_char((unsigned char)email[i]))
            return cv_contact_refuse(out, size);
        if (email[i] == '.' && email[i + 1] == '.')
            return cv_contact_refuse(out, size);
    }
    if (!cv_contact_domain_ok(at + 1))
        return cv_contact_refuse(out, size);
    if (len + 1 > size)
        return cv_contact_refuse(out, size);
    memcpy(out, email, len + 1);
    return 0;
}

int cv_contact_telegram(const char *text, char *out, size_t size)
{
    static const char *const prefixes[] = {
        "https://t.me/", "http://t.me/", "t.me/", "https://telegram.me/",
        "telegram.me/", "@",
    };
    if (text == NULL || out == NULL || size == 0)
        return cv_contact_refuse(out, size);
    char name[CV_CONTACT_SIZE];
    if (cv_contact_trim_lower(text, name, sizeof(name)) != 0)
        return cv_contact_refuse(out, size);
    const char *start = name;
    for (size_t i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        size_t plen = strlen(prefixes[i]);
        if (strncmp(start, prefixes[i], plen) == 0) {
            start += plen;
            break;
        }
    }
    size_t len = strlen(start);
    if (len == 0 || len > 64 || len + 1 > size)
        return cv_contact_refuse(out, size);
    for (size_t i = 0; i < len; i++) {
        char c = start[i];
        if (!((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'))
            return cv_contact_refuse(out, size);
    }
    memcpy(out, start, len + 1);
    return 0;
}

/* The check digit the tax service computes over the first `count` digits
 * of an INN with `weights`: the weighted sum mod 11, then mod 10. */
static int cv_contact_inn_check(const char *digits, const int *weights,
                                size_t count)
{
    int sum = 0;
    for (size_t i = 0; i < count; i++)
        sum += (digits[i] - '0') * weights[i];
    return sum % 11 % 10;
}

/* True when the INN's check digits are right: one for a company (10
 * digits), two for a person (12 digits, the second over the first). */
static bool cv_contact_inn_valid(const char *digits, size_t count)
{
    static const int company[] = {2, 4, 10, 3, 5, 9, 4, 6, 8};
    static const int person_11[] = {7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    static const int person_12[] = {3, 7, 2, 4, 10, 3, 5, 9, 4, 6, 8};
    if (digits[0] == '0' && digits[1] == '0')
        return false; /* tax office code 00 does not exist: a made-up number */
    if (count == CV_CONTACT_INN_COMPANY)
        return cv_contact_inn_check(digits, company, 9) == digits[9] - '0';
    return cv_contact_inn_check(digits, person_11, 10) == digits[10] - '0' &&
           cv_contact_inn_check(digits, person_12, 11) == digits[11] - '0';
}

int cv_contact_inn(const char *text, char *out, size_t size)
{
    if (text == NULL || out == NULL || size == 0)
        return cv_contact_refuse(out, size);
    char digits[16];
    size_t count = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p >= '0' && *p <= '9') {
            if (count + 1 >= sizeof(digits))
                return cv_contact_refuse(out, size);
            digits[count++] = *p;
        } else if (!(cv_contact_space(*p) || *p == '-')) {
            return cv_contact_refuse(out, size);
        }
    }
    digits[count] = '\0';
    if ((count != CV_CONTACT_INN_COMPANY && count != CV_CONTACT_INN_PERSON) ||
        count + 1 > size || !cv_contact_inn_valid(digits, count))
        return cv_contact_refuse(out, size);
    memcpy(out, digits, count + 1);
    return 0;
}

bool cv_contact_free_mail(const char *domain)
{
    if (domain == NULL)
        return false;
    size_t n = sizeof(cv_contact_free_domains) /
               sizeof(cv_contact_free_domains[0]);
    for (size_t i = 0; i < n; i++) {
        if (strcmp(domain, cv_contact_free_domains[i]) == 0)
            return true;
    }
    return false;
}

bool cv_contact_company_domain(const char *email, char *out, size_t size)
{
    if (out == NULL || size == 0)
        return false;
    out[0] = '\0';
    const char *at = email != NULL ? strrchr(email, '@') : NULL;
    if (at == NULL || at[1] == '\0' || cv_contact_free_mail(at + 1))
        return false;
    if (strlen(at + 1) + 1 > size)
        return false;
    snprintf(out, size, "%s", at + 1);
    return true;
}
