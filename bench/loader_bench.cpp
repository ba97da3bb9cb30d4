// Throughput of the HDF5 batch loader with training augmentation, to compare with the
// rate at which a training step consumes samples.
#include <torch/torch.h>

#include <iostream>

#include "bench/bench_common.h"
#include "data/batch_loader.h"
#include "data/distributed_sampler.h"

namespace slim::bench {

int RunLoaderBench(const BenchArgs& args) {
  torch::set_num_threads(1);
  auto dataset = std::make_shared<const data::Hdf5Dataset>(args.Get("data", "train.h5"));
  const int64_t batch = args.GetInt("batch", 64);
  const int threads = static_cast<int>(args.GetInt("threads", 2));
  data::DistributedSampler sampler(
      data::SamplerOptions{dataset->info().size, 0, 1, batch, true, true, 1});
  std::vector<std::vector<int64_t>> plan;
  for (int64_t b = 0; b < sampler.BatchesPerEpoch(); ++b) plan.push_back(sampler.BatchIndices(0, b));
  data::BatchLoader loader(dataset,
                           data::BatchTransform(dataset->info(), data::AugmentSettings{true, 4, true, 1}),
                           threads, 8);
  const auto start = Clock::now();
  loader.Start(plan, 0);
  int64_t samples = 0;
  while (loader.HasNext()) samples += loader.Next().labels.size(0);
  const double seconds = SecondsSince(start);
  std::cout << nlohmann::json{{"bench", "loader"}, {"threads", threads}, {"batch", batch},
                              {"samples", samples}, {"samples_per_s", samples / seconds}}
                   .dump()
            << "\n";
  return 0;
}

}  // namespace slim::bench
