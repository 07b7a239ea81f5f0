#include <crnn/nn/conv_recurrent.h>
#include <crnn/nn/sequence_classifier.h>

#include <iostream>

int main() {
  using namespace crnn::nn;

  // The paper's emotion CLSTM layer: windows of r1 = 5 frames every r2 = 2, an LSTM with
  // peepholes over each window, c at the last step as the window's 100 features,
  // max pooling over 2 windows with shift 2.
  ConvRecurrent clstm(ConvRecurrentOptions(/*k=*/26, /*n=*/100)
                          .kind(RecurrentKind::lstm)
                          .source(FeatureSource::cell)
                          .reduce(WindowReduce::last)
                          .window(5).shift(2).pool(2).pool_shift(2));

  PaddedSequence x{torch::randn({8, 300, 26}),                           // B × T × k, padded
                   torch::tensor({300, 280, 250, 200, 150, 90, 40, 3})};  // real lengths
  PaddedSequence y = clstm(x);  // y.data: 8 × 74 × 100, y.lengths: {74, 69, 61, 49, 36, 21, 9, 1}

  // A whole classifier with the paper's sizes, one training step:
  SequenceClassifier model(SequenceClassifierOptions::preset("emotion-clstm", /*classes=*/8));
  torch::Tensor labels = torch::tensor({0, 1, 2, 3, 4, 5, 6, 7});
  torch::Tensor log_p = model(x);                       // log of the averaged softmax, 8 × 8
  torch::Tensor loss = torch::nll_loss(log_p, labels);  // −log(mean_t softmax_t)[label]
  loss.backward();

  std::cout << "y: " << y.data.sizes() << ", lengths";
  for (int64_t i = 0; i < y.lengths.size(0); ++i) std::cout << " " << y.lengths[i].item<int64_t>();
  std::cout << "\nloss " << loss.item<double>() << " (ln 8 = 2.079 at chance)\n";
  return 0;
}
