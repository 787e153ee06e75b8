/* cv_phone: phone numbers read with libphonenumber, behind a C interface.
 *
 * Every exported function catches everything: a C++ exception must not
 * unwind through C frames. The library objects are per call (PhoneNumber,
 * PhoneNumberMatcher) or the library's own leaky, thread-safe singleton
 * (PhoneNumberUtil), so nothing here needs freeing and nothing is shared
 * between threads except that singleton. */
#include "cv_phone.h"

#include <cstring>
#include <string>

#include <phonenumbers/logger.h>
#include <phonenumbers/phonenumber.pb.h>
#include <phonenumbers/phonenumbermatch.h>
#include <phonenumbers/phonenumbermatcher.h>
#include <phonenumbers/phonenumberutil.h>

using i18n::phonenumbers::NullLogger;
using i18n::phonenumbers::PhoneNumber;
using i18n::phonenumbers::PhoneNumberMatch;
using i18n::phonenumbers::PhoneNumberMatcher;
using i18n::phonenumbers::PhoneNumberUtil;

static const char cv_phone_default_region[] = "RU";

/* The library's singleton, with its logging switched off before first use:
 * bad input is our caller's to report, not the library's to print. (The
 * library ships with a silent logger; this keeps it so whatever the
 * version.) The initialiser runs once, under the C++ runtime's lock; if it
 * throws, the next call tries again. */
static PhoneNumberUtil *cv_phone_util()
{
    static PhoneNumberUtil *const util = [] {
        PhoneNumberUtil *u = PhoneNumberUtil::GetInstance();
        u->SetLogger(new NullLogger()); /* owned by the singleton */
        return u;
    }();
    return util;
}

/* True when `text` is well-formed UTF-8 (RFC 3629: no overlong forms, no
 * surrogates, nothing above U+10FFFF). The matcher silently finds nothing
 * in anything else, and we would rather say so. */
static bool cv_phone_utf8(const unsigned char *p)
{
    while (*p != 0) {
        unsigned char c = *p;
        int more;
        unsigned char lo = 0x80, hi = 0xBF; /* range of the 2nd byte */
        if (c < 0x80) {
            p++;
            continue;
        } else if (c >= 0xC2 && c <= 0xDF) {
            more = 1;
        } else if (c >= 0xE0 && c <= 0xEF) {
            more = 2;
            if (c == 0xE0)
                lo = 0xA0; /* overlong */
            else if (c == 0xED)
                hi = 0x9F; /* surrogates */
        } else if (c >= 0xF0 && c <= 0xF4) {
            more = 3;
            if (c == 0xF0)
                lo = 0x90; /* overlong */
            else if (c == 0xF4)
                hi = 0x8F; /* above U+10FFFF */
        } else {
            return false;
        }
        p++;
        for (int i = 0; i < more; i++, p++) {
            unsigned char min = i == 0 ? lo : 0x80;
            unsigned char max = i == 0 ? hi : 0xBF;
            if (*p < min || *p > max) /* also stops at the NUL */
                return false;
        }
    }
    return true;
}

static int cv_phone_refuse(char *out, size_t size)
{
    if (out != nullptr && size > 0)
        out[0] = '\0';
    return -1;
}

/* True when `text` read in `region` is a valid number; fills `number`. */
static bool cv_phone_parse_valid(PhoneNumberUtil *util, const std::string &text,
                                 const std::string &region, PhoneNumber *number)
{
    if (util->Parse(text, region, number) != PhoneNumberUtil::NO_PARSING_ERROR)
        return false;
    return util->IsValidNumber(*number);
}

/* "0044 20 …" as "+44 20 …": the "00" international prefix of most of the
 * world, which Russia's plan (prefix "810") does not know. "" when `text`
 * does not start with "00" (after any words and spaces). */
static std::string cv_phone_zero_zero(const std::string &text)
{
    size_t first = text.find_first_of("+0123456789");
    if (first == std::string::npos || text.compare(first, 2, "00") != 0)
        return std::string();
    std::string plus = text;
    plus.replace(first, 2, "+");
    return plus;
}

extern "C" int cv_phone_e164(const char *text, const char *region, char *out,
                             size_t size)
{
    if (text == nullptr || out == nullptr || size == 0 ||
        !cv_phone_utf8(reinterpret_cast<const unsigned char *>(text)))
        return cv_phone_refuse(out, size);
    try {
        PhoneNumberUtil *util = cv_phone_util();
        const std::string input(text);
        const std::string where(region != nullptr ? region
                                                  : cv_phone_default_region);
        PhoneNumber number;
        if (!cv_phone_parse_valid(util, input, where, &number)) {
            const std::string plus = cv_phone_zero_zero(input);
            number.Clear();
            if (plus.empty() ||
                !cv_phone_parse_valid(util, plus, where, &number))
                return cv_phone_refuse(out, size);
        }
        std::string e164;
        util->Format(number, PhoneNumberUtil::E164, &e164);
        if (e164.empty() || e164.size() + 1 > size)
            return cv_phone_refuse(out, size);
        std::memcpy(out, e164.c_str(), e164.size() + 1);
        return 0;
    } catch (...) {
        return cv_phone_refuse(out, size);
    }
}

extern "C" int cv_phone_find(const char *text, const char *region,
                             cv_phone_found_fn found, void *arg)
{
    if (text == nullptr ||
        !cv_phone_utf8(reinterpret_cast<const unsigned char *>(text)))
        return -1;
    try {
        PhoneNumberUtil *util = cv_phone_util();
        PhoneNumberMatcher matcher(
            *util, std::string(text),
            region != nullptr ? region : cv_phone_default_region,
            PhoneNumberMatcher::VALID, CV_PHONE_FIND_TRIES);
        PhoneNumberMatch match;
        std::string e164;
        int count = 0;
        while (matcher.HasNext() && matcher.Next(&match)) {
            util->Format(match.number(), PhoneNumberUtil::E164, &e164);
            count++;
            if (found != nullptr) {
                size_t start = static_cast<size_t>(match.start());
                found(e164.c_str(), start,
                      start + static_cast<size_t>(match.length()), arg);
            }
        }
        return count;
    } catch (...) {
        return -1;
    }
}

extern "C" bool cv_phone_is_mobile(const char *e164)
{
    if (e164 == nullptr || e164[0] != '+' ||
        !cv_phone_utf8(reinterpret_cast<const unsigned char *>(e164)))
        return false;
    try {
        PhoneNumberUtil *util = cv_phone_util();
        PhoneNumber number;
        /* "ZZ": no region, the text must carry its country code */
        if (!cv_phone_parse_valid(util, e164, "ZZ", &number))
            return false;
        return util->GetNumberType(number) == PhoneNumberUtil::MOBILE;
    } catch (...) {
        return false;
    }
}

extern "C" bool cv_phone_region_known(const char *iso2)
{
    if (iso2 == nullptr)
        return false;
    try {
        /* 0 for a region without a plan ("ZZ", "XX", "ru") */
        return cv_phone_util()->GetCountryCodeForRegion(iso2) != 0;
    } catch (...) {
        return false;
    }
}
