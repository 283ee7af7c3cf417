/* ISA names, CPU feature detection and the kernel table.
 *
 * The scalar entries wrap the reference kernels of quants-ref.c; an ISA installer then
 * overrides what it accelerates. Detection checks both CPUID (the CPU has it) and XGETBV
 * (the OS saves the wider registers), since a CPU flag alone can fault under some VMs.
 */
#include "kernels.h"

#include "quants.h"

#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#define GM_X86 1
#endif

/* aarch64: Advanced SIMD is mandatory in the ABI; SDOT/I8MM are optional and only the
 * kernel knows whether it enables them (the ID registers trap at EL0 on old kernels), so
 * Linux asks getauxval. Other aarch64 systems get plain NEON. */
#if defined(__aarch64__)
#define GM_ARM64 1
#if defined(__linux__)
#include <sys/auxv.h>
#define GM_ARM64_LINUX 1
#ifndef HWCAP_ASIMD
#define HWCAP_ASIMD (1ul << 1)
#endif
#ifndef HWCAP_ASIMDDP
#define HWCAP_ASIMDDP (1ul << 20)
#endif
#ifndef HWCAP2_I8MM
#define HWCAP2_I8MM (1ul << 13)
#endif
#endif
#endif

static const char *const isa_names[GM_ISA_COUNT] = {
    [GM_ISA_SCALAR] = "scalar",
    [GM_ISA_AVX2] = "avx2",
    [GM_ISA_AVX512] = "avx512",
    [GM_ISA_AVX512_VNNI] = "avx512-vnni",
    [GM_ISA_NEON] = "neon",
    [GM_ISA_NEON_DOTPROD] = "neon-dotprod",
    [GM_ISA_NEON_I8MM] = "neon-i8mm",
};

const char *gm_isa_name(gm_isa isa)
{
    return (unsigned)isa < GM_ISA_COUNT ? isa_names[isa] : "unknown";
}

gm_isa gm_isa_from_name(const char *name)
{
    if (!name)
        return GM_ISA_COUNT;
    for (int i = 0; i < GM_ISA_COUNT; i++)
        if (strcmp(name, isa_names[i]) == 0)
            return (gm_isa)i;
    return GM_ISA_COUNT;
}

#ifdef GM_X86
typedef struct x86_caps {
    bool avx2, avx512, vnni;
} x86_caps;

static uint64_t read_xcr0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static x86_caps x86_detect(void)
{
    x86_caps c = { false, false, false };
    unsigned a, b, cx, d;
    if (!__get_cpuid(1, &a, &b, &cx, &d))
        return c;
    bool osxsave = cx & (1u << 27), avx = cx & (1u << 28);
    bool fma = cx & (1u << 12), f16c = cx & (1u << 29);
    if (!osxsave || !avx)
        return c;
    uint64_t xcr0 = read_xcr0();
    bool ymm_os = (xcr0 & 0x6) == 0x6;             /* SSE + AVX state */
    bool zmm_os = (xcr0 & 0xe6) == 0xe6;           /* plus opmask, ZMM_Hi256, Hi16_ZMM */
    if (!__get_cpuid_count(7, 0, &a, &b, &cx, &d))
        return c;
    bool avx2 = b & (1u << 5), bmi2 = b & (1u << 8);
    bool f512 = b & (1u << 16), dq = b & (1u << 17), bw = b & (1u << 30), vl = b & (1u << 31);
    bool vnni = cx & (1u << 11);
    c.avx2 = ymm_os && avx2 && fma && f16c && bmi2;
    c.avx512 = c.avx2 && zmm_os && f512 && dq && bw && vl;
    c.vnni = c.avx512 && vnni;
    return c;
}
#endif

#ifdef GM_ARM64
typedef struct arm_caps {
    bool neon, dotprod, i8mm;
} arm_caps;

static arm_caps arm_detect(void)
{
#ifdef GM_ARM64_LINUX
    const unsigned long hw = getauxval(AT_HWCAP), hw2 = getauxval(AT_HWCAP2);
    arm_caps c = { (hw & HWCAP_ASIMD) != 0, false, false };
    c.dotprod = c.neon && (hw & HWCAP_ASIMDDP);
    c.i8mm = c.dotprod && (hw2 & HWCAP2_I8MM);
    return c;
#else
    return (arm_caps){ true, false, false };
#endif
}
#endif

bool gm_isa_supported(gm_isa isa)
{
    if (isa == GM_ISA_SCALAR)
        return true;
#ifdef GM_ARM64
    arm_caps c = arm_detect();
    switch (isa) {
    case GM_ISA_NEON: return c.neon;
    case GM_ISA_NEON_DOTPROD: return c.dotprod;
    case GM_ISA_NEON_I8MM: return c.i8mm;
    default: return false;
    }
#elif defined(GM_X86)
    x86_caps c = x86_detect();
    switch (isa) {
    case GM_ISA_AVX2: return c.avx2;
    case GM_ISA_AVX512: return c.avx512;
    case GM_ISA_AVX512_VNNI: return c.vnni;
    default: return false;
    }
#else
    return false;
#endif
}

gm_isa gm_isa_detect(void)
{
    static const gm_isa order[] = { GM_ISA_AVX512_VNNI, GM_ISA_AVX512, GM_ISA_AVX2,
                                    GM_ISA_NEON_I8MM, GM_ISA_NEON_DOTPROD, GM_ISA_NEON };
    for (size_t i = 0; i < sizeof order / sizeof order[0]; i++)
        if (gm_isa_supported(order[i]))
            return order[i];
    return GM_ISA_SCALAR;
}

/* Scalar entries: every weight type of the type table gets its reference dot and the
 * reference quantizer of the activation type it takes. */
static void install_ref(gm_kernels *k)
{
    for (uint32_t id = 0; id < GM_TYPE_COUNT; id++) {
        const gm_type_traits *t = gm_type_get(id);
        if (!t || !t->weight)
            continue;
        k->type[id].quantize = gm_quantize_ref_fn(t->vec_dot_type);
        k->type[id].vec_dot = gm_vec_dot_ref_fn((gm_type)id);
    }
}

void gm_kernels_init(gm_kernels *k, gm_isa isa)
{
    memset(k, 0, sizeof *k);
    k->isa = GM_ISA_SCALAR;
    install_ref(k);
    if (!gm_isa_supported(isa))
        return;
#ifdef GM_X86
    switch (isa) {
    case GM_ISA_AVX2: gm_kernels_install_avx2(k); break;
    case GM_ISA_AVX512: gm_kernels_install_avx512(k, false); break;
    case GM_ISA_AVX512_VNNI: gm_kernels_install_avx512(k, true); break;
    default: return;
    }
    k->isa = isa;
#elif defined(GM_ARM64)
    switch (isa) {
    case GM_ISA_NEON: gm_kernels_install_neon(k, false, false); break;
    case GM_ISA_NEON_DOTPROD: gm_kernels_install_neon(k, true, false); break;
    case GM_ISA_NEON_I8MM: gm_kernels_install_neon(k, true, true); break;
    default: return;
    }
    k->isa = isa;
#endif
}
