/* notifier: delivers NotificationRequested events to staff on Telegram,
 * Slack-style webhooks, e-mail and signed webhooks (or their console
 * inbox), reports each delivery or dead letter to the console, and sends
 * a dead letter again on the console's NotificationResend.
 *
 *   notifier [--config FILE] [--instance N] [--admin-addr H:P]
 *            [--data-dir DIR]
 *
 * CONVEYOR_NOTIFIER_WORKERS sets how many deliveries may be in flight at
 * once (default 4, 1..64); one thread drives them all. */
#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "cv_log.h"
#include "cv_service.h"
#include "notifier.h"

#define NOTIFIER_WORKERS_DEFAULT 4

/* The number of deliveries in flight at once from the environment, or -1
 * (logged) when it is not a number. */
static int notifier_workers(void)
{
    const char *text = getenv("CONVEYOR_NOTIFIER_WORKERS");
    if (text == NULL || text[0] == '\0')
        return NOTIFIER_WORKERS_DEFAULT;
    errno = 0;
    char *end = NULL;
    long workers = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || workers < 1 || workers > 64) {
        cv_error("cannot use CONVEYOR_NOTIFIER_WORKERS '%s': a number "
                 "from 1 to 64 is needed",
                 text);
        return -1;
    }
    return (int)workers;
}

int main(int argc, char **argv)
{
    int rc = 1;
    notifier_t *notifier = NULL;
    cv_service_t *service = NULL;
    cv_log_init(NOTIFIER_SERVICE);
    /* Before any thread exists: curl's global state is not thread-safe to
     * set up. */
    CURLcode curl_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
    if (curl_rc != CURLE_OK) {
        cv_error("cannot initialise curl: %s", curl_easy_strerror(curl_rc));
        return 1;
    }
    int workers = notifier_workers();
    if (workers < 0)
        goto out;
    notifier = notifier_new(workers);
    if (notifier == NULL)
        goto out;
    cv_service_options_t options = {
        .name = NOTIFIER_SERVICE,
        .migrations = notifier_migrations,
        .migration_count = notifier_migration_count,
        .worker = true,
        .handler = notifier_handle,
        .arg = notifier,
        .admin_http = true,
    };
    service = cv_service_new(&options, argc, argv);
    if (service == NULL)
        goto out;
    if (notifier_attach(notifier, cv_service_bus(service),
                        cv_service_config(service)) != 0)
        goto out;
    if (cv_service_run(service) == 0)
        rc = 0;
out:
    /* Workers first: they may be mid-transfer; nothing of theirs touches
     * the service. */
    notifier_destroy(&notifier);
    cv_service_destroy(&service);
    curl_global_cleanup();
    return rc;
}
