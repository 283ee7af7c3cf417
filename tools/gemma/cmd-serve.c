/* gemma serve: the OpenAI-compatible HTTP server (tools/server/), when built with
 * libmicrohttpd and cJSON. */
#include "args.h"
#include "cli.h"
#include "gemma.h"

#ifdef GEMMA_HAVE_SERVER
#include "../server/server.h"
#endif

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char serve_help[] =
    "usage: gemma serve [-m MODEL] [options]\n"
    "\n"
    "Serves the model over HTTP with the OpenAI API, so OpenAI client libraries and tools\n"
    "work against it offline (base URL http://HOST:PORT/v1, any API key unless --api-key):\n"
    "  POST /v1/chat/completions   messages in the model's chat format (stream: true for SSE)\n"
    "  POST /v1/completions        a plain-text prompt the model continues\n"
    "  GET  /v1/models             the served model\n"
    "  GET  /health                liveness and busy sessions (HEAD too; no key needed)\n"
    "  GET  /v1/models/ID          one model; GET /metrics: Prometheus counters and gauges\n"
    "  POST /tokenize, /detokenize llama-server's shapes ({\"content\"} <-> {\"tokens\"})\n"
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
    "      --api-key KEY     require \"Authorization: Bearer KEY\" (except on /health);\n"
    "                        also from $GEMMA_API_KEY\n"
    "      --api-key-file F  the key from the first line of file F (keeps it out of ps)\n"
    "  -n, --n-predict N     max tokens when a request gives none (default 1024;\n"
    "                        -1 = until the model stops or the context is full)\n"
    "  -t, --threads N       CPU threads per session (default: online CPUs / sessions)\n"
    "  -c, --ctx-size N      context length of each session (default: min(trained, 8192))\n"
    "  -b, --batch-size N    prompt tokens per forward pass (default 512)\n"
    "      --isa NAME        force a kernel set: scalar, avx2, avx512, ... (default: best)\n"
    "\n"
    "limits and security (the defaults keep the server to this machine and its own pages):\n"
    "      --max-connections N  open connections at once (default 4096; more are closed)\n"
    "      --idle-timeout S     close a connection silent for S seconds (default 30)\n"
    "      --max-queue N        requests waiting for a session (default 64); more get 503\n"
    "                           with Retry-After\n"
    "      --max-tokens-cap N   no request generates more than N tokens (default: no cap)\n"
    "      --cors ORIGIN        answer browser pages from ORIGIN (e.g. http://localhost:3000;\n"
    "                           * for any), repeatable; default: no CORS headers\n"
    "      --allow-host NAME    accept Host: NAME besides the bound address (a DNS name the\n"
    "                           server is reached by), repeatable; * turns the check off\n"
    "      --insecure-no-key    allow a non-loopback --host without an API key\n"
    "Request bodies are capped at 16 MiB (413), checked from Content-Length before they are\n"
    "read; the key is checked from the headers first; POST bodies must be application/json.\n"
    "\n"
    "  -v, --verbose         log each request (tokens, time, finish reason) to stderr\n"
    "  -h, --help            show this help\n"
    "\n"
    "The sampling options below set the defaults for requests that leave a field out.\n"
    "\n";

#define SERVE_MAX_LIST 16

typedef struct serve_opts {
    args_common c;
    args_sampling sampling;
    const char *host, *alias, *api_key, *api_key_file;
    int32_t port, parallel, max_connections, idle_timeout, max_queue, max_tokens_cap;
    const char *cors[SERVE_MAX_LIST], *allow_hosts[SERVE_MAX_LIST];
    int n_cors, n_allow_hosts;
    bool threads_given, insecure_no_key;
    char key_buf[512];
} serve_opts;

/* A repeatable option's value into list (at most SERVE_MAX_LIST). */
static bool add_list(args *a, const char **list, int *n)
{
    const char *v = args_value(a);
    if (!v)
        return false;
    if (*n == SERVE_MAX_LIST)
        return args_error("serve", "too many of one option (at most 16)"), false;
    list[(*n)++] = v;
    return true;
}

/* The key from --api-key-file (its first line) or $GEMMA_API_KEY when --api-key is not given. */
static int resolve_key(serve_opts *o)
{
    if (o->api_key_file) {
        FILE *f = fopen(o->api_key_file, "r");
        if (!f || !fgets(o->key_buf, sizeof o->key_buf, f)) {
            if (f)
                fclose(f);
            return args_error("serve", "cannot read the key from --api-key-file");
        }
        fclose(f);
        o->key_buf[strcspn(o->key_buf, "\r\n")] = 0;
        o->api_key = o->key_buf;
    } else if (!o->api_key && getenv("GEMMA_API_KEY")) {
        o->api_key = getenv("GEMMA_API_KEY");
    }
    if (o->api_key && !*o->api_key)
        return args_error("serve", "the API key is empty");
    return 0;
}

/* 0 = parsed, -1 = --help printed, otherwise an exit status. */
static int parse(int argc, char **argv, serve_opts *o)
{
    args a;
    args_init(&a, "serve", argc, argv);
    *o = (serve_opts){.c = {.n_predict = 1024}, .host = "127.0.0.1", .port = 8080, .parallel = 2,
                      .max_connections = 4096, .idle_timeout = 30, .max_queue = 64};
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
        } else if (args_is(&a, "--api-key-file", NULL)) {
            ok = (o->api_key_file = args_value(&a)) != NULL;
        } else if (args_is(&a, "--max-connections", NULL)) {
            ok = args_int(&a, 1, 1 << 20, &o->max_connections);
        } else if (args_is(&a, "--idle-timeout", NULL)) {
            ok = args_int(&a, 1, 86400, &o->idle_timeout);
        } else if (args_is(&a, "--max-queue", NULL)) {
            ok = args_int(&a, 0, 1 << 20, &o->max_queue);
        } else if (args_is(&a, "--max-tokens-cap", NULL)) {
            ok = args_int(&a, 1, 1 << 30, &o->max_tokens_cap);
        } else if (args_is(&a, "--cors", NULL)) {
            ok = add_list(&a, o->cors, &o->n_cors);
        } else if (args_is(&a, "--allow-host", NULL)) {
            ok = add_list(&a, o->allow_hosts, &o->n_allow_hosts);
        } else if (args_is(&a, "--insecure-no-key", NULL)) {
            o->insecure_no_key = true;
        } else {
            return args_unknown(&a);
        }
        if (!ok)
            return ARGS_USAGE;
    }
    return resolve_key(o);
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
        .file_id = slash ? slash + 1 : path,
        .host = o->host,
        .port = o->port,
        .n_slots = o->parallel,
        .session = args_session_params(&o->c),
        .sampling = args_sampling_resolve(&o->sampling, m),
        .fixed_seed = o->sampling.seed_given,
        .max_tokens = o->c.n_predict,
        .api_key = o->api_key,
        .verbose = o->c.verbose,
        .max_tokens_cap = o->max_tokens_cap,
        .max_queue = o->max_queue,
        .max_connections = o->max_connections,
        .idle_timeout_s = o->idle_timeout,
        .cors = o->cors,
        .n_cors = o->n_cors,
        .allow_hosts = o->allow_hosts,
        .n_allow_hosts = o->n_allow_hosts,
        .insecure_no_key = o->insecure_no_key,
    };
    for (int i = 0; i < o->n_allow_hosts; i++)
        cfg.any_host |= !strcmp(o->allow_hosts[i], "*");
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
