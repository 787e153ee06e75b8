/* libFuzzer target: cv_call, the call-tracking events of the phone
 * channel, as JSON or as a Twilio-style form (the first byte picks). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cv_call.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const types[] = {
        "application/json",
        "application/x-www-form-urlencoded",
    };
    cv_call_t call;
    cv_call_error_t err;

    if (size == 0)
        return 0;
    memset(&call, 0, sizeof(call));
    (void)cv_call_parse(types[data[0] % 2], (const char *)data + 1, size - 1,
                        &call, &err);
    cv_call_clear(&call);
    return 0;
}
