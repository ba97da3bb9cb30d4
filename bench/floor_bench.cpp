// The floor: a bare LibTorch training loop (forward, cross-entropy, backward, SGD step) on
// a TorchScript model in one process, with random inputs already in memory.
#include <torch/torch.h>

#include <iostream>

#include "bench/bench_common.h"
#include "runtime/models/model_loader.h"

namespace slim::bench {

int RunFloorBench(const BenchArgs& args) {
  torch::set_num_threads(static_cast<int>(args.GetInt("threads", 1)));
  torch::manual_seed(0);
  auto model = torch::jit::load(args.Get("model", "model.pt"));
  model.train();
  const int64_t batch = args.GetInt("batch", 64);
  const int64_t steps = args.GetInt("steps", 30);
  const int64_t warmup = args.GetInt("warmup", 5);
  const int64_t classes = args.GetInt("classes", 10);
  auto inputs = torch::randn({batch, 3, 32, 32});
  auto labels = torch::randint(0, classes, {batch});
  torch::optim::SGD optimizer(models::TrainableParameters(model),
                              torch::optim::SGDOptions(0.01).momentum(0.9));
  std::vector<double> times;
  for (int64_t step = 0; step < warmup + steps; ++step) {
    const auto start = Clock::now();
    auto loss = torch::nn::functional::cross_entropy(model.forward({inputs}).toTensor(), labels);
    loss.backward();
    optimizer.step();
    optimizer.zero_grad();
    if (step >= warmup) times.push_back(SecondsSince(start));
  }
  std::cout << nlohmann::json{{"bench", "floor"}, {"batch", batch}, {"steps", steps},
                              {"median_step_s", Median(times)}}
                   .dump()
            << "\n";
  return 0;
}

}  // namespace slim::bench
