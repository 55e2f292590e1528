"""The sandbox's seccomp filter: a few system calls answer with an error instead of running.

* ``ptrace``, ``process_vm_readv``/``writev``, ``pidfd_getfd`` fail with EPERM: model code
  cannot trace, read, write or take file descriptors from any process, whatever its dumpable
  flag (the harness's processes and the sandbox's init are undumpable too).
* ``shmget``, ``semget``, ``msgget`` fail with ENOMEM: System V IPC objects are kernel memory
  that no process maps once detached, so the memory watchdog cannot see them (one run held
  1.6 GB of SysV shared memory under a 256 MB limit). The sandbox's fresh IPC namespace starts
  empty and nothing can be created in it; its budget is zero. POSIX shared memory
  (``multiprocessing.shared_memory``) is a file on the ``/dev/shm`` tmpfs and is counted.
* A system call of another ABI (i386 ``int 0x80`` and x32 on x86-64, where ``ipc()`` would
  reach SysV IPC under other numbers) fails with ENOSYS.

bubblewrap loads the program (``--seccomp FD``) as classic BPF, ``struct sock_filter``
records, the format libseccomp's ``seccomp_export_bpf`` writes; eight rules do not need that
library. Only x86-64 and aarch64 are known: elsewhere :func:`seccomp_program` returns None and
the sandbox runs without the filter (see docs/sandbox.md).
"""

from __future__ import annotations

import errno
import platform
import struct

__all__ = ["BLOCKED", "seccomp_program"]

# struct seccomp_data: int nr; __u32 arch; ...
_NR, _ARCH = 0, 4
_LD_W_ABS, _JEQ_K, _JSET_K, _RET_K = 0x20, 0x15, 0x45, 0x06
_RET_ALLOW, _RET_ERRNO = 0x7FFF0000, 0x00050000
_X32_BIT = 0x40000000

# name: errno. Numbers from <asm/unistd_64.h> and <asm-generic/unistd.h>.
BLOCKED = {
    "ptrace": errno.EPERM,
    "process_vm_readv": errno.EPERM,
    "process_vm_writev": errno.EPERM,
    "pidfd_getfd": errno.EPERM,
    "shmget": errno.ENOMEM,
    "semget": errno.ENOMEM,
    "msgget": errno.ENOMEM,
}
_ARCHES = {
    # machine: (AUDIT_ARCH_*, x32 numbers share the ABI, {name: number})
    "x86_64": (
        0xC000003E,
        True,
        {"ptrace": 101, "process_vm_readv": 310, "process_vm_writev": 311, "pidfd_getfd": 438,
         "shmget": 29, "semget": 64, "msgget": 68},
    ),
    "aarch64": (
        0xC00000B7,
        False,
        {"ptrace": 117, "process_vm_readv": 270, "process_vm_writev": 271, "pidfd_getfd": 438,
         "shmget": 194, "semget": 190, "msgget": 186},
    ),
}  # fmt: skip
_MACHINES = {"amd64": "x86_64", "arm64": "aarch64"}


def _op(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The filter for this machine (``platform.machine()``), or None if it is not known."""
    machine = (machine or platform.machine()).lower()
    known = _ARCHES.get(_MACHINES.get(machine, machine))
    if known is None:
        return None
    arch, x32, numbers = known
    program = [
        _op(_LD_W_ABS, _ARCH),
        _op(_JEQ_K, arch, jt=1),  # our ABI: skip the next rule
        _op(_RET_K, _RET_ERRNO | errno.ENOSYS),
        _op(_LD_W_ABS, _NR),
    ]
    if x32:
        program += [_op(_JSET_K, _X32_BIT, jf=1), _op(_RET_K, _RET_ERRNO | errno.ENOSYS)]
    for name, error in BLOCKED.items():
        program += [_op(_JEQ_K, numbers[name], jf=1), _op(_RET_K, _RET_ERRNO | error)]
    program.append(_op(_RET_K, _RET_ALLOW))
    return b"".join(program)
