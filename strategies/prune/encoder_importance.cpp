#include "strategies/prune/encoder_importance.h"

#include "strategies/prune/channel_graph.h"

namespace slim::prune {

namespace {

// Squares of `tensor` summed per block of `size` along `dim`, folding `parts` consecutive
// parts of `blocks` blocks onto each other: [blocks].
torch::Tensor BlockSquares(const torch::Tensor& tensor, int64_t dim, int64_t parts, int64_t blocks,
                           int64_t size) {
  auto moved = tensor.detach().to(torch::kDouble).movedim(dim, 0);
  return moved.reshape({parts, blocks, size, -1}).pow(2).sum(std::vector<int64_t>{0, 2, 3});
}

std::vector<double> Values(const torch::Tensor& scores) {
  const auto contiguous = scores.to(torch::kDouble).contiguous();
  return {contiguous.data_ptr<double>(), contiguous.data_ptr<double>() + contiguous.numel()};
}

// Sum of gradient x weight per block of `size` columns of `weight` ([d, blocks x size]).
torch::Tensor ColumnBlockProducts(const torch::Tensor& weight, const torch::Tensor& gradient,
                                  int64_t size) {
  if (!gradient.defined()) return torch::zeros({weight.size(1) / size}, torch::kDouble);
  const auto product = (gradient.to(torch::kDouble) * weight.detach().to(torch::kDouble));
  return product.reshape({product.size(0), -1, size}).sum(std::vector<int64_t>{0, 2});
}

}  // namespace

UnitScores WeightNormScores(const std::map<std::string, torch::Tensor>& tensors,
                            const std::vector<EncoderLayer>& layers) {
  UnitScores scores;
  for (const auto& layer : layers) {
    const auto& attention = layer.attention;
    const int64_t heads = attention.heads;
    const int64_t size = attention.head_dim;
    auto squares = BlockSquares(tensors.at(attention.qkv_weight), 0, 3, heads, size) +
                   BlockSquares(tensors.at(attention.out_weight), 1, 1, heads, size);
    if (!attention.qkv_bias.empty()) {
      squares += BlockSquares(tensors.at(attention.qkv_bias), 0, 3, heads, size);
    }
    scores.heads.push_back(Values(squares.sqrt()));
    std::vector<double> units;
    if (layer.feed_forward) {
      const auto& ffn = *layer.feed_forward;
      auto unit_squares = BlockSquares(tensors.at(ffn.in_weight), 0, 1, ffn.units, 1) +
                          BlockSquares(tensors.at(ffn.out_weight), 1, 1, ffn.units, 1);
      if (!ffn.in_bias.empty()) unit_squares += BlockSquares(tensors.at(ffn.in_bias), 0, 1, ffn.units, 1);
      units = Values(unit_squares.sqrt());
    }
    scores.units.push_back(units);
  }
  return scores;
}

UnitScores LossSensitivityScores(torch::jit::Module& model, const std::vector<EncoderLayer>& layers,
                                 const std::vector<strategies::LabelledBatch>& batches,
                                 comm::Communicator& comm) {
  std::vector<torch::Tensor> weights;  // per layer: out_weight, then the ffn's out_weight
  for (const auto& layer : layers) {
    weights.push_back(TensorAt(model, layer.attention.out_weight));
    if (layer.feed_forward) weights.push_back(TensorAt(model, layer.feed_forward->out_weight));
  }
  std::vector<torch::Tensor> totals;
  for (const auto& layer : layers) {
    totals.push_back(torch::zeros({layer.attention.heads}, torch::kDouble));
    totals.push_back(torch::zeros({layer.feed_forward ? layer.feed_forward->units : 0}, torch::kDouble));
  }
  const bool training = model.is_training();
  model.eval();
  for (const auto& batch : batches) {
    const auto device = weights.front().device();
    const auto logits = model.forward({batch.inputs.to(device)}).toTensor();
    const auto loss = torch::nn::functional::cross_entropy(logits.to(torch::kFloat),
                                                           batch.labels.to(device));
    const auto gradients = torch::autograd::grad({loss}, weights, {}, /*retain_graph=*/false,
                                                 /*create_graph=*/false, /*allow_unused=*/true);
    size_t w = 0;
    for (size_t i = 0; i < layers.size(); ++i) {
      const auto& attention = layers[i].attention;
      totals[2 * i] += ColumnBlockProducts(weights[w], gradients[w], attention.head_dim).abs().cpu();
      ++w;
      if (layers[i].feed_forward) {
        totals[2 * i + 1] += ColumnBlockProducts(weights[w], gradients[w], 1).abs().cpu();
        ++w;
      }
    }
  }
  if (training) model.train();
  auto flat = torch::cat(totals);
  comm.AllReduceSync(flat, comm::ReduceOp::kSum);
  UnitScores scores;
  int64_t offset = 0;
  for (const auto& total : totals) {
    const auto part = Values(flat.narrow(0, offset, total.numel()));
    offset += total.numel();
    (scores.heads.size() == scores.units.size() ? scores.heads : scores.units).push_back(part);
  }
  return scores;
}

std::vector<std::vector<double>> HeadAblationDivergences(
    torch::jit::Module& model, const std::vector<EncoderLayer>& layers,
    const std::vector<strategies::LabelledBatch>& batches, comm::Communicator& comm) {
  torch::NoGradGuard no_grad;
  const bool training = model.is_training();
  model.eval();
  const auto log_probabilities = [&](const torch::Tensor& inputs) {
    return torch::log_softmax(model.forward({inputs}).toTensor().to(torch::kDouble), -1);
  };
  int64_t head_count = 0;
  for (const auto& layer : layers) head_count += layer.attention.heads;
  // [heads of every layer, then the sample count]
  auto totals = torch::zeros({head_count + 1}, torch::kDouble);
  for (const auto& batch : batches) {
    const auto device = TensorAt(model, layers.front().attention.out_weight).device();
    const auto inputs = batch.inputs.to(device);
    const auto reference = log_probabilities(inputs);
    int64_t next = 0;
    for (const auto& layer : layers) {
      auto out_weight = TensorAt(model, layer.attention.out_weight);
      const int64_t size = layer.attention.head_dim;
      for (int64_t head = 0; head < layer.attention.heads; ++head) {
        auto columns = out_weight.narrow(1, head * size, size);
        const auto saved = columns.clone();
        columns.zero_();
        const auto ablated = log_probabilities(inputs);
        columns.copy_(saved);
        totals[next++] += (reference.exp() * (reference - ablated)).sum().cpu();
      }
    }
    totals[head_count] += static_cast<double>(inputs.size(0));
  }
  if (training) model.train();
  comm.AllReduceSync(totals, comm::ReduceOp::kSum);
  const auto mean = totals.narrow(0, 0, head_count) / std::max(totals[head_count].item<double>(), 1.0);
  std::vector<std::vector<double>> divergences;
  int64_t offset = 0;
  for (const auto& layer : layers) {
    divergences.push_back(Values(mean.narrow(0, offset, layer.attention.heads)));
    offset += layer.attention.heads;
  }
  return divergences;
}

}  // namespace slim::prune
