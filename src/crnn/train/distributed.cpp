#include "crnn/train/distributed.h"

#include <fmt/core.h>
#include <fmt/format.h>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <thread>

#include "crnn/util/error_text.h"

#include "crnn/train/config.h"

namespace crnn::train {

namespace {

/// An integer environment variable in [lo, hi]; nullopt when unset.
std::optional<int64_t> env_int(const char* name, int64_t lo, int64_t hi) {
  const char* v = std::getenv(name);
  if (!v || !*v) return std::nullopt;
  char* end = nullptr;
  errno = 0;
  const long long x = std::strtoll(v, &end, 10);
  if (errno || *end || x < lo || x > hi)
    throw ConfigError(fmt::format("environment: {}={} is not an integer in {}..{}", name, v, lo, hi));
  return x;
}

}  // namespace

std::optional<DistributedConfig> distributed_from_environment() {
  const auto world = env_int("WORLD_SIZE", 1, 4096);
  if (!world || *world == 1) return std::nullopt;
  DistributedConfig c;
  c.world_size = static_cast<int>(*world);
  const auto rank = env_int("RANK", 0, *world - 1);
  if (!rank) throw ConfigError(fmt::format("environment: WORLD_SIZE={} but RANK is not set", *world));
  c.rank = static_cast<int>(*rank);
  if (const char* a = std::getenv("MASTER_ADDR"); a && *a) c.master_addr = a;
  if (const auto p = env_int("MASTER_PORT", 1, 65535)) c.master_port = static_cast<int>(*p);
  if (const auto t = env_int("CRNN_DIST_TIMEOUT", 1, 86400)) c.timeout = std::chrono::seconds(*t);
  return c;
}

int free_local_port() {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) throw std::runtime_error("distributed training: cannot open a socket to find a free port");
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = 0;
  socklen_t len = sizeof a;
  const bool ok = bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 &&
                  getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) == 0;
  close(fd);
  if (!ok) throw std::runtime_error("distributed training: cannot find a free port on 127.0.0.1");
  return ntohs(a.sin_port);
}

std::pair<int64_t, int64_t> shard_rows(int64_t batch_size, int rank, int world_size) {
  const int64_t begin = batch_size * rank / world_size, end = batch_size * (rank + 1) / world_size;
  return {begin, end};
}

namespace {

/// Every rank states `value` under `prefix` and reads every rank's, in rank
/// order; a rank that cannot be read is an error naming it and `what`.
std::vector<std::string> exchange(c10d::Store& store, const std::string& prefix, const std::string& what, int rank,
                                  int world_size, const std::string& value) {
  std::vector<std::string> values;
  int r = rank;
  try {
    store.set(prefix + std::to_string(rank), std::vector<uint8_t>(value.begin(), value.end()));
    for (r = 0; r < world_size; ++r) {
      const auto v = store.get(prefix + std::to_string(r));
      values.emplace_back(v.begin(), v.end());
    }
  } catch (const std::exception& e) {
    const std::string why = std::string(e.what()).substr(0, std::string(e.what()).find('\n')).substr(0, 200);
    throw std::runtime_error(
        r == rank ? fmt::format("distributed training: rank {} could not state its {}: {}", rank, what, why)
                  : fmt::format("distributed training: rank {}: rank {} did not state its {} in time{}: {}", rank, r,
                                what, r == 0 ? " (it stopped? its own output says why)" : "", why));
  }
  return values;
}

/// Before a rank stops on what every rank read under `prefix`: each says it
/// has read, and rank 0, which serves the store, waits (up to 10 s) for the
/// others, so that none of them finds the store gone before it has read.
void wait_until_read(c10d::Store& store, const std::string& prefix, int rank, int world_size) noexcept {
  try {
    store.set(prefix + "read/" + std::to_string(rank), std::vector<uint8_t>{1});
    if (rank != 0) return;
    std::vector<std::string> keys;
    for (int r = 1; r < world_size; ++r) keys.push_back(prefix + "read/" + std::to_string(r));
    store.wait(keys, std::chrono::milliseconds(10000));
  } catch (const std::exception&) {  // a rank that is gone has nothing left to read
  }
}

}  // namespace

namespace {

/// Ranks started with different WORLD_SIZEs: said as such, not as a failure
/// to join.
struct WorldSizeMismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace

struct ProcessGroup::Impl {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
};

ProcessGroup::ProcessGroup(const DistributedConfig& config) : impl_(std::make_unique<Impl>()), config_(config) {
  const std::string where = fmt::format("{}:{}", config.master_addr, config.master_port);
  {
    // A name that does not resolve made the store retry and log a warning
    // once a second until the timeout. It is resolved here instead, again
    // each second (a launcher may start ranks before rank 0's name is
    // known), with one line while waiting and one error at the end.
    const auto deadline = std::chrono::steady_clock::now() + config.timeout;
    bool said = false;
    while (true) {
      addrinfo hints{};
      hints.ai_socktype = SOCK_STREAM;
      addrinfo* found = nullptr;
      const int rc = getaddrinfo(config.master_addr.c_str(), nullptr, &hints, &found);
      if (found) freeaddrinfo(found);
      if (rc == 0) break;
      if (std::chrono::steady_clock::now() >= deadline)
        throw std::runtime_error(fmt::format("distributed training: rank {} of {}: MASTER_ADDR={} cannot be resolved "
                                             "({}; tried for {} s): give rank 0's host name or address as this "
                                             "machine knows it",
                                             config.rank, config.world_size, config.master_addr, gai_strerror(rc),
                                             config.timeout.count() / 1000));
      if (!said)
        fmt::print(stderr, "distributed: MASTER_ADDR={} does not resolve yet ({}); trying again each second\n",
                   config.master_addr, gai_strerror(rc));
      said = true;
      std::this_thread::sleep_for(std::chrono::seconds(1));
    }
  }
  try {
    c10d::TCPStoreOptions so;
    so.port = static_cast<std::uint16_t>(config.master_port);
    so.isServer = config.rank == 0;
    so.numWorkers = static_cast<std::size_t>(config.world_size);
    // check_world_size is the rendezvous: every rank states its WORLD_SIZE and
    // rank 0 waits for each. With the store's own wait, a rank 0 started with
    // a larger WORLD_SIZE waited for ranks that never came, and the others
    // could not learn why.
    so.waitWorkers = false;
    so.timeout = config.timeout;
    impl_->store = c10::make_intrusive<c10d::TCPStore>(config.master_addr, so);
    check_world_size();
    auto options = c10d::ProcessGroupGloo::Options::create(config.timeout);
    options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(config.master_addr));
    impl_->group = c10::make_intrusive<c10d::ProcessGroupGloo>(impl_->store, config.rank, config.world_size, options);
  } catch (const WorldSizeMismatch&) {
    throw;
  } catch (const std::exception& e) {
    // The cause in words, without LibTorch's backtrace; the hint from what failed.
    std::string why = crnn::error_text(e);
    why = why.substr(0, why.find('\n')).substr(0, 300);
    const auto has = [&](const char* part) { return why.find(part) != std::string::npos; };
    std::string hint;
    if (has("Address already in use"))
      hint = "the port is in use: choose another MASTER_PORT";
    else if (has("imeout") || has("timed out"))
      hint = config.rank == 0 ? fmt::format("not every rank arrived within {} s: did all {} start, with the same "
                                            "MASTER_ADDR, MASTER_PORT and WORLD_SIZE, and distinct RANKs?",
                                            config.timeout.count() / 1000, config.world_size)
                              : "is rank 0 running and reachable?";
    else
      hint = "do all ranks have the same MASTER_ADDR, MASTER_PORT and WORLD_SIZE, and distinct RANKs?";
    throw std::runtime_error(fmt::format("distributed training: rank {} of {} could not join the process group at "
                                         "{} ({}): {}",
                                         config.rank, config.world_size, where, hint, why));
  }
}

void ProcessGroup::check_world_size() {
  // Before Gloo connects the ranks: with another WORLD_SIZE it fails with
  // its own "enforce fail … 136 vs 272" (sizes of the address lists).
  auto& store = *impl_->store;
  const std::string prefix = "crnn/world_size/";
  const auto size_of = [&](int r) {
    const auto v = store.get(prefix + std::to_string(r));
    return std::string(v.begin(), v.end());
  };
  const std::string mine = std::to_string(config_.world_size);
  std::string theirs;
  int other = 0;
  try {
    store.set(prefix + std::to_string(config_.rank), std::vector<uint8_t>(mine.begin(), mine.end()));
    if (config_.rank != 0) {
      theirs = size_of(0);
      store.set(prefix + "read/" + std::to_string(config_.rank), std::vector<uint8_t>{1});
    } else {
      for (other = 1; other < config_.world_size && (theirs = size_of(other)) == mine; ++other) {
      }
    }
  } catch (const std::exception&) {
    if (theirs.empty() || theirs == mine) throw;  // not a mismatch: the constructor says why, with its hint
  }
  if (config_.rank == 0 && !theirs.empty() && theirs != mine) {
    // Let every rank that may have started read rank 0's size before the
    // store, which rank 0 serves, goes.
    const int most = std::max(config_.world_size, std::atoi(theirs.c_str()));
    std::vector<std::string> keys;
    for (int r = 1; r < most && r < 4096; ++r) keys.push_back(prefix + "read/" + std::to_string(r));
    try {
      store.wait(keys, std::chrono::milliseconds(5000));
    } catch (const std::exception&) {  // ranks that never started have nothing to read
    }
  }
  if (theirs != mine)
    throw WorldSizeMismatch(fmt::format("distributed training: rank {} was started with WORLD_SIZE={} and rank {} "
                                        "with WORLD_SIZE={}: start every rank with the same WORLD_SIZE",
                                        config_.rank, mine, config_.rank == 0 ? other : 0, theirs));
}

ProcessGroup::~ProcessGroup() = default;

void ProcessGroup::allreduce_sum(std::vector<torch::Tensor>& tensors) {
  if (tensors.empty()) return;
  // One buffer in the first tensor's type (float for gradients: half the
  // bytes of double on the wire).
  const auto type = tensors.front().scalar_type();
  std::vector<torch::Tensor> flat_parts;
  for (const auto& t : tensors) flat_parts.push_back(t.reshape({-1}).to(type));
  auto buffer = torch::cat(flat_parts);
  std::vector<torch::Tensor> io{buffer};
  try {
    const auto t0 = std::chrono::steady_clock::now();
    impl_->group->allreduce(io)->wait();
    allreduce_seconds_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    allreduce_bytes_ += buffer.numel() * static_cast<int64_t>(buffer.element_size());
    ++allreduce_calls_;
  } catch (const std::exception& e) {
    std::string msg = e.what();
    msg = msg.substr(0, msg.find('\n'));
    std::vector<int> others;
    for (int r = 0; r < config_.world_size; ++r)
      if (r != config_.rank) others.push_back(r);
    throw std::runtime_error(fmt::format(
        "distributed training: rank {}: allreduce failed — another rank stopped or is unreachable ({} {}; timeout {} "
        "s): {}",
        config_.rank, others.size() == 1 ? "rank" : "one of ranks", fmt::join(others, ", "),
        std::chrono::duration_cast<std::chrono::seconds>(config_.timeout).count(), msg));
  }
  int64_t offset = 0;
  for (auto& t : tensors) {
    const int64_t n = t.numel();
    t.copy_(io[0].narrow(0, offset, n).view(t.sizes()));
    offset += n;
  }
}

void ProcessGroup::check_same(const std::string& what, const std::string& fingerprint) {
  const std::string prefix = "crnn/check/" + what + "/";
  const auto values = exchange(*impl_->store, prefix, what, config_.rank, config_.world_size, fingerprint);
  std::vector<int> differ;
  for (int r = 1; r < config_.world_size; ++r)
    if (values[static_cast<size_t>(r)] != values[0]) differ.push_back(r);
  if (differ.empty()) return;
  wait_until_read(*impl_->store, prefix, config_.rank, config_.world_size);
  throw std::runtime_error(fmt::format("distributed training: rank(s) {} differ from rank 0 in their {}; every "
                                       "rank must run the same config on the same data (and the same checkpoint and --impl)",
                                       fmt::join(differ, ", "), what));
}

std::string ProcessGroup::first_refusal(const std::string& refusal) {
  const std::string prefix = "crnn/start/";
  const auto values = exchange(*impl_->store, prefix, "readiness to start", config_.rank, config_.world_size, refusal);
  for (int r = 0; r < config_.world_size; ++r)
    if (!values[static_cast<size_t>(r)].empty()) {
      wait_until_read(*impl_->store, prefix, config_.rank, config_.world_size);
      return fmt::format("rank {}: {}", r, values[static_cast<size_t>(r)]);
    }
  return "";
}

}  // namespace crnn::train
