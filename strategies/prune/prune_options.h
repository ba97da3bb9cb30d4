// Options of the mask-based pruning strategies, UnstructurePrune and ASPPrune, with the key
// names and defaults of PaddleSlim ACT plus what SparseML and Neural Compressor users
// expect (skip_params, a cubic GMP curve). docs/configuration.md shows the same text.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "runtime/config/options.h"

namespace slim::prune {

// UnstructurePrune.gmp_config: gradual magnitude pruning. A key left at -1 takes ACT's
// automatic value, computed from the run's optimizer steps when training begins.
struct GmpOptions {
  // stable_iterations: dense steps before pruning starts. Auto: 0.
  int64_t stable_iterations = -1;
  // pruning_iterations: steps over which the ratio rises from initial_ratio to ratio.
  // Auto: max(0.45 x steps, 30).
  int64_t pruning_iterations = -1;
  // tunning_iterations (ACT's spelling): steps at the final ratio afterwards. Auto: as
  // pruning_iterations. Informational: training length is TrainConfig's.
  int64_t tunning_iterations = -1;
  // pruning_steps: how many ratios the pruning phase steps through, each for
  // pruning_iterations / pruning_steps steps. Auto: 100 when pruning_iterations exceeds
  // 1000, else 1.
  int64_t pruning_steps = -1;
  // initial_ratio: the ratio of the first rise. Default 0.15.
  double initial_ratio = 0.15;
  // resume_iteration: ACT's way to resume a schedule; accepted when -1 or 0 only, since
  // checkpoints hold the schedule's position.
  int64_t resume_iteration = -1;
  // schedule: the curve of the ratios: `cubic` (ACT's, Zhu and Gupta's, SparseML's
  // default: fast early, slow near the end) or `linear` (equal rises). Default cubic.
  std::string schedule = "cubic";
};

// UnstructurePrune: individual weights zeroed by magnitude.
struct UnstructurePruneOptions : config::StrategyOptions {
  // prune_strategy: none (one mask from the weights when training begins, kept) or gmp
  // (the ratio rises by gmp_config). Default none.
  std::string prune_strategy = "none";
  // prune_mode: ratio (the smallest `ratio` of the weights) or threshold (weights with
  // |w| < threshold). gmp needs ratio. Default ratio.
  std::string prune_mode = "ratio";
  // ratio: share of the selected weights zeroed (round(ratio x elements)), in (0, 1).
  // Default 0.55.
  double ratio = 0.55;
  // threshold: magnitude below which weights are zeroed, > 0. Default 0.01.
  double threshold = 0.01;
  GmpOptions gmp_config;
  // prune_params_type: conv1x1_only (the weights of 1x1 convolutions) or none (every
  // convolution and linear weight). Biases and normalisation layers are never pruned.
  // Default conv1x1_only.
  std::string prune_params_type = "conv1x1_only";
  // skip_first_last: leave the first and the last weight layer dense (with
  // prune_params_type none). Default true.
  bool skip_first_last = true;
  // local_sparsity: every weight reaches `ratio` on its own, instead of one magnitude
  // threshold over all selected weights. Default false.
  bool local_sparsity = false;
  // skip_params: parameter or module paths left dense; shell wildcards, a module path
  // covers its parameters (`fc`, `layer1.*`, `conv1.weight`). Default none.
  std::vector<std::string> skip_params;
};

// ASPPrune: 2:4 structured sparsity (two of every four consecutive weights along the
// input dimension kept), the layout of NVIDIA's sparse tensor cores.
struct AspPruneOptions : config::StrategyOptions {
  // prune_params_name: weights to prune by parameter name (`layer1.0.conv1.weight`); none
  // means every convolution and linear weight whose input dimension allows it.
  std::vector<std::string> prune_params_name;
  // skip_params: as UnstructurePrune's.
  std::vector<std::string> skip_params;
};

}  // namespace slim::prune

namespace slim::prune {

// ChannelPrune: whole channels removed from the model (channel_graph.h), with ACT's keys
// plus what Torch-Pruning users expect (global_pruning, round_to, ignored_layers, a MACs
// target).
struct ChannelPruneOptions : config::StrategyOptions {
  // pruned_ratio: share of the channels removed from every prunable group, in [0, 1);
  // or a map from weight (or module) name pattern to ratio, where groups no pattern
  // matches keep all their channels. Default 0.25.
  double pruned_ratio = 0.25;
  std::vector<std::pair<std::string, double>> ratio_by_pattern;  // the map form, in file order
  // prune_params_name: the convolutions whose output channels are pruned (weight or
  // module names); none = every prunable group.
  std::vector<std::string> prune_params_name;
  // criterion: l1_norm (|filter| summed), bn_scale (|BatchNorm weight|) or
  // geometry_median (distance to the other filters). Default l1_norm.
  std::string criterion = "l1_norm";
  // global_pruning: rank the channels of all groups together (importance normalised by
  // each group's mean) instead of each group alone. Default false.
  bool global_pruning = false;
  // round_to: channels kept per group are a multiple of this. Default 1.
  int64_t round_to = 1;
  // ignored_layers: modules (patterns) whose output channels are never removed. The
  // model's outputs are always kept.
  std::vector<std::string> ignored_layers;
  // target_macs_ratio: the MACs the pruned model may keep, as a share of the input
  // model's, in (0, 1); the ratio of every group rises until the count meets it. 0 = use
  // pruned_ratio. Default 0.
  double target_macs_ratio = 0;
  // prune_schedule: one_shot (channels removed before training, then fine-tuned) or
  // iterative (the ratios reached in n_steps equal rises during training). Default
  // one_shot.
  std::string prune_schedule = "one_shot";
  // n_steps: the rises of iterative: the first before training, one every
  // total_steps / (2 n_steps) optimizer steps after it, so pruning ends by mid-run and the
  // rest fine-tunes. Default 4.
  int64_t n_steps = 4;
  // Where prune_params_name and target_macs_ratio are ("file:line: ChannelPrune.key"), for
  // the messages of checks that need the model.
  std::string prune_params_name_at;
  std::string target_macs_ratio_at;
};


// TransformerPrune: attention heads and feed-forward hidden units removed from every
// Transformer encoder layer (PaddleSlim ACT's TransformerPrune).
struct TransformerPruneOptions : config::StrategyOptions {
  // pruned_ratio: share of the heads and of the feed-forward units removed from each
  // layer, in [0, 1) (ACT's key). Default 0.25.
  double pruned_ratio = 0.25;
  // head_ratio / ffn_ratio: set the two apart; each defaults to pruned_ratio. A layer
  // removes floor(ratio x count) and keeps at least one head and one unit.
  double head_ratio = 0.25;
  double ffn_ratio = 0.25;
  // importance: weight_norm (the L2 norm of a head's q, k, v rows and output columns, of
  // a unit's input row and output column) or loss_sensitivity (|gradient x weight| of the
  // head's or unit's output columns: the gradient of a mask on its output, summed over
  // batch_num labelled training batches spread over the ranks) or kl (heads: the KL
  // divergence of the output distribution when the head alone is removed, over batch_num
  // training batches, labels unused; units: weight_norm). Default weight_norm.
  std::string importance = "weight_norm";
  // batch_num: batches of Global.batch_size per rank for loss_sensitivity and kl. Default 8.
  int64_t batch_num = 8;
  // layers: encoder layers pruned (module paths, shell patterns: `layers.0`,
  // `enc.layers.*`); none = every encoder layer found.
  std::vector<std::string> layers;
  // Where layers is ("file:line: TransformerPrune.layers"), for checks that need the model.
  std::string layers_at;
};


// ResRep (Ding et al., "ResRep: Lossless CNN Pruning via Decoupling Remembering and
// Forgetting"): a compactor (1x1 convolution, identity at first) after every prunable
// convolution's BatchNorm; channels masked in steps are trained only by a group-lasso
// gradient that drives their compactor rows to zero; at the end each convolution,
// BatchNorm and compactor merge into one smaller convolution.
struct ResRepOptions : config::StrategyOptions {
  // flops_target: the share of the input model's MACs the merged model keeps, in (0, 1).
  // Default 0.5.
  double flops_target = 0.5;
  // lasso_strength: lambda of the gradient lambda x row / |row| that replaces the
  // objective's gradient on the compactor rows of masked channels. Default 1e-4.
  double lasso_strength = 1e-4;
  // before_mask_iters: optimizer steps before the first mask event; -1 = a twentieth of
  // the run's steps.
  int64_t before_mask_iters = -1;
  // mask_interval: optimizer steps between mask events; 0 = a fiftieth of the run's
  // steps (at least 1).
  int64_t mask_interval = 0;
  // num_per_mask: channels masked at each event; 0 = at each event, what the target still
  // needs (by the current compactor norms) spread over the events left until 25 % of the
  // run.
  int64_t num_per_mask = 0;
  // compactor_lr: a fixed learning rate for the compactors, without weight decay; 0 = the
  // model's (its schedule and weight decay apply).
  double compactor_lr = 0;
  // num_at_least: channels every group keeps. Default 1.
  int64_t num_at_least = 1;
  // threshold: at the merge, channels whose compactor rows have a norm below it go too,
  // besides the masked ones. Default 1e-5.
  double threshold = 1e-5;
  // Where flops_target is ("file:line: ResRep.flops_target"), for the check that needs
  // the model.
  std::string flops_target_at;
};

}  // namespace slim::prune
