/* The proposal as HTML: one document per segment (PRODUCT.md §4).
 *
 * Never a mass mailing: every document names the client, quotes their
 * request and what was said in the meeting, speaks of their industry and
 * product, and prices against their stated budget. Everything that came
 * from outside is escaped by cv_html. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cv_html.h"
#include "cv_log.h"
#include "proposal.h"

/* A stage of the work, its share of the budget and how long it takes. */
typedef struct {
    const char *name;     /* what the client gets at this stage */
    double share;         /* part of the budget, 0..1 */
    const char *duration; /* human text */
} render_stage_t;

static const render_stage_t render_standard_stages[] = {
    {"Analysis of your task and a detailed specification", 0.15, "1–2 weeks"},
    {"Implementation", 0.70, "4–8 weeks"},
    {"Launch and handover to your team", 0.15, "1 week"},
};

static const render_stage_t render_full_stages[] = {
    {"Business analysis, market and competitor review", 0.15, "2 weeks"},
    {"Specification and project plan with the working group", 0.10, "1 week"},
    {"Implementation", 0.55, "6–10 weeks"},
    {"Launch, training and handover", 0.10, "1–2 weeks"},
    {"Support and development, with a personal account manager", 0.10,
     "3 months"},
};

static const char *render_nonempty(const char *text)
{
    return text != NULL && text[0] != '\0' ? text : NULL;
}

/* Who the proposal addresses: the company, else the person. */
static const char *render_client_name(const Conveyor__Lead *lead)
{
    if (lead == NULL)
        return "you";
    if (render_nonempty(lead->company) != NULL)
        return lead->company;
    if (render_nonempty(lead->name) != NULL)
        return lead->name;
    return "you";
}

/* "1 500 000" from 1500000.0: whole units with thin grouping spaces. */
static void render_amount(double amount, char *buf, size_t size)
{
    char digits[64];
    snprintf(digits, sizeof(digits), "%.0f", amount);
    size_t len = strlen(digits);
    size_t out = 0;
    for (size_t i = 0; i < len && out + 4 < size; i++) {
        if (i > 0 && (len - i) % 3 == 0) {
            /* U+202F NARROW NO-BREAK SPACE */
            buf[out++] = '\xE2';
            buf[out++] = '\x80';
            buf[out++] = '\xAF';
        }
        buf[out++] = digits[i];
    }
    buf[out] = '\0';
}

static bool render_has_budget(const Conveyor__Lead *lead)
{
    return lead != NULL && lead->has_budget && isfinite(lead->budget) &&
           lead->budget > 0;
}

static const char *render_currency(const Conveyor__Lead *lead)
{
    const char *currency =
        lead != NULL ? render_nonempty(lead->currency) : NULL;
    return currency != NULL ? currency : "RUB";
}

static void render_head(cv_html_t *html, const char *title)
{
    cv_html_raw(html, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
                      "<meta charset=\"utf-8\">\n<title>");
    cv_html_text(html, title);
    cv_html_raw(html,
                "</title>\n<style>\n"
                "body{font-family:sans-serif;max-width:48em;margin:2em auto;"
                "padding:0 1em;line-height:1.5;color:#222}\n"
                "h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.6em}\n"
                "table{border-collapse:collapse;width:100%}\n"
                "td,th{border:1px solid #ccc;padding:.4em;text-align:left}\n"
                ".approval{border:2px solid #c00;padding:.6em;color:#c00}\n"
                ".meta{color:#666}\n"
                "</style>\n</head>\n<body>\n");
}

static void render_header(cv_html_t *html, const char *proposal_id,
                          const char *kind,
                          const Conveyor__ActivityRecorded *activity,
                          const char *title, int64_t now_ms)
{
    char date[32];
    time_t seconds = (time_t)(now_ms / 1000);
    struct tm tm;
    if (gmtime_r(&seconds, &tm) == NULL ||
        strftime(date, sizeof(date), "%Y-%m-%d", &tm) == 0)
        snprintf(date, sizeof(date), "-");
    cv_html_raw(html, "<article class=\"proposal proposal-");
    cv_html_text(html, kind);
    cv_html_raw(html, "\" id=\"");
    cv_html_text(html, proposal_id);
    cv_html_raw(html, "\" data-lead-id=\"");
    cv_html_text(html, activity->lead_id);
    cv_html_raw(html, "\">\n<header>\n");
    cv_html_element(html, "h1", title);
    cv_html_raw(html, "<p class=\"meta\">");
    cv_html_textf(html, "No. %s, %s", proposal_id, date);
    cv_html_raw(html, "</p>\n</header>\n");
}

/* A definition-list row, left out when the value is unknown. */
static void render_fact(cv_html_t *html, const char *label, const char *value)
{
    if (render_nonempty(value) == NULL)
        return;
    cv_html_raw(html, "<dt>");
    cv_html_text(html, label);
    cv_html_raw(html, "</dt><dd>");
    cv_html_text(html, value);
    cv_html_raw(html, "</dd>\n");
}

static void render_client(cv_html_t *html, const Conveyor__Lead *lead)
{
    if (lead == NULL)
        return;
    cv_html_raw(html, "<section class=\"client\">\n<h2>Prepared for</h2>\n"
                      "<dl>\n");
    render_fact(html, "Contact", lead->name);
    render_fact(html, "Company", lead->company);
    render_fact(html, "Phone", lead->phone);
    render_fact(html, "Email", lead->email);
    render_fact(html, "Telegram", lead->telegram);
    render_fact(html, "Industry", lead->industry);
    render_fact(html, "Region", lead->region);
    render_fact(html, "Product", lead->product);
    cv_html_raw(html, "</dl>\n</section>\n");
}

/* The client's own words, and what we heard in the meeting. */
static void render_request(cv_html_t *html,
                           const Conveyor__ActivityRecorded *activity)
{
    const Conveyor__Lead *lead = activity->lead;
    const char *message = lead != NULL ? render_nonempty(lead->message) : NULL;
    cv_html_raw(html, "<section class=\"request\">\n<h2>Your request</h2>\n");
    if (message != NULL) {
        cv_html_raw(html, "<blockquote><p>");
        cv_html_lines(html, message);
        cv_html_raw(html, "</p></blockquote>\n");
    } else {
        cv_html_raw(html, "<p>You asked us to get in touch about ");
        cv_html_text(html, lead != NULL && render_nonempty(lead->product)
                               ? lead->product
                               : "your project");
        cv_html_raw(html, ".</p>\n");
    }
    if (render_nonempty(activity->note) != NULL) {
        cv_html_raw(html, "<h2>What we heard from you</h2>\n<p>");
        cv_html_lines(html, activity->note);
        cv_html_raw(html, "</p>\n");
    }
    cv_html_raw(html, "</section>\n");
}

static void render_value(cv_html_t *html, const Conveyor__Lead *lead, bool full)
{
    const char *industry =
        lead != NULL ? render_nonempty(lead->industry) : NULL;
    const char *product = lead != NULL ? render_nonempty(lead->product) : NULL;
    cv_html_raw(html, "<section class=\"value\">\n<h2>What you get</h2>\n"
                      "<ul>\n<li>");
    if (product != NULL)
        cv_html_textf(html,
                      "A working %s built around the task you "
                      "described, not a set of features to choose "
                      "from",
                      product);
    else
        cv_html_text(html, "A working solution built around the task you "
                           "described, not a set of features to choose "
                           "from");
    cv_html_raw(html, "</li>\n<li>");
    if (industry != NULL)
        cv_html_textf(html,
                      "A team with projects in %s behind it: your "
                      "manager will walk you through the cases "
                      "closest to yours",
                      industry);
    else
        cv_html_text(html, "A team with projects like yours behind it: "
                           "your manager will walk you through the "
                           "closest cases");
    cv_html_raw(html, "</li>\n<li>A fixed scope, price and timeline, "
                      "agreed before the work starts</li>\n");
    if (full) {
        cv_html_raw(html,
                    "<li>A working group on your project: an analyst, a "
                    "marketer and a team lead next to your manager</li>\n"
                    "<li>Priority support and a personal account manager "
                    "after the launch</li>\n"
                    "<li>Regular reports on the results against the goals "
                    "we set together</li>\n");
    }
    cv_html_raw(html, "</ul>\n</section>\n");
}

/* Price and timeline: one table, stages priced as shares of the budget
 * the client named, or left to the estimate when they named none. */
static void render_price(cv_html_t *html, const Conveyor__Lead *lead,
                         const render_stage_t *stages, size_t count)
{
    bool budget = render_has_budget(lead);
    const char *currency = render_currency(lead);
    char amount[96];
    cv_html_raw(html, "<section class=\"price\">\n<h2>Price and timeline"
                      "</h2>\n<table>\n<thead><tr><th>Stage</th>"
                      "<th>Timeline</th><th>Price</th></tr></thead>\n"
                      "<tbody>\n");
    double total = budget ? round(lead->budget) : 0;
    double priced = 0; /* sum of the stages so far, so they add up */
    for (size_t i = 0; i < count; i++) {
        cv_html_raw(html, "<tr><td>");
        cv_html_text(html, stages[i].name);
        cv_html_raw(html, "</td><td>");
        cv_html_text(html, stages[i].duration);
        cv_html_raw(html, "</td><td>");
        if (budget) {
            double part = i + 1 == count ? total - priced
                                         : round(total * stages[i].share);
            priced += part;
            render_amount(part, amount, sizeof(amount));
            cv_html_textf(html, "%s %s", amount, currency);
        } else {
            cv_html_text(html, "by estimate");
        }
        cv_html_raw(html, "</td></tr>\n");
    }
    cv_html_raw(html, "</tbody>\n");
    if (budget) {
        render_amount(total, amount, sizeof(amount));
        cv_html_raw(html, "<tfoot><tr><th colspan=\"2\">Total</th><th>");
        cv_html_textf(html, "%s %s", amount, currency);
        cv_html_raw(html, "</th></tr></tfoot>\n");
    }
    cv_html_raw(html, "</table>\n<p>");
    if (budget)
        cv_html_text(html, "The price fits the budget you named; the final "
                           "figure is fixed in the contract once the scope "
                           "is agreed.");
    else
        cv_html_text(html, "Each stage is priced from the agreed scope; "
                           "your manager will send the estimate after the "
                           "specification.");
    cv_html_raw(html, "</p>\n</section>\n");
}

static void render_next_steps(cv_html_t *html, bool full)
{
    cv_html_raw(html, "<section class=\"next\">\n<h2>Next steps</h2>\n<ol>\n"
                      "<li>Tell us what to change in this proposal, or that "
                      "it suits you</li>\n");
    if (full)
        cv_html_raw(html, "<li>A meeting with the working group to agree "
                          "the goals and the plan</li>\n");
    cv_html_raw(html, "<li>The contract and the start of the first stage"
                      "</li>\n</ol>\n</section>\n");
}

/* Why we decline: the knock-out reason, else the parameters that scored
 * -1 with their reasons. */
static void render_rejection_reasons(cv_html_t *html,
                                     const Conveyor__Score *score)
{
    int listed = 0;
    cv_html_raw(html, "<ul>\n");
    if (score != NULL && score->knocked_out &&
        render_nonempty(score->knockout_reason) != NULL) {
        cv_html_raw(html, "<li>");
        cv_html_text(html, score->knockout_reason);
        cv_html_raw(html, "</li>\n");
        listed++;
    }
    bool knocked_out = listed > 0;
    for (size_t i = 0; score != NULL && !knocked_out && i < score->n_params;
         i++) {
        const Conveyor__ScoreParam *param = score->params[i];
        if (param == NULL || param->value >= 0)
            continue;
        cv_html_raw(html, "<li>");
        if (render_nonempty(param->reason) != NULL)
            cv_html_textf(html, "%s: %s", param->name, param->reason);
        else
            cv_html_textf(html, "%s does not match what we do best",
                          param->name);
        cv_html_raw(html, "</li>\n");
        listed++;
    }
    if (listed == 0)
        cv_html_raw(html, "<li>Your task is outside what our team does "
                          "best today</li>\n");
    cv_html_raw(html, "</ul>\n");
}

static void render_rejection(cv_html_t *html,
                             const Conveyor__ActivityRecorded *activity)
{
    const Conveyor__Lead *lead = activity->lead;
    const char *name = lead != NULL ? render_nonempty(lead->name) : NULL;
    cv_html_raw(html, "<section class=\"rejection\">\n<p>");
    if (name != NULL)
        cv_html_textf(html, "Dear %s,", name);
    else
        cv_html_text(html, "Hello,");
    cv_html_raw(html, "</p>\n<p>Thank you for your request and for the time "
                      "you gave us. We looked at it carefully and, to be "
                      "honest with you, we are not the best team for it "
                      "right now, so we would rather not make you an offer "
                      "we could not deliver at our best.</p>\n"
                      "<h2>Why</h2>\n");
    render_rejection_reasons(html, activity->score);
    cv_html_raw(html, "</section>\n<section class=\"referral\">\n"
                      "<h2>Who can help</h2>\n<p>We want your project to "
                      "succeed, so we recommend a partner agency from our "
                      "partner program that works with tasks like yours. "
                      "Your manager will send you their contacts and "
                      "introduce you, so you do not have to start from the "
                      "beginning.</p>\n<p>If your plans change, we will be "
                      "glad to hear from you again.</p>\n</section>\n");
}

static void render_approval(cv_html_t *html, const Conveyor__Score *score)
{
    cv_html_raw(html, "<p class=\"approval\" data-approval=\"head-of-sales\""
                      ">");
    cv_html_textf(html,
                  "Internal: the score is %+d (above %d), so the head "
                  "of sales must approve this proposal before it goes "
                  "to the client.",
                  score->total, PROPOSAL_APPROVAL_ABOVE);
    cv_html_raw(html, "</p>\n");
}

/* Which document the segment gets. */
static void render_choose(const Conveyor__Score *score, proposal_doc_t *doc)
{
    const char *segment = score != NULL ? score->segment : NULL;
    if (segment != NULL && strcmp(segment, "A") == 0) {
        doc->segment = "A";
        doc->kind = "full_package";
    } else if (segment != NULL && strcmp(segment, "C") == 0) {
        doc->segment = "C";
        doc->kind = "rejection";
    } else {
        /* the core segment, also when the score is unknown */
        doc->segment = "B";
        doc->kind = "proposal";
    }
    if (score != NULL && score->knocked_out)
        doc->kind = "rejection";
    doc->needs_approval = score != NULL &&
                          strcmp(doc->kind, "rejection") != 0 &&
                          score->total > PROPOSAL_APPROVAL_ABOVE;
}

int proposal_render(const char *proposal_id,
                    const Conveyor__ActivityRecorded *activity, int64_t now_ms,
                    proposal_doc_t *doc)
{
    const Conveyor__Lead *lead = activity->lead;
    cv_html_t *html = NULL;
    int rc = -1;
    memset(doc, 0, sizeof(*doc));
    render_choose(activity->score, doc);
    bool rejection = strcmp(doc->kind, "rejection") == 0;
    bool full = strcmp(doc->kind, "full_package") == 0;
    const char *client = render_client_name(lead);
    int n;
    if (rejection)
        n = asprintf(&doc->title, "Our reply to the request of %s", client);
    else if (full)
        n = asprintf(&doc->title, "Commercial proposal for %s: full package",
                     client);
    else
        n = asprintf(&doc->title, "Commercial proposal for %s", client);
    if (n < 0) {
        doc->title = NULL;
        goto out;
    }
    html = cv_html_new();
    if (html == NULL)
        goto out;
    render_head(html, doc->title);
    render_header(html, proposal_id, doc->kind, activity, doc->title, now_ms);
    if (doc->needs_approval)
        render_approval(html, activity->score);
    render_client(html, lead);
    render_request(html, activity);
    if (rejection) {
        render_rejection(html, activity);
    } else {
        render_value(html, lead, full);
        if (full)
            render_price(html, lead, render_full_stages,
                         sizeof(render_full_stages) /
                             sizeof(render_full_stages[0]));
        else
            render_price(html, lead, render_standard_stages,
                         sizeof(render_standard_stages) /
                             sizeof(render_standard_stages[0]));
        render_next_steps(html, full);
    }
    cv_html_raw(html, "</article>\n</body>\n</html>\n");
    doc->html = cv_html_take(html);
    if (doc->html == NULL)
        goto out;
    rc = 0;
out:
    if (rc != 0) {
        cv_log(CV_LOG_ERROR, "out of memory rendering '%s'", proposal_id);
        proposal_doc_clear(doc);
    }
    cv_html_destroy(&html);
    return rc;
}

void proposal_doc_clear(proposal_doc_t *doc)
{
    if (doc == NULL)
        return;
    free(doc->html);
    free(doc->title);
    memset(doc, 0, sizeof(*doc));
}
