/* What the scheduler tells people: task titles, lead summaries, and the
 * NotificationRequested events that carry them to the notifier. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_event.h"
#include "cv_log.h"
#include "followup.h"

static const char *notify_lead_field(const json_t *lead, const char *key)
{
    const char *value = json_string_value(json_object_get(lead, key));
    return value != NULL && value[0] != '\0' ? value : NULL;
}

char *followup_lead_summary(const json_t *lead, const char *lead_id)
{
    static const char *const keys[] = {"name", "company", "phone", "email",
                                       "telegram"};
    char *summary = NULL;
    size_t size = 0;
    FILE *out = open_memstream(&summary, &size);
    if (out == NULL)
        return NULL;
    int parts = 0;
    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        const char *value = notify_lead_field(lead, keys[i]);
        if (value == NULL)
            continue;
        fprintf(out, "%s%s", parts > 0 ? ", " : "", value);
        parts++;
    }
    if (parts == 0)
        fprintf(out, "lead %s", lead_id != NULL ? lead_id : "(unknown)");
    if (fclose(out) != 0) {
        free(summary);
        return NULL;
    }
    return summary;
}

char *followup_first_contact_title(const char *channel, const char *name)
{
    const char *who = name != NULL && name[0] != '\0' ? name : "the client";
    bool phone = channel != NULL && strcmp(channel, "phone") == 0;
    /* the words around the name, joined without printf (every web lead
     * gets this title) */
    const char *before = phone ? "Call back " : "First contact with ";
    const char *after = phone ? ""
                              : ": get a phone number, the client's time "
                                "zone and a convenient time to call";
    size_t b = strlen(before);
    size_t w = strlen(who);
    size_t a = strlen(after);
    char *title = malloc(b + w + a + 1);
    if (title == NULL)
        return NULL;
    memcpy(title, before, b);
    memcpy(title + b, who, w);
    memcpy(title + b + w, after, a + 1);
    return title;
}

int followup_notify_text(cv_bus_t *bus, const char *notification_id,
                         const char *lead_id, const char *staff_id,
                         Conveyor__NotifyTarget *target, const char *subject,
                         const char *text, const char *payload_json)
{
    Conveyor__NotificationRequested request =
        CONVEYOR__NOTIFICATION_REQUESTED__INIT;
    request.notification_id = (char *)notification_id;
    request.lead_id = (char *)lead_id;
    request.staff_id = (char *)staff_id;
    request.target = target;
    request.subject = (char *)subject;
    request.text = (char *)text;
    request.payload_json = (char *)payload_json;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    env.body_case = CONVEYOR__ENVELOPE__BODY_NOTIFICATION_REQUESTED;
    env.notification_requested = &request;
    return cv_bus_emit(bus, &env, "notifier", NULL);
}

int followup_notify(cv_bus_t *bus, const char *notification_id,
                    const char *lead_id, const char *staff_id,
                    Conveyor__NotifyTarget *target, const char *subject,
                    const char *text, const json_t *payload)
{
    char *payload_json = json_dumps(payload, JSON_COMPACT);
    if (payload_json == NULL) {
        cv_log(CV_LOG_ERROR, "cannot encode the payload of '%s'",
               notification_id);
        return -1;
    }
    int rc = followup_notify_text(bus, notification_id, lead_id, staff_id,
                                  target, subject, text, payload_json);
    free(payload_json);
    return rc;
}

char *followup_lead_summary_fields(const Conveyor__Lead *lead)
{
    const char *const values[] = {lead->name, lead->company, lead->phone,
                                  lead->email, lead->telegram};
    size_t size = 1;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++)
        if (values[i] != NULL)
            size += strlen(values[i]) + 2;
    const char *id = lead->lead_id != NULL ? lead->lead_id : "(unknown)";
    size += strlen(id) + 5;
    char *summary = malloc(size);
    if (summary == NULL)
        return NULL;
    size_t used = 0;
    for (size_t i = 0; i < sizeof(values) / sizeof(values[0]); i++) {
        if (values[i] == NULL || values[i][0] == '\0')
            continue;
        if (used > 0) {
            memcpy(summary + used, ", ", 2);
            used += 2;
        }
        size_t n = strlen(values[i]);
        memcpy(summary + used, values[i], n);
        used += n;
    }
    if (used == 0) {
        memcpy(summary, "lead ", 5);
        used = 5;
        size_t n = strlen(id);
        memcpy(summary + used, id, n);
        used += n;
    }
    summary[used] = '\0';
    return summary;
}

char *followup_format_time(int64_t ms, char *buf, size_t size)
{
    time_t seconds = (time_t)(ms / 1000);
    struct tm tm;
    if (gmtime_r(&seconds, &tm) == NULL ||
        strftime(buf, size, "%Y-%m-%d %H:%M UTC", &tm) == 0)
        snprintf(buf, size, "%lld ms", (long long)ms);
    return buf;
}

int followup_lead_snapshot(const Conveyor__Lead *lead, char **text,
                           char **summary)
{
    *text = NULL;
    *summary = NULL;
    cv_jsonw_t b;
    cv_jsonw_init(&b);
    cv_jsonw_lead(&b, lead);
    if (!b.failed) {
        /* every field went in as it is, so the summary can read them */
        *text = b.data;
        *summary = followup_lead_summary_fields(lead);
        return *summary != NULL ? 0 : -1;
    }
    cv_jsonw_clear(&b);
    json_t *json = cv_event_lead_to_json(lead);
    if (json == NULL)
        return -1;
    *text = json_dumps(json, JSON_COMPACT);
    *summary = followup_lead_summary(json, lead->lead_id);
    json_decref(json);
    return *text != NULL && *summary != NULL ? 0 : -1;
}

char *followup_format_local(const followup_person_t *person, int64_t ms,
                            char *buf, size_t size)
{
    static const char *const days[] = {"Sun", "Mon", "Tue", "Wed",
                                       "Thu", "Fri", "Sat"};
    static const char *const months[] = {"Jan", "Feb", "Mar", "Apr",
                                         "May", "Jun", "Jul", "Aug",
                                         "Sep", "Oct", "Nov", "Dec"};
    struct tm tm;
    const cv_tz_t *tz = person != NULL ? person->tz : NULL;
    if (tz == NULL || cv_tz_to_local(tz, ms, &tm, NULL) != 0 ||
        tm.tm_wday < 0 || tm.tm_wday > 6 || tm.tm_mon < 0 ||
        tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 ||
        tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 ||
        tm.tm_min > 59)
        return followup_format_time(ms, buf, size);
    /* "%s %d %s %02d:%02d (%s)" written directly: every new task shows its
     * due time so, and printf's format parsing cost more than the rest */
    char head[24];
    memcpy(head, days[tm.tm_wday], 3);
    head[3] = ' ';
    size_t n = 4;
    if (tm.tm_mday >= 10)
        head[n++] = (char)('0' + tm.tm_mday / 10);
    head[n++] = (char)('0' + tm.tm_mday % 10);
    head[n++] = ' ';
    memcpy(head + n, months[tm.tm_mon], 3);
    n += 3;
    head[n++] = ' ';
    head[n++] = (char)('0' + tm.tm_hour / 10);
    head[n++] = (char)('0' + tm.tm_hour % 10);
    head[n++] = ':';
    head[n++] = (char)('0' + tm.tm_min / 10);
    head[n++] = (char)('0' + tm.tm_min % 10);
    head[n++] = ' ';
    head[n++] = '(';
    const char *name = cv_tz_name(tz);
    const char *const parts[] = {head, name != NULL ? name : "(null)", ")"};
    const size_t lengths[] = {n, strlen(parts[1]), 1};
    size_t used = 0;
    /* as snprintf: what fits of it, always ended by a NUL */
    for (size_t i = 0; i < 3 && size > 0; i++) {
        size_t take = lengths[i];
        if (used + take > size - 1)
            take = size - 1 - used;
        memcpy(buf + used, parts[i], take);
        used += take;
    }
    if (size > 0)
        buf[used] = '\0';
    return buf;
}
