/* Compute context: a persistent thread pool and the mat-mul drivers.
 *
 * Decode calls a mat-mul about 130 times per token, so start/finish must cost little: the
 * caller bumps a generation counter that the workers spin on briefly (then sleep on a futex),
 * and waits for a pending-count to reach zero. Mat-muls quantize the activations once, then
 * split the output: a few large contiguous row chunks per thread for a few tokens (a matvec
 * streams weights sequentially; no barriers), and dynamically scheduled (row panel x token
 * panel) tiles for prompt batches.
 */
#include "compute.h"

#include "quants.h"
#include "util/util.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#ifdef __linux__
#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define GM_PAUSE() _mm_pause()
#elif defined(__aarch64__)
#define GM_PAUSE() __asm__ volatile("yield")
#else
#define GM_PAUSE() ((void)0)
#endif

/* Pause iterations before a worker sleeps: roughly 100-300 us, long enough to bridge the
 * gap between two mat-muls of one decode step. */
#define SPIN_ITERS 4000

typedef struct worker {
    gm_compute *c;
    int ith;
    pthread_t tid;
} worker;

struct gm_compute {
    int n_threads;
    gm_kernels kern;
    worker *workers;     /* n_threads - 1 */
    int n_started;
    _Atomic uint32_t gen;   /* bumped per task; futex word */
    _Atomic int pending;    /* workers not yet done with the current task */
    _Atomic int sleepers;   /* workers blocked (or about to block) on gen */
    _Atomic int stop;
    gm_task_fn fn;
    void *arg;
    void *scratch;          /* quantized activations */
    size_t scratch_size;
};

static void futex_wait(_Atomic uint32_t *addr, uint32_t val)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
#else
    (void)addr;
    (void)val;
    sched_yield();
#endif
}

static void futex_wake_all(_Atomic uint32_t *addr)
{
#ifdef __linux__
    syscall(SYS_futex, (uint32_t *)addr, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL, NULL, 0);
#else
    (void)addr;
#endif
}

static void *worker_main(void *p)
{
    worker *w = p;
    gm_compute *c = w->c;
    /* gen is 0 until the first task, which may be posted before this thread runs. */
    uint32_t seen = 0;
    for (;;) {
        uint32_t g;
        int spins = 0;
        while ((g = atomic_load_explicit(&c->gen, memory_order_acquire)) == seen) {
            if (++spins < SPIN_ITERS) {
                GM_PAUSE();
                continue;
            }
            /* Announce the sleep before re-checking inside the futex, so the caller either
             * sees sleepers > 0 or we see the new generation. */
            atomic_fetch_add(&c->sleepers, 1);
            futex_wait(&c->gen, seen);
            atomic_fetch_sub(&c->sleepers, 1);
            spins = 0;
        }
        seen = g;
        if (atomic_load(&c->stop))
            return NULL;
        c->fn(c->arg, w->ith, c->n_threads);
        atomic_fetch_sub_explicit(&c->pending, 1, memory_order_release);
    }
}

static void pool_stop(gm_compute *c)
{
    if (c->n_started == 0)
        return;
    atomic_store(&c->stop, 1);
    atomic_fetch_add(&c->gen, 1);
    futex_wake_all(&c->gen);
    for (int i = 0; i < c->n_started; i++)
        pthread_join(c->workers[i].tid, NULL);
    c->n_started = 0;
}

gemma_status gm_compute_create(int n_threads, gm_isa isa, gm_compute **out, gemma_error *err)
{
    *out = NULL;
    if (n_threads < 1 || n_threads > 1024)
        return gm_fail(err, GEMMA_E_INVALID_ARG, "n_threads %d out of range [1, 1024]", n_threads);
    if ((unsigned)isa >= GM_ISA_COUNT || !gm_isa_supported(isa))
        return gm_fail(err, GEMMA_E_UNSUPPORTED, "kernel set '%s' is not supported by this CPU",
                       gm_isa_name(isa));
    gm_compute *c = calloc(1, sizeof *c);
    if (!c)
        return gm_fail(err, GEMMA_E_NOMEM, "compute context");
    c->n_threads = n_threads;
    gm_kernels_init(&c->kern, isa);
    if (n_threads > 1) {
        c->workers = gm_calloc((size_t)n_threads - 1, sizeof *c->workers);
        if (!c->workers) {
            gm_compute_free(c);
            return gm_fail(err, GEMMA_E_NOMEM, "thread pool");
        }
        for (int i = 0; i < n_threads - 1; i++) {
            c->workers[i].c = c;
            c->workers[i].ith = i + 1;
            int e = pthread_create(&c->workers[i].tid, NULL, worker_main, &c->workers[i]);
            if (e != 0) {
                gm_compute_free(c);
                return gm_fail(err, GEMMA_E_NOMEM, "cannot start worker thread %d of %d: %s", i + 1,
                               n_threads - 1, strerror(e));
            }
            c->n_started++;
        }
    }
    *out = c;
    return GEMMA_OK;
}

void gm_compute_free(gm_compute *c)
{
    if (!c)
        return;
    pool_stop(c);
    free(c->workers);
    gm_aligned_free(c->scratch);
    free(c);
}

int gm_compute_threads(const gm_compute *c) { return c->n_threads; }

const gm_kernels *gm_compute_kernels(const gm_compute *c) { return &c->kern; }

void gm_parallel(gm_compute *c, gm_task_fn fn, void *arg)
{
    if (c->n_threads == 1) {
        fn(arg, 0, 1);
        return;
    }
    c->fn = fn;
    c->arg = arg;
    atomic_store(&c->pending, c->n_threads - 1);
    atomic_fetch_add(&c->gen, 1); /* seq_cst: publishes fn/arg and orders the sleepers check */
    if (atomic_load(&c->sleepers) > 0)
        futex_wake_all(&c->gen);
    fn(arg, 0, c->n_threads);
    int spins = 0;
    while (atomic_load_explicit(&c->pending, memory_order_acquire) != 0) {
        if (++spins < SPIN_ITERS)
            GM_PAUSE();
        else
            sched_yield();
    }
}

/* ---- mat-mul ------------------------------------------------------------------------- */

/* Row panel x token panel of one prefill work unit: 4 weight rows at a time stay in L1
 * while the panel's activations (<= 64 x ~2.3 KB) stream from L1/L2. */
#define PANEL_ROWS 32
#define PANEL_TOKS 64
/* Below this many tokens, split rows into one contiguous range per thread. */
#define DECODE_MAX_TOK 8
/* Matvec chunks per thread (dynamic, see matvec_task). */
#define MATVEC_CHUNKS 4
/* Quantizing fewer elements than this is cheaper than waking the pool. */
#define QUANT_PAR_MIN 32768

typedef struct mm_task {
    const gm_type_kernels *tk;
    const uint8_t *w;     /* row r0 of W */
    size_t ldw;
    int64_t K, rows;      /* rows = r1 - r0 */
    const float *x;
    uint8_t *act;         /* quantized activations (or x itself for F32) */
    size_t lda;
    int n_tok;
    float *y;
    size_t ldy;
    int64_t n_units, units_r;
    _Atomic int64_t next;
} mm_task;

static void quant_task(void *p, int ith, int nth)
{
    mm_task *t = p;
    int t0 = (int)((int64_t)t->n_tok * ith / nth), t1 = (int)((int64_t)t->n_tok * (ith + 1) / nth);
    for (int i = t0; i < t1; i++)
        t->tk->quantize(t->x + (size_t)i * (size_t)t->K, t->act + (size_t)i * t->lda, t->K);
}

/* y block for rows [r, r+nr) x tokens [c, c+nc), through gemm or vec_dot. */
static void mm_block(const mm_task *t, int64_t r, int nr, int c, int nc)
{
    const uint8_t *w = t->w + (size_t)r * t->ldw;
    const uint8_t *a = t->act + (size_t)c * t->lda;
    float *y = t->y + (size_t)c * t->ldy + (size_t)r;
    if (t->tk->gemm) {
        t->tk->gemm(t->K, w, t->ldw, a, t->lda, y, t->ldy, nr, nc);
        return;
    }
    for (int j = 0; j < nc; j++)
        for (int i = 0; i < nr; i++)
            t->tk->vec_dot(t->K, y + (size_t)j * t->ldy + i, w + (size_t)i * t->ldw,
                           a + (size_t)j * t->lda);
}

static void matvec_task(void *p, int ith, int nth)
{
    (void)ith;
    (void)nth;
    mm_task *t = p;
    /* A few large chunks per thread, taken from a shared counter: each chunk still streams
     * its rows sequentially, and a thread the OS delays does not hold up the others. Chunk
     * boundaries on multiples of 4 rows keep every chunk on full register tiles. */
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (u >= t->n_units)
            return;
        int64_t r0 = u * t->units_r, r1 = GM_MIN(r0 + t->units_r, t->rows);
        mm_block(t, r0, (int)(r1 - r0), 0, t->n_tok);
    }
}

static void tiles_task(void *p, int ith, int nth)
{
    (void)ith;
    (void)nth;
    mm_task *t = p;
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&t->next, 1, memory_order_relaxed);
        if (u >= t->n_units)
            return;
        /* Row panels vary fastest so that concurrent units share a token panel in L2. */
        int64_t pr = u % t->units_r, pc = u / t->units_r;
        int64_t r = pr * PANEL_ROWS;
        int c = (int)(pc * PANEL_TOKS);
        mm_block(t, r, (int)GM_MIN(PANEL_ROWS, t->rows - r), c, GM_MIN(PANEL_TOKS, t->n_tok - c));
    }
}

static gemma_status scratch_reserve(gm_compute *c, size_t bytes)
{
    if (bytes <= c->scratch_size)
        return GEMMA_OK;
    size_t want = bytes + bytes / 4;
    void *p = gm_aligned_alloc(want);
    if (!p)
        return GEMMA_E_NOMEM;
    gm_aligned_free(c->scratch);
    c->scratch = p;
    c->scratch_size = want;
    return GEMMA_OK;
}

gemma_status gm_matmul_rows(gm_compute *c, const gm_tensor *W, int64_t r0, int64_t r1,
                            const float *x, int n_tok, float *y)
{
    const gm_type_traits *tt = gm_type_get((uint32_t)W->type);
    int64_t K = W->ne[0];
    if (!tt || !tt->weight || K <= 0 || K % tt->blck || n_tok < 1 || r0 < 0 || r1 > W->ne[1] ||
        r0 >= r1)
        return GEMMA_E_INVALID_ARG;
    const gm_type_traits *at = gm_type_get((uint32_t)tt->vec_dot_type);
    if (!at || K % at->blck)
        return GEMMA_E_INVALID_ARG;
    mm_task t;
    memset(&t, 0, sizeof t);
    t.tk = &c->kern.type[W->type];
    if (!t.tk->vec_dot)
        return GEMMA_E_UNSUPPORTED;
    t.ldw = W->row_bytes;
    t.w = (const uint8_t *)W->data + (size_t)r0 * t.ldw;
    t.K = K;
    t.rows = r1 - r0;
    t.x = x;
    t.n_tok = n_tok;
    t.y = y;
    t.ldy = (size_t)(r1 - r0);
    t.lda = gm_row_size(at, K);
    if (W->type == GM_TYPE_F32) {
        t.act = (uint8_t *)(uintptr_t)x; /* read only: F32 weights take F32 activations */
    } else {
        uint64_t bytes;
        if (!gm_mul_u64(t.lda, (uint64_t)n_tok, &bytes) || bytes > SIZE_MAX ||
            scratch_reserve(c, (size_t)bytes) != GEMMA_OK)
            return GEMMA_E_NOMEM;
        t.act = c->scratch;
        if ((int64_t)n_tok * K < QUANT_PAR_MIN || c->n_threads == 1)
            quant_task(&t, 0, 1);
        else
            gm_parallel(c, quant_task, &t);
    }
    if (n_tok < DECODE_MAX_TOK) {
        /* units_r = rows per chunk here */
        int64_t quads = (t.rows + 3) / 4, chunks = GM_MIN((int64_t)c->n_threads * MATVEC_CHUNKS, quads);
        t.units_r = (quads + chunks - 1) / chunks * 4;
        t.n_units = (t.rows + t.units_r - 1) / t.units_r;
        atomic_store(&t.next, 0);
        gm_parallel(c, matvec_task, &t);
    } else {
        t.units_r = (t.rows + PANEL_ROWS - 1) / PANEL_ROWS;
        t.n_units = t.units_r * ((n_tok + PANEL_TOKS - 1) / PANEL_TOKS);
        atomic_store(&t.next, 0);
        gm_parallel(c, tiles_task, &t);
    }
    return GEMMA_OK;
}

gemma_status gm_matmul(gm_compute *c, const gm_tensor *W, const float *x, int n_tok, float *y)
{
    return gm_matmul_rows(c, W, 0, W->ne[1], x, n_tok, y);
}

#define MULTI_MAX 4

typedef struct multi_task {
    mm_task t[MULTI_MAX];
    int64_t end[MULTI_MAX]; /* cumulative unit counts */
    int n;
    _Atomic int64_t next;
} multi_task;

static void multi_task_fn(void *p, int ith, int nth)
{
    (void)ith;
    (void)nth;
    multi_task *m = p;
    for (;;) {
        int64_t u = atomic_fetch_add_explicit(&m->next, 1, memory_order_relaxed);
        int i = 0;
        while (i < m->n && u >= m->end[i])
            i++;
        if (i == m->n)
            return;
        const mm_task *t = &m->t[i];
        int64_t r0 = (u - (i ? m->end[i - 1] : 0)) * t->units_r, r1 = GM_MIN(r0 + t->units_r, t->rows);
        mm_block(t, r0, (int)(r1 - r0), 0, t->n_tok);
    }
}

gemma_status gm_matmul_multi(gm_compute *c, const gm_tensor *const *W, int n_w, const float *x, int n_tok,
                             float *const *y)
{
    bool fuse = n_w > 1 && n_w <= MULTI_MAX && n_tok < DECODE_MAX_TOK && W[0]->type != GM_TYPE_F32;
    for (int i = 1; fuse && i < n_w; i++)
        fuse = W[i]->type == W[0]->type && W[i]->ne[0] == W[0]->ne[0];
    if (!fuse) {
        for (int i = 0; i < n_w; i++) {
            gemma_status st = gm_matmul(c, W[i], x, n_tok, y[i]);
            if (st)
                return st;
        }
        return GEMMA_OK;
    }
    /* Decode: quantize x once, then one pool wake-up for all the mat-vecs, their row
     * chunks taken from one counter (no barrier between the matrices). */
    const gm_type_traits *tt = gm_type_get((uint32_t)W[0]->type);
    const int64_t K = W[0]->ne[0];
    if (!tt || !tt->weight || K <= 0 || K % tt->blck)
        return GEMMA_E_INVALID_ARG;
    const gm_type_traits *at = gm_type_get((uint32_t)tt->vec_dot_type);
    if (!at || K % at->blck)
        return GEMMA_E_INVALID_ARG;
    const gm_type_kernels *tk = &c->kern.type[W[0]->type];
    if (!tk->vec_dot)
        return GEMMA_E_UNSUPPORTED;
    multi_task m;
    memset(&m, 0, sizeof m);
    const size_t lda = gm_row_size(at, K);
    if (scratch_reserve(c, lda * (size_t)n_tok) != GEMMA_OK)
        return GEMMA_E_NOMEM;
    for (int i = 0; i < n_w; i++) {
        mm_task *t = &m.t[i];
        t->tk = tk;
        t->ldw = W[i]->row_bytes;
        t->w = W[i]->data;
        t->K = K;
        t->rows = W[i]->ne[1];
        t->x = x;
        t->act = c->scratch;
        t->lda = lda;
        t->n_tok = n_tok;
        t->y = y[i];
        t->ldy = (size_t)t->rows;
        int64_t quads = (t->rows + 3) / 4, chunks = GM_MIN((int64_t)c->n_threads * MATVEC_CHUNKS, quads);
        t->units_r = (quads + chunks - 1) / chunks * 4;
        t->n_units = (t->rows + t->units_r - 1) / t->units_r;
        m.end[i] = (i ? m.end[i - 1] : 0) + t->n_units;
    }
    m.n = n_w;
    quant_task(&m.t[0], 0, 1);
    atomic_store(&m.next, 0);
    gm_parallel(c, multi_task_fn, &m);
    return GEMMA_OK;
}

void gm_tensor_get_row(const gm_tensor *W, int64_t r, float *out)
{
    gm_dequant_row_ref(W->type, (const uint8_t *)W->data + (size_t)r * W->row_bytes, out,
                       W->ne[0]);
}
