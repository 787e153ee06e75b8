/* cv_broker: the stateless router between the stages.
 *
 * The broker process is this object and a signal handler; tests run it in
 * a thread. Frames and rules: cv_wire.h. */
#ifndef CV_BROKER_H
#define CV_BROKER_H

typedef struct cv_broker cv_broker_t;

/* Binds a ROUTER socket to `bind` ("tcp://127.0.0.1:5555"; port "*" picks
 * a free one). NULL after logging when it cannot bind. */
cv_broker_t *cv_broker_new(const char *bind, int heartbeat_ms);

/* NULL-safe; nulls *self_p. Call after cv_broker_run has returned. */
void cv_broker_destroy(cv_broker_t **self_p);

/* The endpoint actually bound ("tcp://127.0.0.1:41234"). */
const char *cv_broker_endpoint(const cv_broker_t *self);

/* Routes until cv_broker_stop. 0 on a clean stop, -1 on a fatal error. */
int cv_broker_run(cv_broker_t *self);

/* Thread-safe and async-signal-safe. */
void cv_broker_stop(cv_broker_t *self);

#endif
