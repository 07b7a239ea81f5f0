// Data-parallel training (train/distributed.h) on 127.0.0.1: two ranks train
// the run one process trains; faults end every rank with a message.
#include "crnn/train/distributed.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cmath>
#include <fstream>
#include <iterator>
#include <thread>

#include "crnn/train/checkpoint.h"
#include "crnn/train/run_files.h"
#include "support/test_support.h"
#include "train/tiny_corpus.h"
#include "train/tiny_experiment.h"

namespace {

using crnn::test::run_command;

/// `crnn --threads 1 ARGS` with ENV (e.g. "RANK=1 WORLD_SIZE=2 ...") in front.
std::string crnn_cmd(const std::string& env, const std::string& args) {
  return env + " '" + std::string(CRNN_BINARY) + "' --threads 1 " + args;
}

bool near_rel(double a, double b, double rel = 1e-5) { return std::abs(a - b) <= rel * std::max({1.0, std::abs(a), std::abs(b)}); }

/// Two ranks started by hand on a free local port, as two terminals would:
/// rank 1 in the background (its output in DIR/rank1.log) with `rank1_extra`
/// after the common arguments, rank 0 in the foreground; rank 0's result.
crnn::test::CliRun two_terminals(const crnn::test::TempDir& dir, const std::string& train_args,
                                 const std::string& rank1_extra) {
  const std::string env = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(crnn::train::free_local_port()) +
                          " WORLD_SIZE=2 CRNN_DIST_TIMEOUT=20";
  return run_command("(" + crnn_cmd("RANK=1 " + env, train_args + " " + rank1_extra) + " > '" + dir.file("rank1.log") +
                     "' 2>&1 &) ; " + crnn_cmd("RANK=0 " + env, train_args));
}

/// Waits up to `seconds` for the file at `path` (a background rank's log) to
/// contain `part`; its text either way.
std::string wait_for_text(const std::string& path, const std::string& part, double seconds = 30) {
  const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
  std::string text;
  do {
    std::ifstream f(path);
    text.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
    if (text.find(part) != std::string::npos) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  } while (std::chrono::steady_clock::now() < until);
  return text;
}

}  // namespace

TEST(Distributed, ShardRowsCoverTheBatchOnceInOrder) {
  for (int64_t b : {1, 7, 32, 33})
    for (int w : {1, 2, 3, 5}) {
      int64_t next = 0;
      for (int r = 0; r < w; ++r) {
        auto [begin, end] = crnn::train::shard_rows(b, r, w);
        EXPECT_EQ(begin, next);
        EXPECT_GE(end, begin);
        EXPECT_LE(end - begin, (b + w - 1) / w);
        next = end;
      }
      EXPECT_EQ(next, b);
    }
}

// Two ranks (--nproc 2) and one process, same global batch: the same losses,
// validation results, best epoch and final weights (within float tolerance).
TEST(Distributed, TwoRanksTrainTheRunOneProcessTrains) {
  crnn::test::TempDir dir;
  auto c = crnn::test::make_tiny_corpus(dir);
  std::ofstream(dir.file("c.toml")) << crnn::test::tiny_config(c, 4);
  auto one = run_command(crnn_cmd("", "train '" + dir.file("c.toml") + "' -o '" + dir.file("one") + "'"));
  ASSERT_EQ(one.status, 0) << one.out;
  auto two = run_command(crnn_cmd("", "train --nproc 2 '" + dir.file("c.toml") + "' -o '" + dir.file("two") + "'"));
  ASSERT_EQ(two.status, 0) << two.out;
  EXPECT_NE(two.out.find("distributed: rank 0 of 2"), std::string::npos) << two.out;
  const auto a = crnn::train::read_metrics_csv(dir.file("one/metrics.csv"));
  const auto b = crnn::train::read_metrics_csv(dir.file("two/metrics.csv"));
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_TRUE(near_rel(a[i].train_loss, b[i].train_loss)) << i << ": " << a[i].train_loss << " vs " << b[i].train_loss;
    EXPECT_TRUE(near_rel(a[i].val_loss, b[i].val_loss)) << i;
    EXPECT_EQ(a[i].val_ua_recall, b[i].val_ua_recall) << i;
  }
  const auto ma = crnn::train::load_model(dir.file("one/last.pt")), mb = crnn::train::load_model(dir.file("two/last.pt"));
  EXPECT_EQ(ma.state.best_epoch, mb.state.best_epoch);
  for (const auto& p : ma.model->named_parameters()) {
    const auto q = mb.model->named_parameters()[p.key()];
    const double diff = (p.value() - q).abs().max().item<double>(), scale = p.value().abs().max().item<double>();
    EXPECT_LE(diff, 1e-5 * std::max(1.0, scale)) << p.key();
  }
  // The checkpoint does not depend on the world size: one process resumes it.
  auto r = run_command(crnn_cmd("", "train --resume '" + dir.file("two") + "' --set train.max_epochs=5"));
  EXPECT_EQ(r.status, 0) << r.out;
}

// A rank killed mid-run: the other stops with an error naming the failure
// (no hang), and the run directory's last checkpoint resumes in one process.
TEST(Distributed, ALostRankStopsTheOthersWithAMessage) {
  crnn::test::TempDir dir;
  auto c = crnn::test::make_tiny_corpus(dir);
  std::ofstream(dir.file("c.toml")) << crnn::test::tiny_config(c, 6);
  const auto t0 = std::chrono::steady_clock::now();
  // Rank 1 dies abruptly after 7 batches (in epoch 2); rank 0 runs in the foreground.
  auto r = two_terminals(dir, "train '" + dir.file("c.toml") + "' -o '" + dir.file("run") + "'", "--crash-after-batches 7");
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("allreduce failed — another rank stopped or is unreachable (rank 1;"), std::string::npos) << r.out;
  EXPECT_LT(seconds, 60) << r.out;
  auto resumed = run_command(crnn_cmd("", "train --resume '" + dir.file("run") + "'"));
  EXPECT_EQ(resumed.status, 0) << resumed.out;
}

// Ranks started with different configs (or layer implementations) refuse to
// start, every one with the same message (rank 0 waits until the others have
// read what it read before it stops: they used to find its store gone).
TEST(Distributed, RanksWithDifferentConfigsRefuseToStart) {
  crnn::test::TempDir dir;
  auto c = crnn::test::make_tiny_corpus(dir);
  std::ofstream(dir.file("c.toml")) << crnn::test::tiny_config(c, 2);
  auto r = two_terminals(dir, "train '" + dir.file("c.toml") + "' -o '" + dir.file("run") + "'", "--set train.lr=0.02");
  EXPECT_NE(r.status, 0) << r.out;
  const std::string expected = "rank(s) 1 differ from rank 0 in their config;";
  EXPECT_NE(r.out.find(expected), std::string::npos) << r.out;
  const std::string rank1 = wait_for_text(dir.file("rank1.log"), expected);
  EXPECT_NE(rank1.find(expected), std::string::npos) << rank1;

  r = two_terminals(dir, "train '" + dir.file("c.toml") + "' -o '" + dir.file("run2") + "'", "--impl composed");
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("rank(s) 1 differ from rank 0 in their layer implementation (--impl);"), std::string::npos)
      << r.out;
}

// Rank 0 refusing the run directory (it already holds a run): rank 1 stops
// with rank 0's reason, not with a broken connection to rank 0's store.
TEST(Distributed, ARunDirectoryRefusedByRank0IsEveryRanksError) {
  crnn::test::TempDir dir;
  auto c = crnn::test::make_tiny_corpus(dir);
  std::ofstream(dir.file("c.toml")) << crnn::test::tiny_config(c, 1);
  const std::string args = "train '" + dir.file("c.toml") + "' -o '" + dir.file("run") + "'";
  ASSERT_EQ(run_command(crnn_cmd("", args)).status, 0);
  auto r = two_terminals(dir, args, "");
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, dir.file("run") + ": already holds a run (summary.json)"));
  const std::string expected = "distributed training: the run does not start: rank 0: " + dir.file("run") +
                               ": already holds a run (summary.json)";
  const std::string rank1 = wait_for_text(dir.file("rank1.log"), expected);
  EXPECT_TRUE(crnn::test::contains(rank1, expected));
  // --nproc: rank 1's log in the run directory has the reason too (it is not
  // stopped before it could write it).
  r = run_command(crnn_cmd("", "train --nproc 2 '" + dir.file("c.toml") + "' -o '" + dir.file("run") + "'"));
  EXPECT_EQ(r.status, 2) << r.out;
  const std::string log = wait_for_text(dir.file("run/rank1.log"), expected, 5);
  EXPECT_TRUE(crnn::test::contains(log, expected));
}

// Ranks started with different WORLD_SIZEs are told so by name, on both
// sides, instead of Gloo's "enforce fail … 136 vs 272".
TEST(Distributed, RanksWithDifferentWorldSizesSaySo) {
  crnn::test::TempDir dir;
  auto c = crnn::test::make_tiny_corpus(dir);
  std::ofstream(dir.file("c.toml")) << crnn::test::tiny_config(c, 1);
  const std::string env = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(crnn::train::free_local_port()) +
                          " CRNN_DIST_TIMEOUT=20";
  const std::string args = "train '" + dir.file("c.toml") + "' -o '" + dir.file("run") + "'";
  auto r = run_command("(" + crnn_cmd("RANK=1 WORLD_SIZE=3 " + env, args) + " > '" + dir.file("rank1.log") +
                       "' 2>&1 &) ; " + crnn_cmd("RANK=0 WORLD_SIZE=2 " + env, args));
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_TRUE(crnn::test::contains(
      r.out, "rank 0 was started with WORLD_SIZE=2 and rank 1 with WORLD_SIZE=3: start every rank with the same"));
  const std::string expected = "rank 1 was started with WORLD_SIZE=3 and rank 0 with WORLD_SIZE=2";
  const std::string rank1 = wait_for_text(dir.file("rank1.log"), expected);
  EXPECT_TRUE(crnn::test::contains(rank1, expected));
  // The other way round: rank 0's the larger (it used to wait for a rank 2 that never came).
  const std::string env2 = "MASTER_ADDR=127.0.0.1 MASTER_PORT=" + std::to_string(crnn::train::free_local_port()) +
                           " CRNN_DIST_TIMEOUT=20";
  r = run_command("(" + crnn_cmd("RANK=1 WORLD_SIZE=2 " + env2, args) + " > '" + dir.file("rank1b.log") +
                  "' 2>&1 &) ; " + crnn_cmd("RANK=0 WORLD_SIZE=3 " + env2, args));
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "rank 0 was started with WORLD_SIZE=3 and rank 1 with WORLD_SIZE=2")) << r.out;
  const std::string expected2 = "rank 1 was started with WORLD_SIZE=2 and rank 0 with WORLD_SIZE=3";
  const std::string rank1b = wait_for_text(dir.file("rank1b.log"), expected2);
  EXPECT_TRUE(crnn::test::contains(rank1b, expected2));
}

TEST(Distributed, BadEnvironmentNamesTheVariable) {
  crnn::test::TempDir dir;
  auto c = crnn::test::make_tiny_corpus(dir);
  std::ofstream(dir.file("c.toml")) << crnn::test::tiny_config(c, 1);
  auto r = run_command(crnn_cmd("WORLD_SIZE=2 RANK=5", "train '" + dir.file("c.toml") + "' -o '" + dir.file("run") + "'"));
  EXPECT_EQ(r.status, 2) << r.out;
  EXPECT_NE(r.out.find("RANK=5 is not an integer in 0..1"), std::string::npos) << r.out;
}

// A port already in use and an unreachable master: errors that say so, no hang.
TEST(Distributed, PortInUseAndUnreachableMasterAreClearErrors) {
  crnn::test::TempDir dir;
  auto c = crnn::test::make_tiny_corpus(dir);
  std::ofstream(dir.file("c.toml")) << crnn::test::tiny_config(c, 1);
  const int busy = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_ANY);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  ASSERT_EQ(bind(busy, reinterpret_cast<sockaddr*>(&a), sizeof a), 0);
  ASSERT_EQ(listen(busy, 1), 0);
  getsockname(busy, reinterpret_cast<sockaddr*>(&a), &len);
  const std::string env = "MASTER_ADDR=127.0.0.1 WORLD_SIZE=2 CRNN_DIST_TIMEOUT=3 MASTER_PORT=";
  auto r = run_command(crnn_cmd("RANK=0 " + env + std::to_string(ntohs(a.sin_port)),
                                "train '" + dir.file("c.toml") + "' -o '" + dir.file("a") + "'"));
  close(busy);
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("rank 0 of 2 could not join the process group at 127.0.0.1:"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("the port is in use: choose another MASTER_PORT"), std::string::npos) << r.out;
  EXPECT_EQ(r.out.find("frame #"), std::string::npos) << r.out;  // no C++ backtrace
  // Rank 0 alone, its peer never started: the wait ends with what to check, not "port in use".
  r = run_command(crnn_cmd("RANK=0 " + env + std::to_string(crnn::train::free_local_port()),
                           "train '" + dir.file("c.toml") + "' -o '" + dir.file("c") + "'"));
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("not every rank arrived within 3 s: did all 2 start, with the same MASTER_ADDR"),
            std::string::npos)
      << r.out;
  EXPECT_EQ(r.out.find("frame #"), std::string::npos) << r.out;
  r = run_command(crnn_cmd("RANK=1 " + env + std::to_string(crnn::train::free_local_port()),
                           "train '" + dir.file("c.toml") + "' -o '" + dir.file("b") + "'"));
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("is rank 0 running and reachable?"), std::string::npos) << r.out;
  // A host name that does not resolve (.invalid never does, RFC 2606): said at once, not retried until the timeout.
  r = run_command(crnn_cmd("RANK=1 WORLD_SIZE=2 CRNN_DIST_TIMEOUT=2 MASTER_PORT=29500 MASTER_ADDR=rank0.invalid",
                           "train '" + dir.file("c.toml") + "' -o '" + dir.file("d") + "'"));
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "MASTER_ADDR=rank0.invalid does not resolve yet")) << r.out;  // said once
  EXPECT_EQ(crnn::test::count(r.out, "does not resolve yet"), 1u) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "MASTER_ADDR=rank0.invalid cannot be resolved")) << r.out;
  EXPECT_TRUE(crnn::test::contains(r.out, "tried for 2 s")) << r.out;
}
