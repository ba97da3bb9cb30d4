// The quantization search's multi-rank pieces: the message port that carries the
// coordinator's traffic, and the scoring of a trial, which must give the same figures on
// a group of any size and flag non-finite outputs.
#include <gtest/gtest.h>
#include <torch/torch.h>
#include <unistd.h>

#include <thread>

#include "data/channel_stats.h"
#include "data/hdf5_dataset_writer.h"
#include "data/synthetic_images.h"
#include "runtime/base/errors.h"
#include "runtime/comm/mpi_communicator.h"
#include "runtime/models/builtin_models.h"
#include "search/output_comparison.h"

namespace slim::search {
namespace {

using std::chrono::milliseconds;

class SearchAcrossRanks : public ::testing::Test {
 protected:
  void SetUp() override {
    comm_ = std::make_unique<comm::MpiCommunicator>(MPI_COMM_WORLD, false, milliseconds(30000));
  }

  // 50 generated images in a file of this rank's own (every rank writes the same bytes).
  std::shared_ptr<const data::Hdf5Dataset> EvalData() {
    path_ = "/tmp/slim-mpi-search-" + std::to_string(getpid()) + ".h5";
    const auto images = data::GenerateImages(50, 4);
    data::WriteDatasetFile(path_, images, data::ComputeChannelStats(images));
    return std::make_shared<const data::Hdf5Dataset>(path_);
  }

  void TearDown() override {
    if (!path_.empty()) std::remove(path_.c_str());
  }

  std::unique_ptr<comm::Communicator> comm_;
  std::string path_;
};

TEST_F(SearchAcrossRanks, MessagePortCarriesEveryRequestAndItsReply) {
  auto port = comm_->OpenMessagePort();
  std::thread coordinator;
  if (comm_->Rank() == 0) {
    coordinator = std::thread([&] {
      for (int served = 0; served < comm_->Size(); ++served) {
        const auto request = port->Receive(1, milliseconds(30000));
        EXPECT_EQ(request.text, "rank " + std::to_string(request.source));
        port->Send(request.source, 2, "reply to " + std::to_string(request.source));
      }
    });
  }
  port->Send(0, 1, "rank " + std::to_string(comm_->Rank()));
  EXPECT_EQ(port->Receive(2, milliseconds(30000)).text,
            "reply to " + std::to_string(comm_->Rank()));
  if (coordinator.joinable()) coordinator.join();
  EXPECT_THROW(port->Receive(3, milliseconds(20)), CommError);
}

TEST_F(SearchAcrossRanks, ScoresAreTheSameOnAGroupOfAnySize) {
  const auto eval_data = EvalData();
  torch::manual_seed(3);  // the same models on every rank
  auto float_model = models::BuildBuiltinModel("resnet20", {{3, 32, 32}, 10});
  auto perturbed = float_model.clone();
  {
    torch::NoGradGuard no_grad;
    for (const auto& parameter : perturbed.parameters()) {
      parameter.add_(torch::randn_like(parameter) * 0.05);
    }
  }
  OutputComparison whole(eval_data, 8, *comm_, torch::kCPU, float_model);
  const auto together = whole.Score(perturbed);
  auto alone = comm_->Split(comm_->Rank(), 0);
  OutputComparison single(eval_data, 8, *alone, torch::kCPU, float_model);
  const auto by_itself = single.Score(perturbed);
  EXPECT_EQ(together.samples, 50);
  EXPECT_EQ(by_itself.samples, 50);
  EXPECT_GT(together.emd, 0);
  EXPECT_NEAR(together.emd, by_itself.emd, 1e-12 * together.emd);
  EXPECT_EQ(together.top1, by_itself.top1);
  EXPECT_NEAR(together.loss, by_itself.loss, 1e-9 * together.loss);
  EXPECT_EQ(whole.Float().top1, single.Float().top1);
  EXPECT_NEAR(whole.Score(float_model).emd, 0, 1e-12);
}

TEST_F(SearchAcrossRanks, NonFiniteOutputsAreFlaggedOnEveryRank) {
  const auto eval_data = EvalData();
  torch::manual_seed(3);
  auto float_model = models::BuildBuiltinModel("resnet20", {{3, 32, 32}, 10});
  torch::jit::Module broken("Broken");
  broken.define(R"(
    def forward(self, x):
        zeros = torch.zeros([x.size(0), 10])
        return zeros / zeros
  )");
  OutputComparison comparison(eval_data, 8, *comm_, torch::kCPU, float_model);
  EXPECT_TRUE(comparison.Float().finite);
  EXPECT_FALSE(comparison.Score(broken).finite);
}

}  // namespace
}  // namespace slim::search
