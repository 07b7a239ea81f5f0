#pragma once
/// \file distributed.h
/// Data-parallel training on torch.distributed's own engine: LibTorch's c10d
/// ProcessGroupGloo over a TCPStore rendezvous, started from the standard
/// environment (MASTER_ADDR, MASTER_PORT, RANK, WORLD_SIZE — what torchrun and
/// Slurm launchers set; `crnn train --nproc N` sets them for N local ranks).
///
/// The trainer (trainer.cpp) splits every global batch across the ranks, sums
/// the gradients (and the loss) with one allreduce per step, shards the
/// validation set and sums its counts; rank 0 alone writes the run directory.
/// See docs/training.md, "Several processes or machines".
///
/// \code
///   if (auto env = crnn::train::distributed_from_environment()) {
///     crnn::train::ProcessGroup group(*env);
///     std::vector<torch::Tensor> grads = ...;
///     group.allreduce_sum(grads);
///   }
/// \endcode

#include <torch/torch.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace crnn::train {

struct DistributedConfig {
  int rank = 0;
  int world_size = 1;
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  /// How long a collective waits for the other ranks before failing (a rank
  /// that died or hangs): CRNN_DIST_TIMEOUT seconds, default 60.
  std::chrono::milliseconds timeout{60000};
};

/// The process group this process should join, from the environment; nullopt
/// when WORLD_SIZE is unset or 1. Throws ConfigError naming the variable when
/// one is missing or malformed (RANK outside 0..WORLD_SIZE−1, a port that is
/// not one, ...).
std::optional<DistributedConfig> distributed_from_environment();

/// This process's membership in a c10d Gloo process group.
class ProcessGroup {
 public:
  /// Rendezvous through a TCPStore at master_addr:master_port (rank 0 serves
  /// it) and connects the ranks. Throws std::runtime_error naming the address
  /// when the port is taken or the master cannot be reached within the timeout.
  explicit ProcessGroup(const DistributedConfig& config);
  ~ProcessGroup();
  ProcessGroup(const ProcessGroup&) = delete;
  ProcessGroup& operator=(const ProcessGroup&) = delete;

  int rank() const { return config_.rank; }
  int world_size() const { return config_.world_size; }

  /// Sums float or double `tensors` over all ranks, in place, with one
  /// allreduce of a flat buffer. Throws std::runtime_error saying that a rank
  /// stopped or is unreachable when the collective fails or times out.
  void allreduce_sum(std::vector<torch::Tensor>& tensors);

  /// Every rank states `fingerprint` for `what` (the run's config, its
  /// training data); throws std::runtime_error on every rank, listing the
  /// ranks that differ from rank 0, when they do not all agree.
  void check_same(const std::string& what, const std::string& fingerprint);

  /// Every rank states why it cannot start ("" when it can: rank 0 refusing
  /// a run directory that already holds a run, say); returns the first reason
  /// of any rank as "rank R: reason", or "" when every rank can start. A rank
  /// that stops alone would leave the others with a broken connection and no
  /// reason (rank 0 serves the store they wait on), so each stops with the
  /// reason instead, and no rank returns a refusal before all have read it.
  std::string first_refusal(const std::string& refusal);

  /// Time spent in allreduce_sum, its calls and bytes, since construction
  /// (for the scaling figures in docs/performance.md).
  double allreduce_seconds() const { return allreduce_seconds_; }
  int64_t allreduce_calls() const { return allreduce_calls_; }
  int64_t allreduce_bytes() const { return allreduce_bytes_; }

 private:
  /// Every rank's WORLD_SIZE equals rank 0's; throws naming both otherwise.
  void check_world_size();
  double allreduce_seconds_ = 0;
  int64_t allreduce_calls_ = 0, allreduce_bytes_ = 0;
  struct Impl;
  std::unique_ptr<Impl> impl_;
  DistributedConfig config_;
};

/// A TCP port on 127.0.0.1 that is free now (for `--nproc`'s local rendezvous).
int free_local_port();

/// Rows [begin, end) of a global batch of `batch_size` that `rank` of
/// `world_size` trains on: contiguous, sizes differing by at most one.
std::pair<int64_t, int64_t> shard_rows(int64_t batch_size, int rank, int world_size);

}  // namespace crnn::train
