#include "strategies/prune/ratio_search.h"

#include <algorithm>
#include <limits>

namespace slim::prune {

namespace {

// A step of the greedy searches: `unit` moves to its result `to`.
struct Move {
  int unit = -1;  // -1: no move saves anything
  int to = -1;
  double saving = 0;
};

// The figures of a unit at result `at` (-1: unpruned).
struct UnitFigures {
  const PruneSensitivityReport& report;

  double Drop(size_t u, int at) const {
    return at < 0 ? 0.0 : DropPoints(report.dense, report.weights[u].results[at].metric);
  }
  double Macs(size_t u, int at) const {
    return static_cast<double>(at < 0 ? report.dense_macs : report.weights[u].results[at].macs);
  }
  double LatencyMs(size_t u, int at) const {
    return at < 0 ? report.dense_latency_ms : report.weights[u].results[at].latency_ms;
  }
};

// The move that loses the least top-1 per unit saved (MACs, or with `by_latency`
// milliseconds; equal cost: the larger saving), from each unit's current result `step[u]`
// to its next one, or with `by_latency` to any later one.
Move CheapestMove(const UnitFigures& figures, const std::vector<int>& step, bool by_latency) {
  Move best;
  double best_cost = std::numeric_limits<double>::infinity();
  const auto& units = figures.report.weights;
  for (size_t u = 0; u < units.size(); ++u) {
    const int last = by_latency ? static_cast<int>(units[u].results.size()) - 1 : step[u] + 1;
    for (int to = step[u] + 1; to <= last && to < static_cast<int>(units[u].results.size()); ++to) {
      const double saving = by_latency ? figures.LatencyMs(u, step[u]) - figures.LatencyMs(u, to)
                                       : figures.Macs(u, step[u]) - figures.Macs(u, to);
      if (saving <= 0) continue;
      const double cost = std::max(0.0, figures.Drop(u, to) - figures.Drop(u, step[u])) / saving;
      if (cost < best_cost || (cost == best_cost && saving > best.saving)) {
        best = {static_cast<int>(u), to, saving};
        best_cost = cost;
      }
    }
  }
  return best;
}

// The greedy search of GreedyRatiosForMacs (`by_latency` false) and
// GreedyRatiosForLatency.
std::vector<double> GreedyRatios(const PruneSensitivityReport& report, double target,
                                 bool by_latency) {
  const UnitFigures figures{report};
  const auto& units = report.weights;
  std::vector<int> step(units.size(), -1);  // index of the chosen result, -1: unpruned
  double estimated = static_cast<double>(report.dense_macs);
  while (estimated > target * static_cast<double>(report.dense_macs)) {
    auto move = CheapestMove(figures, step, by_latency);
    if (by_latency && move.unit < 0) move = CheapestMove(figures, step, false);
    if (move.unit < 0) break;
    estimated -= figures.Macs(move.unit, step[move.unit]) - figures.Macs(move.unit, move.to);
    step[move.unit] = move.to;
  }
  std::vector<double> ratios;
  for (size_t u = 0; u < units.size(); ++u) {
    ratios.push_back(step[u] < 0 ? 0 : units[u].results[step[u]].ratio);
  }
  return ratios;
}

}  // namespace

std::vector<double> GreedyRatiosForMacs(const PruneSensitivityReport& report, double target) {
  return GreedyRatios(report, target, /*by_latency=*/false);
}

std::vector<double> GreedyRatiosForLatency(const PruneSensitivityReport& report, double target) {
  return GreedyRatios(report, target, /*by_latency=*/true);
}

}  // namespace slim::prune
