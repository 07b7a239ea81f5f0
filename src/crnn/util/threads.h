#pragma once
/// \file threads.h
/// One place that decides how many CPU threads crnn uses.
///
/// LibTorch's intra-op pool and OpenBLAS keep separate thread counts; if they
/// disagree, GEMMs issued from inside a parallel region oversubscribe the
/// cores. `set_num_threads` sets both.
///
/// \code
///   crnn::set_num_threads(0);   // 0 = all cores
/// \endcode

#include <functional>

namespace crnn {

/// Number of cores visible to this process (sched affinity aware).
int hardware_threads();

/// Most threads crnn accepts (--threads, train.threads): beyond a few hundred a
/// count is a typo, and thousands of OpenMP/OpenBLAS threads stall or exhaust memory.
inline constexpr int kMaxThreads = 256;

/// Sets LibTorch's intra-op threads and OpenBLAS's threads to `n`
/// (`n <= 0` means all cores; at most kMaxThreads). Returns the count actually set.
int set_num_threads(int n);

/// The count a user gave (`crnn --threads N`, crnn.set_num_threads(N)):
/// set_num_threads(n), and for n > 0 it stays, so that a config's
/// train.threads does not change it (n = 0, all cores, lets configs set it
/// again). Why: `crnn experiment --jobs` gives each worker its share of the
/// cores, which a config asking for more would oversubscribe.
int set_num_threads_explicitly(int n);

/// A config's train.threads: set_num_threads(n) for n > 0, unless a count was
/// given explicitly (set_num_threads_explicitly), which wins.
void set_num_threads_from_config(int64_t n);

/// Makes idle pool threads sleep instead of spin, by re-executing the program
/// with OMP_WAIT_POLICY=PASSIVE and OPENBLAS_THREAD_TIMEOUT=4 set (each unless
/// the user set it). Why: LibTorch's OpenMP pool and OpenBLAS's pthread pool
/// share the cores. With libgomp's default policy the OpenMP workers keep
/// spinning after every parallel op and steal the cores the next GEMM needs
/// (3–5× slower training steps on 2 cores); OpenBLAS's workers likewise poll
/// with sched_yield for ~2^28 cycles after each threaded GEMM, taking a core
/// from the fused kernels' parallel blocks (OPENBLAS_THREAD_TIMEOUT=4: 2^4
/// cycles; fused emotion-clstm training 69k → 100k frames/s on 2 cores;
/// docs/performance.md). Both libraries read these only at load time, hence
/// the re-exec. Call first thing in main(); returns only if no re-exec was
/// needed (or it failed).
void ensure_quiet_idle_threads(char** argv);

/// OpenBLAS's own thread count (1 when the BLAS has no such setting).
int blas_num_threads();

/// Runs BLAS calls single-threaded while alive, restoring the count after.
/// For kernels that call many small GEMMs from inside their own parallel
/// loop: one BLAS thread per caller instead of two pools fighting for cores.
/// Runs `side` on a long-lived helper thread while the caller runs `here`,
/// and returns when both finished, rethrowing the first exception (`here`'s
/// first). Why not a std::thread per call: LibTorch initializes every new
/// thread that enters a parallel op by recreating its pthreadpool, whose fresh
/// workers then spin (measured: 3–10 % of the CPU samples of the BLSTM
/// presets, which ran their second direction on a new thread per forward).
/// A second caller while the helper is busy runs both parts itself, in turn.
void run_alongside(const std::function<void()>& side, const std::function<void()>& here);

class SingleThreadedBlas {
 public:
  SingleThreadedBlas();
  ~SingleThreadedBlas();
  SingleThreadedBlas(const SingleThreadedBlas&) = delete;
  SingleThreadedBlas& operator=(const SingleThreadedBlas&) = delete;

 private:
  int saved_;
};

}  // namespace crnn
