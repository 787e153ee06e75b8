/* cv_wire: building and taking apart the one-frame messages of cv_wire.h. */
#include "cv_wire.h"

#include <errno.h>
#include <string.h>
#include <zmq.h>

#include "cv_clock.h"
#include "cv_log.h"
#include "cv_metrics.h"

#define CV_WIRE_MAGIC "CV1"
#define CV_WIRE_HEADER 4 /* "CV1" and the command byte */

/* Starts a frame of `total` bytes with "CV1" and `command`; returns where
 * the rest goes, or NULL (errno set) when out of memory. */
static uint8_t *cv_wire_frame_new(zmq_msg_t *msg, size_t total, char command)
{
    if (zmq_msg_init_size(msg, total) != 0)
        return NULL;
    uint8_t *at = zmq_msg_data(msg);
    memcpy(at, CV_WIRE_MAGIC, 3);
    at[3] = (uint8_t)command;
    return at + CV_WIRE_HEADER;
}

/* Sends a frame built by cv_wire_frame_new; closes it when it is not
 * sent. 0, or -1 with errno as zmq_msg_send set it. */
static int cv_wire_frame_send(zmq_msg_t *msg, void *socket, int flags)
{
    if (zmq_msg_send(msg, socket, flags) < 0) {
        int saved = errno;
        zmq_msg_close(msg);
        errno = saved;
        return -1;
    }
    return 0;
}

int cv_wire_send(void *socket, int flags, char command, int fields,
                 const void *a, size_t a_size, const void *b, size_t b_size,
                 const void *rest, size_t rest_size)
{
    const void *data[2] = {a, b};
    size_t sizes[2] = {a_size, b_size};
    size_t total = CV_WIRE_HEADER + rest_size;
    for (int i = 0; i < fields; i++) {
        if (sizes[i] > 255) {
            errno = EINVAL;
            return -1;
        }
        total += 1 + sizes[i];
    }
    zmq_msg_t msg;
    uint8_t *at = cv_wire_frame_new(&msg, total, command);
    if (at == NULL)
        return -1;
    for (int i = 0; i < fields; i++) {
        *at++ = (uint8_t)sizes[i];
        if (sizes[i] > 0)
            memcpy(at, data[i], sizes[i]);
        at += sizes[i];
    }
    if (rest_size > 0)
        memcpy(at, rest, rest_size);
    return cv_wire_frame_send(&msg, socket, flags);
}

/* Bytes one entry takes in a B frame. */
static size_t cv_wire_entry_size(const cv_wire_entry_t *entry)
{
    return 1 + entry->msg_id_size + 4 + entry->payload_size;
}

int cv_wire_send_batch(void *socket, int flags, const void *field,
                       size_t field_size, const cv_wire_entry_t *entries,
                       int count)
{
    if (field_size > 255) {
        errno = EINVAL;
        return -1;
    }
    size_t total = CV_WIRE_HEADER + 1 + field_size;
    for (int i = 0; i < count; i++) {
        if (entries[i].msg_id_size > 255 ||
            entries[i].payload_size > UINT32_MAX) {
            errno = EINVAL;
            return -1;
        }
        total += cv_wire_entry_size(&entries[i]);
    }
    zmq_msg_t msg;
    uint8_t *at = cv_wire_frame_new(&msg, total, CV_WIRE_BATCH);
    if (at == NULL)
        return -1;
    *at++ = (uint8_t)field_size;
    if (field_size > 0)
        memcpy(at, field, field_size);
    at += field_size;
    for (int i = 0; i < count; i++) {
        const cv_wire_entry_t *e = &entries[i];
        *at++ = (uint8_t)e->msg_id_size;
        memcpy(at, e->msg_id, e->msg_id_size);
        at += e->msg_id_size;
        uint32_t size = (uint32_t)e->payload_size;
        at[0] = (uint8_t)(size >> 24);
        at[1] = (uint8_t)(size >> 16);
        at[2] = (uint8_t)(size >> 8);
        at[3] = (uint8_t)size;
        at += 4;
        if (e->payload_size > 0)
            memcpy(at, e->payload, e->payload_size);
        at += e->payload_size;
    }
    return cv_wire_frame_send(&msg, socket, flags);
}

int cv_wire_entry_next(const uint8_t **at, const uint8_t *end,
                       cv_wire_entry_t *entry)
{
    const uint8_t *p = *at;
    if (p == end)
        return 0;
    size_t id_size = *p++;
    if ((size_t)(end - p) < id_size + 4)
        return -1;
    entry->msg_id = p;
    entry->msg_id_size = id_size;
    p += id_size;
    size_t size = (size_t)p[0] << 24 | (size_t)p[1] << 16 |
                  (size_t)p[2] << 8 | (size_t)p[3];
    p += 4;
    if ((size_t)(end - p) < size)
        return -1;
    entry->payload = p;
    entry->payload_size = size;
    *at = p + size;
    return 1;
}

char cv_wire_command(const void *data, size_t size)
{
    if (size < CV_WIRE_HEADER || memcmp(data, CV_WIRE_MAGIC, 3) != 0)
        return 0;
    return (char)((const uint8_t *)data)[3];
}

int cv_wire_parse(const void *data, size_t size, int fields,
                  cv_wire_msg_t *out)
{
    memset(out, 0, sizeof(*out));
    out->command = cv_wire_command(data, size);
    if (out->command == 0)
        return -1;
    const uint8_t *at = (const uint8_t *)data + CV_WIRE_HEADER;
    const uint8_t *end = (const uint8_t *)data + size;
    for (int i = 0; i < fields; i++) {
        if (at >= end)
            return -1;
        size_t len = *at++;
        if ((size_t)(end - at) < len)
            return -1;
        out->field[i] = at;
        out->field_size[i] = len;
        at += len;
    }
    out->rest = at;
    out->rest_size = (size_t)(end - at);
    return 0;
}

void cv_wire_drop(cv_metric_t *counter, const char *what)
{
    static _Atomic int64_t last_ms;
    cv_metric_add(counter, 1);
    int64_t now = cv_clock_monotonic_ms();
    if (now - last_ms >= 1000) {
        last_ms = now;
        cv_log_warn("dropped a malformed message: %s", what);
    }
}
