/* The rules' delays from the configuration: escalation_delays "R,A,H" and
 * followup_delays "name=N,…" (README "Follow-up" lists the names). */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cv_log.h"
#include "followup.h"

#define CONFIG_MAX_VALUE 100000 /* no delay is longer than this */

/* Parses a whole number 0..CONFIG_MAX_VALUE of `n` bytes at `text`. */
static int config_number(const char *text, size_t n, int *out)
{
    char buf[16];
    if (n == 0 || n >= sizeof(buf))
        return -1;
    memcpy(buf, text, n);
    buf[n] = '\0';
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)buf[i]))
            return -1;
    }
    long v = strtol(buf, NULL, 10);
    if (v > CONFIG_MAX_VALUE)
        return -1;
    *out = (int)v;
    return 0;
}

static int config_escalation(followup_delays_t *d, const char *text)
{
    int *fields[3] = {&d->remind_minutes, &d->reassign_minutes,
                      &d->head_minutes};
    const char *p = text;
    for (int i = 0; i < 3; i++) {
        size_t n = strcspn(p, ",");
        while (n > 0 && p[0] == ' ') {
            p++;
            n--;
        }
        if (config_number(p, n, fields[i]) != 0 ||
            (i < 2 && p[n] != ',') || (i == 2 && p[n] != '\0'))
            return cv_error("cannot use escalation_delays '%s': want three "
                            "numbers of minutes \"remind,reassign,head\" "
                            "such as \"0,15,30\"", text);
        p += n + (i < 2);
    }
    if (d->reassign_minutes == 0 || d->head_minutes == 0)
        return cv_error("cannot use escalation_delays '%s': the re-assign "
                        "and head-of-sales steps need at least a minute",
                        text);
    return 0;
}

int followup_delays_load(followup_t *self)
{
    followup_delays_t *d = &self->delays;
    const cv_config_t *cfg = self->config;
    *d = (followup_delays_t){
        .first_contact_minutes = FOLLOWUP_FIRST_CONTACT_MINUTES,
        .call_back_minutes = 10,
        .remind_minutes = 0,
        .reassign_minutes = 15,
        .head_minutes = 30,
        .segment_task_hours = 24,
        .ping_business_days = 1,
        .no_decision_days = 3,
        .push_business_days = 2,
        .next_step_business_days = 1,
        .debrief_minutes = 120,
        .return_before_days = 14,
        .return_default_days = 180,
        .postponed_default_days = 30,
    };
    if (cfg == NULL)
        return 0;
    if (cfg->first_contact_minutes > 0)
        d->first_contact_minutes = cfg->first_contact_minutes;
    if (cfg->call_back_minutes > 0)
        d->call_back_minutes = cfg->call_back_minutes;
    if (cfg->escalation_delays[0] != '\0' &&
        config_escalation(d, cfg->escalation_delays) != 0)
        return -1;
    const struct {
        const char *name; /* key in followup_delays */
        int *field;       /* where it goes */
    } names[] = {
        {"segment_task_hours", &d->segment_task_hours},
        {"ping_business_days", &d->ping_business_days},
        {"no_decision_days", &d->no_decision_days},
        {"push_business_days", &d->push_business_days},
        {"next_step_business_days", &d->next_step_business_days},
        {"debrief_minutes", &d->debrief_minutes},
        {"return_before_days", &d->return_before_days},
        {"return_default_days", &d->return_default_days},
        {"postponed_default_days", &d->postponed_default_days},
    };
    const char *p = cfg->followup_delays;
    while (*p != '\0') {
        p += strspn(p, ", ");
        size_t n = strcspn(p, ",");
        if (n == 0)
            break;
        const char *eq = memchr(p, '=', n);
        bool done = false;
        for (size_t i = 0; eq != NULL && i < sizeof(names) / sizeof(names[0]);
             i++) {
            size_t key = (size_t)(eq - p);
            if (strlen(names[i].name) == key &&
                strncmp(p, names[i].name, key) == 0) {
                int v = 0;
                if (config_number(eq + 1, n - key - 1, &v) != 0 || v == 0)
                    return cv_error("cannot use followup_delays: '%.*s' is "
                                    "not a positive whole number",
                                    (int)n, p);
                *names[i].field = v;
                done = true;
            }
        }
        if (!done)
            return cv_error("cannot use followup_delays: unknown '%.*s' "
                            "(names: segment_task_hours, ping_business_days, "
                            "no_decision_days, push_business_days, "
                            "next_step_business_days, debrief_minutes, "
                            "return_before_days, return_default_days, "
                            "postponed_default_days)",
                            (int)n, p);
        p += n;
    }
    return 0;
}
