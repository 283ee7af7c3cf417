#include "gemma.h"

#define GM_STR_(x) #x
#define GM_STR(x) GM_STR_(x)

const char *gemma_version(void)
{
    return GM_STR(GEMMA_VERSION_MAJOR) "." GM_STR(GEMMA_VERSION_MINOR) "." GM_STR(GEMMA_VERSION_PATCH);
}

const char *gemma_strerror(gemma_status status)
{
    switch (status) {
#define GEMMA_X_MSG(name, val, msg) case GEMMA_##name: return msg;
        GEMMA_STATUS_MAP(GEMMA_X_MSG)
#undef GEMMA_X_MSG
    }
    return "unknown status";
}

const char *gemma_status_name(gemma_status status)
{
    switch (status) {
#define GEMMA_X_NAME(name, val, msg) case GEMMA_##name: return #name;
        GEMMA_STATUS_MAP(GEMMA_X_NAME)
#undef GEMMA_X_NAME
    }
    return "UNKNOWN";
}
