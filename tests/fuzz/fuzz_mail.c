/* libFuzzer target: cv_mail, raw RFC 822 messages as the email channel
 * receives them (MIME, charsets, encoded words, signatures). */
#include <stddef.h>
#include <stdint.h>

#include "cv_mail.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char error[128];
    cv_mail_t *mail = cv_mail_parse((const char *)data, size, error,
                                    sizeof(error));
    cv_mail_destroy(&mail);
    return 0;
}
