#ifndef MINGUS_CRABBITMQ_SHIM_H
#define MINGUS_CRABBITMQ_SHIM_H

#include <amqp.h>
#include <amqp_framing.h>
#include <amqp_ssl_socket.h>
#include <amqp_tcp_socket.h>
#include <string.h>
#include <sys/prctl.h>

/* Names the calling thread for `top -H`, `perf` and debuggers (at most 15 bytes are kept);
   prctl is variadic, which Swift cannot call. */
static inline void mingus_amqp_name_thread(const char *name) { prctl(PR_SET_NAME, name, 0, 0, 0); }

/* amqp_login is variadic, which Swift cannot call: PLAIN login with a fixed argument list. */
static inline amqp_rpc_reply_t mingus_amqp_login_plain(amqp_connection_state_t state,
                                                       const char *vhost, int channel_max,
                                                       int frame_max, int heartbeat,
                                                       const char *user, const char *password,
                                                       const char *connection_name) {
  amqp_table_entry_t entries[1];
  entries[0].key = amqp_cstring_bytes("connection_name");
  entries[0].value.kind = AMQP_FIELD_KIND_UTF8;
  entries[0].value.value.bytes = amqp_cstring_bytes(connection_name);
  amqp_table_t properties;
  properties.num_entries = 1;
  properties.entries = entries;
  return amqp_login_with_properties(state, vhost, channel_max, frame_max, heartbeat,
                                    &properties, AMQP_SASL_METHOD_PLAIN, user, password);
}

/* Table entries: field values are a tagged union, clearer to build here than from Swift. */
static inline amqp_table_entry_t mingus_amqp_entry_utf8(amqp_bytes_t key, amqp_bytes_t value) {
  amqp_table_entry_t e;
  memset(&e, 0, sizeof e);
  e.key = key;
  e.value.kind = AMQP_FIELD_KIND_UTF8;
  e.value.value.bytes = value;
  return e;
}

static inline amqp_table_entry_t mingus_amqp_entry_i64(amqp_bytes_t key, int64_t value) {
  amqp_table_entry_t e;
  memset(&e, 0, sizeof e);
  e.key = key;
  e.value.kind = AMQP_FIELD_KIND_I64;
  e.value.value.i64 = value;
  return e;
}

static inline amqp_table_entry_t mingus_amqp_entry_bool(amqp_bytes_t key, int value) {
  amqp_table_entry_t e;
  memset(&e, 0, sizeof e);
  e.key = key;
  e.value.kind = AMQP_FIELD_KIND_BOOLEAN;
  e.value.value.boolean = value ? 1 : 0;
  return e;
}

/* Reading a field value: the kind, then the member that kind selects. */
static inline uint8_t mingus_amqp_field_kind(const amqp_field_value_t *v) { return v->kind; }

static inline int64_t mingus_amqp_field_integer(const amqp_field_value_t *v) {
  switch (v->kind) {
    case AMQP_FIELD_KIND_I8: return v->value.i8;
    case AMQP_FIELD_KIND_U8: return v->value.u8;
    case AMQP_FIELD_KIND_I16: return v->value.i16;
    case AMQP_FIELD_KIND_U16: return v->value.u16;
    case AMQP_FIELD_KIND_I32: return v->value.i32;
    case AMQP_FIELD_KIND_U32: return v->value.u32;
    case AMQP_FIELD_KIND_I64: return v->value.i64;
    case AMQP_FIELD_KIND_U64: return (int64_t)v->value.u64;
    case AMQP_FIELD_KIND_TIMESTAMP: return (int64_t)v->value.u64;
    case AMQP_FIELD_KIND_BOOLEAN: return v->value.boolean;
    default: return 0;
  }
}

static inline int mingus_amqp_field_is_integer(const amqp_field_value_t *v) {
  switch (v->kind) {
    case AMQP_FIELD_KIND_I8: case AMQP_FIELD_KIND_U8: case AMQP_FIELD_KIND_I16:
    case AMQP_FIELD_KIND_U16: case AMQP_FIELD_KIND_I32: case AMQP_FIELD_KIND_U32:
    case AMQP_FIELD_KIND_I64: case AMQP_FIELD_KIND_U64: case AMQP_FIELD_KIND_TIMESTAMP:
      return 1;
    default: return 0;
  }
}

static inline int mingus_amqp_field_is_bytes(const amqp_field_value_t *v) {
  return v->kind == AMQP_FIELD_KIND_UTF8 || v->kind == AMQP_FIELD_KIND_BYTES;
}

static inline amqp_bytes_t mingus_amqp_field_bytes(const amqp_field_value_t *v) {
  return v->value.bytes;
}

static inline int mingus_amqp_field_is_table(const amqp_field_value_t *v) {
  return v->kind == AMQP_FIELD_KIND_TABLE;
}

static inline amqp_table_t mingus_amqp_field_table(const amqp_field_value_t *v) {
  return v->value.table;
}

static inline int mingus_amqp_field_is_array(const amqp_field_value_t *v) {
  return v->kind == AMQP_FIELD_KIND_ARRAY;
}

static inline amqp_array_t mingus_amqp_field_array(const amqp_field_value_t *v) {
  return v->value.array;
}

/* Method numbers are cast macros, which Swift does not import: the same values as constants. */
static const amqp_method_number_t MINGUS_BASIC_DELIVER = AMQP_BASIC_DELIVER_METHOD;
static const amqp_method_number_t MINGUS_BASIC_ACK = AMQP_BASIC_ACK_METHOD;
static const amqp_method_number_t MINGUS_BASIC_NACK = AMQP_BASIC_NACK_METHOD;
static const amqp_method_number_t MINGUS_BASIC_RETURN = AMQP_BASIC_RETURN_METHOD;
static const amqp_method_number_t MINGUS_BASIC_CANCEL = AMQP_BASIC_CANCEL_METHOD;
static const amqp_method_number_t MINGUS_BASIC_CANCEL_OK = AMQP_BASIC_CANCEL_OK_METHOD;
static const amqp_method_number_t MINGUS_BASIC_GET_OK = AMQP_BASIC_GET_OK_METHOD;
static const amqp_method_number_t MINGUS_BASIC_GET_EMPTY = AMQP_BASIC_GET_EMPTY_METHOD;
static const amqp_method_number_t MINGUS_CHANNEL_CLOSE = AMQP_CHANNEL_CLOSE_METHOD;
static const amqp_method_number_t MINGUS_CHANNEL_CLOSE_OK = AMQP_CHANNEL_CLOSE_OK_METHOD;
static const amqp_method_number_t MINGUS_CHANNEL_FLOW = AMQP_CHANNEL_FLOW_METHOD;
static const amqp_method_number_t MINGUS_CONNECTION_CLOSE = AMQP_CONNECTION_CLOSE_METHOD;
static const amqp_method_number_t MINGUS_CONNECTION_CLOSE_OK = AMQP_CONNECTION_CLOSE_OK_METHOD;
static const amqp_method_number_t MINGUS_CONNECTION_BLOCKED = AMQP_CONNECTION_BLOCKED_METHOD;
static const amqp_method_number_t MINGUS_CONNECTION_UNBLOCKED = AMQP_CONNECTION_UNBLOCKED_METHOD;

#endif
