// Which channels ChannelPrune removes from each group, given their importance: the least
// important ones, per group (local) or ranked over all groups (global).
#pragma once

#include <cstdint>
#include <vector>

namespace slim::prune {

// Channels a group of `channels` keeps at `ratio` in [0, 1): channels - floor(ratio x
// channels), at least 1, rounded up to a multiple of `round_to` (at most `channels`), so
// no group loses every channel.
int64_t ChannelsKept(int64_t channels, double ratio, int64_t round_to);

// How many channels of each group go: group g loses ratios[g] of its channels on its own
// (local), or (global) the channels with the lowest importance over every group with a
// ratio above 0 go until floor(sum ratios[g] x channels) have gone, each group keeping at
// least one; counts are then rounded as ChannelsKept rounds. importance[g] holds one score
// per channel of group g.
std::vector<int64_t> RemovedCounts(const std::vector<std::vector<double>>& importance,
                                   const std::vector<double>& ratios, int64_t round_to,
                                   bool global);

// The indices of the `count` lowest of `scores`, ascending; of equal scores the later
// channel goes first.
std::vector<int64_t> LeastImportant(const std::vector<double>& scores, int64_t count);

}  // namespace slim::prune
