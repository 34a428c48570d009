/* test_isa_cap — HIRED_MAX_CPU_ISA. With "avx2" (argv[1], set before the first kernel call) no
 * AVX-512 path of the CPU backend is taken: hired's own checks say no AVX-512, oneDNN's effective
 * ISA is AVX2 and the gemm family line says so, bf16 products are off, and where the CPU has
 * AVX2/FMA/F16C the AVX2 GEMM and attention tiles run, as on an AVX2-only CPU. With any other
 * value ("native", or one that is not an ISA: warned about and ignored) the CPU's own features
 * decide. On a CPU with AVX-512 both halves differ from the uncapped answers, so the test shows
 * the cap took. kernels.cmake also runs the matmul, Q8 and attention tests under the cap. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <oneapi/dnnl/dnnl.h>

#include "attention_x86.h"
#include "gemm.h"
#include "gemm_x86.h"
#include "simd_x86.h"
#include "test.h"

int main(int argc, char **argv) {
    const char *mode = argc > 1 ? argv[1] : "avx2";
    CHECK(setenv("HIRED_MAX_CPU_ISA", mode, 1) == 0);
    __builtin_cpu_init();
    const bool cpu512 = __builtin_cpu_supports("avx512f"), cpu_avx2 = k_cpu_have_f16c();
    if (!strcmp(mode, "avx2")) {
        CHECK(k_cpu_isa_capped());
        CHECK(!k_cpu_avx512_usable());
        CHECK(!k_cpu_have_avx512vl());
        CHECK(!k_cpu_have_bf16_dot());
        CHECK(!k_cpu_have_bf16_gemm());
        if (k_cpu_gemm_family_id() == K_GEMM_ONEDNN) {
            CHECK_MSG(strstr(k_cpu_gemm_family(), "(avx2, HIRED_MAX_CPU_ISA=avx2)") != NULL, "family: %s",
                      k_cpu_gemm_family());
            CHECK_EQ_INT((int)dnnl_get_effective_cpu_isa(), (int)dnnl_cpu_isa_avx2);
        }
        if (cpu_avx2) {
            CHECK(k_cpu_gemm_tiles_usable());
            CHECK(k_cpu_att_tiles_usable());
        }
    } else {
        CHECK(!k_cpu_isa_capped());
        CHECK(k_cpu_avx512_usable() == cpu512);
        CHECK(strstr(k_cpu_gemm_family(), "HIRED_MAX_CPU_ISA") == NULL);
        if (cpu512) {
            CHECK(!k_cpu_gemm_tiles_usable());
            CHECK(!k_cpu_att_tiles_usable());
        }
    }
    return test_summary();
}
