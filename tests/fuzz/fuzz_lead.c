/* libFuzzer target: intake's lead parser, the first thing every web form,
 * landing-page webhook and ad platform reaches. The first byte picks the
 * media type (JSON, URL-encoded form, multipart), the rest is the body;
 * whatever arrives, the parser must answer a lead or an error, never
 * crash, leak or read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../services/intake/intake_lead.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const media[] = {
        "application/json",
        "application/x-www-form-urlencoded",
        "multipart/form-data",
    };
    static const char *const headers[] = {
        "application/json; charset=utf-8",
        "application/x-www-form-urlencoded",
        "multipart/form-data; boundary=----WebKitFormBoundary7MA4YWxkTrZu0gW",
    };
    intake_lead_t lead;
    intake_error_t error;
    size_t kind;

    if (size == 0)
        return 0;
    kind = data[0] % 3;
    memset(&lead, 0, sizeof(lead));
    memset(&error, 0, sizeof(error));
    if (intake_lead_parse(media[kind], headers[kind], (const char *)data + 1,
                          size - 1, &lead, &error) == 0) {
        char *json = intake_lead_to_json(&lead);
        free(json);
    }
    intake_lead_clear(&lead);
    return 0;
}
