/* cv_call: a call-tracking event from the phone channel.
 *
 * A call-tracking service (or a Twilio number) reports each call to
 * `POST /v1/channels/phone` as JSON or as a form. Two vocabularies are
 * read, the generic one of API.md and Twilio's webhook parameters; when
 * both name the same thing, the generic name wins:
 *
 *   call_id      CallSid                         required
 *   caller       From, Caller                    required
 *   called       To, Called
 *   caller_name  CallerName
 *   status       DialCallStatus, CallStatus      see below
 *   duration     DialCallDuration, CallDuration  whole seconds >= 0
 *   started_at   (RFC 3339)  Timestamp (RFC 2822, as Twilio sends it,
 *                            or RFC 3339)
 *   recording_url RecordingUrl
 *
 * Status words, any case: answered, completed, in-progress -> ANSWERED;
 * missed, no-answer, busy, failed, canceled/cancelled -> MISSED; ringing,
 * queued, initiated -> PENDING (the call is not over: Twilio sends these
 * when the call arrives and again with the outcome later, so intake should
 * answer 200 and neither store nor de-duplicate a PENDING event, or the
 * final report with the same CallSid would be taken for a repeat).
 * DialCallStatus (the outcome of a <Dial> to a manager) wins over
 * CallStatus (the caller's leg, "completed" even when nobody answered).
 * Without a status, a duration above 0 means ANSWERED, and 0 or no
 * duration MISSED: a call nobody can vouch for gets a call-back. */
#ifndef CV_CALL_H
#define CV_CALL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_form.h"

#define CV_CALL_MAX_ID   256  /* bytes in call_id */
#define CV_CALL_MAX_TEXT 4096 /* bytes in any other text */

typedef enum {
    CV_CALL_ANSWERED, /* somebody talked to the caller */
    CV_CALL_MISSED,   /* nobody did: an urgent call-back */
    CV_CALL_PENDING,  /* still ringing or queued; the outcome comes later */
} cv_call_status_t;

/* A call event. Every text is owned (cv_call_clear frees them), trimmed
 * of surrounding white space, and NULL when not sent (an empty form value
 * counts as not sent). Phone numbers are as sent: intake normalises. */
typedef struct {
    char *call_id;           /* the tracker's id (Twilio's CallSid) */
    char *caller;            /* who called */
    char *called;            /* the number they dialled */
    char *caller_name;       /* caller ID name, when the network gave it */
    cv_call_status_t status; /* see the header comment */
    bool missed;             /* status == CV_CALL_MISSED */
    char *status_text;       /* the status word as sent ("no-answer");
                                NULL when the duration decided */
    bool has_duration;       /* a duration was sent */
    int64_t duration_s;      /* talk time in seconds; 0 when not sent */
    bool has_started_at;     /* a start time was sent */
    int64_t started_at_ms;   /* when the call started, ms since the epoch */
    char *recording_url;     /* where the recording is */
} cv_call_t;

/* Why an event was refused. */
typedef struct {
    int status;       /* HTTP status it calls for: 400 malformed body,
                         415 neither JSON nor a form, 422 unusable
                         field, 503 out of memory */
    char field[128];  /* the field as the client named it ("call_id",
                         "CallStatus"), "" when none */
    char reason[192]; /* lower-case, no full stop: "required",
                         "not an RFC 3339 time" */
} cv_call_error_t;

/* Reads an event from a body of the given Content-Type (the whole header
 * value): application/json, or a form type cv_form_parse reads. Fills
 * `call` (zeroed first) and returns 0, or returns -1 with `err` filled
 * (when given) and `call` cleared. */
int cv_call_parse(const char *content_type, const char *body, size_t size,
                  cv_call_t *call, cv_call_error_t *err);

/* The same for a JSON body, which must be an object. Ids and phone
 * numbers may be JSON integers; duration an integer or a string of
 * digits. */
int cv_call_parse_json(const char *body, size_t size, cv_call_t *call,
                       cv_call_error_t *err);

/* The same for a form already parsed (first values count). */
int cv_call_from_form(const cv_form_t *form, cv_call_t *call,
                      cv_call_error_t *err);

/* The same for a JSON object the caller already holds (borrowed). */
int cv_call_from_json(json_t *object, cv_call_t *call, cv_call_error_t *err);

/* Frees the texts and zeroes the struct. NULL-safe. */
void cv_call_clear(cv_call_t *call);

/* The name of a status: "answered", "missed" or "pending". */
const char *cv_call_status_name(cv_call_status_t status);

/* Parses an RFC 2822 date-time as Twilio's Timestamp carries it ("Tue, 10
 * Jan 2023 15:04:05 +0000"; the day name and seconds are optional; zones
 * +hhmm/-hhmm, UT, GMT, Z and the US zones EST..PDT). Returns 0 and sets
 * *ms, or -1. */
int cv_call_parse_rfc2822(const char *text, int64_t *ms);

#endif
