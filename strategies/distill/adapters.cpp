#include "strategies/distill/adapters.h"

#include <cmath>

namespace slim::distill {

namespace {

const char* const kAdapterSource = R"(
def forward(self, x):
    if x.dim() == 4:
        return torch.conv2d(x, self.weight.unsqueeze(-1).unsqueeze(-1), self.bias)
    return torch.linear(x, self.weight, self.bias)
)";

}  // namespace

std::optional<int64_t> ChannelDim(const torch::Tensor& feature) {
  switch (feature.dim()) {
    case 2:
    case 4:
      return 1;
    case 3:
      return 2;
    default:
      return std::nullopt;
  }
}

bool DifferOnlyInChannels(const torch::Tensor& student, const torch::Tensor& teacher) {
  const auto channel_dim = ChannelDim(student);
  if (!channel_dim || student.dim() != teacher.dim()) return false;
  for (int64_t d = 0; d < student.dim(); ++d) {
    if (d != *channel_dim && student.size(d) != teacher.size(d)) return false;
  }
  return true;
}

AdapterFactory::AdapterFactory() : unit_(std::make_shared<torch::jit::CompilationUnit>()) {}

torch::jit::Module AdapterFactory::NewAdapter(int64_t student_channels, int64_t teacher_channels,
                                              bool vid) {
  auto& prototype = prototypes_[vid ? 1 : 0];
  if (!prototype) {
    prototype.emplace(c10::QualifiedName(vid ? "__torch__.slim.distill.VidAdapter"
                                             : "__torch__.slim.distill.Adapter"),
                      unit_, /*shouldMangle=*/true);
    prototype->register_attribute("training", c10::BoolType::get(), true);
    prototype->register_parameter("weight", torch::zeros({1, 1}), false);
    prototype->register_parameter("bias", torch::zeros({1}), false);
    if (vid) prototype->register_parameter("variance_raw", torch::zeros({1}), false);
    prototype->define(kAdapterSource);
  }
  auto adapter = prototype->deepcopy();
  const double bound = 1.0 / std::sqrt(static_cast<double>(student_channels));
  adapter.setattr("weight", torch::empty({teacher_channels, student_channels})
                                .uniform_(-bound, bound).requires_grad_());
  adapter.setattr("bias",
                  torch::empty({teacher_channels}).uniform_(-bound, bound).requires_grad_());
  if (vid) {
    // softplus(log(e - 1)) = 1.
    adapter.setattr("variance_raw",
                    torch::full({teacher_channels}, std::log(std::exp(1.0) - 1)).requires_grad_());
  }
  return adapter;
}

}  // namespace slim::distill
