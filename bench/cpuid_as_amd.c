/* Make this process's CPUID answer as an AMD Zen CPU would, on an Intel one: for bench/exp_cross_vendor.py.
 *
 * Libraries choose code paths from CPUID: MKL by vendor, oneDNN's blocking by the cache sizes it reads (Intel's
 * leaf 4, AMD's leaf 0x8000001D). To learn on one Intel machine what an AMD one computes, this shim turns on the
 * kernel's CPUID faulting (arch_prctl ARCH_SET_CPUID, 0): every CPUID instruction then raises SIGSEGV, whose
 * handler runs the real CPUID (faulting briefly off) and edits the answer:
 *   leaf 0           vendor "AuthenticAMD"
 *   leaf 1           family 0x19 (Zen 3/4), model 1
 *   leaf 0x80000000  at least 0x80000021, so that leaf 0x8000001D is read
 *   leaf 0x8000001D  AMD's cache description: L1d CPUID_AMD_L1K (32), L2 CPUID_AMD_L2K (1024), L3 CPUID_AMD_L3K
 *                    (32768) KiB
 * Feature bits (AVX2, AVX-512, ...) stay the host's. Build and use:
 *   gcc -O2 -shared -fPIC -o cpuid_as_amd.so bench/cpuid_as_amd.c
 *   LD_PRELOAD=$PWD/cpuid_as_amd.so python ...
 * Needs CPUID faulting (Intel since Ivy Bridge; Linux >= 4.12): where the kernel refuses it the shim prints why
 * and exits with status 3, so that nothing runs unemulated under its name. A program that installs its own
 * SIGSEGV handler after this one would lose the emulation (CPython's faulthandler is off by default).
 */
#define _GNU_SOURCE
#include <asm/prctl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <ucontext.h>
#include <unistd.h>

#ifndef ARCH_SET_CPUID
#define ARCH_SET_CPUID 0x1012
#endif

static uint32_t l1_kib = 32, l2_kib = 1024, l3_kib = 32768;

static void cpuid(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    __asm__ volatile("cpuid" : "=a"(r[0]), "=b"(r[1]), "=c"(r[2]), "=d"(r[3]) : "a"(leaf), "c"(sub));
}

/* ebx/ecx of a cache descriptor (the layout leaf 4 and leaf 0x8000001D share): ways, 64-byte lines, sets */
static void cache_size(uint32_t r[4], uint32_t kib) {
    uint32_t bytes = kib * 1024u, ways = bytes >= (1u << 20) ? 16u : 8u;
    r[1] = ((ways - 1u) << 22) | 63u;
    r[2] = bytes / (64u * ways) - 1u;
}

static void as_amd(uint32_t leaf, uint32_t sub, uint32_t r[4]) {
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 1);
    cpuid(leaf, sub, r);
    syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0);
    if (leaf == 0) {
        memcpy(&r[1], "Auth", 4);
        memcpy(&r[3], "enti", 4);
        memcpy(&r[2], "cAMD", 4);
    } else if (leaf == 1) {
        r[0] = (0xAu << 20) | (0xFu << 8) | (0x1u << 4) | 0x1u;   /* extended family 0xA + 0xF = 0x19 */
    } else if (leaf == 0x80000000u && r[0] < 0x80000021u) {
        r[0] = 0x80000021u;
    } else if (leaf == 0x8000001Du) {   /* subleaf: 0 L1d, 1 L1i, 2 L2, 3 L3, then none */
        static const uint32_t type[] = {1, 2, 3, 3}, level[] = {1, 1, 2, 3}, sharing[] = {2, 2, 2, 16};
        if (sub > 3) { r[0] = r[1] = r[2] = r[3] = 0; return; }
        uint32_t kib[] = {l1_kib, 32, l2_kib, l3_kib};
        r[0] = type[sub] | (level[sub] << 5) | (1u << 8) | ((sharing[sub] - 1u) << 14);
        cache_size(r, kib[sub]);
        r[3] = 0;
    } else if (leaf == 0x8000001Eu) {
        r[1] = 1u << 8;   /* two threads per core */
    }
}

static void on_fault(int sig, siginfo_t *info, void *context) {
    ucontext_t *uc = context;
    greg_t *g = uc->uc_mcontext.gregs;
    const unsigned char *ip = (const unsigned char *)g[REG_RIP];
    (void)info;
    if (ip[0] == 0x0f && ip[1] == 0xa2) {   /* the faulting instruction is CPUID */
        uint32_t r[4];
        as_amd((uint32_t)g[REG_RAX], (uint32_t)g[REG_RCX], r);
        g[REG_RAX] = r[0]; g[REG_RBX] = r[1]; g[REG_RCX] = r[2]; g[REG_RDX] = r[3];
        g[REG_RIP] += 2;
        return;
    }
    signal(sig, SIG_DFL);   /* a real segmentation fault */
    raise(sig);
}

static uint32_t env_kib(const char *name, uint32_t fallback) {
    const char *v = getenv(name);
    return v && *v ? (uint32_t)strtoul(v, NULL, 10) : fallback;
}

__attribute__((constructor)) static void start(void) {
    l1_kib = env_kib("CPUID_AMD_L1K", l1_kib);
    l2_kib = env_kib("CPUID_AMD_L2K", l2_kib);
    l3_kib = env_kib("CPUID_AMD_L3K", l3_kib);
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = on_fault;
    sa.sa_flags = SA_SIGINFO | SA_NODEFER;
    sigaction(SIGSEGV, &sa, NULL);
    if (syscall(SYS_arch_prctl, ARCH_SET_CPUID, 0) != 0) {
        perror("cpuid_as_amd: arch_prctl(ARCH_SET_CPUID, 0): this CPU or kernel has no CPUID faulting");
        _exit(3);
    }
}
