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

}  // namespace crnn
