// The entrypoint of the trellis-init image: the one file in any Trellis image that carries file
// capabilities (cap_net_admin,cap_net_raw, permitted only). It raises NET_ADMIN and NET_RAW into
// the inheritable and ambient sets, so that Node and the iptables Node runs hold them although
// trellis-init runs as a non-root user, then runs `/usr/bin/node /app/trellis-init.mjs <args>`.
//
// This works under no_new_privs (allowPrivilegeEscalation: false) because the container's own
// permitted set already holds both capabilities (securityContext.capabilities.add): the file
// capability grants nothing the container was not given. When the container was not given them
// it says so, naming the cause, on stderr and in the termination log that `kubectl describe pod`
// shows, and exits 1. No libraries beyond libc; built by hack/image-rootfs.ts.
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

static const char NODE[] = "/usr/bin/node";
static const char PROGRAM[] = "/app/trellis-init.mjs";

static void fail(const char *message) {
  dprintf(2, "trellis-init: %s\n", message);
  int fd = open("/dev/termination-log", O_WRONLY | O_TRUNC | O_CLOEXEC);
  if (fd >= 0) {
    dprintf(fd, "trellis-init: %s\n", message);
    close(fd);
  }
  _exit(1);
}

static int bounded(int cap) { return prctl(PR_CAPBSET_READ, cap, 0, 0, 0) == 1; }

int main(int argc, char **argv) {
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[_LINUX_CAPABILITY_U32S_3];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capget, &header, data) != 0) fail("cannot read its capabilities (capget failed)");
  const unsigned need = (1u << CAP_NET_ADMIN) | (1u << CAP_NET_RAW);
  if ((data[0].permitted & need) != need) {
    if (!bounded(CAP_NET_ADMIN) || !bounded(CAP_NET_RAW))
      fail("cannot program the capture rules: the container was not granted NET_ADMIN and NET_RAW "
           "(not in its capability bounding set): a Pod Security Standard (baseline or restricted) or "
           "another policy removed them from trellis-init's securityContext");
    fail("cannot program the capture rules: NET_ADMIN and NET_RAW are allowed but not held: the "
         "container runtime did not apply the file capabilities of this program (a rootless "
         "runtime, or an image store without extended attributes); run trellis-init as root there");
  }
  data[0].inheritable |= need;
  if (syscall(SYS_capset, &header, data) != 0) fail("cannot make NET_ADMIN and NET_RAW inheritable (capset failed)");
  if (prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_ADMIN, 0, 0) != 0 ||
      prctl(PR_CAP_AMBIENT, PR_CAP_AMBIENT_RAISE, CAP_NET_RAW, 0, 0) != 0)
    fail("cannot raise NET_ADMIN and NET_RAW into the ambient set (kernel older than 4.3?)");
  char **args = calloc((size_t)argc + 2, sizeof *args);
  if (args == NULL) fail("out of memory");
  args[0] = (char *)NODE;
  args[1] = (char *)PROGRAM;
  for (int i = 1; i < argc; i++) args[i + 1] = argv[i];
  execv(NODE, args);
  fail("cannot start /usr/bin/node");
  return 1;
}
