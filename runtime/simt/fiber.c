/* fiber.c: the SIMT emulator's scheduler. One fiber per CUDA thread, blocks one at a time.
 *
 * Takes a kernel entry (loader.c) and a launch geometry; gives the kernel's effects on the
 * memory its arguments point to, or a message saying why the launch failed (simt_host.h
 * lists the failures).
 *
 * Fibers. Each CUDA thread of the running block is a fiber: a stack of its own (mmap'd, one
 * slot per thread, each with PROT_NONE guard pages below it) and a saved register set. The
 * context switch is a dozen instructions of assembly on x86-64 (callee-saved registers,
 * MXCSR and the x87 control word); elsewhere, or with -DSIMT_UCONTEXT, it is swapcontext,
 * which is correct but makes a system call per switch. Fibers never preempt one another:
 * a fiber runs until it waits (barrier, warp operation) or exits, then switches back to the
 * scheduler. Everything of one launch happens on the OS thread that called simt_launch.
 *
 * Scheduling. The scheduler resumes every ready fiber in index order (reversed with
 * SimtLaunchOptions.reverse), pass after pass, until no fiber is ready. Then either every
 * thread of the block waits at __syncthreads, which releases them all, or every thread has
 * exited, which ends the block, or it is a deadlock, which is reported.
 *
 * Warps. Lanes are linear thread index % 32, as on the GPU. A warp operation is a rendezvous
 * of the lanes its mask names: each arriving lane posts its value and argument and waits;
 * the last one to arrive computes the result of every lane (a shuffle reads the partner's
 * posted value) and continues, making the others ready. Results are computed all at once,
 * so a lane that runs ahead to its next warp operation cannot overwrite a value another lane
 * has yet to read. Lanes of one warp may wait in several operations at once when their masks
 * are disjoint.
 *
 * Faults. A process-wide handler of SIGSEGV, SIGBUS, SIGFPE and SIGILL, running on an
 * alternate signal stack the launch installs, checks whether the signal came from a fiber of
 * a launch on this OS thread; if so it switches straight back to the scheduler, which
 * restores the signal mask and reports the fault (a stack overflow when the address lies in
 * a guard page). Any other signal goes to the handler that was installed before.
 *
 * AddressSanitizer: every switch is annotated (__sanitizer_start/finish_switch_fiber) and
 * the stacks are unpoisoned before reuse, since a fiber abandoned mid-frame leaves its
 * redzones poisoned. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "simt_host.h"

#if defined(__SANITIZE_ADDRESS__)
#define SIMT_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define SIMT_ASAN 1
#endif
#endif
#ifdef SIMT_ASAN
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#endif

enum {
    WARP_SIZE = 32,
    GUARD_BYTES = 16 * 1024,          /* below each stack; kernels are built with stack-clash probes */
    MIN_STACK = 16 * 1024,
    ALTSTACK_BYTES = 256 * 1024,      /* the fault handler's (and a chained sanitizer's) stack */
    MAX_NAMED_THREADS = 3,            /* threads named in a deadlock report */
};

/* ---- context switch -------------------------------------------------------------------------- */

#if defined(__x86_64__) && !defined(SIMT_UCONTEXT)
typedef struct Ctx {
    void *sp;  /* the saved stack pointer; the registers are on that stack */
} Ctx;

/* Saves the callee-saved registers and the floating-point control words on the current
 * stack, stores the stack pointer in *from, and resumes the context in *to. */
void simt_ctx_switch(Ctx *from, Ctx *to);
/* First code of a new context: calls r13(r12). */
void simt_ctx_start(void);
__asm__(".text\n"
        ".globl simt_ctx_switch\n.hidden simt_ctx_switch\n.type simt_ctx_switch, @function\n"
        "simt_ctx_switch:\n"
        "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
        "    subq $8, %rsp\n    stmxcsr (%rsp)\n    fnstcw 4(%rsp)\n"
        "    movq %rsp, (%rdi)\n    movq (%rsi), %rsp\n"
        "    ldmxcsr (%rsp)\n    fldcw 4(%rsp)\n    addq $8, %rsp\n"
        "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
        "    ret\n"
        ".size simt_ctx_switch, .-simt_ctx_switch\n"
        ".globl simt_ctx_start\n.hidden simt_ctx_start\n.type simt_ctx_start, @function\n"
        "simt_ctx_start:\n"
        "    .cfi_startproc\n    .cfi_undefined rip\n"
        "    movq %r12, %rdi\n    callq *%r13\n    ud2\n"
        "    .cfi_endproc\n"
        ".size simt_ctx_start, .-simt_ctx_start\n");

/* A context that, switched to, calls fn(arg) on the stack [lo, lo + size); fn never returns. */
static void ctx_init(Ctx *c, char *lo, size_t size, void (*fn)(void *), void *arg)
{
    uint64_t *sp = (uint64_t *)(((uintptr_t)(lo + size)) & ~(uintptr_t)15);
    *--sp = (uint64_t)(uintptr_t)simt_ctx_start;  /* where simt_ctx_switch returns to */
    *--sp = 0;                                    /* rbp */
    *--sp = 0;                                    /* rbx */
    *--sp = (uint64_t)(uintptr_t)arg;             /* r12 */
    *--sp = (uint64_t)(uintptr_t)fn;              /* r13 */
    *--sp = 0;                                    /* r14 */
    *--sp = 0;                                    /* r15 */
    *--sp = 0x037f00001f80ull;                    /* MXCSR and x87 control word: the defaults */
    c->sp = sp;
}
#else
#include <ucontext.h>
typedef struct Ctx {
    ucontext_t uc;
    void (*fn)(void *);  /* ctx_init's function and argument, for the trampoline */
    void *arg;
} Ctx;

static void ctx_trampoline(unsigned hi, unsigned lo)
{
    Ctx *c = (Ctx *)(((uintptr_t)hi << 32) | lo);
    c->fn(c->arg);
}

static void ctx_init(Ctx *c, char *lo, size_t size, void (*fn)(void *), void *arg)
{
    getcontext(&c->uc);
    c->uc.uc_stack.ss_sp = lo;
    c->uc.uc_stack.ss_size = size;
    c->uc.uc_link = NULL;
    c->fn = fn;
    c->arg = arg;
    uintptr_t p = (uintptr_t)c;
    makecontext(&c->uc, (void (*)(void))ctx_trampoline, 2, (unsigned)(p >> 32), (unsigned)p);
}

static void simt_ctx_switch(Ctx *from, Ctx *to) { swapcontext(&from->uc, &to->uc); }
#endif

/* ---- launch state -------------------------------------------------------------------------- */

typedef enum FiberState {
    FS_READY,    /* will run in the scheduler's next pass */
    FS_BARRIER,  /* waits at __syncthreads */
    FS_WARP,     /* waits in a warp operation */
    FS_DONE,     /* returned from the kernel */
} FiberState;

typedef struct Fiber {
    Ctx            ctx;        /* saved while not running */
    SimtThreadInfo info;       /* threadIdx, blockIdx, ... */
    FiberState     state;
    char          *stack;      /* lowest byte of its stack */
    int            line;       /* FS_BARRIER, FS_WARP: the source line it waits at */
    int            op;         /* FS_BARRIER: SimtBarrierOp; FS_WARP: SimtWarpOp */
    uint64_t       value;      /* posted at a barrier (the predicate) or a warp operation */
    int            arg;        /* posted with value: source lane, delta or lane mask */
    uint64_t       result;     /* what the barrier or warp operation returns to it */
    void          *asan_fake;  /* AddressSanitizer's fake stack while switched out */
} Fiber;

typedef struct WarpGroup {     /* a warp operation some lanes wait in */
    unsigned mask;             /* the lanes taking part */
    unsigned arrived;          /* those that have posted */
    int      op, width, line;  /* what the first lane called, and where */
} WarpGroup;

typedef struct Warp {
    unsigned  lanes;           /* lanes that exist (the last warp of a block may be partial) */
    unsigned  exited;          /* lanes that returned from the kernel */
    WarpGroup groups[WARP_SIZE];  /* pending operations, disjoint masks */
    int       ngroups;
} Warp;

typedef struct Launch {
    const SimtKernel *k;
    void      **args;
    SimtDim3    grid, block;
    SimtDim3    block_idx;        /* the running block */
    int         nthreads, nwarps; /* per block */
    bool        reverse;
    Fiber      *fibers;           /* nthreads */
    Warp       *warps;            /* nwarps */
    char       *stacks;           /* mmap'd: nthreads slots of [guard | stack] */
    size_t      stacks_len, slot, stack_size;
    void       *dyn_shared;       /* extern __shared__ storage */
    size_t      dyn_bytes;
    void       *tls;              /* the module's __shared__ variables on this thread */
    size_t      tls_bytes;
    Fiber      *cur;              /* the running fiber; NULL while the scheduler runs */
    Ctx         sched;            /* the scheduler, while a fiber runs */
    Ctx         dead;             /* where the registers of a fiber leaving for good go */
    int         ndone;            /* fibers of the block that exited */
    int         nbarrier;         /* fibers of the block waiting at the barrier */
    int         bar_op, bar_line; /* what the first of them called, and where */
    long long   clock;            /* clock64() */
    bool        failed;
    StrBuf     *err;
    int         fault_sig;        /* set by the signal handler */
    void       *fault_addr;
    Fiber      *fault_fiber;
    sigset_t    sigmask;          /* the thread's signal mask before the launch */
    void       *altstack;
    stack_t     old_altstack;
    const void *sched_bottom;     /* AddressSanitizer: the scheduler's stack */
    size_t      sched_size;
    void       *sched_fake;
} Launch;

/* The launch running on this OS thread: how the API functions and the signal handler find it. */
static _Thread_local Launch *tls_launch;

static const char *const WARP_OP_NAMES[] = {
#define X(e, name) name,
#include "warp_ops.def"
#undef X
};
static const char *const BARRIER_NAMES[] = {"__syncthreads", "__syncthreads_count", "__syncthreads_and",
                                            "__syncthreads_or"};

/* ---- switching ------------------------------------------------------------------------------- */

static void resume(Launch *L, Fiber *f)
{
    L->cur = f;
#ifdef SIMT_ASAN
    __sanitizer_start_switch_fiber(&L->sched_fake, f->stack, L->stack_size);
#endif
    simt_ctx_switch(&L->sched, &f->ctx);
#ifdef SIMT_ASAN
    __sanitizer_finish_switch_fiber(L->sched_fake, NULL, NULL);
#endif
    L->cur = NULL;
}

/* Back to the scheduler until it resumes this fiber. */
static void fiber_yield(Launch *L, Fiber *f)
{
#ifdef SIMT_ASAN
    __sanitizer_start_switch_fiber(&f->asan_fake, L->sched_bottom, L->sched_size);
#endif
    simt_ctx_switch(&f->ctx, &L->sched);
#ifdef SIMT_ASAN
    __sanitizer_finish_switch_fiber(f->asan_fake, &L->sched_bottom, &L->sched_size);
#endif
}

/* Back to the scheduler for good (the fiber exited or the launch failed). */
static _Noreturn void fiber_leave(Launch *L)
{
#ifdef SIMT_ASAN
    __sanitizer_start_switch_fiber(NULL, L->sched_bottom, L->sched_size);
#endif
    simt_ctx_switch(&L->dead, &L->sched);
    abort();  /* never resumed */
}

/* ---- messages ------------------------------------------------------------------------------- */

static void put_where(Launch *L, const Fiber *f)
{
    sb_printf(L->err, "kernel %s: block (%u,%u,%u)", L->k->name, L->block_idx.x, L->block_idx.y, L->block_idx.z);
    if (f)
        sb_printf(L->err, ", thread (%u,%u,%u)", f->info.thread_idx.x, f->info.thread_idx.y, f->info.thread_idx.z);
    sb_puts(L->err, ": ");
}

/* "0-15", "3", "0-3,8,10-11": the lanes of a mask, into buf. */
typedef struct LaneText {
    char s[128];  /* 16 ranges at most, each "dd-dd," */
} LaneText;

static const char *lanes_text(unsigned mask, LaneText *t)
{
    size_t n = 0;
    t->s[0] = 0;
    for (int l = 0; l < WARP_SIZE;) {
        if (!(mask >> l & 1)) {
            l++;
            continue;
        }
        int e = l;
        while (e + 1 < WARP_SIZE && (mask >> (e + 1) & 1)) e++;
        n += (size_t)snprintf(t->s + n, sizeof t->s - n, e == l ? "%s%d" : "%s%d-%d", n ? "," : "", l, e);
        l = e + 1;
    }
    return t->s;
}

/* Ends the launch from inside the running fiber with a message about it. */
static _Noreturn __attribute__((format(printf, 2, 3))) void fail(Launch *L, const char *fmt, ...)
{
    if (!L->failed) {
        put_where(L, L->cur);
        va_list ap;
        va_start(ap, fmt);
        sb_vprintf(L->err, fmt, ap);
        va_end(ap);
        sb_putc(L->err, '\n');
        L->failed = true;
    }
    fiber_leave(L);
}

/* ---- warp operations --------------------------------------------------------------------------- */

/* Computes every lane's result of the completed group g of warp w; the calling fiber is one
 * of its lanes. Fails when a shuffle reads a lane outside the mask. */
static void warp_resolve(Launch *L, int wi, WarpGroup *g)
{
    Fiber *lane = &L->fibers[wi * WARP_SIZE];
    unsigned m = g->mask;
    int w = g->width;
    uint64_t res[WARP_SIZE] = {0};
    uint32_t bits = 0, acc = 0;
    bool first = true;
    for (int l = 0; l < WARP_SIZE; l++) {
        if (!(m >> l & 1)) continue;
        uint32_t v = (uint32_t)lane[l].value;
        if (lane[l].value) bits |= 1u << l;
        switch ((SimtWarpOp)g->op) {
        case SIMT_REDUCE_ADD: acc = first ? v : acc + v; break;
        case SIMT_REDUCE_MIN_S: acc = first || (int32_t)v < (int32_t)acc ? v : acc; break;
        case SIMT_REDUCE_MIN_U: acc = first || v < acc ? v : acc; break;
        case SIMT_REDUCE_MAX_S: acc = first || (int32_t)v > (int32_t)acc ? v : acc; break;
        case SIMT_REDUCE_MAX_U: acc = first || v > acc ? v : acc; break;
        case SIMT_REDUCE_AND: acc = first ? v : acc & v; break;
        case SIMT_REDUCE_OR: acc = first ? v : acc | v; break;
        case SIMT_REDUCE_XOR: acc = first ? v : acc ^ v; break;
        case SIMT_WARP_SYNC: case SIMT_SHFL_IDX: case SIMT_SHFL_UP: case SIMT_SHFL_DOWN: case SIMT_SHFL_XOR:
        case SIMT_VOTE_BALLOT: case SIMT_VOTE_ANY: case SIMT_VOTE_ALL: case SIMT_VOTE_UNI: case SIMT_MATCH_ANY:
        case SIMT_WARP_OP_COUNT:
            break;
        }
        first = false;
    }
    for (int l = 0; l < WARP_SIZE; l++) {
        if (!(m >> l & 1)) continue;
        int seg = l & ~(w - 1), src = l;  /* a shuffle reads within its width-wide segment */
        unsigned a = (unsigned)lane[l].arg;
        switch ((SimtWarpOp)g->op) {
        case SIMT_WARP_SYNC: break;
        case SIMT_SHFL_IDX: src = seg | (int)(a & (unsigned)(w - 1)); break;
        case SIMT_SHFL_UP: src = (unsigned)(l - seg) >= a ? l - (int)a : l; break;
        case SIMT_SHFL_DOWN: src = (unsigned)(l - seg) + a < (unsigned)w ? l + (int)a : l; break;
        case SIMT_SHFL_XOR: src = (int)((unsigned)l ^ a) < seg + w ? (int)((unsigned)l ^ a) : l; break;
        case SIMT_VOTE_BALLOT: res[l] = bits; break;
        case SIMT_VOTE_ANY: res[l] = bits != 0; break;
        case SIMT_VOTE_ALL: res[l] = bits == m; break;
        case SIMT_VOTE_UNI: res[l] = bits == 0 || bits == m; break;
        case SIMT_MATCH_ANY:
            for (int o = 0; o < WARP_SIZE; o++)
                if ((m >> o & 1) && lane[o].value == lane[l].value) res[l] |= 1u << o;
            break;
        case SIMT_REDUCE_ADD: case SIMT_REDUCE_MIN_S: case SIMT_REDUCE_MIN_U: case SIMT_REDUCE_MAX_S:
        case SIMT_REDUCE_MAX_U: case SIMT_REDUCE_AND: case SIMT_REDUCE_OR: case SIMT_REDUCE_XOR:
            res[l] = acc;
            break;
        case SIMT_WARP_OP_COUNT: break;
        }
        if (g->op == SIMT_SHFL_IDX || g->op == SIMT_SHFL_UP || g->op == SIMT_SHFL_DOWN || g->op == SIMT_SHFL_XOR) {
            if (src < 0 || src >= WARP_SIZE || !(m >> src & 1))
                fail(L, "%s (line %d): lane %d reads lane %d, which is not in the mask 0x%08x (the value would be "
                        "undefined on a GPU)", WARP_OP_NAMES[g->op], g->line, l, src, m);
            res[l] = lane[src].value;
        }
    }
    for (int l = 0; l < WARP_SIZE; l++) {
        if (!(m >> l & 1)) continue;
        lane[l].result = res[l];
        if (lane[l].state == FS_WARP) lane[l].state = FS_READY;
    }
}

static uint64_t api_warp(int op, unsigned mask, uint64_t value, int arg, int width, int line)
{
    Launch *L = tls_launch;
    Fiber *f = L->cur;
    unsigned wi = f->info.warp, bit = 1u << f->info.lane;
    Warp *w = &L->warps[wi];
    if (op < 0 || op >= SIMT_WARP_OP_COUNT) fail(L, "unknown warp operation %d (line %d)", op, line);
    const char *name = WARP_OP_NAMES[op];
    if (width < 1 || width > WARP_SIZE || (width & (width - 1)))
        fail(L, "%s (line %d): width %d is not a power of two from 1 to 32", name, line, width);
    if (!(mask & bit))
        fail(L, "%s (line %d): the mask 0x%08x does not include the calling lane %u", name, line, mask, f->info.lane);
    if (mask & ~w->lanes) {
        LaneText t;
        fail(L, "%s (line %d): the mask 0x%08x names lanes that do not exist (the block has %d threads: warp %u has "
                "lanes %s)", name, line, mask, L->nthreads, wi, lanes_text(w->lanes, &t));
    }
    if (mask & w->exited)
        fail(L, "%s (line %d): the mask 0x%08x names lane %d, which has exited", name, line, mask,
             __builtin_ctz(mask & w->exited));
    WarpGroup *g = NULL;
    for (int i = 0; i < w->ngroups; i++) {
        WarpGroup *h = &w->groups[i];
        if (h->mask == mask) {
            g = h;
        } else if (h->mask & mask) {
            LaneText t;
            fail(L, "%s (line %d) with mask 0x%08x while lanes %s wait in %s (line %d) with the overlapping mask 0x%08x",
                 name, line, mask, lanes_text(h->arrived, &t), WARP_OP_NAMES[h->op], h->line, h->mask);
        }
    }
    if (g && (g->op != op || g->width != width)) {
        LaneText t;
        fail(L, "%s (line %d, width %d) while lanes %s of the same mask 0x%08x wait in %s (line %d, width %d)", name,
             line, width, lanes_text(g->arrived, &t), mask, WARP_OP_NAMES[g->op], g->line, g->width);
    }
    if (!g) {
        g = &w->groups[w->ngroups++];
        *g = (WarpGroup){mask, 0, op, width, line};
    }
    g->arrived |= bit;
    f->value = value;
    f->arg = arg;
    f->op = op;
    f->line = line;
    if (g->arrived != mask) {
        f->state = FS_WARP;
        fiber_yield(L, f);
        return f->result;
    }
    warp_resolve(L, (int)wi, g);
    *g = w->groups[--w->ngroups];
    return f->result;
}

static unsigned api_active_mask(void)
{
    Launch *L = tls_launch;
    Warp *w = &L->warps[L->cur->info.warp];
    return w->lanes & ~w->exited;
}

/* ---- block barrier ------------------------------------------------------------------------------ */

static int api_barrier(int op, int pred, int line)
{
    Launch *L = tls_launch;
    Fiber *f = L->cur;
    if (op < SIMT_BAR_SYNC || op > SIMT_BAR_OR) fail(L, "unknown barrier %d (line %d)", op, line);
    if (L->nbarrier > 0 && L->bar_op != op)
        fail(L, "%s (line %d) while %d threads wait in %s (line %d)", BARRIER_NAMES[op], line, L->nbarrier,
             BARRIER_NAMES[L->bar_op], L->bar_line);
    if (L->nbarrier == 0) {
        L->bar_op = op;
        L->bar_line = line;
    }
    L->nbarrier++;
    f->state = FS_BARRIER;
    f->op = op;
    f->line = line;
    f->value = pred != 0;
    fiber_yield(L, f);
    return (int)f->result;
}

/* Releases the barrier when every thread of the block waits at it. */
static bool barrier_release(Launch *L)
{
    if (L->nbarrier != L->nthreads) return false;
    int count = 0;
    for (int i = 0; i < L->nthreads; i++) count += L->fibers[i].value != 0;
    int r = 0;
    switch ((SimtBarrierOp)L->bar_op) {
    case SIMT_BAR_SYNC: r = 0; break;
    case SIMT_BAR_COUNT: r = count; break;
    case SIMT_BAR_AND: r = count == L->nthreads; break;
    case SIMT_BAR_OR: r = count > 0; break;
    }
    for (int i = 0; i < L->nthreads; i++) {
        L->fibers[i].state = FS_READY;
        L->fibers[i].result = (uint64_t)r;
    }
    L->nbarrier = 0;
    return true;
}

/* ---- the rest of the API ------------------------------------------------------------------------- */

static const SimtThreadInfo *api_self(void) { return &tls_launch->cur->info; }

static void *api_dynamic_shared(void) { return tls_launch->dyn_shared; }

static void api_trap(const char *what, int line) { fail(tls_launch, "%s (line %d)", what, line); }

static long long api_clock(void) { return ++tls_launch->clock; }

static const SimtApi API = {
    SIMT_ABI_VERSION, api_self, api_barrier, api_warp, api_active_mask, api_dynamic_shared, api_trap, api_clock,
};

const SimtApi *simt_runtime_api(void) { return &API; }

/* ---- a fiber's life ---------------------------------------------------------------------------- */

static _Noreturn void fiber_exit(Launch *L, Fiber *f)
{
    Warp *w = &L->warps[f->info.warp];
    unsigned bit = 1u << f->info.lane;
    for (int i = 0; i < w->ngroups; i++) {
        WarpGroup *g = &w->groups[i];
        if (g->mask & bit) {
            LaneText t;
            fail(L, "exited without reaching the %s (line %d, mask 0x%08x) that lanes %s of its warp wait in "
                    "(deadlock)", WARP_OP_NAMES[g->op], g->line, g->mask, lanes_text(g->arrived, &t));
        }
    }
    w->exited |= bit;
    f->state = FS_DONE;
    L->ndone++;
    fiber_leave(L);
}

static void fiber_main(void *arg)
{
    Launch *L = arg;
#ifdef SIMT_ASAN
    __sanitizer_finish_switch_fiber(NULL, &L->sched_bottom, &L->sched_size);
#endif
    Fiber *f = L->cur;
    L->k->entry(L->args);
    fiber_exit(L, f);
}

/* ---- deadlocks --------------------------------------------------------------------------------- */

static void put_thread(StrBuf *sb, const Fiber *f)
{
    sb_printf(sb, "(%u,%u,%u)", f->info.thread_idx.x, f->info.thread_idx.y, f->info.thread_idx.z);
}

/* Nothing can run and the barrier cannot be released: says why. */
static void report_deadlock(Launch *L)
{
    StrBuf *e = L->err;
    put_where(L, NULL);
    sb_puts(e, "deadlock: ");
    for (int wi = 0; wi < L->nwarps; wi++) {
        Warp *w = &L->warps[wi];
        if (w->ngroups == 0) continue;
        WarpGroup *g = &w->groups[0];
        int l = __builtin_ctz(g->mask & ~g->arrived);
        const Fiber *m = &L->fibers[wi * WARP_SIZE + l];
        LaneText t;
        sb_printf(e, "lanes %s of warp %d wait in %s (line %d, mask 0x%08x) for lane %d, thread ", lanes_text(g->arrived, &t), wi, WARP_OP_NAMES[g->op],
                  g->line, g->mask, l);
        put_thread(e, m);
        if (m->state == FS_BARRIER)
            sb_printf(e, ", which waits at %s (line %d)\n", BARRIER_NAMES[m->op], m->line);
        else if (m->state == FS_WARP)
            sb_printf(e, ", which waits in %s (line %d)\n", WARP_OP_NAMES[m->op], m->line);
        else
            sb_puts(e, ", which cannot reach it\n");
        return;
    }
    sb_printf(e, "%d of %d threads wait at %s (line %d), but ", L->nbarrier, L->nthreads, BARRIER_NAMES[L->bar_op],
              L->bar_line);
    int named = 0;
    for (int i = 0; i < L->nthreads && named < MAX_NAMED_THREADS; i++) {
        if (L->fibers[i].state != FS_DONE) continue;
        sb_puts(e, named ? ", " : "thread ");
        put_thread(e, &L->fibers[i]);
        named++;
    }
    if (L->ndone > named) sb_printf(e, " and %d more", L->ndone - named);
    sb_puts(e, " exited without reaching it\n");
}

/* ---- faults ---------------------------------------------------------------------------------- */

static const int FAULT_SIGNALS[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL};
/* The handlers the emulator's replaced, to pass other signals on; written under g_sig_lock. */
static struct sigaction g_prev[TD_COUNTOF(FAULT_SIGNALS)];
static pthread_mutex_t g_sig_lock = PTHREAD_MUTEX_INITIALIZER;

static void on_fault(int sig, siginfo_t *si, void *uc)
{
    Launch *L = tls_launch;
    if (L && L->cur && !L->fault_sig) {
        L->fault_sig = sig;
        L->fault_addr = si->si_addr;
        L->fault_fiber = L->cur;
        L->failed = true;
        fiber_leave(L);  /* straight to the scheduler, off the alternate stack */
    }
    for (int i = 0; i < TD_COUNTOF(FAULT_SIGNALS); i++) {
        if (FAULT_SIGNALS[i] != sig) continue;
        const struct sigaction *p = &g_prev[i];
        if ((p->sa_flags & SA_SIGINFO) && p->sa_sigaction) {
            p->sa_sigaction(sig, si, uc);
        } else if (!(p->sa_flags & SA_SIGINFO) && p->sa_handler != SIG_DFL && p->sa_handler != SIG_IGN) {
            p->sa_handler(sig);
        } else {
            /* The default action: a fault re-raised by returning, or a sent signal raised again. */
            signal(sig, SIG_DFL);
            raise(sig);
        }
    }
}

/* Installs on_fault for the fault signals unless it is installed already (someone may have
 * installed another handler since the last launch). */
static void install_fault_handlers(void)
{
    pthread_mutex_lock(&g_sig_lock);
    for (int i = 0; i < TD_COUNTOF(FAULT_SIGNALS); i++) {
        struct sigaction cur;
        sigaction(FAULT_SIGNALS[i], NULL, &cur);
        if ((cur.sa_flags & SA_SIGINFO) && cur.sa_sigaction == on_fault) continue;
        struct sigaction sa;
        memset(&sa, 0, sizeof sa);
        sa.sa_sigaction = on_fault;
        sa.sa_flags = SA_SIGINFO | SA_ONSTACK;
        sigemptyset(&sa.sa_mask);
        sigaction(FAULT_SIGNALS[i], &sa, &g_prev[i]);
    }
    pthread_mutex_unlock(&g_sig_lock);
}

/* After the handler switched back: the signal mask as before and a message. */
static void report_fault(Launch *L)
{
    pthread_sigmask(SIG_SETMASK, &L->sigmask, NULL);
    put_where(L, L->fault_fiber);
    char *a = L->fault_addr;
    if (L->fault_sig == SIGSEGV && a >= L->stacks && a < L->stacks + L->stacks_len &&
        (size_t)(a - L->stacks) % L->slot < GUARD_BYTES) {
        sb_printf(L->err, "stack overflow: each CUDA thread has a %zu KiB stack (SimtLaunchOptions.stack_size)\n",
                  L->stack_size / 1024);
        return;
    }
    switch (L->fault_sig) {
    case SIGSEGV: sb_printf(L->err, "invalid memory access at address %p (SIGSEGV)\n", (void *)a); break;
    case SIGBUS: sb_printf(L->err, "bus error at address %p (SIGBUS)\n", (void *)a); break;
    case SIGFPE: sb_puts(L->err, "arithmetic exception (SIGFPE: integer division by zero or overflow)\n"); break;
    default: sb_printf(L->err, "illegal instruction at %p (SIGILL)\n", (void *)a); break;
    }
}

/* ---- blocks ---------------------------------------------------------------------------------- */

static void run_block(Launch *L)
{
    unsigned bx = L->block.x, by = L->block.y;
#ifdef SIMT_ASAN
    __asan_unpoison_memory_region(L->stacks, L->stacks_len);
#endif
    for (int t = 0; t < L->nthreads; t++) {
        Fiber *f = &L->fibers[t];
        f->info.thread_idx = (SimtDim3){(unsigned)t % bx, (unsigned)t / bx % by, (unsigned)t / (bx * by)};
        f->info.block_idx = L->block_idx;
        f->info.block_dim = L->block;
        f->info.grid_dim = L->grid;
        f->info.lane = (unsigned)t % WARP_SIZE;
        f->info.warp = (unsigned)t / WARP_SIZE;
        f->state = FS_READY;
        f->asan_fake = NULL;
        ctx_init(&f->ctx, f->stack, L->stack_size, fiber_main, L);
    }
    for (int wi = 0; wi < L->nwarps; wi++) {
        int n = L->nthreads - wi * WARP_SIZE;
        L->warps[wi].lanes = n >= WARP_SIZE ? 0xffffffffu : (1u << n) - 1;
        L->warps[wi].exited = 0;
        L->warps[wi].ngroups = 0;
    }
    L->ndone = L->nbarrier = 0;
    /* shared memory starts as garbage, as on a GPU: see simt.h */
    if (L->tls) memset(L->tls, 0xff, L->tls_bytes);
    if (L->dyn_shared) memset(L->dyn_shared, 0xff, L->dyn_bytes);
    for (;;) {
        bool ran = false;
        for (int i = 0; i < L->nthreads; i++) {
            Fiber *f = &L->fibers[L->reverse ? L->nthreads - 1 - i : i];
            if (f->state != FS_READY) continue;
            resume(L, f);
            if (L->fault_sig) report_fault(L);
            if (L->failed) return;
            ran = true;
        }
        if (L->ndone == L->nthreads) return;
        if (!ran && !barrier_release(L)) {
            report_deadlock(L);
            L->failed = true;
            return;
        }
    }
}

/* ---- simt_launch -------------------------------------------------------------------------------- */

static bool check_geometry(const SimtKernel *k, SimtDim3 grid, SimtDim3 block, size_t dyn, StrBuf *err)
{
    if (block.x < 1 || block.y < 1 || block.z < 1 || block.x > 1024 || block.y > 1024 || block.z > 64) {
        sb_printf(err, "kernel %s: invalid launch: block (%u, %u, %u): each dimension must be at least 1, x and y "
                       "at most 1024, z at most 64\n", k->name, block.x, block.y, block.z);
        return false;
    }
    unsigned long long n = (unsigned long long)block.x * block.y * block.z;
    if (n > SIMT_MAX_BLOCK_THREADS) {
        sb_printf(err, "kernel %s: invalid launch: block (%u, %u, %u) has %llu threads; CUDA allows at most %d\n",
                  k->name, block.x, block.y, block.z, n, SIMT_MAX_BLOCK_THREADS);
        return false;
    }
    if (grid.x < 1 || grid.y < 1 || grid.z < 1 || grid.x > 0x7fffffffu || grid.y > 65535 || grid.z > 65535) {
        sb_printf(err, "kernel %s: invalid launch: grid (%u, %u, %u): x must be 1 to 2^31-1, y and z 1 to 65535\n",
                  k->name, grid.x, grid.y, grid.z);
        return false;
    }
    if (dyn > SIMT_MAX_DYNAMIC_SHARED) {
        sb_printf(err, "kernel %s: invalid launch: %zu bytes of dynamic shared memory; at most %d (227 KiB)\n",
                  k->name, dyn, SIMT_MAX_DYNAMIC_SHARED);
        return false;
    }
    return true;
}

/* Maps the stacks: one slot per thread, a guard then the stack, the guard made inaccessible. */
static bool map_stacks(Launch *L)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    L->stack_size = (L->stack_size + page - 1) / page * page;
    L->slot = GUARD_BYTES + L->stack_size;
    if (!ck_mul_size(L->slot, (size_t)L->nthreads, &L->stacks_len)) return false;
    void *p = mmap(NULL, L->stacks_len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (p == MAP_FAILED) return false;
    L->stacks = p;
    for (int t = 0; t < L->nthreads; t++) {
        char *slot = L->stacks + (size_t)t * L->slot;
        if (mprotect(slot, GUARD_BYTES, PROT_NONE) != 0) return false;
        L->fibers[t].stack = slot + GUARD_BYTES;
    }
    return true;
}

static void launch_free(Launch *L)
{
    if (L->stacks) {
#ifdef SIMT_ASAN
        /* fibers abandoned by a failure leave poisoned redzones in the shadow of this memory */
        for (int t = 0; t < L->nthreads; t++)
            __asan_unpoison_memory_region(L->fibers[t].stack, L->stack_size);
#endif
        munmap(L->stacks, L->stacks_len);
    }
    free(L->fibers);
    free(L->warps);
    free(L->dyn_shared);
}

bool simt_launch(const SimtKernel *k, void **args, SimtDim3 grid, SimtDim3 block, size_t dynamic_shared,
                 const SimtLaunchOptions *o, StrBuf *err)
{
    if (!k || !k->entry) {
        sb_puts(err, "simt_launch: no kernel\n");
        return false;
    }
    if (tls_launch) {
        sb_printf(err, "kernel %s: launched from kernel code, which the emulator does not support\n", k->name);
        return false;
    }
    if (!check_geometry(k, grid, block, dynamic_shared, err)) return false;
    Launch L;
    memset(&L, 0, sizeof L);
    L.k = k;
    L.args = args;
    L.grid = grid;
    L.block = block;
    L.nthreads = (int)(block.x * block.y * block.z);
    L.nwarps = (L.nthreads + WARP_SIZE - 1) / WARP_SIZE;
    L.reverse = o && o->reverse;
    L.stack_size = o && o->stack_size ? o->stack_size : SIMT_DEFAULT_STACK;
    if (L.stack_size < MIN_STACK) L.stack_size = MIN_STACK;
    L.err = err;
    L.fibers = calloc((size_t)L.nthreads, sizeof *L.fibers);
    L.warps = calloc((size_t)L.nwarps, sizeof *L.warps);
    L.dyn_bytes = dynamic_shared;
    if (dynamic_shared && posix_memalign(&L.dyn_shared, 256, dynamic_shared) != 0) L.dyn_shared = NULL;
    if (!L.fibers || !L.warps || (dynamic_shared && !L.dyn_shared) || !map_stacks(&L)) {
        sb_printf(err, "kernel %s: out of memory for %d threads' stacks (%zu bytes each)\n", k->name, L.nthreads,
                  L.stack_size);
        launch_free(&L);
        return false;
    }
    if (k->module) L.tls = simt_module_shared_storage(k->module, &L.tls_bytes);

    install_fault_handlers();
    pthread_sigmask(SIG_SETMASK, NULL, &L.sigmask);
    L.altstack = malloc(ALTSTACK_BYTES);
    bool have_alt = false;
    if (L.altstack) {
        stack_t ss = {.ss_sp = L.altstack, .ss_flags = 0, .ss_size = ALTSTACK_BYTES};
        have_alt = sigaltstack(&ss, &L.old_altstack) == 0;
    }
    tls_launch = &L;
    for (unsigned z = 0; z < grid.z && !L.failed; z++)
        for (unsigned y = 0; y < grid.y && !L.failed; y++)
            for (unsigned x = 0; x < grid.x && !L.failed; x++) {
                L.block_idx = (SimtDim3){x, y, z};
                run_block(&L);
            }
    tls_launch = NULL;
    if (have_alt) {
        L.old_altstack.ss_flags &= ~SS_ONSTACK;
        sigaltstack(&L.old_altstack, NULL);
    }
    free(L.altstack);
    launch_free(&L);
    return !L.failed;
}
