// Search quality over many seeds, replayed on a measured objective: the quantization
// search's samplers (the code slim-train runs) propose trials as in a one-group search,
// and each trial's objective is looked up in a table of trials that slim-train measured
// (trials.jsonl records) instead of being run. A proposal that is the same trial as a
// table record (search_space.h: SameTrial) gets its objective; another gets the objective
// of the nearest record with the same candidates, by the ranges that matter there, each
// scaled to its width (a float range such as hist_percent cannot be tabulated exactly).
// The output counts both kinds of lookup.
#include <cmath>
#include <fstream>
#include <iostream>
#include <limits>
#include <sstream>
#include <stdexcept>

#include "bench/bench_common.h"
#include "search/quant_search.h"
#include "search/sampler.h"

namespace slim::bench {

namespace {

// The space of a JSON object as bench/fmnist_quant_search.py writes it: ptq_algo,
// bias_correct and weight_quantize_type lists, hist_percent and batch_num [low, high].
search::SearchSpace SpaceFromJson(const nlohmann::json& json) {
  hpo::HpoOptions options;
  options.ptq_algo = json.at("ptq_algo").get<std::vector<std::string>>();
  options.bias_correct.clear();
  for (const auto& value : json.at("bias_correct")) {
    options.bias_correct.push_back(value.get<std::string>() == "true");
  }
  options.weight_quantize_type = json.at("weight_quantize_type").get<std::vector<std::string>>();
  options.hist_percent_low = json.at("hist_percent").at(0).get<double>();
  options.hist_percent_high = json.at("hist_percent").at(1).get<double>();
  options.batch_num_low = json.at("batch_num").at(0).get<int64_t>();
  options.batch_num_high = json.at("batch_num").at(1).get<int64_t>();
  return search::QuantSearchSpace(options);
}

nlohmann::json ReadJson(const std::string& path) {
  std::ifstream file(path);
  if (!file) throw std::runtime_error(path + " is not readable");
  return nlohmann::json::parse(file);
}

// The measured trials, and the lookups made in them.
class ObjectiveTable {
 public:
  ObjectiveTable(search::SearchSpace space, const std::string& path) : space_(std::move(space)) {
    std::ifstream file(path);
    if (!file) throw std::runtime_error(path + " is not readable");
    int line_number = 0;
    for (std::string line; std::getline(file, line);) {
      ++line_number;
      if (line.empty()) continue;
      try {
        const auto record = nlohmann::json::parse(line);
        trials_.push_back({-1, search::PointFromJson(space_, record.at("params")),
                           record.at("objective").get<double>()});
      } catch (const std::exception& e) {
        throw std::runtime_error(path + ":" + std::to_string(line_number) + ": " + e.what());
      }
    }
    if (trials_.empty()) throw std::runtime_error(path + " holds no trial");
  }

  double Objective(const search::Point& point) {
    const search::Observation* nearest = nullptr;
    double nearest_distance = std::numeric_limits<double>::infinity();
    for (const auto& trial : trials_) {
      if (search::SameTrial(space_, point, trial.point)) {
        ++exact_;
        return trial.objective;
      }
      const double distance = Distance(point, trial.point);
      if (distance < nearest_distance) nearest = &trial, nearest_distance = distance;
    }
    if (nearest == nullptr) {
      throw std::runtime_error("the table has no trial with the candidates of " +
                               search::PointToJson(space_, point).dump() + "; tabulate them");
    }
    ++nearest_;
    return nearest->objective;
  }

  nlohmann::json Lookups() const { return {{"exact", exact_}, {"nearest", nearest_}}; }

 private:
  // Infinite between points of different candidates; otherwise the Euclidean distance of
  // the ranges that matter at `a`, each in units of its width.
  double Distance(const search::Point& a, const search::Point& b) const {
    double sum = 0;
    for (size_t d = 0; d < space_.size(); ++d) {
      const auto& dimension = space_[d];
      if (dimension.kind == search::Dimension::Kind::kCategorical) {
        if (a[d] != b[d]) return std::numeric_limits<double>::infinity();
      } else if (search::Matters(space_, d, a) && dimension.high > dimension.low) {
        const double scaled = (a[d] - b[d]) / (dimension.high - dimension.low);
        sum += scaled * scaled;
      }
    }
    return std::sqrt(sum);
  }

  search::SearchSpace space_;
  std::vector<search::Observation> trials_;
  int64_t exact_ = 0;
  int64_t nearest_ = 0;
};

// The best objective a one-group search with `sampler` reaches in `budget` trials.
double BestOfSearch(const search::Sampler& sampler, int64_t budget, ObjectiveTable& table) {
  std::vector<search::Observation> finished;
  double best = std::numeric_limits<double>::infinity();
  for (int64_t trial = 0; trial < budget; ++trial) {
    const auto point = sampler.Propose(trial, finished);
    if (!point) break;
    const double objective = table.Objective(*point);
    best = std::min(best, objective);
    finished.push_back({trial, *point, objective});
  }
  return best;
}

}  // namespace

int RunSamplerBench(const BenchArgs& args) {
  const auto space_path = args.Get("space", "space.json");
  search::SearchSpace space;
  try {
    space = SpaceFromJson(ReadJson(space_path));
  } catch (const nlohmann::json::exception& e) {
    throw std::runtime_error(space_path + ": " + e.what());
  }
  ObjectiveTable table(space, args.Get("table", "trials.jsonl"));
  const int64_t seeds = args.GetInt("seeds", 100);
  nlohmann::json budgets;
  std::istringstream list(args.Get("budgets", "10,20"));
  for (std::string text; std::getline(list, text, ',');) {
    const auto budget = static_cast<int64_t>(std::stod(text));
    for (const std::string name : {"tpe", "random"}) {
      auto& bests = budgets[std::to_string(budget)][name];
      for (int64_t seed = 1; seed <= seeds; ++seed) {
        const auto sampler = search::MakeSampler(name, space, static_cast<uint64_t>(seed), budget);
        bests.push_back(BestOfSearch(*sampler, budget, table));
      }
    }
  }
  std::cout << nlohmann::json{{"bench", "sampler"},
                              {"seeds", seeds},
                              {"budgets", budgets},
                              {"lookups", table.Lookups()}}
                   .dump()
            << "\n";
  return 0;
}

}  // namespace slim::bench
