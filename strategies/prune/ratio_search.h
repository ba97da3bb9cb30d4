// Greedy searches for per-group pruning ratios over a sensitivity report (each group
// pruned alone to a few ratios, with the top-1, MACs and latency each reached): which
// ratio each group takes so that the pruned model meets a MACs target while losing the
// least top-1.
#pragma once

#include <vector>

#include "strategies/prune/sensitivity_report.h"

namespace slim::prune {

// Per unit of `report` (in order), the analysed ratio (0: unpruned) a greedy search picks:
// while the estimated MACs exceed `target` x dense, the group whose next analysed ratio
// loses the least top-1 per MAC removed takes it (equal cost: the larger saving). MACs
// are estimated as dense minus each group's own saving.
std::vector<double> GreedyRatiosForMacs(const PruneSensitivityReport& report, double target);

// As GreedyRatiosForMacs, but each move is the one that loses the least top-1 per
// millisecond saved (each group's latency pruned alone against the dense latency), and a
// group may jump past analysed ratios that save no time (a kernel's block of channels not
// yet emptied). When no move saves time, the cheapest per MAC is taken. Stops when the
// estimated MACs meet `target`.
std::vector<double> GreedyRatiosForLatency(const PruneSensitivityReport& report, double target);

}  // namespace slim::prune
