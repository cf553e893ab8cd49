/* Pieces shared by server and client: status codes, protobuf <-> byte
 * buffer, PEM files, channel arguments, deadlines. */
#include <errno.h>
#include <grpc/byte_buffer_reader.h>
#include <grpc/slice.h>
#include <grpc/support/time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hodei/util.h"
#include "rpc_int.h"

static const char *const grpc_code_names[] = {
    "OK",
    "CANCELLED",
    "UNKNOWN",
    "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED",
    "NOT_FOUND",
    "ALREADY_EXISTS",
    "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED",
    "FAILED_PRECONDITION",
    "ABORTED",
    "OUT_OF_RANGE",
    "UNIMPLEMENTED",
    "INTERNAL",
    "UNAVAILABLE",
    "DATA_LOSS",
    "UNAUTHENTICATED",
};

const char *hodei_grpc_code_str(hodei_grpc_code code)
{
    size_t n = sizeof grpc_code_names / sizeof grpc_code_names[0];
    if ((unsigned)code >= n)
        return "UNKNOWN";
    return grpc_code_names[code];
}

hodei_grpc_code hodei_rpc_code_from_status(hodei_status st)
{
    switch (st) {
    case HODEI_OK:
        return HODEI_GRPC_OK;
    case HODEI_ERR_INVALID:
        return HODEI_GRPC_INVALID_ARGUMENT;
    case HODEI_ERR_NOT_FOUND:
        return HODEI_GRPC_NOT_FOUND;
    case HODEI_ERR_EXISTS:
        return HODEI_GRPC_ALREADY_EXISTS;
    case HODEI_ERR_PRECONDITION:
        return HODEI_GRPC_FAILED_PRECONDITION;
    case HODEI_ERR_UNAVAILABLE:
        return HODEI_GRPC_UNAVAILABLE;
    case HODEI_ERR_TIMEOUT:
        return HODEI_GRPC_DEADLINE_EXCEEDED;
    case HODEI_ERR_UNAUTHENTICATED:
        return HODEI_GRPC_UNAUTHENTICATED;
    case HODEI_ERR_PERMISSION:
        return HODEI_GRPC_PERMISSION_DENIED;
    case HODEI_ERR_LIMIT:
        return HODEI_GRPC_RESOURCE_EXHAUSTED;
    case HODEI_ERR_CANCELLED:
        return HODEI_GRPC_CANCELLED;
    case HODEI_ERR_CONFLICT:
        return HODEI_GRPC_ABORTED; /* gRPC's "retry the whole sequence" */
    default:
        return HODEI_GRPC_INTERNAL;
    }
}

void hodei_rpc_global_init(void)
{
    grpc_init();
}

void hodei_rpc_global_shutdown(void)
{
    grpc_shutdown_blocking();
}

/* Serializes msg straight into one gRPC slice: the only copy on the way out. */
grpc_byte_buffer *rpc_msg_pack(const ProtobufCMessage *msg)
{
    size_t len = protobuf_c_message_get_packed_size(msg);
    if (len > HODEI_RPC_MESSAGE_MAX)
        return NULL;
    grpc_slice slice = grpc_slice_malloc(len);
    protobuf_c_message_pack(msg, GRPC_SLICE_START_PTR(slice));
    grpc_byte_buffer *bb = grpc_raw_byte_buffer_create(&slice, 1);
    grpc_slice_unref(slice);
    return bb;
}

/* Unpacks without a copy when the buffer is one uncompressed slice. */
ProtobufCMessage *rpc_msg_unpack(const ProtobufCMessageDescriptor *desc, grpc_byte_buffer *bb)
{
    if (bb->type == GRPC_BB_RAW && bb->data.raw.compression == GRPC_COMPRESS_NONE &&
        bb->data.raw.slice_buffer.count == 1) {
        grpc_slice s = bb->data.raw.slice_buffer.slices[0];
        return protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(s), GRPC_SLICE_START_PTR(s));
    }
    grpc_byte_buffer_reader reader;
    if (!grpc_byte_buffer_reader_init(&reader, bb))
        return NULL;
    grpc_slice all = grpc_byte_buffer_reader_readall(&reader);
    ProtobufCMessage *msg =
        protobuf_c_message_unpack(desc, NULL, GRPC_SLICE_LENGTH(all), GRPC_SLICE_START_PTR(all));
    grpc_slice_unref(all);
    grpc_byte_buffer_reader_destroy(&reader);
    return msg;
}

/* Reads a whole PEM file (at most RPC_PEM_FILE_MAX) into a NUL-terminated heap string. */
hodei_status rpc_file_read(const char *path, char **out, hodei_err *err)
{
    hodei_status st = HODEI_ERR_IO;
    char *buf = NULL;
    FILE *f = fopen(path, "rb");
    if (!f)
        return hodei_err_set(err, HODEI_ERR_IO, "open %s: %s", path, strerror(errno));
    buf = malloc(RPC_PEM_FILE_MAX + 1);
    if (!buf) {
        st = hodei_err_set(err, HODEI_ERR_NOMEM, "read %s: out of memory", path);
        goto out_close;
    }
    size_t n = fread(buf, 1, RPC_PEM_FILE_MAX + 1, f);
    if (ferror(f) || n == 0 || n > RPC_PEM_FILE_MAX) {
        st = hodei_err_set(err, HODEI_ERR_INVALID, "read %s: empty, unreadable or over %d bytes",
                           path, RPC_PEM_FILE_MAX);
        goto out_free;
    }
    buf[n] = '\0';
    *out = buf;
    buf = NULL;
    st = HODEI_OK;
out_free:
    free(buf);
out_close:
    fclose(f);
    return st;
}

void rpc_channel_args_init(grpc_channel_args *args, grpc_arg arg_storage[RPC_ARGS_MAX], bool server)
{
    memset(arg_storage, 0, RPC_ARGS_MAX * sizeof arg_storage[0]);
    arg_storage[0].type = GRPC_ARG_INTEGER;
    arg_storage[0].key = (char *)GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH;
    arg_storage[0].value.integer = HODEI_RPC_MESSAGE_MAX;
    arg_storage[1].type = GRPC_ARG_INTEGER;
    arg_storage[1].key = (char *)GRPC_ARG_MAX_SEND_MESSAGE_LENGTH;
    arg_storage[1].value.integer = HODEI_RPC_MESSAGE_MAX;
    /* A second server on a port in use is an error, not a silent split. */
    arg_storage[2].type = GRPC_ARG_INTEGER;
    arg_storage[2].key = (char *)GRPC_ARG_ALLOW_REUSEPORT;
    arg_storage[2].value.integer = 0;
    args->num_args = server ? 3 : 2;
    args->args = arg_storage;
}

gpr_timespec rpc_deadline_from_ms(int64_t timeout_ms)
{
    if (timeout_ms < 0)
        return gpr_inf_future(GPR_CLOCK_MONOTONIC);
    return gpr_time_add(gpr_now(GPR_CLOCK_MONOTONIC),
                        gpr_time_from_millis(timeout_ms, GPR_TIMESPAN));
}

void rpc_result_set(hodei_rpc_result *res, grpc_status_code code, grpc_slice details)
{
    if (!res)
        return;
    res->code = (hodei_grpc_code)code;
    size_t n = GRPC_SLICE_LENGTH(details);
    if (n >= sizeof res->message)
        n = sizeof res->message - 1;
    memcpy(res->message, GRPC_SLICE_START_PTR(details), n);
    res->message[n] = '\0';
}
