/* intake_lead: a lead as a channel posts it, read, checked and normalised.
 *
 * The HTTP threads turn a request body (JSON, a URL-encoded form or a
 * multipart form) into an intake_lead_t with canonical contacts, or into
 * the error the client gets back. Nothing here touches the database. */
#ifndef INTAKE_LEAD_H
#define INTAKE_LEAD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conveyor.pb-c.h"

/* A lead; every text is owned (NULL when absent). */
typedef struct {
    char *lead_id;        /* set by the store: new or the merged-into one */
    char *api_source;     /* the source whose API key posted it */
    int64_t received_at;  /* conveyor clock, ms */
    char *name;           /* contact person */
    char *company;        /* company name */
    char *phone;          /* E.164 */
    char *email;          /* trimmed, lower-cased */
    char *telegram;       /* lower-cased, without '@' */
    char *message;        /* what the client wrote */
    char *channel;        /* web | phone | social | email */
    char *source;         /* free text: "site-form", "conference", ... */
    char *region;         /* where the client is */
    char *industry;       /* the client's industry */
    char *product;        /* what they ask about */
    char *currency;       /* ISO 4217, default RUB */
    char *inn;            /* Russian tax id, digits only */
    char *timezone;       /* IANA */
    char *utm_source;     /* ad campaign tags */
    char *utm_medium;     /* ... */
    char *utm_campaign;   /* ... */
    char *extra_json;     /* `extra` plus unknown fields, a JSON object */
    char *domain;         /* company domain from a non-free-mail email */
    bool has_budget;      /* budget was given */
    double budget;        /* in `currency` */
    /* set by intake itself, never read from the client: */
    char *spam_reason;    /* why the spam check refused it; NULL: not spam */
    bool call_back;       /* a missed call: call the client back at once */
    char *returning_of;   /* the person's earlier lead, won or lost */
    char *previous_owner; /* that lead's owner (NULL when unknown) */
    char *previous_result; /* won | lost */
} intake_lead_t;

/* Why a body was refused: the HTTP status and the error body's fields. */
typedef struct {
    int status;          /* 400, 415 or 422 */
    char code[48];       /* "invalid_json", "invalid_field", ... */
    char field[48];      /* the offending field, "" when none */
    char message[256];   /* for the client */
} intake_error_t;

/* The text fields of intake_lead_t in a fixed order, for the store. */
typedef struct {
    const char *name;    /* API and column name */
    size_t offset;       /* offsetof(intake_lead_t, field) */
} intake_lead_field_t;

extern const intake_lead_field_t intake_lead_text_fields[];
extern const size_t intake_lead_text_field_count;

/* The text field named `name` of `lead`, as an lvalue. */
char **intake_lead_text(intake_lead_t *lead, size_t index);
const char *intake_lead_text_get(const intake_lead_t *lead, size_t index);

/* Reads a body of the given media type (already lower-cased, without
 * parameters; `content_type_header` is the whole header, for the multipart
 * boundary) into `lead`. Returns 0, or -1 with `error` filled (the lead is
 * then cleared). */
int intake_lead_parse(const char *media_type, const char *content_type_header,
                      const char *body, size_t size, intake_lead_t *lead,
                      intake_error_t *error);

/* Reads a lead from an already parsed JSON object (a row of an import
 * batch) with exactly the rules of intake_lead_parse for a JSON body: the
 * same fields, checks, normal forms and `extra`. The object is not
 * changed. Returns 0, or -1 with `error` filled (the lead is then
 * cleared). */
int intake_lead_from_json(json_t *obj, intake_lead_t *lead,
                          intake_error_t *error);

/* Frees the texts and zeroes the lead. NULL-safe. */
void intake_lead_clear(intake_lead_t *lead);

/* Fills empty fields of `into` from `from` (a repeat contact adds what the
 * first arrival lacked). -1 when out of memory. */
int intake_lead_merge(intake_lead_t *into, const intake_lead_t *from);

/* Points `out` (initialised by the caller) at the lead's fields; valid
 * while `lead` is. */
void intake_lead_to_proto(const intake_lead_t *lead, Conveyor__Lead *out);

/* The lead as cv_event_lead_to_json + json_dumps(JSON_COMPACT) write it,
 * byte for byte, without building a jansson tree (source falls back to
 * api_source as in intake_lead_to_proto). NULL when out of memory. */
char *intake_lead_to_json(const intake_lead_t *lead);

#endif
