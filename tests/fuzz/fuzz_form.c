/* libFuzzer target: cv_form, the URL-encoded and multipart bodies of site
 * forms. The first byte picks the Content-Type (URL-encoded, multipart
 * with a quoted or a bare boundary), the rest is the body. */
#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "cv_form.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=\"----WebKitFormBoundary7MA4YWxkTrZu0gW\"",
        "multipart/form-data; boundary=XyZ",
    };
    cv_form_error_t err;
    cv_form_t *form;

    if (size == 0)
        return 0;
    form = cv_form_parse(types[data[0] % 3], (const char *)data + 1, size - 1,
                         &err);
    if (form != NULL) {
        json_t *json = cv_form_to_json(form);
        for (size_t i = 0; i < cv_form_count(form); i++)
            (void)cv_form_get(form, cv_form_at(form, i)->name);
        json_decref(json);
    }
    cv_form_destroy(&form);
    return 0;
}
