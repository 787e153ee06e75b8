/* cv_scoring_card: people's values on a lead's scorecard, latest wins. */
#include "cv_scoring_card.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int cv_scoring_card_apply(cv_scoring_card_t *card,
                          const cv_scoring_card_change_t *change)
{
    if (change->count > CV_SCORING_PARAM_COUNT)
        return -1;
    for (size_t i = 0; i < change->count; i++) {
        const cv_scoring_card_value_t *v = &change->values[i];
        if (v->name == NULL || v->name[0] == '\0' ||
            strlen(v->name) >= CV_SCORING_CARD_NAME_SIZE || v->value < -1 ||
            v->value > 1)
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp(change->values[j].name, v->name) == 0)
                return -1;
    }
    /* every name fits: a new one takes a free slot or it is refused */
    size_t fresh = 0;
    for (size_t i = 0; i < change->count; i++) {
        size_t at = 0;
        while (at < card->count &&
               strcmp(card->params[at].name, change->values[i].name) != 0)
            at++;
        fresh += at == card->count ? 1 : 0;
    }
    if (card->count + fresh > CV_SCORING_PARAM_COUNT)
        return -1;
    const char *actor = change->actor != NULL ? change->actor : "";
    for (size_t i = 0; i < change->count; i++) {
        const cv_scoring_card_value_t *v = &change->values[i];
        size_t at = 0;
        while (at < card->count && strcmp(card->params[at].name, v->name) != 0)
            at++;
        cv_scoring_card_param_t *p = &card->params[at];
        if (at == card->count) {
            card->count++;
            snprintf(p->name, sizeof(p->name), "%s", v->name);
        }
        p->value = v->value;
        snprintf(p->actor, sizeof(p->actor), "%s", actor);
        p->set_at = change->at;
    }
    if (change->knockout_given) {
        card->knockout = change->knockout_reason != NULL
                             ? CV_SCORING_KNOCKOUT_SET
                             : CV_SCORING_KNOCKOUT_LIFTED;
        snprintf(card->knockout_reason, sizeof(card->knockout_reason), "%s",
                 change->knockout_reason != NULL ? change->knockout_reason
                                                 : "");
        snprintf(card->knockout_actor, sizeof(card->knockout_actor), "%s",
                 actor);
        card->knockout_at = change->at;
    }
    card->revision++;
    return 0;
}

void cv_scoring_card_manual(const cv_scoring_card_t *card,
                            cv_scoring_manual_t *manual,
                            cv_scoring_override_t *storage)
{
    memset(manual, 0, sizeof(*manual));
    for (size_t i = 0; i < card->count; i++) {
        storage[i].name = card->params[i].name;
        storage[i].value = card->params[i].value;
        storage[i].actor = card->params[i].actor;
        storage[i].set_at = card->params[i].set_at;
    }
    manual->params = storage;
    manual->count = card->count;
    manual->knockout = card->knockout;
    manual->knockout_reason = card->knockout_reason;
    manual->knockout_actor = card->knockout_actor;
    manual->knockout_at = card->knockout_at;
    manual->revision = card->revision;
}

uint8_t *cv_scoring_card_pack(const cv_scoring_card_t *card,
                              const char *lead_id, const char *scorecard_id,
                              const cv_scoring_card_change_t *change,
                              size_t *size)
{
    Conveyor__ScorecardParam params[CV_SCORING_PARAM_COUNT];
    Conveyor__ScorecardParam *param_ptrs[CV_SCORING_PARAM_COUNT];
    char *changed[CV_SCORING_PARAM_COUNT + 1];
    Conveyor__Scorecard msg = CONVEYOR__SCORECARD__INIT;
    msg.lead_id = (char *)lead_id;
    msg.revision = card->revision;
    for (size_t i = 0; i < card->count; i++) {
        conveyor__scorecard_param__init(&params[i]);
        params[i].name = (char *)card->params[i].name;
        params[i].value = card->params[i].value;
        params[i].actor = (char *)card->params[i].actor;
        params[i].has_set_at = true;
        params[i].set_at = card->params[i].set_at;
        param_ptrs[i] = &params[i];
    }
    msg.n_params = card->count;
    msg.params = param_ptrs;
    if (card->knockout != CV_SCORING_KNOCKOUT_RULES) {
        msg.knockout =
            card->knockout == CV_SCORING_KNOCKOUT_SET ? "set" : "lifted";
        if (card->knockout_reason[0] != '\0')
            msg.knockout_reason = (char *)card->knockout_reason;
        msg.knockout_actor = (char *)card->knockout_actor;
        msg.has_knockout_at = true;
        msg.knockout_at = card->knockout_at;
    }
    msg.scorecard_id = (char *)scorecard_id;
    size_t n_changed = 0;
    if (change != NULL) {
        msg.actor = (char *)change->actor;
        msg.has_changed_at = true;
        msg.changed_at = change->at;
        for (size_t i = 0; i < change->count && i < CV_SCORING_PARAM_COUNT; i++)
            changed[n_changed++] = (char *)change->values[i].name;
        if (change->knockout_given)
            changed[n_changed++] = "knockout";
    }
    msg.n_changed = n_changed;
    msg.changed = changed;
    *size = conveyor__scorecard__get_packed_size(&msg);
    uint8_t *buf = malloc(*size > 0 ? *size : 1);
    if (buf != NULL)
        conveyor__scorecard__pack(&msg, buf);
    return buf;
}

int cv_scoring_card_unpack(const uint8_t *data, size_t size,
                           cv_scoring_card_t *card)
{
    memset(card, 0, sizeof(*card));
    if (data == NULL || size == 0)
        return 0;
    Conveyor__Scorecard *msg = conveyor__scorecard__unpack(NULL, size, data);
    if (msg == NULL)
        return -1;
    cv_scoring_override_t storage[CV_SCORING_PARAM_COUNT];
    cv_scoring_manual_t manual;
    cv_scoring_manual_from_proto(msg, &manual, storage);
    card->revision = msg->revision;
    for (size_t i = 0; i < manual.count; i++) {
        cv_scoring_card_param_t *p = &card->params[i];
        snprintf(p->name, sizeof(p->name), "%s", storage[i].name);
        p->value = storage[i].value;
        snprintf(p->actor, sizeof(p->actor), "%s",
                 storage[i].actor != NULL ? storage[i].actor : "");
        p->set_at = storage[i].set_at;
    }
    card->count = manual.count;
    card->knockout = manual.knockout;
    snprintf(card->knockout_reason, sizeof(card->knockout_reason), "%s",
             manual.knockout_reason != NULL ? manual.knockout_reason : "");
    snprintf(card->knockout_actor, sizeof(card->knockout_actor), "%s",
             manual.knockout_actor != NULL ? manual.knockout_actor : "");
    card->knockout_at = manual.knockout_at;
    conveyor__scorecard__free_unpacked(msg, NULL);
    return 0;
}
