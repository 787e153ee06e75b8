/* console_staff: the staff directory.
 *
 * The console owns the directory; every change is sent to routing as a
 * StaffUpdated in the same transaction. A member is handled as a JSON
 * object with the API's field names: the stored member (or the defaults
 * for a new one) is overlaid with the validated fields of the request and
 * written back whole. */
#include "console.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_workhours.h"

#define CONSOLE_LIST_ITEMS 100      /* most entries in channels[] etc. */
#define CONSOLE_TEXT_MAX 200        /* longest name, team, list entry */
#define CONSOLE_ZONEINFO "/usr/share/zoneinfo"

/* the working group of VIP leads (analyst, marketer, teamlead) gets
 * tasks like everyone else; routing picks them by role */
static const char *const console_roles[] = {
    "telemarketer", "sales", "account", "head", "admin",
    "analyst", "marketer", "teamlead",
};
#define CONSOLE_ROLE_COUNT (sizeof(console_roles) / sizeof(console_roles[0]))

static const char *const console_days[] = {
    "mon", "tue", "wed", "thu", "fri", "sat", "sun",
};

/* The tier a role works in when the request names none. */
static int console_role_tier(const char *role)
{
    if (strcmp(role, "telemarketer") == 0)
        return 1;
    if (strcmp(role, "account") == 0)
        return 3;
    return 2;
}

static bool console_in(const char *text, const char *const *list,
                       size_t count)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp(list[i], text) == 0)
            return true;
    return false;
}

/* Staff ids appear in URLs and logs: letters, digits, '.', '_', '-', '@'. */
static bool console_staff_id_valid(const char *id)
{
    size_t len = strlen(id);
    if (len == 0 || len > 64)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)id[i];
        if (!isalnum(c) && c != '.' && c != '_' && c != '-' && c != '@')
            return false;
    }
    return true;
}

/* Text with something besides white space and no NUL. */
static bool console_text_valid(json_t *value, size_t max)
{
    if (!json_is_string(value))
        return false;
    const char *text = json_string_value(value);
    size_t len = json_string_length(value);
    if (len == 0 || len > max || memchr(text, '\0', len) != NULL)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isspace((unsigned char)text[i]))
            return true;
    return false;
}

/* An IANA zone name that this machine's tz database has (when it has
 * one at all). */
static bool console_timezone_valid(const char *tz)
{
    size_t len = strlen(tz);
    if (len == 0 || len > 64 || tz[0] == '/' || strstr(tz, "..") != NULL)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)tz[i];
        if (!isalnum(c) && c != '/' && c != '_' && c != '-' && c != '+')
            return false;
    }
    struct stat st;
    if (stat(CONSOLE_ZONEINFO, &st) != 0)
        return true;
    char path[128];
    snprintf(path, sizeof(path), "%s/%s", CONSOLE_ZONEINFO, tz);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* One day's hours ("09:00-18:00", "09:00-13:00,14:00-18:00",
 * "20:00-24:00") as routing and the scheduler will read them: checked by
 * the same parser (cv_workhours), whose reason goes into err. */
static bool console_hours_valid(const char *day, const char *text, char *err,
                                size_t err_size)
{
    json_t *one = json_pack("{s:s}", day, text);
    char *json = one != NULL ? json_dumps(one, JSON_COMPACT) : NULL;
    json_decref(one);
    cv_workhours_t hours;
    bool ok = json != NULL &&
              cv_workhours_parse(json, &hours, err, err_size) == 0;
    if (json == NULL)
        snprintf(err, err_size, "out of memory");
    free(json);
    return ok;
}

/* The HTTP side's answer to a bad field: 422 naming it. */
static bool console_invalid(console_ctx_t *ctx, const char *field,
                            const char *message)
{
    cv_http_reply_error(ctx->req, 422, "invalid", field, "%s", message);
    return false;
}

/* A whole number within [min, max], from a JSON integer (or a real with
 * no fraction). */
static bool console_int_in(json_t *value, long min, long max, long *out)
{
    double number;
    if (json_is_integer(value))
        number = (double)json_integer_value(value);
    else if (json_is_real(value))
        number = json_real_value(value);
    else
        return false;
    if (number < (double)min || number > (double)max ||
        number != (double)(long)number)
        return false;
    *out = (long)number;
    return true;
}

static bool console_apply_list(console_ctx_t *ctx, json_t *staff,
                               const char *key, json_t *value)
{
    if (json_is_null(value)) {
        json_object_set_new(staff, key, json_array());
        return true;
    }
    if (!json_is_array(value) || json_array_size(value) > CONSOLE_LIST_ITEMS) {
        char message[96];
        snprintf(message, sizeof(message),
                 "'%s' is a list of at most %d names", key,
                 CONSOLE_LIST_ITEMS);
        return console_invalid(ctx, key, message);
    }
    size_t i;
    json_t *item;
    json_array_foreach(value, i, item) {
        if (!console_text_valid(item, CONSOLE_TEXT_MAX)) {
            char message[96];
            snprintf(message, sizeof(message),
                     "'%s' entry %zu is not a name of 1 to %d bytes", key, i,
                     CONSOLE_TEXT_MAX);
            return console_invalid(ctx, key, message);
        }
    }
    json_object_set(staff, key, value);
    return true;
}

static bool console_apply_hours(console_ctx_t *ctx, json_t *staff,
                                json_t *value)
{
    json_t *hours = json_object();
    if (!json_is_object(value) && !json_is_null(value)) {
        json_decref(hours);
        return console_invalid(ctx, "working_hours",
                               "working_hours is an object like "
                               "{\"mon\": \"09:00-18:00\"}");
    }
    const char *day;
    json_t *range;
    json_object_foreach(value, day, range) {
        char field[64];
        snprintf(field, sizeof(field), "working_hours.%s", day);
        if (!console_in(day, console_days, 7)) {
            json_decref(hours);
            return console_invalid(ctx, field,
                                   "days are mon, tue, wed, thu, fri, sat, "
                                   "sun");
        }
        /* null, "" or "off": not working that day */
        if (json_is_null(range))
            continue;
        const char *text = json_string_value(range);
        if (text != NULL && (text[0] == '\0' || strcmp(text, "off") == 0))
            continue;
        char why[200] = "hours are \"HH:MM-HH:MM\" (several joined by "
                        "commas), each start before its end";
        if (text == NULL || !console_hours_valid(day, text, why,
                                                 sizeof(why))) {
            json_decref(hours);
            return console_invalid(ctx, field, why);
        }
        json_object_set_new(hours, day, json_string(text));
    }
    json_object_set_new(staff, "working_hours", hours);
    return true;
}

static bool console_apply_notify(console_ctx_t *ctx, json_t *staff,
                                 json_t *value)
{
    json_t *notify = json_object();
    if (!json_is_object(value) && !json_is_null(value)) {
        json_decref(notify);
        return console_invalid(ctx, "notify",
                               "notify is an object with webhook_url, "
                               "slack_webhook_url, telegram_chat_id "
                               "and/or email");
    }
    const char *key;
    json_t *item;
    json_object_foreach(value, key, item) {
        char field[64];
        snprintf(field, sizeof(field), "notify.%s", key);
        if (json_is_null(item))
            continue;
        const char *text = json_string_value(item);
        bool ok;
        if (strcmp(key, "webhook_url") == 0 ||
            strcmp(key, "slack_webhook_url") == 0) {
            ok = console_text_valid(item, 2048) &&
                 (strncmp(text, "http://", 7) == 0 ||
                  strncmp(text, "https://", 8) == 0) &&
                 strpbrk(text, " \t\r\n") == NULL;
            if (!ok) {
                json_decref(notify);
                return console_invalid(ctx, field,
                                       "webhook_url and slack_webhook_url "
                                       "are http:// or https:// URLs");
            }
            json_object_set(notify, key, item);
        } else if (strcmp(key, "telegram_chat_id") == 0) {
            /* Telegram chat ids are numbers; accept them as text too */
            if (json_is_integer(item)) {
                char number[32];
                snprintf(number, sizeof(number), "%lld",
                         (long long)json_integer_value(item));
                json_object_set_new(notify, key, json_string(number));
                continue;
            }
            if (!console_text_valid(item, 64)) {
                json_decref(notify);
                return console_invalid(ctx, field,
                                       "telegram_chat_id is a chat id");
            }
            json_object_set(notify, key, item);
        } else if (strcmp(key, "email") == 0) {
            ok = console_text_valid(item, 254) &&
                 strchr(text, '@') != NULL && text[0] != '@' &&
                 strpbrk(text, " \t\r\n<>,") == NULL;
            if (!ok) {
                json_decref(notify);
                return console_invalid(ctx, field,
                                       "email is an address like "
                                       "name@example.com");
            }
            json_object_set(notify, key, item);
        } else {
            json_decref(notify);
            return console_invalid(ctx, field,
                                   "notify takes webhook_url, "
                                   "slack_webhook_url, telegram_chat_id "
                                   "and email");
        }
    }
    json_object_set_new(staff, "notify", notify);
    return true;
}

/* Validates each field of `input` the API defines and sets its value into
 * `staff`; fields it does not define are ignored. False after replying
 * 422 for the first bad field. */
static bool console_staff_apply(console_ctx_t *ctx, json_t *input,
                                json_t *staff)
{
    json_t *value;
    long number;
    if ((value = json_object_get(input, "name")) != NULL) {
        if (!console_text_valid(value, CONSOLE_TEXT_MAX))
            return console_invalid(ctx, "name", "name is 1 to 200 bytes");
        json_object_set(staff, "name", value);
    }
    if ((value = json_object_get(input, "role")) != NULL) {
        if (!json_is_string(value) ||
            !console_in(json_string_value(value), console_roles,
                        CONSOLE_ROLE_COUNT))
            return console_invalid(ctx, "role",
                                   "role is telemarketer, sales, account, "
                                   "head, admin, analyst, marketer or "
                                   "teamlead");
        json_object_set(staff, "role", value);
    }
    if ((value = json_object_get(input, "tier")) != NULL) {
        if (!console_int_in(value, 1, 3, &number))
            return console_invalid(ctx, "tier", "tier is 1, 2 or 3");
        json_object_set_new(staff, "tier", json_integer(number));
    }
    if ((value = json_object_get(input, "team")) != NULL) {
        if (!json_is_null(value) && !console_text_valid(value, 100))
            return console_invalid(ctx, "team", "team is 1 to 100 bytes");
        json_object_set(staff, "team", value);
    }
    const char *lists[] = {"channels", "industries", "regions", "products"};
    for (size_t i = 0; i < 4; i++) {
        value = json_object_get(input, lists[i]);
        if (value != NULL && !console_apply_list(ctx, staff, lists[i], value))
            return false;
    }
    if ((value = json_object_get(input, "timezone")) != NULL) {
        if (!json_is_string(value) ||
            !console_timezone_valid(json_string_value(value)))
            return console_invalid(ctx, "timezone",
                                   "timezone is an IANA zone like "
                                   "Europe/Moscow");
        json_object_set(staff, "timezone", value);
    }
    if ((value = json_object_get(input, "working_hours")) != NULL &&
        !console_apply_hours(ctx, staff, value))
        return false;
    if ((value = json_object_get(input, "capacity_per_day")) != NULL) {
        if (!console_int_in(value, 0, 10000, &number))
            return console_invalid(ctx, "capacity_per_day",
                                   "capacity_per_day is 0 to 10000 leads");
        json_object_set_new(staff, "capacity_per_day", json_integer(number));
    }
    if ((value = json_object_get(input, "weight")) != NULL) {
        if (!console_int_in(value, 1, 1000, &number))
            return console_invalid(ctx, "weight", "weight is 1 to 1000");
        json_object_set_new(staff, "weight", json_integer(number));
    }
    if ((value = json_object_get(input, "active")) != NULL) {
        if (!json_is_boolean(value))
            return console_invalid(ctx, "active", "active is true or false");
        json_object_set(staff, "active", value);
    }
    if ((value = json_object_get(input, "notify")) != NULL &&
        !console_apply_notify(ctx, staff, value))
        return false;
    return true;
}

/* A new member before the request's fields: the defaults (capacity 0 =
 * no daily cap). */
static json_t *console_staff_defaults(const char *staff_id)
{
    return json_pack(
        "{s:s, s:[], s:[], s:[], s:[], s:s, s:{s:s, s:s, s:s, s:s, s:s}, "
        "s:i, s:i, s:b, s:o, s:n}",
        "id", staff_id, "channels", "industries", "regions", "products",
        "timezone", "UTC", "working_hours", "mon", "09:00-18:00", "tue",
        "09:00-18:00", "wed", "09:00-18:00", "thu", "09:00-18:00", "fri",
        "09:00-18:00", "capacity_per_day", 0, "weight", 1, "active", 1,
        "notify", json_object(), "team");
}

/* The member's columns, in the order console_staff_row reads them; ?2 is
 * the start of today (for leads_today). */
#define CONSOLE_STAFF_SELECT                                                \
    "SELECT s.staff_id, s.name, s.role, s.tier, s.team, s.channels, "       \
    "  s.industries, s.regions, s.products, s.timezone, s.working_hours, "  \
    "  s.capacity_per_day, s.weight, s.active, s.notify, s.created_at, "    \
    "  s.updated_at, "                                                      \
    "  (SELECT count(*) FROM tasks t WHERE t.staff_id = s.staff_id AND "    \
    "     t.status = 'open' AND t.kind <> ''), "                            \
    "  (SELECT count(*) FROM tasks t WHERE t.staff_id = s.staff_id AND "    \
    "     t.status = 'open' AND t.overdue = 1 AND t.kind <> ''), "          \
    "  (SELECT count(*) FROM leads l WHERE l.owner_id = s.staff_id AND "    \
    "     l.owner_at >= ?2), "                                              \
    "  (SELECT count(*) FROM leads l WHERE l.owner_id = s.staff_id AND "    \
    "     l.stage NOT IN ('won', 'lost', 'rejected')) "                     \
    "FROM staff s "

/* A JSON column parsed, or `fallback` when it does not parse. */
static json_t *console_json_column(sqlite3_stmt *stmt, int col,
                                   json_t *fallback)
{
    const char *text = (const char *)sqlite3_column_text(stmt, col);
    json_t *value = text != NULL ? json_loads(text, 0, NULL) : NULL;
    if (value == NULL)
        return fallback;
    json_decref(fallback);
    return value;
}

static json_t *console_staff_row(sqlite3_stmt *stmt)
{
    json_t *obj = json_object();
    console_put_column(obj, "id", stmt, 0);
    console_put_column(obj, "staff_id", stmt, 0);
    console_put_column(obj, "name", stmt, 1);
    console_put_column(obj, "role", stmt, 2);
    json_object_set_new(obj, "tier", json_integer(sqlite3_column_int(stmt, 3)));
    console_put_column(obj, "team", stmt, 4);
    json_object_set_new(obj, "channels",
                        console_json_column(stmt, 5, json_array()));
    json_object_set_new(obj, "industries",
                        console_json_column(stmt, 6, json_array()));
    json_object_set_new(obj, "regions",
                        console_json_column(stmt, 7, json_array()));
    json_object_set_new(obj, "products",
                        console_json_column(stmt, 8, json_array()));
    console_put_column(obj, "timezone", stmt, 9);
    json_object_set_new(obj, "working_hours",
                        console_json_column(stmt, 10, json_object()));
    json_object_set_new(obj, "capacity_per_day",
                        json_integer(sqlite3_column_int(stmt, 11)));
    json_object_set_new(obj, "weight",
                        json_integer(sqlite3_column_int(stmt, 12)));
    json_object_set_new(obj, "active",
                        json_boolean(sqlite3_column_int(stmt, 13)));
    json_object_set_new(obj, "notify",
                        console_json_column(stmt, 14, json_object()));
    json_object_set_new(obj, "created_at",
                        console_time_json(sqlite3_column_int64(stmt, 15)));
    json_object_set_new(obj, "updated_at",
                        console_time_json(sqlite3_column_int64(stmt, 16)));
    json_t *load = json_object();
    json_object_set_new(load, "open_tasks",
                        json_integer(sqlite3_column_int64(stmt, 17)));
    json_object_set_new(load, "overdue_tasks",
                        json_integer(sqlite3_column_int64(stmt, 18)));
    json_object_set_new(load, "leads_today",
                        json_integer(sqlite3_column_int64(stmt, 19)));
    json_object_set_new(load, "open_leads",
                        json_integer(sqlite3_column_int64(stmt, 20)));
    json_object_set_new(obj, "load", load);
    return obj;
}

/* Midnight UTC of the conveyor's today: "leads today" counts from it. */
static int64_t console_today_ms(void)
{
    int64_t now = cv_clock_now_ms();
    return now - now % 86400000;
}

/* The member as the API shows it. Returns 0 with *out set, 1 when there
 * is no such member, -1 on error (logged). */
static int console_staff_load(cv_store_t *store, const char *staff_id,
                              json_t **out)
{
    *out = NULL;
    sqlite3_stmt *stmt = cv_store_prepare(
        store, CONSOLE_STAFF_SELECT "WHERE s.staff_id = ?1");
    if (stmt == NULL)
        return -1;
    cv_store_bind_text(stmt, 1, staff_id);
    sqlite3_bind_int64(stmt, 2, console_today_ms());
    int rc = sqlite3_step(stmt);
    if (rc == SQLITE_ROW)
        *out = console_staff_row(stmt);
    sqlite3_reset(stmt);
    if (rc == SQLITE_ROW)
        return 0;
    if (rc == SQLITE_DONE)
        return 1;
    return cv_error("cannot read staff '%s' from '%s': %s", staff_id,
                    cv_store_path(store), sqlite3_errmsg(cv_store_db(store)));
}

/* JSON text of a member's field for its column. The caller frees it. */
static char *console_dump(json_t *staff, const char *key)
{
    return json_dumps(json_object_get(staff, key),
                      JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Inserts a new member with `token`, or updates the member when `token`
 * is NULL. 0 or -1. */
static int console_staff_write(cv_store_t *store, json_t *staff,
                               const char *token, int64_t now)
{
    const char *keys[] = {"channels", "industries", "regions", "products",
                          "working_hours", "notify"};
    char *texts[6] = {NULL};
    int rc = -1;
    for (size_t i = 0; i < 6; i++) {
        texts[i] = console_dump(staff, keys[i]);
        if (texts[i] == NULL) {
            cv_error("cannot write staff: out of memory");
            goto out;
        }
    }
    /* the same parameters either way; only a new member has a token */
    sqlite3_stmt *stmt = cv_store_prepare(
        store,
        token != NULL
            ? "INSERT INTO staff (staff_id, name, role, tier, team, "
              "  channels, industries, regions, products, timezone, "
              "  working_hours, capacity_per_day, weight, active, notify, "
              "  token, created_at, updated_at) "
              "VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, "
              "  ?13, ?14, ?15, ?16, ?17, ?17)"
            : "UPDATE staff SET name = ?2, role = ?3, tier = ?4, team = ?5,"
              "  channels = ?6, industries = ?7, regions = ?8, "
              "  products = ?9, timezone = ?10, working_hours = ?11, "
              "  capacity_per_day = ?12, weight = ?13, active = ?14, "
              "  notify = ?15, updated_at = ?17 "
              "WHERE staff_id = ?1 AND ?16 IS NULL");
    if (stmt == NULL)
        goto out;
    cv_store_bind_text(stmt, 1,
                       json_string_value(json_object_get(staff, "id")));
    cv_store_bind_text(stmt, 2,
                       json_string_value(json_object_get(staff, "name")));
    cv_store_bind_text(stmt, 3,
                       json_string_value(json_object_get(staff, "role")));
    sqlite3_bind_int64(stmt, 4,
                       json_integer_value(json_object_get(staff, "tier")));
    cv_store_bind_text(stmt, 5,
                       json_string_value(json_object_get(staff, "team")));
    for (int i = 0; i < 4; i++)
        cv_store_bind_text(stmt, 6 + i, texts[i]);
    cv_store_bind_text(stmt, 10,
                       json_string_value(json_object_get(staff, "timezone")));
    cv_store_bind_text(stmt, 11, texts[4]);
    json_t *capacity = json_object_get(staff, "capacity_per_day");
    sqlite3_bind_int64(stmt, 12, json_integer_value(capacity));
    sqlite3_bind_int64(stmt, 13,
                       json_integer_value(json_object_get(staff, "weight")));
    sqlite3_bind_int(stmt, 14,
                     json_is_true(json_object_get(staff, "active")));
    cv_store_bind_text(stmt, 15, texts[5]);
    cv_store_bind_text(stmt, 16, token);
    sqlite3_bind_int64(stmt, 17, now);
    rc = cv_store_step_done(stmt);
out:
    for (size_t i = 0; i < 6; i++)
        free(texts[i]);
    return rc;
}

/* Points a repeated string field at the strings of a JSON array (they
 * live as long as the array). 0, or -1 when out of memory. */
static int console_strings(json_t *array, size_t *count, char ***items)
{
    *count = 0;
    *items = NULL;
    size_t n = json_array_size(array);
    if (n == 0)
        return 0;
    *items = calloc(n, sizeof(char *));
    if (*items == NULL)
        return -1;
    for (size_t i = 0; i < n; i++)
        (*items)[i] = (char *)json_string_value(json_array_get(array, i));
    *count = n;
    return 0;
}

/* Writes StaffUpdated for routing into the outbox. 0 or -1. */
static int console_staff_emit(cv_store_t *store, json_t *staff)
{
    Conveyor__StaffMember member = CONVEYOR__STAFF_MEMBER__INIT;
    Conveyor__NotifyTarget notify = CONVEYOR__NOTIFY_TARGET__INIT;
    Conveyor__StaffUpdated updated = CONVEYOR__STAFF_UPDATED__INIT;
    Conveyor__Envelope env = CONVEYOR__ENVELOPE__INIT;
    char *hours = NULL;
    int rc = -1;
    member.staff_id = (char *)json_string_value(json_object_get(staff, "id"));
    member.name = (char *)json_string_value(json_object_get(staff, "name"));
    member.role = (char *)json_string_value(json_object_get(staff, "role"));
    member.has_tier = true;
    member.tier = (int32_t)json_integer_value(json_object_get(staff, "tier"));
    member.team = (char *)json_string_value(json_object_get(staff, "team"));
    if (console_strings(json_object_get(staff, "channels"),
                        &member.n_channels, &member.channels) != 0 ||
        console_strings(json_object_get(staff, "industries"),
                        &member.n_industries, &member.industries) != 0 ||
        console_strings(json_object_get(staff, "regions"),
                        &member.n_regions, &member.regions) != 0 ||
        console_strings(json_object_get(staff, "products"),
                        &member.n_products, &member.products) != 0) {
        cv_error("cannot send staff: out of memory");
        goto out;
    }
    member.timezone =
        (char *)json_string_value(json_object_get(staff, "timezone"));
    hours = json_dumps(json_object_get(staff, "working_hours"),
                       JSON_COMPACT | JSON_SORT_KEYS);
    member.working_hours_json = hours;
    member.has_capacity_per_day = true;
    member.capacity_per_day = (int32_t)json_integer_value(
        json_object_get(staff, "capacity_per_day"));
    member.has_weight = true;
    member.weight =
        (int32_t)json_integer_value(json_object_get(staff, "weight"));
    member.has_active = true;
    member.active = json_is_true(json_object_get(staff, "active"));
    json_t *target = json_object_get(staff, "notify");
    notify.webhook_url =
        (char *)json_string_value(json_object_get(target, "webhook_url"));
    notify.telegram_chat_id =
        (char *)json_string_value(json_object_get(target, "telegram_chat_id"));
    notify.email = (char *)json_string_value(json_object_get(target, "email"));
    notify.slack_webhook_url = (char *)json_string_value(
        json_object_get(target, "slack_webhook_url"));
    member.notify = &notify;
    updated.staff = &member;
    env.body_case = CONVEYOR__ENVELOPE__BODY_STAFF_UPDATED;
    env.staff_updated = &updated;
    /* routing assigns by the directory; followup-scheduler tells people
     * (the head of sales, a pool) through their notify targets */
    rc = cv_outbox_put(store, CONSOLE_SERVICE, &env, "routing",
                       "followup-scheduler", NULL);
out:
    free(member.channels);
    free(member.industries);
    free(member.regions);
    free(member.products);
    free(hours);
    return rc;
}

/* The fields a member may change on themselves without a manager. */
static const char *const console_self_fields[] = {
    "working_hours", "timezone", "notify",
};

/* Creates or updates one member from `input`. `staff_id` names an existing
 * member to update or is NULL for a create (whose id may be in the body).
 * Replies in every case. */
static void console_staff_save(console_ctx_t *ctx, json_t *input,
                               const char *patch_id)
{
    json_t *staff = NULL;
    json_t *existing = NULL;
    json_t *reply = NULL;
    char id[CONSOLE_ID_SIZE];
    char token[CV_ID_SIZE] = "";

    json_t *given = json_object_get(input, "id");
    if (given != NULL && !json_is_null(given) &&
        (!json_is_string(given) ||
         !console_staff_id_valid(json_string_value(given)))) {
        console_invalid(ctx, "id", "id is 1 to 64 letters, digits, '.', "
                                   "'_', '-' or '@'");
        goto out;
    }
    const char *given_id = json_string_value(given);
    if (patch_id != NULL) {
        if (given_id != NULL && strcmp(given_id, patch_id) != 0) {
            console_invalid(ctx, "id", "the body's id differs from the "
                                       "URL's");
            goto out;
        }
        snprintf(id, sizeof(id), "%s", patch_id);
    } else if (given_id != NULL) {
        snprintf(id, sizeof(id), "%s", given_id);
    } else {
        cv_id_new("staff", id, sizeof(id));
    }

    int rc = console_staff_load(ctx->store, id, &existing);
    if (rc < 0)
        goto storage;
    if (rc > 0 && patch_id != NULL) {
        cv_http_reply_error(ctx->req, 404, "not_found", NULL,
                            "no staff member '%s'", id);
        goto out;
    }
    bool creating = existing == NULL;
    const char *caller_role = ctx->caller.role;
    bool self = !creating && ctx->caller.staff_id[0] != '\0' &&
                strcmp(ctx->caller.staff_id, id) == 0;

    /* who may change what */
    if (!ctx->caller.manager) {
        bool allowed = self;
        const char *key;
        json_t *value;
        json_object_foreach(input, key, value) {
            if (strcmp(key, "id") == 0 ||
                console_in(key, console_self_fields, 3))
                continue;
            if (strcmp(key, "name") == 0 || strcmp(key, "role") == 0 ||
                strcmp(key, "tier") == 0 || strcmp(key, "team") == 0 ||
                strcmp(key, "channels") == 0 ||
                strcmp(key, "industries") == 0 ||
                strcmp(key, "regions") == 0 ||
                strcmp(key, "products") == 0 ||
                strcmp(key, "capacity_per_day") == 0 ||
                strcmp(key, "weight") == 0 || strcmp(key, "active") == 0)
                allowed = false;
        }
        if (!allowed) {
            cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                                "a %s may change only their own working "
                                "hours, time zone and notify targets",
                                caller_role);
            goto out;
        }
    }
    if (strcmp(caller_role, "admin") != 0) {
        const char *role_now =
            json_string_value(json_object_get(existing, "role"));
        const char *role_new =
            json_string_value(json_object_get(input, "role"));
        if ((role_now != NULL && strcmp(role_now, "admin") == 0 && !self) ||
            (role_new != NULL && strcmp(role_new, "admin") == 0)) {
            cv_http_reply_error(ctx->req, 403, "forbidden", "role",
                                "only an admin manages admins");
            goto out;
        }
    }

    if (creating) {
        staff = console_staff_defaults(id);
    } else {
        staff = json_deep_copy(existing);
        /* derived fields are not stored */
        json_object_del(staff, "load");
        json_object_del(staff, "staff_id");
        json_object_del(staff, "created_at");
        json_object_del(staff, "updated_at");
    }
    if (staff == NULL) {
        cv_error("cannot build staff '%s': out of memory", id);
        goto storage;
    }
    if (!console_staff_apply(ctx, input, staff))
        goto out;
    if (creating) {
        if (json_object_get(staff, "name") == NULL) {
            console_invalid(ctx, "name", "a new staff member needs a name");
            goto out;
        }
        const char *role = json_string_value(json_object_get(staff, "role"));
        if (role == NULL) {
            console_invalid(ctx, "role", "a new staff member needs a role");
            goto out;
        }
        if (json_object_get(staff, "tier") == NULL)
            json_object_set_new(staff, "tier",
                                json_integer(console_role_tier(role)));
        cv_id_secret("tok", token, sizeof(token));
    }

    int64_t now = cv_clock_now_ms();
    if (console_staff_write(ctx->store, staff, creating ? token : NULL,
                            now) != 0 ||
        console_staff_emit(ctx->store, staff) != 0)
        goto storage;
    if (console_staff_load(ctx->store, id, &reply) != 0)
        goto storage;
    if (console_commit_and_wake(ctx) != 0)
        goto out;
    cv_log_info("staff '%s' %s by %s", id, creating ? "created" : "updated",
                console_caller_actor(&ctx->caller));
    if (creating)
        json_object_set_new(reply, "token", json_string(token));
    cv_http_reply_json(ctx->req, creating ? 201 : 200, reply);
    reply = NULL;
    goto out;
storage:
    console_reply_storage(ctx->req);
out:
    json_decref(reply);
    json_decref(staff);
    json_decref(existing);
}

void console_staff_post(console_ctx_t *ctx)
{
    if (!ctx->caller.manager) {
        cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                            "only head and admin manage staff");
        return;
    }
    json_t *input = console_read_json(ctx->req);
    if (input == NULL)
        return;
    console_staff_save(ctx, input, NULL);
    json_decref(input);
}

void console_staff_patch(console_ctx_t *ctx, const char *staff_id)
{
    if (!ctx->caller.manager && strcmp(ctx->caller.staff_id, staff_id) != 0) {
        cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                            "a %s may change only their own entry",
                            ctx->caller.role);
        return;
    }
    json_t *input = console_read_json(ctx->req);
    if (input == NULL)
        return;
    console_staff_save(ctx, input, staff_id);
    json_decref(input);
}

void console_staff_get(console_ctx_t *ctx, const char *staff_id)
{
    if (!ctx->caller.manager && strcmp(ctx->caller.staff_id, staff_id) != 0) {
        cv_http_reply_error(ctx->req, 403, "forbidden", NULL,
                            "a %s sees only their own entry",
                            ctx->caller.role);
        return;
    }
    json_t *staff = NULL;
    int rc = console_staff_load(ctx->store, staff_id, &staff);
    if (rc < 0) {
        console_reply_storage(ctx->req);
        return;
    }
    if (rc > 0) {
        cv_http_reply_error(ctx->req, 404, "not_found", NULL,
                            "no staff member '%s'", staff_id);
        return;
    }
    cv_http_reply_json(ctx->req, 200, staff);
}

void console_staff_list(console_ctx_t *ctx)
{
    /* below head, the directory shows only the caller */
    const char *only = ctx->caller.manager ? NULL : ctx->caller.staff_id;
    const char *role = cv_http_query(ctx->req, "role");
    if (role != NULL && role[0] == '\0')
        role = NULL;
    if (role != NULL && !console_in(role, console_roles, CONSOLE_ROLE_COUNT)) {
        cv_http_reply_error(ctx->req, 422, "invalid", "role",
                            "unknown role '%s'", role);
        return;
    }
    sqlite3_stmt *stmt = cv_store_prepare(
        ctx->store, CONSOLE_STAFF_SELECT
        "WHERE (?1 IS NULL OR s.staff_id = ?1) AND "
        "  (?3 IS NULL OR s.role = ?3) ORDER BY s.staff_id");
    if (stmt == NULL) {
        console_reply_storage(ctx->req);
        return;
    }
    cv_store_bind_text(stmt, 1, only);
    sqlite3_bind_int64(stmt, 2, console_today_ms());
    cv_store_bind_text(stmt, 3, role);
    json_t *list = json_array();
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW)
        json_array_append_new(list, console_staff_row(stmt));
    console_reply_list(ctx, stmt, rc, "staff", list);
}
