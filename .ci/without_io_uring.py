#!/usr/bin/env python3
"""Runs a command on a "machine without io_uring": io_uring_setup(2) fails
with ENOSYS under a seccomp filter, as on kernels before 5.1 or where a
container's seccomp profile blocks it. .ci/run uses it to show that the
per-backend tests skip the uring backend there and say so, and that
CYCLONE_REQUIRE_BACKENDS turns that skip into a failure.

    .ci/without_io_uring.py COMMAND [ARGS...]
"""
import ctypes
import os
import struct
import sys

IO_URING_SETUP = 425  # the same number on every Linux architecture
ENOSYS = 38
PR_SET_NO_NEW_PRIVS, PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 38, 22, 2
BPF_LD_W_ABS, BPF_JEQ_K, BPF_RET_K = 0x20, 0x15, 0x06
SECCOMP_RET_ALLOW, SECCOMP_RET_ERRNO = 0x7FFF0000, 0x00050000


def insn(code, k, jt=0, jf=0):
    return struct.pack("HBBI", code, jt, jf, k)


# Load the system call number (offset 0 of seccomp_data); if it is
# io_uring_setup, fail it with ENOSYS, else allow.
program = (
    insn(BPF_LD_W_ABS, 0)
    + insn(BPF_JEQ_K, IO_URING_SETUP, 0, 1)
    + insn(BPF_RET_K, SECCOMP_RET_ERRNO | ENOSYS)
    + insn(BPF_RET_K, SECCOMP_RET_ALLOW)
)


class SockFprog(ctypes.Structure):
    _fields_ = [("len", ctypes.c_ushort), ("filter", ctypes.c_void_p)]


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    libc = ctypes.CDLL(None, use_errno=True)
    code = ctypes.create_string_buffer(program)
    fprog = SockFprog(len(program) // 8, ctypes.cast(code, ctypes.c_void_p))
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_NO_NEW_PRIVS): errno {ctypes.get_errno()}")
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        sys.exit(f"prctl(PR_SET_SECCOMP): errno {ctypes.get_errno()}")
    os.execvp(sys.argv[1], sys.argv[1:])


main()
