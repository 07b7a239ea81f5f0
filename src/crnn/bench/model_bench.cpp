#include "crnn/bench/model_bench.h"

#include <fmt/core.h>
#include <torch/torch.h>

#include <sstream>
#include <stdexcept>

#include "crnn/bench/measure.h"
#include "crnn/kernels/precision.h"
#include "crnn/nn/options.h"
#include "crnn/nn/sequence_classifier.h"

namespace crnn::bench {
namespace {

/// Restores the default implementation of newly built layers on scope exit.
class DefaultImplementation {
 public:
  explicit DefaultImplementation(nn::Implementation impl) : saved_(nn::default_implementation()) {
    nn::set_default_implementation(impl);
  }
  ~DefaultImplementation() { nn::set_default_implementation(saved_); }
  DefaultImplementation(const DefaultImplementation&) = delete;
  DefaultImplementation& operator=(const DefaultImplementation&) = delete;

 private:
  nn::Implementation saved_;
};

// The figures' names on the worker's output, in the order it prints them.
struct Field {
  const char* key;
  double Figures::*member;
  const char* format;
};
const Field kFields[] = {
    {"train_s", &Figures::train_s, "{} {:.6f}\n"},
    {"infer_s", &Figures::infer_s, "{} {:.6f}\n"},
    {"train_frames_per_s", &Figures::train_frames_per_s, "{} {:.3f}\n"},
    {"infer_frames_per_s", &Figures::infer_frames_per_s, "{} {:.3f}\n"},
    {"peak_rss_mb", &Figures::peak_rss_mb, "{} {:.1f}\n"},
    {"baseline_rss_mb", &Figures::baseline_rss_mb, "{} {:.1f}\n"},
};

}  // namespace

int64_t classes_for(const std::string& model) { return model.rfind("emotion", 0) == 0 ? 8 : 3; }

bool is_crnn(const std::string& model) {
  return model.find("clstm") != std::string::npos || model.find("cblstm") != std::string::npos;
}

Figures time_model(const WorkerOptions& o) {
  if (o.phase != "both" && o.phase != "train" && o.phase != "infer")
    throw std::invalid_argument("bench: phase must be both, train or infer, got '" + o.phase + "'");
  DefaultImplementation impl(nn::parse_implementation(o.impl));
  kernels::PrecisionGuard precision(kernels::parse_precision(o.precision));
  torch::manual_seed(0);
  auto options = nn::SequenceClassifierOptions::preset(o.model, classes_for(o.model));
  nn::SequenceClassifier net(options);
  auto x = torch::randn({o.batch, o.frames, options.input_size()});
  auto lengths = torch::full({o.batch}, o.frames, torch::kLong);
  auto labels = torch::randint(options.num_classes(), {o.batch}, torch::kLong);
  torch::optim::Adam adam(net->parameters(), torch::optim::AdamOptions(0.002));
  nn::PaddedSequence batch{x, lengths};
  Figures f;
  f.baseline_rss_mb = current_rss_mb();

  auto train_step = [&] {
    adam.zero_grad();
    auto loss = torch::nll_loss(net->forward(batch), labels);
    loss.backward();
    adam.step();
  };
  auto infer_step = [&] {
    torch::NoGradGuard no_grad;
    auto p = net->forward(batch);
    (void)p;
  };
  net->train();
  f.train_s = o.phase != "infer" ? time_median(train_step, o.min_seconds, o.min_reps) : 1.0;
  f.peak_rss_mb = peak_rss_mb();  // training's peak, before inference runs
  net->eval();
  f.infer_s = o.phase != "train" ? time_median(infer_step, o.min_seconds, o.min_reps) : 1.0;
  const double frames = static_cast<double>(o.batch * o.frames);
  f.train_frames_per_s = frames / f.train_s;
  f.infer_frames_per_s = frames / f.infer_s;
  return f;
}

std::string format_figures(const Figures& f) {
  std::string out;
  for (const auto& field : kFields) out += fmt::format(fmt::runtime(field.format), field.key, f.*field.member);
  return out;
}

Figures parse_figures(const std::string& text) {
  Figures f;
  std::vector<bool> seen(std::size(kFields), false);
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream in(line);
    std::string key;
    double value = 0;
    if (!(in >> key >> value)) continue;
    for (size_t i = 0; i < std::size(kFields); ++i) {
      if (key == kFields[i].key) {
        f.*kFields[i].member = value;
        seen[i] = true;
      }
    }
  }
  for (size_t i = 0; i < std::size(kFields); ++i)
    if (!seen[i]) throw std::runtime_error(std::string("no '") + kFields[i].key + "' line");
  return f;
}

Figures median_figures(const std::vector<Figures>& runs, int64_t frames_per_step) {
  if (runs.empty()) throw std::invalid_argument("median_figures: no runs");
  Figures out;
  for (const auto& field : kFields) {
    std::vector<double> values;
    for (const auto& r : runs) values.push_back(r.*field.member);
    out.*field.member = median(values);
  }
  // Rates from the median times (a median of rates differs slightly for an even count).
  out.train_frames_per_s = static_cast<double>(frames_per_step) / out.train_s;
  out.infer_frames_per_s = static_cast<double>(frames_per_step) / out.infer_s;
  return out;
}

std::vector<std::string> worker_args(const WorkerOptions& o, int threads) {
  std::vector<std::string> args{"bench", "--threads", std::to_string(threads), "--worker",
                                "--model", o.model, "--impl", o.impl,
                                "--batch", std::to_string(o.batch), "--frames", std::to_string(o.frames),
                                "--min-seconds", fmt::format("{}", o.min_seconds),
                                "--min-reps", std::to_string(o.min_reps)};
  if (o.phase != "both") args.insert(args.end(), {"--phase", o.phase});
  if (o.precision != "fp32") args.insert(args.end(), {"--precision", o.precision});
  return args;
}

}  // namespace crnn::bench
