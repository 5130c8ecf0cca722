/*
 * trellis proxy-native: the two things the proxy needs that Node does not offer.
 *
 * originalDestination(fd, ipv4, out) reads the destination a connection had before a nat
 * REDIRECT rule sent it to the proxy: getsockopt(SOL_IP, SO_ORIGINAL_DST) when `ipv4` (IPv4
 * sockets, and IPv4 peers on a dual-stack socket), getsockopt(SOL_IPV6, IP6T_SO_ORIGINAL_DST)
 * otherwise. It writes the address's bytes into `out` (4 or 16 bytes) and returns the port, or
 * returns -errno when the kernel has no answer (ENOENT: not redirected, conntrack does not know
 * it). The caller formats the address: no object or string is made here, which is most of what
 * a Node-API call costs.
 *
 * releaseFreeMemory() gives the pages the C allocator holds free back to the kernel: glibc's
 * malloc_trim(0), which returns the top of the heap and every whole free page inside it
 * (MADV_DONTNEED); glibc itself only ever returns the top. True when something was returned;
 * always false with another C library. proxy/memory-release.ts decides when.
 *
 * Node-API only (ABI-stable: one build runs on every Node release with Node-API 8, so on 20
 * and 24). No state.
 */
#define NAPI_VERSION 8
#include <node_api.h>

#include <errno.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif
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

static napi_value original_destination(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  int32_t fd = -1;
  bool ipv4 = true;
  void *out = NULL;
  size_t out_len = 0;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 ||
      napi_get_value_int32(env, argv[0], &fd) != napi_ok || fd < 0 ||
      napi_get_value_bool(env, argv[1], &ipv4) != napi_ok ||
      napi_get_buffer_info(env, argv[2], &out, &out_len) != napi_ok || out_len < 16) {
    napi_throw_type_error(env, NULL, "originalDestination(fd, ipv4, out): a descriptor, a boolean, a 16-byte Buffer");
    return NULL;
  }
  if (ipv4) {
    struct sockaddr_in dst;
    socklen_t len = sizeof(dst);
    memset(&dst, 0, sizeof(dst));
    if (getsockopt(fd, SOL_IP, TRELLIS_SO_ORIGINAL_DST, &dst, &len) != 0) return number(env, -errno);
    memcpy(out, &dst.sin_addr, 4);
    return number(env, ntohs(dst.sin_port));
  }
  struct sockaddr_in6 dst6;
  socklen_t len6 = sizeof(dst6);
  memset(&dst6, 0, sizeof(dst6));
  if (getsockopt(fd, SOL_IPV6, TRELLIS_IP6T_SO_ORIGINAL_DST, &dst6, &len6) != 0) return number(env, -errno);
  memcpy(out, &dst6.sin6_addr, 16);
  return number(env, ntohs(dst6.sin6_port));
}

static napi_value release_free_memory(napi_env env, napi_callback_info info) {
  (void)info;
  bool released = false;
#ifdef __GLIBC__
  released = malloc_trim(0) == 1;
#endif
  napi_value v;
  napi_get_boolean(env, released, &v);
  return v;
}

NAPI_MODULE_INIT(/* napi_env env, napi_value exports */) {
  napi_value fn;
  napi_create_function(env, "originalDestination", NAPI_AUTO_LENGTH, original_destination, NULL, &fn);
  napi_set_named_property(env, exports, "originalDestination", fn);
  napi_create_function(env, "releaseFreeMemory", NAPI_AUTO_LENGTH, release_free_memory, NULL, &fn);
  napi_set_named_property(env, exports, "releaseFreeMemory", fn);
  return exports;
}
