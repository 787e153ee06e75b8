/* libFuzzer target: cv_telegram, the Bot API Update objects the Telegram
 * channel receives. */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "cv_telegram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    cv_telegram_update_t update;
    cv_telegram_error_t err;

    memset(&update, 0, sizeof(update));
    (void)cv_telegram_parse((const char *)data, size, &update, &err);
    cv_telegram_update_clear(&update);
    return 0;
}
