// gemma.h compiled as C++11: the header must keep to the common subset of C and C++ and wrap
// its declarations in extern "C". Also checks the growable-struct rules from a C++ caller.
#include "gemma.h"

#include <cstdio>
#include <cstring>

static int failures;
#define CHECK(c)                                                         \
    do {                                                                 \
        if (!(c)) {                                                      \
            std::fprintf(stderr, "%s:%d: CHECK(%s)\n", __FILE__, __LINE__, #c); \
            failures++;                                                  \
        }                                                                \
    } while (0)

GEMMA_DEPRECATED("only checks that the macro compiles") static int deprecated_example() { return 0; }

static void test_params_init()
{
    gemma_model_params mp;
    CHECK(gemma_model_params_init(&mp, sizeof mp) == GEMMA_OK && mp.size == sizeof mp && mp.use_mmap);
    gemma_session_params sp;
    CHECK(gemma_session_params_init(&sp, sizeof sp) == GEMMA_OK && sp.n_ctx == 0 && sp.isa == nullptr);
    gemma_sampler_params smp;
    CHECK(gemma_sampler_params_init(&smp, sizeof smp, nullptr) == GEMMA_OK && smp.top_k == 64);
    gemma_generate_params gp;
    CHECK(gemma_generate_params_init(&gp, sizeof gp) == GEMMA_OK && gp.max_tokens == 256 && !gp.sampling);
    // A size this header does not know is refused, never read past.
    CHECK(gemma_model_params_init(&mp, sizeof mp + 8) == GEMMA_E_INVALID_ARG);
    CHECK(gemma_session_params_init(&sp, 1) == GEMMA_E_INVALID_ARG);
    CHECK(gemma_generate_params_init(nullptr, sizeof gp) == GEMMA_E_INVALID_ARG);
}

static void test_bad_size_refused()
{
    gemma_sampler_params smp;
    gemma_sampler_params_init(&smp, sizeof smp, nullptr);
    smp.size = 0;
    gemma_error err;
    gemma_sampler *s = nullptr;
    CHECK(gemma_sampler_create(&smp, 10, &s, &err) == GEMMA_E_INVALID_ARG && !s);
    CHECK(std::strstr(err.message, "gemma_sampler_params") != nullptr);
    gemma_model_params mp;
    gemma_model_params_init(&mp, sizeof mp);
    mp.size = sizeof mp + 8;
    gemma_model *m = nullptr;
    CHECK(gemma_model_load("no-such-file.gguf", &mp, &m, &err) == GEMMA_E_INVALID_ARG && !m);
}

int main()
{
    test_params_init();
    test_bad_size_refused();
    gemma_gguf_type t = gemma_gguf_kv_type(nullptr, 0);
    CHECK(t == GEMMA_GGUF_INVALID && std::strcmp(gemma_gguf_type_name(t), "INVALID") == 0);
    CHECK(std::strcmp(gemma_gguf_type_name(GEMMA_GGUF_UINT32), "UINT32") == 0);
    CHECK(std::strcmp(gemma_status_name(GEMMA_E_NOMEM), "E_NOMEM") == 0);
    if (failures)
        std::fprintf(stderr, "%d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
