/* The session pool. Every session shares the one loaded model (gemma_model is immutable
 * and thread-safe); each owns its KV cache and thread pool, so a request runs on one session
 * alone and requests beyond the pool's size wait, first come first served. A request gets
 * the free session whose cache starts like its prompt, so a chat's next turn reuses the
 * evaluation of the conversation so far. */
#include "server.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

struct serve_slots {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    gemma_session **s;
    bool *busy;
    int n;
    unsigned long next_ticket, serving; /* FIFO order among waiters */
    bool down;
};

serve_slots *slots_create(gemma_model *m, int n, const gemma_session_params *p)
{
    serve_slots *pool = calloc(1, sizeof *pool);
    if (!pool || !(pool->s = calloc((size_t)n, sizeof *pool->s)) || !(pool->busy = calloc((size_t)n, 1))) {
        fprintf(stderr, "gemma serve: out of memory\n");
        slots_free(pool);
        return NULL;
    }
    pthread_mutex_init(&pool->mu, NULL);
    pthread_cond_init(&pool->cv, NULL);
    for (; pool->n < n; pool->n++) {
        gemma_error err;
        if (gemma_session_create(m, p, &pool->s[pool->n], &err) != GEMMA_OK) {
            fprintf(stderr, "gemma serve: cannot create session %d of %d: %s\n", pool->n + 1, n, err.message);
            slots_free(pool);
            return NULL;
        }
    }
    return pool;
}

void slots_free(serve_slots *p)
{
    if (!p)
        return;
    for (int i = 0; i < p->n; i++)
        gemma_session_free(p->s[i]);
    if (p->s && p->busy) {
        pthread_mutex_destroy(&p->mu);
        pthread_cond_destroy(&p->cv);
    }
    free(p->s);
    free(p->busy);
    free(p);
}

size_t slots_common_prefix(const gemma_session *s, const gemma_token *prompt, size_t n)
{
    int32_t held = 0;
    const gemma_token *h = gemma_session_tokens(s, &held);
    size_t k = 0;
    while (k < n && k < (size_t)held && h[k] == prompt[k])
        k++;
    return k;
}

gemma_session *slots_acquire(serve_slots *p, const gemma_token *prompt, size_t n, bool (*gone)(void *), void *user)
{
    pthread_mutex_lock(&p->mu);
    unsigned long ticket = p->next_ticket++;
    gemma_session *got = NULL;
    for (;;) {
        if (p->down)
            break;
        int free_i = -1;
        size_t best = 0;
        for (int i = 0; i < p->n; i++) {
            size_t c = p->busy[i] ? 0 : slots_common_prefix(p->s[i], prompt, n);
            if (!p->busy[i] && (free_i < 0 || c > best))
                free_i = i, best = c;
        }
        /* a waiter whose client left passes its turn (those behind it must not wait for it) */
        bool left = gone && ticket == p->serving && gone(user);
        if ((free_i >= 0 || left) && ticket == p->serving) {
            p->serving++;
            if (left)
                break;
            p->busy[free_i] = true;
            got = p->s[free_i];
            break;
        }
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_nsec += 100000000L; /* look at the client again in 0.1 s */
        if (until.tv_nsec >= 1000000000L)
            until.tv_sec++, until.tv_nsec -= 1000000000L;
        pthread_cond_timedwait(&p->cv, &p->mu, &until);
    }
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv); /* the next ticket may be servable too */
    return got;
}

void slots_release(serve_slots *p, gemma_session *s)
{
    pthread_mutex_lock(&p->mu);
    for (int i = 0; i < p->n; i++)
        if (p->s[i] == s)
            p->busy[i] = false;
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

void slots_shutdown(serve_slots *p)
{
    pthread_mutex_lock(&p->mu);
    p->down = true;
    for (int i = 0; i < p->n; i++)
        if (p->busy[i])
            gemma_session_cancel(p->s[i]);
    pthread_mutex_unlock(&p->mu);
    pthread_cond_broadcast(&p->cv);
}

int slots_count(const serve_slots *p) { return p->n; }

int slots_busy(serve_slots *p)
{
    pthread_mutex_lock(&p->mu);
    int k = 0;
    for (int i = 0; i < p->n; i++)
        k += p->busy[i];
    pthread_mutex_unlock(&p->mu);
    return k;
}
