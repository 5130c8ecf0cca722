/*
 * trellis original-dst: the one system call the proxy needs that Node does not offer.
 *
 * originalDestination(fd) reads the destination a connection had before a nat REDIRECT rule
 * sent it to the proxy: getsockopt(SOL_IP, SO_ORIGINAL_DST) for IPv4 sockets and for IPv4
 * peers on a dual-stack (IPv6) socket, getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST) for IPv6.
 * It returns { address, port } or, when the kernel has no answer, the errno as a number
 * (ENOENT: the connection was not redirected and conntrack does not know it).
 *
 * Node-API only (ABI-stable: one build runs on every Node release with Node-API 8, so on 20
 * and 24). No allocation beyond the answer, no state, no other entry point.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <string.h>
#include <sys/socket.h>

/* linux/netfilter_ipv4.h and linux/netfilter_ipv6/ip6_tables.h; both are 80. */
#define TRELLIS_SO_ORIGINAL_DST 80
#define TRELLIS_IP6T_SO_ORIGINAL_DST 80

static napi_value number(napi_env env, int n) {
  napi_value v;
  napi_create_int32(env, n, &v);
  return v;
}

static napi_value answer(napi_env env, const char *address, int port) {
  napi_value out, a, p;
  napi_create_object(env, &out);
  napi_create_string_latin1(env, address, NAPI_AUTO_LENGTH, &a);
  napi_create_int32(env, port, &p);
  napi_set_named_property(env, out, "address", a);
  napi_set_named_property(env, out, "port", p);
  return out;
}

static napi_value original_destination(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  int32_t fd = -1;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0) {
    napi_throw_type_error(env, NULL, "originalDestination(fd): fd must be a non-negative integer");
    return NULL;
  }
  struct sockaddr_in6 local;
  socklen_t len = sizeof(local);
  if (getsockname(fd, (struct sockaddr *)&local, &len) != 0) return number(env, errno);
  char text[INET6_ADDRSTRLEN];
  int v4 = local.sin6_family == AF_INET ||
           (local.sin6_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&local.sin6_addr));
  if (v4) {
    struct sockaddr_in dst;
    socklen_t dlen = sizeof(dst);
    memset(&dst, 0, sizeof(dst));
    if (getsockopt(fd, SOL_IP, TRELLIS_SO_ORIGINAL_DST, &dst, &dlen) != 0) return number(env, errno);
    if (inet_ntop(AF_INET, &dst.sin_addr, text, sizeof(text)) == NULL) return number(env, errno);
    return answer(env, text, ntohs(dst.sin_port));
  }
  if (local.sin6_family != AF_INET6) return number(env, EAFNOSUPPORT);
  struct sockaddr_in6 dst6;
  socklen_t dlen6 = sizeof(dst6);
  memset(&dst6, 0, sizeof(dst6));
  if (getsockopt(fd, SOL_IPV6, TRELLIS_IP6T_SO_ORIGINAL_DST, &dst6, &dlen6) != 0) return number(env, errno);
  if (inet_ntop(AF_INET6, &dst6.sin6_addr, text, sizeof(text)) == NULL) return number(env, errno);
  return answer(env, text, ntohs(dst6.sin6_port));
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "originalDestination", NAPI_AUTO_LENGTH, original_destination, NULL, &fn);
  napi_set_named_property(env, exports, "originalDestination", fn);
  return exports;
}
