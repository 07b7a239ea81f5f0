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

namespace crnn {

/// Number of cores visible to this process (sched affinity aware).
int hardware_threads();

/// Sets LibTorch's intra-op threads and OpenBLAS's threads to `n`
/// (`n <= 0` means all cores). Returns the count actually set.
int set_num_threads(int n);

/// Makes idle OpenMP threads sleep instead of spin (OMP_WAIT_POLICY=PASSIVE)
/// by re-executing the program with that variable set, unless the user set it.
/// Why: LibTorch's OpenMP pool and OpenBLAS's pthread pool share the cores;
/// with libgomp's default policy the OpenMP workers keep spinning after every
/// parallel op and steal the cores the next GEMM needs — measured 3–5× slower
/// training steps on 2 cores (docs/performance.md). libgomp reads the policy
/// only at load time, hence the re-exec. Call first thing in main(); returns
/// only if no re-exec was needed (or it failed).
void ensure_passive_openmp_wait(char** argv);

/// OpenBLAS's own thread count (1 when the BLAS has no such setting).
int blas_num_threads();

/// Runs BLAS calls single-threaded while alive, restoring the count after.
/// For kernels that call many small GEMMs from inside their own parallel
/// loop: one BLAS thread per caller instead of two pools fighting for cores.
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
