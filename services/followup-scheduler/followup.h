/* followup-scheduler: tasks and SLA timers, so no lead is forgotten.
 *
 * LeadAssigned opens the first-contact task and its SLA timer (or, when
 * routing says so, a segment task: the head of sales' review of a segment
 * A lead, a segment C lead's rejection); the timer
 * source fires due timers inside the bus's transaction (so each fires
 * exactly once, even across crashes) and escalates open tasks; completed
 * tasks, contact activities, decisions and knock-outs (a re-score's
 * LeadScored) cancel timers.
 *
 * Files: main.c (process), followup_schema.c (tables), followup_events.c
 * (event handlers), followup_task.c (the first-contact task),
 * followup_timer.c (the timer source), followup_notify.c (the texts and
 * payloads of notifications). */
#ifndef FOLLOWUP_H
#define FOLLOWUP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_bus.h"
#include "cv_jsonw.h"
#include "cv_config.h"
#include "cv_metrics.h"

#define FOLLOWUP_SERVICE             "followup-scheduler"
#define FOLLOWUP_KIND_FIRST_CONTACT  "first_contact"
#define FOLLOWUP_KIND_VIP_REVIEW     "vip_review"     /* segment A: HoS */
#define FOLLOWUP_KIND_SEND_REJECTION "send_rejection" /* segment C */
#define FOLLOWUP_TIMER_FIRST_CONTACT "sla_first_contact"

/* The first-contact SLA when the configuration gives none. */
#define FOLLOWUP_FIRST_CONTACT_MINUTES 30

/* Longest the bus waits while timers are pending, so a jump of
 * CONVEYOR_CLOCK_FILE is noticed within this many milliseconds. */
#define FOLLOWUP_CLOCK_POLL_MS 250

/* Timers fired per turn at most; more wait for the next turn, at once. */
#define FOLLOWUP_FIRE_BATCH 64

/* The scheduler's state shared by handlers and the timer source. */
typedef struct {
    const cv_config_t *config; /* the process configuration (not owned) */
    bool next_due_known;       /* next_due_ms matches the database */
    int64_t next_due_ms;       /* earliest pending due_at, INT64_MAX when
                                  none; valid while next_due_known */
    cv_metric_t *tasks_opened; /* first-contact tasks created */
    cv_metric_t *timers_fired; /* SLA timers that came due */
    cv_metric_t *escalations;  /* of those, escalated (task still open) */
} followup_t;

extern const char *const followup_migrations[];
extern const size_t followup_migration_count;

/* The bus handler (cv_bus_handler_fn); `arg` is the followup_t. */
int followup_handle_event(void *arg, cv_bus_t *bus,
                          const Conveyor__Envelope *event);

/* LeadAssigned: creates the first-contact task and its timer, and emits
 * TaskCreated and NotificationRequested; nothing when the task exists.
 * 0, or -1 after logging (the event's effects are rolled back). */
int followup_task_open_first_contact(followup_t *self, cv_bus_t *bus,
                                     const Conveyor__LeadAssigned *assigned);

/* LeadAssigned with task_kind vip_review or send_rejection (routing, by
 * segment): creates `<lead_id>-vip-review` or `<lead_id>-send-rejection`
 * for the staff member, due in 24 hours without an SLA timer, and emits
 * TaskCreated and NotificationRequested; a rejection also stops the
 * first-contact timer. Nothing when the task exists. 0 or -1. */
int followup_task_open_segment(followup_t *self, cv_bus_t *bus,
                               const Conveyor__LeadAssigned *assigned);

/* TaskCompleted: marks the task done and cancels its pending timers. */
int followup_task_complete(followup_t *self, cv_bus_t *bus,
                           const Conveyor__TaskCompleted *completed);

/* Cancels the pending timer of `task_id` (0 also when there is none). */
int followup_timer_cancel_task(followup_t *self, cv_bus_t *bus,
                               const char *task_id, const char *reason);

/* Cancels every pending timer of `lead_id`. */
int followup_timer_cancel_lead(followup_t *self, cv_bus_t *bus,
                               const char *lead_id, const char *reason);

/* Inserts a pending timer for `task_id` (ignored when the id exists). */
int followup_timer_insert(followup_t *self, cv_bus_t *bus, const char *timer_id,
                          const char *task_id, const char *lead_id,
                          const char *kind, int64_t due_at);

/* The bus source that fires due timers; 0 or -1. */
int followup_timer_register(followup_t *self, cv_bus_t *bus);

/* --- notifications (followup_notify.c) --- */

/* A one-line description of a lead from its JSON snapshot:
 * "Ivan Petrov, Acme, +79991234567, ivan@acme.ru" (missing parts left
 * out; the lead id when nothing else is known). Caller frees. */
char *followup_lead_summary(const json_t *lead, const char *lead_id);

/* The title of a first-contact task for a lead that came in on
 * `channel` ("phone" means call back; otherwise get a phone number, time
 * zone and a time to call). Caller frees; NULL when out of memory. */
char *followup_first_contact_title(const char *channel, const char *name);

/* Writes `ms` as "2026-11-22 15:41 UTC" into buf (at least 32 bytes).
 * Returns buf. */
char *followup_format_time(int64_t ms, char *buf, size_t size);

/* Emits NotificationRequested to the notifier. `payload` is the JSON body
 * for webhooks (not owned). 0 or -1. */
int followup_notify(cv_bus_t *bus, const char *notification_id,
                    const char *lead_id, const char *staff_id,
                    Conveyor__NotifyTarget *target, const char *subject,
                    const char *text, const json_t *payload);

/* Emits NotificationRequested like followup_notify, with the payload
 * already as JSON text. 0 or -1. */
int followup_notify_text(cv_bus_t *bus, const char *notification_id,
                         const char *lead_id, const char *staff_id,
                         Conveyor__NotifyTarget *target, const char *subject,
                         const char *text, const char *payload_json);

/* The summary of followup_lead_summary made from the lead's fields, for a
 * lead whose JSON snapshot cv_jsonw_lead wrote without failing.
 * Caller frees; NULL when out of memory. */
char *followup_lead_summary_fields(const Conveyor__Lead *lead);

/* JSON written directly: common/cv_jsonw.h */

#endif
