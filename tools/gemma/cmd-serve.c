/* gemma serve: the OpenAI-compatible HTTP server (tools/server/), when built with
 * libmicrohttpd and cJSON. */
#include "args.h"
#include "cli.h"
#include "gemma.h"

#ifdef GEMMA_HAVE_SERVER
#include "../server/server.h"
#endif

#include <stdio.h>
#include <string.h>

static const char serve_help[] =
    "usage: gemma serve [-m MODEL] [options]\n"
    "\n"
    "Serves the model over HTTP with the OpenAI API, so OpenAI client libraries and tools\n"
    "work against it offline (base URL http://HOST:PORT/v1, any API key unless --api-key):\n"
    "  POST /v1/chat/completions   messages in the model's chat format (stream: true for SSE)\n"
    "  POST /v1/completions        a plain-text prompt the model continues\n"
    "  GET  /v1/models             the served model\n"
    "  GET  /health                liveness and busy sessions\n"
    "Requests run on a pool of sessions (--parallel) over one copy of the weights; more\n"
    "requests than sessions wait their turn. Request fields: max_tokens (or\n"
    "max_completion_tokens), temperature, top_p, top_k, min_p, seed, stop, presence_penalty,\n"
    "frequency_penalty, repeat_penalty, stream, stream_options.include_usage.\n"
    "\n"
    "examples:\n"
    "  gemma serve --port 8080\n"
    "  curl http://127.0.0.1:8080/v1/chat/completions -H 'Content-Type: application/json' \\\n"
    "       -d '{\"messages\":[{\"role\":\"user\",\"content\":\"Hello!\"}],\"max_tokens\":64}'\n"
    "  gemma serve -m gemma-3-1b-it-Q4_K_M.gguf --host 0.0.0.0 --parallel 4 --api-key secret\n"
    "\n"
    "options:\n"
    "  -m, --model FILE      GGUF model (default: the model fetched by 'make model')\n"
    "      --host ADDR       address to listen on (default 127.0.0.1: this machine only;\n"
    "                        0.0.0.0 or :: for every interface)\n"
    "      --port N          TCP port (default 8080; 0 = any free port, printed at start)\n"
    "      --parallel N      sessions, i.e. requests served at once (default 2)\n"
    "      --alias NAME      model name reported to clients (default: the file name)\n"
    "      --api-key KEY     require \"Authorization: Bearer KEY\" (except on /health)\n"
    "  -n, --n-predict N     max tokens when a request gives none (default 1024;\n"
    "                        -1 = until the model stops or the context is full)\n"
    "  -t, --threads N       CPU threads per session (default: online CPUs / sessions)\n"
    "  -c, --ctx-size N      context length of each session (default: min(trained, 8192))\n"
    "  -b, --batch-size N    prompt tokens per forward pass (default 512)\n"
    "      --isa NAME        force a kernel set: scalar, avx2, avx512, ... (default: best)\n"
    "  -v, --verbose         log each request (tokens, time, finish reason) to stderr\n"
    "  -h, --help            show this help\n"
    "\n"
    "The sampling options below set the defaults for requests that leave a field out.\n"
    "\n";

typedef struct serve_opts {
    args_common c;
    args_sampling sampling;
    const char *host, *alias, *api_key;
    int32_t port, parallel;
    bool threads_given;
} serve_opts;

/* 0 = parsed, -1 = --help printed, otherwise an exit status. */
static int parse(int argc, char **argv, serve_opts *o)
{
    args a;
    args_init(&a, "serve", argc, argv);
    *o = (serve_opts){.c = {.n_predict = 1024}, .host = "127.0.0.1", .port = 8080, .parallel = 2};
    while (args_next(&a)) {
        bool threads = args_is(&a, "-t", "--threads");
        int r = args_sampling_option(&a, &o->sampling);
        if (r == 0)
            r = args_common_option(&a, &o->c, ARGS_OPT_ALL);
        if (r < 0)
            return ARGS_USAGE;
        if (r > 0) {
            o->threads_given |= threads;
            continue;
        }
        bool ok = true;
        if (args_is(&a, "-h", "--help")) {
            fputs(serve_help, stdout);
            fputs(args_load_help, stdout);
            fputs(args_sampling_help, stdout);
            return -1;
        } else if (args_is(&a, "--host", NULL)) {
            ok = (o->host = args_value(&a)) != NULL;
        } else if (args_is(&a, "--port", NULL)) {
            ok = args_int(&a, 0, 65535, &o->port);
        } else if (args_is(&a, "--parallel", "-np")) {
            ok = args_int(&a, 1, 256, &o->parallel);
        } else if (args_is(&a, "--alias", NULL)) {
            ok = (o->alias = args_value(&a)) != NULL;
        } else if (args_is(&a, "--api-key", NULL)) {
            ok = (o->api_key = args_value(&a)) != NULL;
        } else {
            return args_unknown(&a);
        }
        if (!ok)
            return ARGS_USAGE;
    }
    if (o->api_key && !*o->api_key)
        return args_error("serve", "--api-key needs a non-empty key");
    return 0;
}

#ifdef GEMMA_HAVE_SERVER
static int serve(serve_opts *o)
{
    const char *path = args_model_path("serve", o->c.model);
    if (!path)
        return 1;
    gemma_model *m = args_load_model("serve", path, &o->c);
    if (!m)
        return 1;
    if (!o->threads_given) { /* share the CPUs between the sessions instead of oversubscribing */
        int t = args_online_cpus() / o->parallel;
        o->c.threads = t < 1 ? 1 : t;
    }
    const char *slash = strrchr(path, '/');
    serve_config cfg = {
        .model = m,
        .model_id = o->alias ? o->alias : slash ? slash + 1 : path,
        .host = o->host,
        .port = o->port,
        .n_slots = o->parallel,
        .session = args_session_params(&o->c),
        .sampling = args_sampling_resolve(&o->sampling, m),
        .fixed_seed = o->sampling.seed_given,
        .max_tokens = o->c.n_predict,
        .api_key = o->api_key,
        .verbose = o->c.verbose,
    };
    if (o->c.verbose)
        args_print_sampling(&cfg.sampling);
    int rc = serve_run(&cfg);
    gemma_model_free(m);
    return rc;
}
#else
static int serve(serve_opts *o)
{
    (void)o;
    fprintf(stderr, "gemma serve: this gemma was built without the server; install libmicrohttpd-dev and "
                    "libcjson-dev (Debian/Ubuntu) and rebuild (make)\n");
    return 1;
}
#endif

int cmd_serve(int argc, char **argv)
{
    serve_opts o;
    int r = parse(argc, argv, &o);
    if (r)
        return r < 0 ? 0 : r;
    return serve(&o);
}
