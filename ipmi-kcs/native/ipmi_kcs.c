/*
 * Thin Node-API shim over the Linux OpenIPMI character device (/dev/ipmi0,
 * drivers/char/ipmi/ipmi_devintf.c). Stateless: TypeScript owns the fd, the
 * msgid sequence, validation and parsing; this file only performs syscalls and
 * settles a Promise. Every error carries the numeric errno and the syscall that
 * failed, so the caller can name it (EACCES, EBUSY, ENOTTY...).
 *
 * open() and close() run on the worker pool. A request runs on the event loop
 * itself: IPMICTL_SEND_COMMAND only queues the message in the kernel and never
 * waits for the BMC, and the device is pollable (ipmi_devintf.c ipmi_poll), so
 * the answer is awaited with a uv_poll watcher and a uv_timer for the timeout.
 * A worker-pool round trip per request (wake a pool thread, then wake the loop
 * back) cost more than the KCS exchange itself on a slow CPU: 1.05 ms per Get
 * Device ID against 0.46-0.52 ms for the same syscalls in a plain C loop, in a
 * qemu TCG guest. An fd epoll refuses (not a pollable device, so no IPMI
 * device either) takes the worker-pool path, whose send then names the fault.
 *
 * Deliberately never called: IPMICTL_SET_GETS_EVENTS_CMD (the first user to
 * enable events receives every event queued since boot) and
 * IPMICTL_SET_MY_ADDRESS_CMD (changes the address for every user of the
 * interface). Requests go to the BMC over the system interface, IPMI v2.0 §9.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/ipmi.h>
#include <node_api.h>
#include <poll.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <uv.h>

/* Bumped when the exports change shape; the TypeScript loader checks it. */
#define ADDON_ABI 1

/* Not an errno: reported as code 'ENOTCHR' with errno ENODEV. */
#define CODE_NOT_CHR "ENOTCHR"
#define CODE_TIMEOUT "ETIMEDOUT"

typedef enum { OP_OPEN, OP_CLOSE, OP_REQUEST } op_kind;

typedef struct job_s {
    napi_async_work work;
    napi_deferred deferred;
    op_kind op;

    /* inputs */
    char *path;
    int fd;
    long msgid;
    unsigned char netfn;
    unsigned char lun;
    unsigned char cmd;
    unsigned short req_len;
    unsigned char req_data[IPMI_MAX_MSG_LENGTH];
    int timeout_ms;

    /* outputs */
    int err;             /* errno; 0 on success */
    const char *syscall; /* what failed */
    const char *code;    /* non-errno code, or NULL */
    mode_t mode;         /* file type, for the not-a-character-device error */
    int result_fd;
    long rsp_msgid;
    unsigned char rsp_netfn;
    unsigned char rsp_cmd;
    unsigned short rsp_len;
    int truncated;
    unsigned int dropped; /* stale responses discarded while waiting */
    unsigned char rsp_data[IPMI_MAX_MSG_LENGTH];
} job_t;

#define NAPI_CHECK(env, call)                                                  \
    do {                                                                       \
        if ((call) != napi_ok)                                                 \
            napi_fatal_error(__FILE__ ":" #call, NAPI_AUTO_LENGTH,             \
                             "Node-API call failed", NAPI_AUTO_LENGTH);        \
    } while (0)

static void job_free(job_t *job)
{
    free(job->path);
    /* Request bytes may hold a BMC password (§22.30 Set User Password). */
    explicit_bzero(job, sizeof(*job));
    free(job);
}

static const char *file_type(mode_t mode)
{
    if (S_ISREG(mode)) return "regular file";
    if (S_ISDIR(mode)) return "directory";
    if (S_ISFIFO(mode)) return "FIFO";
    if (S_ISSOCK(mode)) return "socket";
    if (S_ISBLK(mode)) return "block device";
    if (S_ISLNK(mode)) return "symbolic link";
    return "unknown file type";
}

/* ---- worker-thread side: syscalls only, no Node-API ---- */

static void do_open(job_t *job)
{
    /* Classify the path before opening it: opening a FIFO or a regular file
     * read-write is not harmless, and EACCES/EISDIR would hide the real problem. */
    struct stat st;
    if (stat(job->path, &st) < 0) {
        job->err = errno;
        job->syscall = "stat";
        return;
    }
    if (!S_ISCHR(st.st_mode)) {
        job->err = ENODEV;
        job->syscall = "stat";
        job->code = CODE_NOT_CHR;
        job->mode = st.st_mode;
        return;
    }
    /* O_NOCTTY: a misconfigured path to a tty must not become our controlling terminal. */
    int fd = open(job->path, O_RDWR | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        job->err = errno;
        job->syscall = "open";
        return;
    }
    /* The path may have been replaced between stat() and open(). */
    if (fstat(fd, &st) < 0) {
        job->err = errno;
        job->syscall = "fstat";
        close(fd);
        return;
    }
    if (!S_ISCHR(st.st_mode)) {
        job->err = ENODEV;
        job->syscall = "fstat";
        job->code = CODE_NOT_CHR;
        job->mode = st.st_mode;
        close(fd);
        return;
    }
    job->result_fd = fd;
}

static void do_close(job_t *job)
{
    /* Linux always releases the fd, even when close() reports EINTR: never retry. */
    if (close(job->fd) < 0 && errno != EINTR) {
        job->err = errno;
        job->syscall = "close";
    }
}

/* ---- requests, on the event loop ---- */

/* A device the agent sends requests on: its fd is watched by the event loop
 * from the first request to close(), one watcher per fd as libuv requires, and
 * holds at most one request at a time (BaseTransport keeps one command in
 * flight per device; a second is refused here too). The watcher and the timer
 * keep the process alive only while a request waits. */
typedef struct device_s {
    int fd;
    napi_env env;
    uv_poll_t poll;
    uv_timer_t timer;
    int open_handles;          /* uv handles not yet closed; freed at 0 */
    napi_ref resource;         /* the async resource the Promise callbacks run under */
    napi_async_context async_ctx;
    job_t *job;                /* the request waiting, or NULL */
    unsigned int dropped;      /* stale messages read while no request waited */
    int watching;              /* the poll watcher is started */
    struct device_s *next;
} device_t;

static device_t *devices = NULL;

static void settle(device_t *dev);
static napi_value start(napi_env env, job_t *job, const char *arg_error);

/* Sends the request; 0, or -1 with job->err set. */
static int send_request(job_t *job)
{
    struct ipmi_system_interface_addr bmc = {
        .addr_type = IPMI_SYSTEM_INTERFACE_ADDR_TYPE,
        .channel = IPMI_BMC_CHANNEL,
        .lun = job->lun,
    };
    struct ipmi_req req = {
        .addr = (unsigned char *)&bmc,
        .addr_len = sizeof(bmc),
        .msgid = job->msgid,
        .msg = { .netfn = job->netfn, .cmd = job->cmd, .data_len = job->req_len, .data = job->req_data },
    };
    int rc = ioctl(job->fd, IPMICTL_SEND_COMMAND, &req);
    /* The kernel copied the request during the ioctl; drop our copy now. */
    explicit_bzero(job->req_data, sizeof(job->req_data));
    if (rc < 0) {
        job->err = errno;
        job->syscall = "ioctl(IPMICTL_SEND_COMMAND)";
        return -1;
    }
    return 0;
}

/* Reads what the device holds. 1: this request is answered (or failed, job->err
 * set); 0: nothing for it yet, keep waiting. */
static int receive_answer(job_t *job)
{
    for (;;) {
        struct ipmi_addr addr;
        struct ipmi_recv recv = {
            .addr = (unsigned char *)&addr,
            .addr_len = sizeof(addr),
            .msg = { .data = job->rsp_data, .data_len = sizeof(job->rsp_data) },
        };
        int truncated = 0;
        if (ioctl(job->fd, IPMICTL_RECEIVE_MSG_TRUNC, &recv) < 0) {
            if (errno == EAGAIN) return 0;
            if (errno == EINTR) continue;
            /* Current kernels dequeue the cut message and still report EMSGSIZE. */
            if (errno != EMSGSIZE) {
                job->err = errno;
                job->syscall = "ioctl(IPMICTL_RECEIVE_MSG_TRUNC)";
                return 1;
            }
            truncated = 1;
        }
        /* A late response to an earlier, timed-out request (or anything that is
         * not a response) must never be taken for this one. */
        if (recv.recv_type != IPMI_RESPONSE_RECV_TYPE || recv.msgid != job->msgid) {
            job->dropped++;
            continue;
        }
        job->rsp_msgid = recv.msgid;
        job->rsp_netfn = recv.msg.netfn;
        job->rsp_cmd = recv.msg.cmd;
        job->rsp_len = recv.msg.data_len > sizeof(job->rsp_data) ? sizeof(job->rsp_data) : recv.msg.data_len;
        job->truncated = truncated;
        return 1;
    }
}

/* A message with no request waiting: a late answer to one that timed out. */
static void drain(device_t *dev)
{
    job_t scratch;
    memset(&scratch, 0, sizeof(scratch));
    scratch.fd = dev->fd;
    scratch.msgid = -1;
    if (receive_answer(&scratch)) {
        /* The device fails with nobody asking: stop watching rather than spin
         * on it; the next request starts the watcher again and meets the error. */
        uv_poll_stop(&dev->poll);
        dev->watching = 0;
    }
    dev->dropped += scratch.dropped;
    explicit_bzero(&scratch, sizeof(scratch));
}

static void on_readable(uv_poll_t *handle, int status, int events)
{
    (void)events;
    device_t *dev = handle->data;
    job_t *job = dev->job;
    if (job == NULL) {
        drain(dev);
        return;
    }
    if (status < 0) {
        job->err = -status;
        job->syscall = "poll";
    } else if (!receive_answer(job)) {
        return;
    }
    settle(dev);
}

static void on_timeout(uv_timer_t *handle)
{
    device_t *dev = handle->data;
    job_t *job = dev->job;
    if (job == NULL) return;
    /* The answer may be queued already, its wakeup not yet run. */
    if (!receive_answer(job)) {
        job->err = ETIMEDOUT;
        job->syscall = "poll";
        job->code = CODE_TIMEOUT;
    }
    settle(dev);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
/* The worker-pool path, for an fd the event loop cannot watch (epoll refuses
 * it: not a pollable device). Such an fd is no IPMI device in practice, and the
 * send names the real problem (ENOTTY, EBADF). Waits with poll() on the worker. */
static void do_request(job_t *job)
{
    int64_t deadline = now_ms() + job->timeout_ms;
    if (send_request(job) < 0) return;

    for (;;) {
        int64_t remaining = deadline - now_ms();
        if (remaining <= 0) break;
        struct pollfd pfd = { .fd = job->fd, .events = POLLIN };
        int n = poll(&pfd, 1, remaining > INT_MAX ? INT_MAX : (int)remaining);
        if (n < 0) {
            if (errno == EINTR) continue; /* remaining time is recomputed above */
            job->err = errno;
            job->syscall = "poll";
            return;
        }
        if (n == 0) break;
        if (pfd.revents & POLLNVAL) {
            job->err = EBADF;
            job->syscall = "poll";
            return;
        }
        if (!(pfd.revents & POLLIN)) {
            job->err = EIO;
            job->syscall = "poll";
            return;
        }
        if (receive_answer(job)) return;
    }
    job->err = ETIMEDOUT;
    job->syscall = "poll";
    job->code = CODE_TIMEOUT;
}

static void execute(napi_env env, void *data)
{
    (void)env;
    job_t *job = data;
    switch (job->op) {
    case OP_OPEN: do_open(job); break;
    case OP_CLOSE: do_close(job); break;
    case OP_REQUEST: do_request(job); break;
    }
}

/* ---- main-thread side ---- */

static void set_prop(napi_env env, napi_value obj, const char *name, napi_value value)
{
    NAPI_CHECK(env, napi_set_named_property(env, obj, name, value));
}

static napi_value make_uint(napi_env env, uint32_t v)
{
    napi_value out;
    NAPI_CHECK(env, napi_create_uint32(env, v, &out));
    return out;
}

static napi_value make_str(napi_env env, const char *s)
{
    napi_value out;
    NAPI_CHECK(env, napi_create_string_utf8(env, s, NAPI_AUTO_LENGTH, &out));
    return out;
}

static napi_value make_error(napi_env env, const job_t *job)
{
    char msg[PATH_MAX + 160];
    if (job->code == NULL || strcmp(job->code, CODE_NOT_CHR) != 0) {
        if (job->op == OP_OPEN)
            snprintf(msg, sizeof(msg), "%s '%s': %s", job->syscall, job->path, strerror(job->err));
        else if (job->code != NULL)
            snprintf(msg, sizeof(msg), "no response within %d ms", job->timeout_ms);
        else
            snprintf(msg, sizeof(msg), "%s: %s", job->syscall, strerror(job->err));
    } else {
        snprintf(msg, sizeof(msg), "'%s' is not a character device (it is a %s)", job->path, file_type(job->mode));
    }
    napi_value err;
    NAPI_CHECK(env, napi_create_error(env, job->code ? make_str(env, job->code) : NULL, make_str(env, msg), &err));
    set_prop(env, err, "errno", make_uint(env, (uint32_t)job->err));
    set_prop(env, err, "syscall", make_str(env, job->syscall));
    if (job->op == OP_OPEN) set_prop(env, err, "path", make_str(env, job->path));
    return err;
}

static napi_value make_result(napi_env env, job_t *job)
{
    napi_value out;
    switch (job->op) {
    case OP_OPEN:
        NAPI_CHECK(env, napi_create_int32(env, job->result_fd, &out));
        return out;
    case OP_CLOSE:
        NAPI_CHECK(env, napi_get_undefined(env, &out));
        return out;
    case OP_REQUEST:
        break;
    }
    NAPI_CHECK(env, napi_create_object(env, &out));
    napi_value msgid, data, truncated;
    NAPI_CHECK(env, napi_create_int64(env, job->rsp_msgid, &msgid));
    NAPI_CHECK(env, napi_create_buffer_copy(env, job->rsp_len, job->rsp_data, NULL, &data));
    NAPI_CHECK(env, napi_get_boolean(env, job->truncated != 0, &truncated));
    set_prop(env, out, "msgid", msgid);
    set_prop(env, out, "netfn", make_uint(env, job->rsp_netfn));
    set_prop(env, out, "cmd", make_uint(env, job->rsp_cmd));
    set_prop(env, out, "data", data);
    set_prop(env, out, "truncated", truncated);
    set_prop(env, out, "dropped", make_uint(env, job->dropped));
    return out;
}

static void complete(napi_env env, napi_status status, void *data)
{
    job_t *job = data;
    if (status != napi_ok) {
        job->err = ECANCELED;
        job->syscall = "uv_queue_work";
        job->code = NULL;
    }
    if (job->err != 0)
        NAPI_CHECK(env, napi_reject_deferred(env, job->deferred, make_error(env, job)));
    else
        NAPI_CHECK(env, napi_resolve_deferred(env, job->deferred, make_result(env, job)));
    NAPI_CHECK(env, napi_delete_async_work(env, job->work));
    job_free(job);
}

static void on_closed(uv_handle_t *handle)
{
    device_t *dev = handle->data;
    if (--dev->open_handles == 0) free(dev);
}

/* Ends the waiting request, then settles its Promise inside a callback scope,
 * so that its continuations (often the next request) run now, as after any
 * libuv callback. The device is free for the next request before they run. */
static void settle(device_t *dev)
{
    napi_env env = dev->env;
    job_t *job = dev->job;
    dev->job = NULL;
    uv_timer_stop(&dev->timer);
    job->dropped += dev->dropped;
    dev->dropped = 0;

    napi_handle_scope handles;
    napi_callback_scope scope;
    napi_value resource;
    NAPI_CHECK(env, napi_open_handle_scope(env, &handles));
    NAPI_CHECK(env, napi_get_reference_value(env, dev->resource, &resource));
    NAPI_CHECK(env, napi_open_callback_scope(env, resource, dev->async_ctx, &scope));
    if (job->err != 0)
        NAPI_CHECK(env, napi_reject_deferred(env, job->deferred, make_error(env, job)));
    else
        NAPI_CHECK(env, napi_resolve_deferred(env, job->deferred, make_result(env, job)));
    /* Wiped: the answer may echo request bytes. */
    job_free(job);
    NAPI_CHECK(env, napi_close_callback_scope(env, scope));
    NAPI_CHECK(env, napi_close_handle_scope(env, handles));
}

static device_t *find_device(int fd)
{
    for (device_t *d = devices; d != NULL; d = d->next)
        if (d->fd == fd) return d;
    return NULL;
}

/* The fd's device, made at its first request; NULL with job->err set if the
 * event loop cannot watch it. */
static device_t *device_for(napi_env env, job_t *job)
{
    device_t *dev = find_device(job->fd);
    if (dev != NULL) return dev;
    dev = calloc(1, sizeof(*dev));
    if (dev == NULL) napi_fatal_error("ipmi_kcs", NAPI_AUTO_LENGTH, "out of memory", NAPI_AUTO_LENGTH);
    uv_loop_t *loop;
    NAPI_CHECK(env, napi_get_uv_event_loop(env, &loop));
    int rc = uv_poll_init(loop, &dev->poll, job->fd);
    if (rc < 0) {
        free(dev);
        job->err = -rc;
        job->syscall = "uv_poll_init";
        return NULL;
    }
    uv_timer_init(loop, &dev->timer);
    dev->fd = job->fd;
    dev->env = env;
    dev->poll.data = dev;
    dev->timer.data = dev;
    dev->open_handles = 2;
    napi_value resource, name;
    NAPI_CHECK(env, napi_create_object(env, &resource));
    NAPI_CHECK(env, napi_create_reference(env, resource, 1, &dev->resource));
    NAPI_CHECK(env, napi_create_string_utf8(env, "ipmi_kcs.request", NAPI_AUTO_LENGTH, &name));
    NAPI_CHECK(env, napi_async_init(env, resource, name, &dev->async_ctx));
    uv_unref((uv_handle_t *)&dev->poll);
    dev->next = devices;
    devices = dev;
    return dev;
}

/* Stops watching `fd` before it is closed: a request still waiting is refused. */
static void device_close(napi_env env, int fd)
{
    device_t *dev = find_device(fd);
    if (dev == NULL) return;
    for (device_t **pp = &devices; *pp != NULL; pp = &(*pp)->next) {
        if (*pp == dev) {
            *pp = dev->next;
            break;
        }
    }
    if (dev->job != NULL) {
        job_t *job = dev->job;
        dev->job = NULL;
        job->err = ECANCELED;
        job->syscall = "close";
        NAPI_CHECK(env, napi_reject_deferred(env, job->deferred, make_error(env, job)));
        job_free(job);
    }
    /* uv_poll_stop takes the fd out of epoll now, before the worker closes it. */
    uv_poll_stop(&dev->poll);
    uv_timer_stop(&dev->timer);
    NAPI_CHECK(env, napi_async_destroy(env, dev->async_ctx));
    NAPI_CHECK(env, napi_delete_reference(env, dev->resource));
    uv_close((uv_handle_t *)&dev->poll, on_closed);
    uv_close((uv_handle_t *)&dev->timer, on_closed);
}

/* Sends on the fd's device and returns the request's Promise. */
static napi_value start_request(napi_env env, job_t *job)
{
    device_t *existing = find_device(job->fd);
    if (existing != NULL && existing->job != NULL)
        return start(env, job, "request: this fd already has a request waiting (one in flight per device)");

    /* The watcher first: a message must not be sent that nobody would read. */
    device_t *dev = device_for(env, job);
    if (dev == NULL) {
        job->err = 0;
        job->syscall = NULL;
        return start(env, job, NULL);
    }
    napi_value promise;
    NAPI_CHECK(env, napi_create_promise(env, &job->deferred, &promise));
    if (!dev->watching) {
        int rc = uv_poll_start(&dev->poll, UV_READABLE, on_readable);
        if (rc < 0) {
            job->err = -rc;
            job->syscall = "uv_poll_start";
            dev = NULL;
        } else {
            dev->watching = 1;
        }
    }
    if (dev == NULL || send_request(job) < 0) {
        NAPI_CHECK(env, napi_reject_deferred(env, job->deferred, make_error(env, job)));
        job_free(job);
        return promise;
    }
    dev->job = job;
    uv_timer_start(&dev->timer, on_timeout, (uint64_t)job->timeout_ms, 0);
    return promise;
}

/* Starts `job` on the worker pool and returns its Promise, or rejects at once
 * with `arg_error` (a bad argument is a programming error in the caller). */
static napi_value start(napi_env env, job_t *job, const char *arg_error)
{
    napi_value promise, name;
    NAPI_CHECK(env, napi_create_promise(env, &job->deferred, &promise));
    if (arg_error != NULL) {
        napi_value err, code;
        code = make_str(env, "ERR_INVALID_ARG_VALUE");
        NAPI_CHECK(env, napi_create_type_error(env, code, make_str(env, arg_error), &err));
        NAPI_CHECK(env, napi_reject_deferred(env, job->deferred, err));
        job_free(job);
        return promise;
    }
    NAPI_CHECK(env, napi_create_string_utf8(env, "ipmi_kcs", NAPI_AUTO_LENGTH, &name));
    NAPI_CHECK(env, napi_create_async_work(env, NULL, name, execute, complete, job, &job->work));
    NAPI_CHECK(env, napi_queue_async_work(env, job->work));
    return promise;
}

static job_t *job_new(napi_env env, op_kind op)
{
    job_t *job = calloc(1, sizeof(*job));
    if (job == NULL) napi_fatal_error("ipmi_kcs", NAPI_AUTO_LENGTH, "out of memory", NAPI_AUTO_LENGTH);
    (void)env;
    job->op = op;
    job->fd = -1;
    job->result_fd = -1;
    return job;
}

static int get_int(napi_env env, napi_value v, int64_t min, int64_t max, int64_t *out)
{
    napi_valuetype t;
    double d;
    if (napi_typeof(env, v, &t) != napi_ok || t != napi_number) return 0;
    if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
    if (d != d || d < (double)min || d > (double)max || d != (double)(int64_t)d) return 0;
    *out = (int64_t)d;
    return 1;
}

/* open(path: string) -> Promise<number> */
static napi_value js_open(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    job_t *job = job_new(env, OP_OPEN);
    napi_valuetype t = napi_undefined;
    size_t len = 0;
    if (argc < 1 || napi_typeof(env, argv[0], &t) != napi_ok || t != napi_string)
        return start(env, job, "open(path): path must be a string");
    NAPI_CHECK(env, napi_get_value_string_utf8(env, argv[0], NULL, 0, &len));
    if (len == 0 || len >= PATH_MAX) return start(env, job, "open(path): path must be 1..PATH_MAX-1 bytes");
    job->path = malloc(len + 1);
    if (job->path == NULL) napi_fatal_error("ipmi_kcs", NAPI_AUTO_LENGTH, "out of memory", NAPI_AUTO_LENGTH);
    NAPI_CHECK(env, napi_get_value_string_utf8(env, argv[0], job->path, len + 1, &len));
    if (strlen(job->path) != len) return start(env, job, "open(path): path must not contain NUL");
    return start(env, job, NULL);
}

/* close(fd: number) -> Promise<void> */
static napi_value js_close(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    int64_t fd;
    NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    job_t *job = job_new(env, OP_CLOSE);
    if (argc < 1 || !get_int(env, argv[0], 0, INT_MAX, &fd)) return start(env, job, "close(fd): fd must be an integer >= 0");
    job->fd = (int)fd;
    device_close(env, job->fd);
    return start(env, job, NULL);
}

/* request(fd, msgid, netfn, lun, cmd, data: Uint8Array, timeoutMs)
 *   -> Promise<{msgid, netfn, cmd, data: Buffer (completion code first), truncated, dropped}> */
static napi_value js_request(napi_env env, napi_callback_info info)
{
    size_t argc = 7;
    napi_value argv[7];
    int64_t fd, msgid, netfn, lun, cmd, timeout;
    NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    job_t *job = job_new(env, OP_REQUEST);
    if (argc < 7) return start(env, job, "request: expected (fd, msgid, netfn, lun, cmd, data, timeoutMs)");
    if (!get_int(env, argv[0], 0, INT_MAX, &fd)) return start(env, job, "request: fd must be an integer >= 0");
    /* 31 bits: `long` is 32-bit on 32-bit targets. */
    if (!get_int(env, argv[1], 0, INT32_MAX, &msgid)) return start(env, job, "request: msgid must be an integer 0..2^31-1");
    /* §5.1: 6-bit netFn, 2-bit LUN; the kernel rejects odd (response) netFns itself. */
    if (!get_int(env, argv[2], 0, 0x3f, &netfn)) return start(env, job, "request: netfn must be an integer 0..0x3f");
    if (!get_int(env, argv[3], 0, 3, &lun)) return start(env, job, "request: lun must be an integer 0..3");
    if (!get_int(env, argv[4], 0, 0xff, &cmd)) return start(env, job, "request: cmd must be an integer 0..0xff");
    if (!get_int(env, argv[6], 0, INT_MAX, &timeout)) return start(env, job, "request: timeoutMs must be an integer >= 0");

    bool is_typed = false;
    NAPI_CHECK(env, napi_is_typedarray(env, argv[5], &is_typed));
    if (!is_typed) return start(env, job, "request: data must be a Uint8Array");
    napi_typedarray_type type;
    size_t length;
    void *bytes;
    NAPI_CHECK(env, napi_get_typedarray_info(env, argv[5], &type, &length, &bytes, NULL, NULL));
    if (type != napi_uint8_array) return start(env, job, "request: data must be a Uint8Array");
    if (length > IPMI_MAX_MSG_LENGTH) return start(env, job, "request: data is longer than IPMI_MAX_MSG_LENGTH");

    job->fd = (int)fd;
    job->msgid = (long)msgid;
    job->netfn = (unsigned char)netfn;
    job->lun = (unsigned char)lun;
    job->cmd = (unsigned char)cmd;
    job->timeout_ms = (int)timeout;
    job->req_len = (unsigned short)length;
    /* Copied now: the caller may reuse or wipe its buffer as soon as we return. */
    if (length > 0) memcpy(job->req_data, bytes, length);
    return start_request(env, job);
}

/* setDumpable(dumpable: boolean) -> number: prctl(PR_SET_DUMPABLE), then
 * PR_GET_DUMPABLE's answer (0 or 1). Not an IPMI call: the agent's one other
 * syscall, so that a crash of a process that held BMC passwords and the agent
 * token writes no core file and the process cannot be ptrace-attached by
 * other users. Synchronous: it cannot block. Throws with the errno on failure. */
static napi_value js_set_dumpable(napi_env env, napi_callback_info info)
{
    size_t argc = 1;
    napi_value argv[1];
    bool flag = false;
    NAPI_CHECK(env, napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
    if (argc < 1 || napi_get_value_bool(env, argv[0], &flag) != napi_ok) {
        napi_throw_type_error(env, NULL, "setDumpable(dumpable): dumpable must be a boolean");
        return NULL;
    }
    if (prctl(PR_SET_DUMPABLE, flag ? 1UL : 0UL, 0UL, 0UL, 0UL) != 0) {
        char msg[96];
        snprintf(msg, sizeof msg, "prctl(PR_SET_DUMPABLE) failed: errno %d", errno);
        napi_throw_error(env, NULL, msg);
        return NULL;
    }
    int now = prctl(PR_GET_DUMPABLE, 0UL, 0UL, 0UL, 0UL);
    return make_uint(env, now < 0 ? 0u : (uint32_t)now);
}

static napi_value init(napi_env env, napi_value exports)
{
    napi_property_descriptor props[] = {
        { "open", NULL, js_open, NULL, NULL, NULL, napi_enumerable, NULL },
        { "close", NULL, js_close, NULL, NULL, NULL, napi_enumerable, NULL },
        { "request", NULL, js_request, NULL, NULL, NULL, napi_enumerable, NULL },
        { "setDumpable", NULL, js_set_dumpable, NULL, NULL, NULL, napi_enumerable, NULL },
        { "abi", NULL, NULL, NULL, NULL, make_uint(env, ADDON_ABI), napi_enumerable, NULL },
        { "maxMessageLength", NULL, NULL, NULL, NULL, make_uint(env, IPMI_MAX_MSG_LENGTH), napi_enumerable, NULL },
    };
    NAPI_CHECK(env, napi_define_properties(env, exports, sizeof(props) / sizeof(props[0]), props));
    return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
