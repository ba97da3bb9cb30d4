#include "strategies/prune/channel_graph.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>
#include <unordered_set>

#include "export/frozen_graph.h"
#include "export/value_probe.h"
#include "runtime/base/errors.h"
#include "strategies/graph/layer_finder.h"

namespace slim::prune {

namespace {

using torch::jit::Node;
using torch::jit::Value;
namespace aten = c10::aten;
namespace prim = c10::prim;

// Operations that map channel i of their first input to channel i of their output and
// take no other tensor.
const std::unordered_set<c10::Symbol>& PassThroughOps() {
  static const std::unordered_set<c10::Symbol> ops = {
      aten::relu,        aten::relu_,       aten::relu6,          aten::hardtanh,
      aten::hardtanh_,   aten::sigmoid,     aten::sigmoid_,       aten::tanh,
      aten::hardsigmoid, aten::hardswish,   aten::hardswish_,     aten::silu,
      aten::silu_,       aten::gelu,        aten::leaky_relu,     aten::leaky_relu_,
      aten::elu,         aten::mish,        aten::softplus,       aten::clamp,
      aten::clamp_,      aten::dropout,     aten::dropout_,       aten::feature_dropout,
      aten::max_pool2d,  aten::avg_pool2d,  aten::adaptive_avg_pool2d,
      aten::contiguous,  aten::clone,       aten::detach,         aten::neg};
  return ops;
}

const std::unordered_set<c10::Symbol>& ElementwiseOps() {
  static const std::unordered_set<c10::Symbol> ops = {aten::add, aten::add_, aten::sub, aten::sub_,
                                                      aten::mul, aten::mul_, aten::div, aten::div_};
  return ops;
}

// Operations that read only a tensor's metadata.
const std::unordered_set<c10::Symbol>& MetadataOps() {
  static const std::unordered_set<c10::Symbol> ops = {aten::size, aten::dim, prim::device,
                                                      prim::dtype};
  return ops;
}

// Disjoint sets of channel slots (removed together); a set may be fixed, with a reason.
class SlotSets {
 public:
  int64_t Add() {
    parent_.push_back(static_cast<int64_t>(parent_.size()));
    fixed_.emplace_back();
    return parent_.back();
  }
  int64_t Find(int64_t slot) {
    while (parent_[slot] != slot) slot = parent_[slot] = parent_[parent_[slot]];
    return slot;
  }
  void Join(int64_t a, int64_t b) {
    a = Find(a);
    b = Find(b);
    if (a == b) return;
    if (b < a) std::swap(a, b);
    parent_[b] = a;
    if (fixed_[a].empty()) fixed_[a] = fixed_[b];
  }
  void Fix(int64_t slot, const std::string& reason) {
    auto& fixed = fixed_[Find(slot)];
    if (fixed.empty()) fixed = reason;
  }
  const std::string& FixedReason(int64_t slot) { return fixed_[Find(slot)]; }
  int64_t size() const { return static_cast<int64_t>(parent_.size()); }

 private:
  std::vector<int64_t> parent_;
  std::vector<std::string> fixed_;
};

// The channels of one tensor value: the slot of each channel, in order along `dims`
// (row-major when the channels span the two dims of a grouped view [N, g, C/g, H, W]).
struct Channels {
  std::vector<int64_t> slots;
  std::vector<int64_t> dims;     // {1}; {rank - 1} for features; {1, 2} for a grouped view
  std::vector<int64_t> extents;  // sizes of `dims`
  int64_t block = 1;             // consecutive features per channel (flattened C x H x W)

  bool SameLayout(const Channels& other) const {
    return dims == other.dims && extents == other.extents && block == other.block;
  }
  bool Plain(int64_t dim) const { return dims == std::vector<int64_t>{dim} && block == 1; }
};

struct SlotEntry {
  size_t axis;
  int64_t begin;
  int64_t end;
};

int64_t Normalised(int64_t dim, size_t rank) {
  return dim < 0 ? dim + static_cast<int64_t>(rank) : dim;
}

std::optional<int64_t> IntConstant(const Value* value) {
  const auto constant = exporting::ConstantOf(value);
  if (!constant || !constant->isInt()) return std::nullopt;
  return constant->toInt();
}

std::optional<std::vector<int64_t>> IntListConstant(const Value* value) {
  const auto constant = exporting::ConstantOf(value);
  if (!constant || !constant->isIntList()) return std::nullopt;
  return constant->toIntVector();
}

bool IsNone(const Value* value) { return value->type()->kind() == c10::TypeKind::NoneType; }

bool IsTensor(const Value* value) { return value->type()->isSubtypeOf(*c10::TensorType::get()); }

class ChannelWalker {
 public:
  ChannelWalker(const torch::jit::Module& model, const exporting::FrozenModel& frozen,
                const at::Tensor& example)
      : modules_(graph::ModulesByPath(model)), frozen_(frozen) {
    std::vector<Value*> values;
    for (Node* node : frozen.graph->nodes()) {
      if (node->kind() == prim::GetAttr) continue;
      for (Value* output : node->outputs()) {
        if (IsTensor(output)) values.push_back(output);
      }
    }
    const auto shapes = exporting::ValueShapes(frozen, values, example);
    for (size_t i = 0; i < values.size(); ++i) shapes_[values[i]] = shapes[i].at(0);
  }

  ChannelGraph Build() {
    for (Node* node : frozen_.graph->nodes()) Visit(node);
    for (const Value* output : frozen_.graph->outputs()) FixValue(output, "the model's output");
    return Assemble();
  }

 private:
  void Visit(Node* node) {
    const auto kind = node->kind();
    if (!node->blocks().empty()) {
      FixInputs(node, Where(node));
      for (auto* block : node->blocks()) FixUsesIn(block);
    } else if (kind == prim::GetAttr) {
      ResolveAttribute(node);
    } else if (kind == prim::Constant || MetadataOps().count(kind)) {
      return;
    } else if (kind == aten::conv2d || kind == aten::_convolution) {
      Convolution(node);
    } else if (kind == aten::linear) {
      Linear(node);
    } else if (kind == aten::batch_norm) {
      BatchNorm(node);
    } else if (PassThroughOps().count(kind)) {
      PassThrough(node);
    } else if (ElementwiseOps().count(kind)) {
      Elementwise(node);
    } else if (kind == prim::ListConstruct) {
      ListConstruct(node);
    } else if (kind == aten::cat) {
      Cat(node);
    } else if (kind == aten::chunk || kind == prim::ConstantChunk) {
      Chunk(node);
    } else if (kind == prim::ListUnpack) {
      ListUnpack(node);
    } else if (kind == aten::flatten) {
      Flatten(node);
    } else if (kind == aten::view || kind == aten::reshape) {
      Reshape(node);
    } else if (kind == aten::transpose) {
      Transpose(node);
    } else if (kind == aten::mean) {
      Mean(node);
    } else {
      FixInputs(node, Where(node));
    }
  }

  // --- bookkeeping ---

  static std::string Where(const Node* node) {
    const auto layer = exporting::LayerOf(node);
    return fmt::format("read by {} in {}", node->kind().toQualString(),
                       layer.empty() ? std::string("the model's forward") : layer);
  }

  const Channels* Tracked(const Value* value) const {
    const auto found = channels_.find(value);
    return found == channels_.end() ? nullptr : &found->second;
  }

  const std::vector<int64_t>* Shape(const Value* value) const {
    const auto found = shapes_.find(value);
    return found == shapes_.end() ? nullptr : &found->second;
  }

  void Fix(const Channels& channels, const std::string& reason) {
    for (const auto slot : channels.slots) sets_.Fix(slot, reason);
  }

  void FixValue(const Value* value, const std::string& reason) {
    if (const auto* tracked = Tracked(value)) Fix(*tracked, reason);
    const auto list = lists_.find(value);
    if (list == lists_.end()) return;
    for (const auto& element : list->second) Fix(element, reason);
  }

  void FixInputs(const Node* node, const std::string& reason) {
    for (const Value* input : node->inputs()) FixValue(input, reason);
  }

  void FixUsesIn(torch::jit::Block* block) {
    graph::VisitNodes(block, [&](Node* node) { FixInputs(node, Where(node)); });
    FixInputs(block->return_node(), "returned from a branch or loop");
  }

  Channels NewChannels(int64_t count, int64_t dim) {
    Channels channels;
    for (int64_t i = 0; i < count; ++i) {
      channels.slots.push_back(sets_.Add());
      entries_.emplace_back();
    }
    channels.dims = {dim};
    channels.extents = {count};
    return channels;
  }

  size_t Axis(const std::string& tensor, int64_t dim, AxisRole role) {
    const auto key = std::make_pair(tensor, dim);
    const auto found = axis_index_.find(key);
    if (found != axis_index_.end()) return found->second;
    axes_.push_back({tensor, dim, role});
    axis_index_.emplace(key, axes_.size() - 1);
    return axes_.size() - 1;
  }

  // Every channel i of `channels` owns the slices [i * width, (i + 1) * width) of `axis`.
  void AddSlices(const Channels& channels, size_t axis, int64_t width) {
    for (size_t i = 0; i < channels.slots.size(); ++i) {
      const auto begin = static_cast<int64_t>(i) * width;
      entries_[channels.slots[i]].push_back({axis, begin, begin + width});
    }
  }

  void JoinElementwise(const Channels& a, const Channels& b) {
    for (size_t i = 0; i < a.slots.size(); ++i) sets_.Join(a.slots[i], b.slots[i]);
  }

  torch::Tensor Tensor(const std::string& path) const {
    const auto [module, name] = SplitTensorPath(path);
    return modules_.at(module).attr(name).toTensor();
  }

  // The model tensor `value` reads, or "" when it is not an attribute read.
  std::string TensorPath(const Value* value) const {
    const auto found = tensor_paths_.find(value);
    return found == tensor_paths_.end() ? "" : found->second;
  }

  void ResolveAttribute(const Node* node) {
    const Value* owner = node->input();
    std::string prefix;
    if (owner != frozen_.graph->inputs()[0]) {
      const auto found = object_paths_.find(owner);
      if (found == object_paths_.end()) return;
      prefix = found->second + ".";
    }
    const auto path = prefix + node->s(c10::attr::name);
    if (node->output()->type()->cast<c10::ClassType>()) {
      object_paths_[node->output()] = path;
    } else if (IsTensor(node->output()) || HoldsTensor(path)) {
      tensor_paths_[node->output()] = path;  // also Optional[Tensor] (nn.Conv2d's bias)
    }
  }

  // True when the attribute at `path` holds a tensor now (whatever its declared type).
  bool HoldsTensor(const std::string& path) const {
    const auto [module_path, name] = SplitTensorPath(path);
    const auto found = modules_.find(module_path);
    return found != modules_.end() && found->second.hasattr(name) &&
           found->second.attr(name).isTensor();
  }

  // --- operations ---

  void Convolution(const Node* node) {
    const Value* input = node->input(0);
    const auto weight_path = TensorPath(node->input(1));
    const Value* bias = node->input(2);
    const auto bias_path = TensorPath(bias);
    const bool is_conv2d = node->kind() == aten::conv2d;
    const auto groups = IntConstant(node->input(is_conv2d ? 6 : 8));
    const auto transposed = is_conv2d ? std::optional<int64_t>(0) : IntConstant(node->input(6));
    const std::string where = Where(node);
    if (weight_path.empty() || (!IsNone(bias) && bias_path.empty()) || !groups ||
        transposed.value_or(1) != 0 || Tensor(weight_path).dim() != 4) {
      FixInputs(node, where);
      return;
    }
    const auto weight = Tensor(weight_path);
    const int64_t out_channels = weight.size(0);
    const Channels* in = Tracked(input);
    if (in && !in->Plain(1)) {
      Fix(*in, where);
      in = nullptr;
    }
    Channels out;
    if (*groups == 1) {
      if (in) AddSlices(*in, Axis(weight_path, 1, AxisRole::kConsumer), 1);
      out = NewChannels(out_channels, 1);
    } else if (in && weight.size(1) == 1 && out_channels == *groups &&
               static_cast<int64_t>(in->slots.size()) == *groups &&
               HasGroupsAttribute(weight_path, *groups)) {
      out = *in;
      depthwise_.push_back(weight_path);
    } else {
      const auto why = fmt::format("a grouped convolution{}", *groups == out_channels
                                       ? " whose groups is a constant of its compiled code"
                                       : "");
      if (in) Fix(*in, fmt::format("{} ({})", where, why));
      out = NewChannels(out_channels, 1);
      Fix(out, fmt::format("the output of {} ({})", why, where));
    }
    AddSlices(out, Axis(weight_path, 0, AxisRole::kProducer), 1);
    if (!bias_path.empty()) AddSlices(out, Axis(bias_path, 0, AxisRole::kCarried), 1);
    channels_[node->output()] = out;
  }

  // True when the module owning `weight_path` reads its groups from an int attribute
  // (not a constant of its class, which its compiled code holds as a literal).
  bool HasGroupsAttribute(const std::string& weight_path, int64_t groups) const {
    const auto& module = modules_.at(SplitTensorPath(weight_path).first);
    return !module.type()->hasConstant("groups") && module.hasattr("groups") &&
           module.attr("groups").isInt() && module.attr("groups").toInt() == groups;
  }

  void Linear(const Node* node) {
    const auto weight_path = TensorPath(node->input(1));
    const Value* bias = node->input(2);
    const auto bias_path = TensorPath(bias);
    const auto* shape = Shape(node->output());
    if (weight_path.empty() || (!IsNone(bias) && bias_path.empty()) || !shape) {
      FixInputs(node, Where(node));
      return;
    }
    const int64_t last = static_cast<int64_t>(shape->size()) - 1;
    if (const Channels* in = Tracked(node->input(0))) {
      if (in->dims == std::vector<int64_t>{last}) {
        AddSlices(*in, Axis(weight_path, 1, AxisRole::kConsumer), in->block);
      } else {
        Fix(*in, Where(node));
      }
    }
    auto out = NewChannels(shape->back(), last);
    AddSlices(out, Axis(weight_path, 0, AxisRole::kProducer), 1);
    if (!bias_path.empty()) AddSlices(out, Axis(bias_path, 0, AxisRole::kCarried), 1);
    channels_[node->output()] = out;
  }

  void BatchNorm(const Node* node) {
    const Channels* in = Tracked(node->input(0));
    if (!in) return;
    std::vector<std::pair<std::string, AxisRole>> tensors;
    for (size_t i = 1; i <= 4; ++i) {
      if (IsNone(node->input(i))) continue;
      const auto path = TensorPath(node->input(i));
      if (path.empty() || !in->Plain(1)) {
        FixInputs(node, Where(node));
        return;
      }
      tensors.emplace_back(path, i == 1 ? AxisRole::kNormScale : AxisRole::kCarried);
    }
    for (const auto& [path, role] : tensors) AddSlices(*in, Axis(path, 0, role), 1);
    channels_[node->output()] = *in;
  }

  // The output keeps the channels of input 0 when its shape keeps them.
  void PassThrough(const Node* node) {
    const Channels* in = Tracked(node->input(0));
    if (!in) return;
    for (size_t i = 1; i < node->inputs().size(); ++i) {
      if (IsTensor(node->input(i))) {
        FixInputs(node, Where(node));
        return;
      }
    }
    if (!KeepsChannels(*in, node->input(0), node->output())) {
      Fix(*in, Where(node));
      return;
    }
    channels_[node->output()] = *in;
  }

  bool KeepsChannels(const Channels& channels, const Value* from, const Value* to) const {
    const auto* before = Shape(from);
    const auto* after = Shape(to);
    if (!before || !after || before->size() != after->size()) return false;
    return std::all_of(channels.dims.begin(), channels.dims.end(),
                       [&](int64_t dim) { return (*before)[dim] == (*after)[dim]; });
  }

  // A residual add or a per-channel scale: operands with the output's channels are tied;
  // an operand broadcast over the channels ties nothing.
  void Elementwise(const Node* node) {
    const auto* out_shape = Shape(node->output());
    std::vector<const Channels*> full;
    bool conflict = !out_shape;
    for (size_t i = 0; i < 2 && !conflict; ++i) {
      const Value* operand = node->input(i);
      if (!IsTensor(operand)) continue;
      const Channels* tracked = Tracked(operand);
      if (tracked && KeepsChannels(*tracked, operand, node->output())) {
        if (!full.empty() && !full.front()->SameLayout(*tracked)) conflict = true;
        full.push_back(tracked);
      } else if (tracked || !BroadcastsOverChannels(operand, *out_shape, node)) {
        conflict = true;
      }
    }
    if (conflict || full.empty()) {
      FixInputs(node, Where(node));
      return;
    }
    for (size_t i = 1; i < full.size(); ++i) JoinElementwise(*full.front(), *full[i]);
    channels_[node->output()] = *full.front();
  }

  // True when untracked `operand` has extent 1 (or no dimension) at every channel dim of
  // the tracked operand of `node`, once broadcast to `out_shape`.
  bool BroadcastsOverChannels(const Value* operand, const std::vector<int64_t>& out_shape,
                              const Node* node) const {
    std::vector<int64_t> shape;
    if (const auto* known = Shape(operand)) {
      shape = *known;
    } else if (const auto path = TensorPath(operand); !path.empty()) {
      shape = Tensor(path).sizes().vec();
    } else if (const auto constant = exporting::ConstantOf(operand);
               constant && constant->isTensor()) {
      shape = constant->toTensor().sizes().vec();
    } else {
      return false;
    }
    const Channels* tracked = nullptr;
    for (const Value* input : node->inputs()) {
      if (!tracked) tracked = Tracked(input);
    }
    if (!tracked) return true;  // no operand has channels to tie (the model's input, say)
    const auto offset = static_cast<int64_t>(out_shape.size() - shape.size());
    for (const auto dim : tracked->dims) {
      const auto own = dim - offset;
      if (own >= 0 && shape[own] != 1) return false;
    }
    return true;
  }

  void ListConstruct(const Node* node) {
    std::vector<Channels> elements;
    for (const Value* input : node->inputs()) {
      if (!IsTensor(input)) return;
      const Channels* tracked = Tracked(input);
      if (!tracked) {
        FixInputs(node, "concatenated with a tensor of unknown channels");
        return;
      }
      elements.push_back(*tracked);
    }
    lists_[node->output()] = elements;
  }

  void Cat(const Node* node) {
    const auto list = lists_.find(node->input(0));
    const auto* shape = Shape(node->output());
    const auto dim = IntConstant(node->input(1));
    if (list == lists_.end() || !shape || !dim) {
      FixInputs(node, Where(node));
      return;
    }
    const auto& elements = list->second;
    const auto along = Normalised(*dim, shape->size());
    const auto& first = elements.front();
    if (std::all_of(elements.begin(), elements.end(),
                    [&](const Channels& e) { return e.Plain(along); })) {
      Channels out = first;
      out.slots.clear();
      for (const auto& element : elements) {
        out.slots.insert(out.slots.end(), element.slots.begin(), element.slots.end());
      }
      out.extents = {static_cast<int64_t>(out.slots.size())};
      channels_[node->output()] = out;
      return;
    }
    const bool across_channels =
        std::find(first.dims.begin(), first.dims.end(), along) != first.dims.end();
    if (across_channels || !std::all_of(elements.begin(), elements.end(),
                                        [&](const Channels& e) { return e.SameLayout(first); })) {
      FixInputs(node, Where(node));
      return;
    }
    for (const auto& element : elements) JoinElementwise(first, element);
    channels_[node->output()] = first;
  }

  // Splits along the channels into equal chunks whose i-th channels are tied, so the
  // chunks stay equal; a split along another dim keeps the channels in every chunk.
  void Chunk(const Node* node) {
    const Channels* in = Tracked(node->input(0));
    if (!in) return;
    const bool constant_chunk = node->kind() == prim::ConstantChunk;
    const auto chunks =
        constant_chunk ? std::optional<int64_t>(node->i(c10::attr::chunks)) : IntConstant(node->input(1));
    const auto dim =
        constant_chunk ? std::optional<int64_t>(node->i(c10::attr::dim)) : IntConstant(node->input(2));
    const auto* shape = Shape(node->input(0));
    if (!chunks || !dim || !shape) {
      FixInputs(node, Where(node));
      return;
    }
    const auto along = Normalised(*dim, shape->size());
    std::vector<Channels> pieces;
    const auto count = static_cast<int64_t>(in->slots.size());
    if (in->Plain(along) && count % *chunks == 0) {
      const int64_t size = count / *chunks;
      for (int64_t c = 0; c < *chunks; ++c) {
        Channels piece = *in;
        piece.slots.assign(in->slots.begin() + c * size, in->slots.begin() + (c + 1) * size);
        piece.extents = {size};
        if (c > 0) JoinElementwise(pieces.front(), piece);
        pieces.push_back(piece);
      }
    } else if (std::find(in->dims.begin(), in->dims.end(), along) == in->dims.end()) {
      pieces.assign(*chunks, *in);
    } else {
      FixInputs(node, Where(node));
      return;
    }
    if (!constant_chunk) {
      lists_[node->output()] = pieces;
      return;
    }
    for (size_t i = 0; i < node->outputs().size() && i < pieces.size(); ++i) {
      channels_[node->output(i)] = pieces[i];
    }
  }

  void ListUnpack(const Node* node) {
    const auto list = lists_.find(node->input());
    if (list == lists_.end()) return;
    if (list->second.size() != node->outputs().size()) {
      FixInputs(node, Where(node));
      return;
    }
    for (size_t i = 0; i < node->outputs().size(); ++i) channels_[node->output(i)] = list->second[i];
  }

  void Flatten(const Node* node) {
    const Channels* in = Tracked(node->input(0));
    if (!in) return;
    const auto* shape = Shape(node->input(0));
    const auto start = IntConstant(node->input(1));
    const auto end = IntConstant(node->input(2));
    if (!shape || !start || !end) {
      FixInputs(node, Where(node));
      return;
    }
    const auto first = Normalised(*start, shape->size());
    const auto last = Normalised(*end, shape->size());
    if (first > in->dims.back()) {
      channels_[node->output()] = *in;
    } else if (in->dims.size() == 1 && first == in->dims.front() && last >= first) {
      channels_[node->output()] = Merged(*in, *shape, last);
    } else {
      Fix(*in, Where(node));
    }
  }

  // `channels` (one dim) with the dims after it up to `last` of `shape` flattened into it.
  static Channels Merged(const Channels& channels, const std::vector<int64_t>& shape,
                         int64_t last) {
    Channels out = channels;
    for (auto dim = channels.dims.front() + 1; dim <= last; ++dim) out.block *= shape[dim];
    out.extents = {static_cast<int64_t>(channels.slots.size()) * out.block};
    return out;
  }

  // Whether element `index` of the size list `sizes` is worked out at run time (-1 or
  // computed from a tensor's size) rather than written into the code.
  static bool FreeSize(const Value* sizes, size_t index) {
    if (const auto constant = IntListConstant(sizes)) {
      return index < constant->size() && (*constant)[index] == -1;
    }
    const Node* list = sizes->node();
    if (list->kind() != prim::ListConstruct || index >= list->inputs().size()) return false;
    const auto element = IntConstant(list->input(index));
    return !element || *element == -1;
  }

  void Reshape(const Node* node) {
    const Channels* in = Tracked(node->input(0));
    if (!in) return;
    const auto* before = Shape(node->input(0));
    const auto* after = Shape(node->output());
    const Value* sizes = node->input(1);
    if (!before || !after) {
      Fix(*in, Where(node));
      return;
    }
    const bool free_channels = std::all_of(in->dims.begin(), in->dims.end(),
                                           [&](int64_t dim) { return FreeSize(sizes, dim); });
    if (*before == *after && free_channels) {
      channels_[node->output()] = *in;
    } else if (in->dims == std::vector<int64_t>{1} && after->size() == 2 && free_channels) {
      channels_[node->output()] = Merged(*in, *before, static_cast<int64_t>(before->size()) - 1);
    } else if (in->Plain(1) && before->size() == 4 && after->size() == 5 &&
               (*after)[1] * (*after)[2] == (*before)[1]) {
      Grouped(node, *in, (*after)[1], (*after)[2], FreeSize(sizes, 1), FreeSize(sizes, 2));
    } else if (in->dims == std::vector<int64_t>{1, 2} && after->size() == 4 && FreeSize(sizes, 1)) {
      Channels out = *in;
      out.dims = {1};
      out.extents = {static_cast<int64_t>(in->slots.size())};
      channels_[node->output()] = out;
    } else {
      Fix(*in, Where(node));
    }
  }

  // A view of C channels as [groups, C / groups]: the dim written into the code keeps its
  // size, so channels go in equal numbers from every group (same position) or in whole
  // groups.
  void Grouped(const Node* node, const Channels& in, int64_t rows, int64_t columns,
               bool free_rows, bool free_columns) {
    if (free_rows == free_columns) {
      Fix(in, Where(node));
      return;
    }
    for (int64_t row = 0; row < rows; ++row) {
      for (int64_t column = 0; column < columns; ++column) {
        const auto tied = free_columns ? in.slots[column] : in.slots[row * columns];
        sets_.Join(in.slots[row * columns + column], tied);
      }
    }
    Channels out = in;
    out.dims = {1, 2};
    out.extents = {rows, columns};
    channels_[node->output()] = out;
  }

  void Transpose(const Node* node) {
    const Channels* in = Tracked(node->input(0));
    if (!in) return;
    const auto* shape = Shape(node->input(0));
    const auto a = IntConstant(node->input(1));
    const auto b = IntConstant(node->input(2));
    if (!shape || !a || !b) {
      Fix(*in, Where(node));
      return;
    }
    std::set<int64_t> swapped = {Normalised(*a, shape->size()), Normalised(*b, shape->size())};
    const std::set<int64_t> dims(in->dims.begin(), in->dims.end());
    if (std::none_of(swapped.begin(), swapped.end(), [&](int64_t d) { return dims.count(d); })) {
      channels_[node->output()] = *in;
    } else if (swapped == dims && in->dims.size() == 2) {
      const auto rows = in->extents[0];
      const auto columns = in->extents[1];
      Channels out = *in;
      for (int64_t row = 0; row < rows; ++row) {
        for (int64_t column = 0; column < columns; ++column) {
          out.slots[column * rows + row] = in->slots[row * columns + column];
        }
      }
      out.extents = {columns, rows};
      channels_[node->output()] = out;
    } else {
      Fix(*in, Where(node));
    }
  }

  // Global pooling over the dims after the channels keeps them.
  void Mean(const Node* node) {
    const Channels* in = Tracked(node->input(0));
    if (!in) return;
    const auto* shape = Shape(node->input(0));
    const auto reduced = node->inputs().size() >= 2 ? IntListConstant(node->input(1)) : std::nullopt;
    const bool after_channels =
        shape && reduced && !reduced->empty() &&
        std::all_of(reduced->begin(), reduced->end(), [&](int64_t dim) {
          return Normalised(dim, shape->size()) > in->dims.back();
        });
    if (!after_channels || in->block != 1) {
      Fix(*in, Where(node));
      return;
    }
    channels_[node->output()] = *in;
  }

  // --- result ---

  ChannelGraph Assemble() {
    std::map<int64_t, std::vector<SlotEntry>> by_set;
    for (int64_t slot = 0; slot < sets_.size(); ++slot) {
      auto& entries = by_set[sets_.Find(slot)];
      entries.insert(entries.end(), entries_[slot].begin(), entries_[slot].end());
    }
    ChannelGraph graph;
    graph.axes = axes_;
    graph.depthwise_weights = depthwise_;
    std::map<std::vector<size_t>, size_t> group_of_axes;
    std::set<std::pair<std::vector<std::string>, std::string>> fixed;
    for (auto& [root, entries] : by_set) {
      std::set<size_t> axes;
      std::vector<std::string> producers;
      for (const auto& entry : entries) {
        axes.insert(entry.axis);
        const auto& axis = axes_[entry.axis];
        if (axis.role == AxisRole::kProducer &&
            std::find(producers.begin(), producers.end(), axis.tensor) == producers.end()) {
          producers.push_back(axis.tensor);
        }
      }
      if (producers.empty()) continue;
      const auto& reason = sets_.FixedReason(root);
      if (!reason.empty()) {
        if (fixed.insert({producers, reason}).second) graph.fixed.push_back({producers, reason});
        continue;
      }
      const std::vector<size_t> key(axes.begin(), axes.end());
      auto [found, added] = group_of_axes.emplace(key, graph.groups.size());
      if (added) {
        graph.groups.push_back({SplitTensorPath(producers.front()).first, producers, key, {}});
      }
      CoupledChannel channel;
      for (const auto& entry : entries) channel.slices.push_back({entry.axis, entry.begin, entry.end});
      graph.groups[found->second].channels.push_back(std::move(channel));
    }
    return graph;
  }

  const std::map<std::string, torch::jit::Module> modules_;
  const exporting::FrozenModel& frozen_;
  std::unordered_map<const Value*, std::vector<int64_t>> shapes_;
  std::unordered_map<const Value*, std::string> object_paths_;
  std::unordered_map<const Value*, std::string> tensor_paths_;
  std::unordered_map<const Value*, Channels> channels_;
  std::unordered_map<const Value*, std::vector<Channels>> lists_;
  SlotSets sets_;
  std::vector<std::vector<SlotEntry>> entries_;
  std::vector<TensorAxis> axes_;
  std::map<std::pair<std::string, int64_t>, size_t> axis_index_;
  std::vector<std::string> depthwise_;
};

}  // namespace

std::pair<std::string, std::string> SplitTensorPath(const std::string& tensor) {
  const auto dot = tensor.rfind('.');
  if (dot == std::string::npos) return {"", tensor};
  return {tensor.substr(0, dot), tensor.substr(dot + 1)};
}

torch::Tensor TensorAt(const torch::jit::Module& model, const std::string& path) {
  const auto [module, name] = SplitTensorPath(path);
  return graph::ModulesByPath(model).at(module).attr(name).toTensor();
}

ChannelGraph BuildChannelGraph(const torch::jit::Module& model, const at::Tensor& example) {
  const auto frozen = exporting::FreezeForExport(model, exporting::FrozenTensors::kAttributes);
  try {
    return ChannelWalker(model, frozen, example).Build();
  } catch (const c10::Error& error) {
    throw ModelError(std::string("ChannelPrune: the model does not run on an example input "
                                 "for its channel graph: ") +
                     error.what_without_backtrace());
  }
}

}  // namespace slim::prune
