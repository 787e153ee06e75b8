/* broker: the process that runs cv_broker (common/cv_broker.h) with an
 * admin server for /healthz and /metrics, until SIGINT or SIGTERM. */
#include <signal.h>
#include <stddef.h>
#include <string.h>

#include "cv_broker.h"
#include "cv_config.h"
#include "cv_http.h"
#include "cv_log.h"
#include "cv_service.h"

static cv_broker_t *running;

static void on_signal(int sig)
{
    (void)sig;
    if (running != NULL)
        cv_broker_stop(running);
}

int main(int argc, char **argv)
{
    cv_log_init("broker");
    cv_service_tune_memory();
    cv_config_t config;
    if (cv_config_load(&config, "broker", argc, argv) != 0)
        return 1;
    int rc = 1;
    cv_http_t *admin = NULL;
    cv_broker_t *broker =
        cv_broker_new(config.broker_bind, config.heartbeat_ms);
    if (broker == NULL)
        goto out;
    admin = cv_http_start_admin(config.admin_addr, "broker");
    if (admin == NULL)
        goto out;

    running = broker;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);

    cv_http_set_ready(admin, true);
    rc = cv_broker_run(broker) == 0 ? 0 : 1;
    running = NULL;
out:
    cv_http_destroy(&admin);
    cv_broker_destroy(&broker);
    return rc;
}
